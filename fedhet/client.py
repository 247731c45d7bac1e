"""The hospital side of federated learning: local data and local training.

A ``Client`` holds one hospital's images and never hands them out. It receives global
parameters, trains on its own data and returns a ``ClientUpdate``: new parameters and
its training-set size, which is all the server ever sees. A hospital under differential
privacy trains through a ``fedhet.privacy.PrivateTrainer`` (DP-SGD) instead.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from fedhet.metrics import binary_metrics
from fedhet.model import build_model, predict_proba, to_tensor
from fedhet.partition import HospitalData
from fedhet.privacy import PrivacyRecord, PrivateTrainer
from fedhet.specs import DPSpec, ModelSpec, TrainSpec

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ClientUpdate:
    """What a client sends to the server: parameters and a count, no data."""

    state: State
    n_samples: int
    loss: float


def make_optimizer(params, spec: TrainSpec) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    raise ValueError(f"training.optimizer: unknown optimizer {spec.optimizer!r} (sgd, adam)")


class Client:
    def __init__(
        self,
        data: HospitalData,
        model_spec: ModelSpec,
        train_spec: TrainSpec,
        seed: int,
        index: int,
        dp: DPSpec | None = None,
    ):
        self.name = data.name
        self.spec = train_spec
        self._x = to_tensor(data.train_images).contiguous(memory_format=torch.channels_last)
        self._y = torch.from_numpy(data.train_labels)
        self._x_test = to_tensor(data.test_images).contiguous(memory_format=torch.channels_last)
        self._y_test = data.test_labels
        self.model = build_model(model_spec, seed).to(memory_format=torch.channels_last)
        # One data-order stream per client, fixed by (seed, client index): reproducible and
        # independent of which other clients exist.
        self._generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        self._loss = nn.CrossEntropyLoss()
        self.train_seconds = 0.0  # time spent in local training, for benchmarks
        self.train_images = 0
        # A private hospital keeps one trainer, hence one privacy accountant, for all rounds.
        self.private: PrivateTrainer | None = None
        if dp is not None and dp.enabled:
            self.private = PrivateTrainer(
                name=self.name,
                module=self.model,
                optimizer=make_optimizer(self.model.parameters(), train_spec),
                images=self._x,
                labels=self._y,
                batch_size=train_spec.batch_size,
                spec=dp,
                planned_epochs=train_spec.rounds * train_spec.local_epochs,
                seed=seed * 1_000_003 + index,
            )

    @property
    def n_samples(self) -> int:
        return len(self._y)

    def train(self, global_state: State, epochs: int) -> ClientUpdate:
        """Start from ``global_state``, train ``epochs`` passes over the local data."""
        start_time = time.perf_counter()
        if self.private is not None:
            state, _ = self.private.train(global_state, epochs, self._loss)
            self.train_seconds += time.perf_counter() - start_time
            self.train_images += epochs * self.n_samples  # in expectation under Poisson sampling
            # The training loss is a function of the private records that ε does not cover:
            # it stays at the hospital.
            return ClientUpdate(state=state, n_samples=self.n_samples, loss=math.nan)
        self.model.load_state_dict(global_state)
        self.model.train()
        optimizer = make_optimizer(self.model.parameters(), self.spec)
        total = torch.zeros(())
        batches = 0
        for _ in range(epochs):
            # One gather per epoch, then contiguous slices: cheaper than a gather per batch.
            order = torch.randperm(self.n_samples, generator=self._generator)
            xs, ys = self._x[order], self._y[order]
            for start in range(0, self.n_samples, self.spec.batch_size):
                optimizer.zero_grad(set_to_none=True)
                end = start + self.spec.batch_size
                loss = self._loss(self.model(xs[start:end]), ys[start:end])
                loss.backward()
                optimizer.step()
                total += loss.detach()
                batches += 1
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.train_seconds += time.perf_counter() - start_time
        self.train_images += epochs * self.n_samples
        return ClientUpdate(state=state, n_samples=self.n_samples, loss=float(total) / max(batches, 1))

    def privacy_record(self) -> PrivacyRecord:
        """What this hospital's training spent (NaNs for a non-private hospital)."""
        return self.private.record() if self.private is not None else PrivacyRecord(self.name, private=False)

    @property
    def n_test(self) -> int:
        return len(self._y_test)

    @property
    def n_test_abnormal(self) -> int:
        return int(self._y_test.sum())

    def evaluate(self, state: State, threshold: float) -> dict[str, tuple[float, str]]:
        """Metrics of a model with ``state`` on this hospital's own test split. Evaluation
        happens at the hospital: only the metrics leave it."""
        self.model.load_state_dict(state)
        return binary_metrics(self._y_test, predict_proba(self.model, self._x_test), threshold)
