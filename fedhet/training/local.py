"""One local training loop for every hospital, private or not.

A batch source says how a hospital's batches are drawn and how a batch's gradient is formed:
``PlainBatches`` (a shuffled pass, plain backprop) here, ``fedhet.privacy.dpsgd.PrivateBatches``
(Poisson batches, per-example clipping, Gaussian noise) for DP-SGD. The loop is the same for
both; an algorithm's local objective enters only as ``adjust`` (``Strategy.adjust_gradients``),
called after the batch gradient is formed and before the optimizer steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple, Protocol

import torch
from torch import nn

from fedhet.training.optimizer import Optimizer

Batch = tuple[torch.Tensor, torch.Tensor]


class BatchSource(Protocol):
    optimizer: Optimizer

    def epoch(self) -> Iterator[Batch]:
        """The batches of one pass over the hospital's training records."""
        ...

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """Leave the batch's (mean) gradient in ``p.grad``; return its loss, or None where the
        loss must stay unseen (DP-SGD)."""
        ...


class LocalResult(NamedTuple):
    loss: float  # the mean batch loss (NaN when no loss was seen)
    steps: int  # optimiser steps taken


def train_local(source: BatchSource, epochs: int, adjust: Callable[[], None] | None = None) -> LocalResult:
    """``epochs`` passes of ``source``: the mean batch loss and the number of steps."""
    # A fresh optimizer state every round (momentum restarts), as a client's new optimizer.
    source.optimizer.state.clear()
    # Summed on the loss's device, read once at the end: no host-device sync per batch.
    total, batches, steps = None, 0, 0
    for _ in range(epochs):
        for x, y in source.epoch():
            loss = source.gradient(x, y)
            if adjust is not None:
                adjust()
            source.optimizer.step()
            steps += 1
            if loss is not None:
                total = loss if total is None else total + loss
                batches += 1
    return LocalResult(float(total) / batches if batches else math.nan, steps)


class PlainBatches:
    """Non-private batches: one seeded shuffle per epoch, contiguous slices of it."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Optimizer,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        generator: torch.Generator,
    ):
        self.model, self.optimizer = model, optimizer
        self.images, self.labels = images, labels
        self.batch_size, self.generator = batch_size, generator
        self.loss_fn = nn.CrossEntropyLoss()

    def add_public(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Public records train like the hospital's own (no privacy to protect here)."""
        if len(labels):
            self.images = torch.cat([self.images, images]).contiguous(memory_format=torch.channels_last)
            self.labels = torch.cat([self.labels, labels])

    def epoch(self) -> Iterator[Batch]:
        # One gather per epoch, then contiguous slices: cheaper than a gather per batch.
        self.model.train()
        # The order is drawn on the CPU generator: the same batches on every device.
        order = torch.randperm(len(self.labels), generator=self.generator).to(self.labels.device)
        xs, ys = self.images[order], self.labels[order]
        for start in range(0, len(ys), self.batch_size):
            yield xs[start : start + self.batch_size], ys[start : start + self.batch_size]

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        return loss.detach()
