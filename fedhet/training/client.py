"""The hospital side of federated learning: local records, local training, local evaluation.

A ``Client`` holds one hospital's images and never hands them out. Each round it receives
the server's message, starts from the model its algorithm picks (keeping its personal
parameters), trains through the one local loop (``fedhet.training.local.train_local``) with plain or
DP-SGD batches, and returns a ``fedhet.training.strategy.Update``: the parameters it may share, its
training-set size, its loss (NaN when private) and exactly the extras its algorithm declares.
It keeps the algorithm's per-hospital state (``state``) across rounds. Metrics of a model on its own
test split are computed here too; only the numbers leave.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from fedhet.analysis.metrics import binary_metrics
from fedhet.data.partition import HospitalData
from fedhet.device import CPU
from fedhet.privacy.accounting import PrivacyRecord
from fedhet.training.local import PlainBatches, train_local
from fedhet.training.model import build_model, predict_proba, to_tensor
from fedhet.training.optimizer import make_optimizer
from fedhet.training.strategy import LocalRound, Message, Parameters, PublicRecords, Strategy, Update, check_payload
from fedhet.workflow.specs import DPSpec, ModelSpec, TrainSpec

if TYPE_CHECKING:
    from fedhet.privacy.dpsgd import PrivateBatches


class Client:
    def __init__(
        self,
        data: HospitalData,
        model_spec: ModelSpec,
        train_spec: TrainSpec,
        seed: int,
        index: int,
        dp: DPSpec | None = None,
        device: torch.device = CPU,
    ):
        self.name = data.name
        x = to_tensor(data.train_images, device).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(data.train_labels).to(device)
        self._x, self._y = x, y
        self._x_test = to_tensor(data.test_images, device).contiguous(memory_format=torch.channels_last)
        self._y_test = data.test_labels
        self.model = build_model(model_spec, seed).to(device, memory_format=torch.channels_last)
        optimizer = make_optimizer(self.model.parameters(), train_spec)
        # One data-order stream per client, fixed by (seed, client index): reproducible and
        # independent of which other clients exist.
        stream = seed * 1_000_003 + index
        self._personal_setup = (model_spec, train_spec, seed, stream)
        self._personal: PlainBatches | None = None  # a personal model's batches (Ditto), built on first use
        self.state: dict = {}  # the algorithm's state at this hospital, kept across rounds
        self.train_seconds = 0.0  # time spent in local training, for benchmarks
        self.train_images = 0
        self.batches: PlainBatches | PrivateBatches
        if dp is not None and dp.enabled:
            # A private hospital keeps one sampler and accountant for all rounds. DP-SGD (and
            # Opacus, 2 s to import) is loaded only by cells that have one.
            from fedhet.privacy.dpsgd import PrivateBatches

            planned = train_spec.rounds * train_spec.local_epochs
            self.batches = PrivateBatches(
                self.name, self.model, optimizer, x, y, train_spec.batch_size, dp, planned, stream
            )
        else:
            self.batches = PlainBatches(
                self.model, optimizer, x, y, train_spec.batch_size, torch.Generator().manual_seed(stream)
            )

    @property
    def n_samples(self) -> int:
        return len(self._y)

    def add_public(self, records: PublicRecords | None) -> None:
        """Public records the server handed out (shared data): trained on beside the
        hospital's own, never counted in its FedAvg weight, never costing ε."""
        if records is not None:
            self.batches.add_public(*records)

    @property
    def private(self) -> bool:
        return not isinstance(self.batches, PlainBatches)

    def start_from(self, message: Message, strategy: Strategy) -> int:
        """Load the model this hospital uses from the server's ``message`` (its personal
        parameters stay as they are) and return the index of the model it picked."""
        choice = strategy.choose(message, self.training_loss, self.state)
        self._load(message.models[choice], strategy)
        return choice

    def train(self, message: Message, epochs: int, strategy: Strategy) -> Update:
        """One round: start from the picked model, train ``epochs`` local epochs."""
        start_time = time.perf_counter()
        choice = self.start_from(message, strategy)
        local = LocalRound(message, choice, message.models[choice], self.state)
        loss, local.steps = train_local(self.batches, epochs, lambda: strategy.adjust_gradients(self.model, local))
        strategy.end_training(self.model, local)
        final = self.model_state()
        payload = strategy.after_training(final, local)
        check_payload(payload, strategy.sends, f"hospital {self.name}")
        if strategy.personal_model:
            self._train_personal(local, epochs, strategy)
        self.train_seconds += time.perf_counter() - start_time
        self.train_images += epochs * self.n_samples  # in expectation under Poisson sampling
        # A private hospital's training loss is a function of its records that ε does not
        # cover: it stays at the hospital (and so does every loss under client-level DP).
        released = loss if strategy.releases_loss and not self.private else math.nan
        return Update(strategy.sent(final), self.n_samples, released, payload)

    def model_state(self) -> Parameters:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def evaluated_state(self, strategy: Strategy) -> Parameters:
        """The full parameter set this hospital is evaluated with: its personal model where the
        algorithm keeps one and it has trained, else the model it loaded."""
        if strategy.personal_model and "personal" in self.state:
            return self.state["personal"]
        if strategy.adaptation_step is not None:
            return self.adapted(self.model_state(), strategy.adaptation_step)
        return self.model_state()

    def adapted(self, parameters: Parameters, step: float) -> Parameters:
        """``parameters`` after one gradient step of size ``step`` on the mean loss over this
        hospital's training records (Per-FedAvg's adaptation); computed here, never sent."""
        self.model.load_state_dict(parameters)
        self.model.eval()
        self.model.zero_grad(set_to_none=True)
        loss = nn.CrossEntropyLoss(reduction="sum")
        for i in range(0, self.n_samples, 2048):
            (loss(self.model(self._x[i : i + 2048]), self._y[i : i + 2048]) / self.n_samples).backward()
        with torch.no_grad():
            for p in self.model.parameters():
                if p.grad is not None:
                    p.add_(p.grad, alpha=-step)
        self.model.zero_grad(set_to_none=True)
        return self.model_state()

    def _train_personal(self, local: LocalRound, epochs: int, strategy: Strategy) -> None:
        """One round of the personal model: its own network, optimiser and data order, so the
        shared model trains exactly as it would without it. Plain SGD even at a private
        hospital: the personal model never leaves it (ε covers what the hospital sends)."""
        if self._personal is None:
            model_spec, train_spec, seed, stream = self._personal_setup
            model = build_model(model_spec, seed).to(self._x.device, memory_format=torch.channels_last)
            model.load_state_dict(local.start, strict=False)  # v starts at the first global model
            order = torch.Generator().manual_seed(int(np.random.SeedSequence([stream, 1]).generate_state(1)[0]))
            optimizer = make_optimizer(model.parameters(), strategy.personal_training(train_spec))
            self._personal = PlainBatches(model, optimizer, self._x, self._y, train_spec.batch_size, order)
        model = self._personal.model
        train_local(self._personal, epochs, lambda: strategy.personal_gradients(model, local))
        self.state["personal"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def _load(self, parameters: Parameters, strategy: Strategy) -> None:
        expected = {k for k in self.model.state_dict() if not strategy.personal(k)}
        if set(parameters) != expected:
            raise ValueError(f"hospital {self.name}: received {sorted(parameters)}, expected {sorted(expected)}")
        self.model.load_state_dict(parameters, strict=False)

    @torch.no_grad()
    def training_loss(self, parameters: Parameters) -> float:
        """Mean loss of the model with ``parameters`` (and this hospital's personal ones) on
        its own training records; computed here, only the number is used."""
        self.model.load_state_dict(parameters, strict=False)
        self.model.eval()
        loss = nn.CrossEntropyLoss(reduction="sum")
        chunks = range(0, self.n_samples, 2048)
        total = sum(float(loss(self.model(self._x[i : i + 2048]), self._y[i : i + 2048])) for i in chunks)
        return total / max(self.n_samples, 1)

    def privacy_record(self, trained: bool = True) -> PrivacyRecord:
        """What this hospital's training spent (NaNs for a non-private hospital)."""
        if self.private:
            return self.batches.record()
        return PrivacyRecord(self.name, private=False, trained=trained)

    @property
    def n_test(self) -> int:
        return len(self._y_test)

    @property
    def n_test_abnormal(self) -> int:
        return int(self._y_test.sum())

    def evaluate(self, state: Parameters, threshold: float) -> dict[str, tuple[float, str]]:
        """Metrics of a model with the full parameter set ``state`` on this hospital's own test
        split. Evaluation happens at the hospital: only the metrics leave it."""
        self.model.load_state_dict(state)
        return binary_metrics(self._y_test, predict_proba(self.model, self._x_test), threshold)
