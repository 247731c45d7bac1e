"""The hospital side of federated learning: local data and local training.

A ``Client`` holds one hospital's images and never hands them out. It receives global
parameters, trains on its own data and returns a ``ClientUpdate``: new parameters and
its training-set size, which is all the server ever sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fedhet.metrics import binary_metrics
from fedhet.model import ModelSpec, build_model, predict_proba, to_tensor
from fedhet.partition import HospitalData

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainSpec:
    rounds: int = 10
    local_epochs: int = 1
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    client_fraction: float = 1.0


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
    def __init__(self, data: HospitalData, model_spec: ModelSpec, train_spec: TrainSpec, seed: int, index: int):
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

    @property
    def n_samples(self) -> int:
        return len(self._y)

    def train(self, global_state: State, epochs: int) -> ClientUpdate:
        """Start from ``global_state``, train ``epochs`` passes over the local data."""
        self.model.load_state_dict(global_state)
        self.model.train()
        optimizer = make_optimizer(self.model.parameters(), self.spec)
        total, batches = 0.0, 0
        for _ in range(epochs):
            order = torch.randperm(self.n_samples, generator=self._generator)
            for start in range(0, self.n_samples, self.spec.batch_size):
                batch = order[start : start + self.spec.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = self._loss(self.model(self._x[batch]), self._y[batch])
                loss.backward()
                optimizer.step()
                total += loss.item()
                batches += 1
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return ClientUpdate(state=state, n_samples=self.n_samples, loss=total / max(batches, 1))

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
