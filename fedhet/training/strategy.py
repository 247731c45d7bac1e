"""The strategy interface: what a federated algorithm decides on each side of the boundary.

Messages cross the boundary in both directions with named payloads:

* server → client, a ``Message``: the models every selected client receives this round
  (FedAvg: one global model; IFCA: k of them) and named tensors (SCAFFOLD: its control variate);
* client → server, an ``Update``: the non-personal parameters, the number of training records
  (FedAvg's weight), the mean training loss (NaN at a private hospital and under client-level DP:
  ε does not cover it) and the extras the algorithm declares in ``sends`` (IFCA: ``choice``, one
  integer; SCAFFOLD: ``control_delta``). A client refuses to send, and the server to receive, an
  update whose extras differ from the declaration.

Server side (sees only ``Update``s, never records; its state, e.g. SCAFFOLD's control variate or
a momentum buffer, lives on the strategy):
    ``message()``                the round's ``Message``;
    ``aggregate(updates)``       ``server_step(average(updates), updates)``;
    ``average(updates)``         the clients' parameters combined (FedAvg: the weighted mean);
    ``server_step(mean, updates)``  the next round's models from the combined parameters (and,
                                 where the algorithm declares extras, from those). A DP wrapper
                                 (``fedhet.training.client_dp``) replaces ``average`` only, and hands the
                                 server step the privatised mean without the updates.
Client side (runs at the hospital, beside its records; the strategy object is shared, so every
hook gets the hospital's own ``state``, a dict the client keeps across rounds):
    ``choose(message, loss, state)``  which received model to start from (``loss(params)`` is the
                                 model's loss on the hospital's own training records);
    ``adjust_gradients(model, local)``  an extra term of the local objective, added to the batch
                                 gradient after it is formed (and noised, under DP);
    ``end_training(model, local)``  after the local loop, before the model is read;
    ``after_training(final, local)``  the declared extras, computed from the model the hospital
                                 ends the round with (under DP-SGD: post-processing of it);
    ``personal_gradients(model, local)``  with ``personal_model``, the extra term of the personal
                                 model's objective (Ditto); that model never leaves the hospital;
    ``personal_training(spec)``  the personal model's optimiser settings (Ditto: its own lr);
    ``personal(name)``           which parameters stay at the hospital: never sent, never averaged.

``Strategy`` below is FedAvg's behaviour on every hook; an algorithm overrides what it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fedhet.workflow.algorithms import AlgorithmSpec
from fedhet.workflow.specs import TrainSpec

Parameters = dict[str, torch.Tensor]
PublicRecords = tuple[torch.Tensor, torch.Tensor]  # images (N, 1, H, W) float, binary labels


@dataclass(frozen=True)
class Message:
    """What the server sends every selected client: models and named tensors; no records."""

    models: list[Parameters]
    payload: dict[str, Parameters] = field(default_factory=dict)


@dataclass(frozen=True)
class Update:
    """What a client sends to the server: parameters, counts, a loss and the algorithm's
    declared extras (``Strategy.sends``); no records."""

    parameters: Parameters
    n_samples: int
    loss: float
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def choice(self) -> int:
        """The received model the client trained (IFCA sends it; one model otherwise)."""
        return int(self.payload.get("choice", 0))


@dataclass
class LocalRound:
    """One round at one hospital, as its hooks see it: the message, the model it picked and
    started from, its own state (kept across rounds) and, after training, the optimiser steps."""

    message: Message
    choice: int
    start: Parameters
    state: dict[str, Any]
    steps: int = 0


def check_payload(payload: dict, declared: frozenset[str], who: str) -> None:
    """The data boundary: exactly the declared extras cross, nothing else."""
    if set(payload) != set(declared):
        raise ValueError(f"{who}: update carries {sorted(payload)}, the algorithm declares {sorted(declared)}")


def weighted_mean(updates: list[Update], weights: list[float] | None = None) -> Parameters:
    """w = Σ_k (a_k / a) w_k over ``updates``, a = Σ_k a_k, with a_k the record counts n_k
    (FedAvg's aggregation) unless ``weights`` gives them.

    Accumulates in float64 so the average does not depend on summation rounding.
    """
    if not updates:
        raise ValueError("weighted_mean needs at least one client update")
    weights = [u.n_samples for u in updates] if weights is None else weights
    total = sum(weights)
    if total <= 0:
        raise ValueError("aggregation: the participating clients hold no training samples")
    averaged = {}
    for key, first in updates[0].parameters.items():
        if not first.is_floating_point():
            averaged[key] = first.clone()  # e.g. BatchNorm counters: not averaged
            continue
        acc = torch.zeros_like(first, dtype=torch.float64)
        for update, weight in zip(updates, weights, strict=True):
            acc += update.parameters[key].to(torch.float64) * (weight / total)
        averaged[key] = acc.to(first.dtype)
    return averaged


def add_proximal_gradient(model: nn.Module, anchor: Parameters, weight: float) -> None:
    """Add weight · (w − anchor), the gradient of (weight/2)‖w − anchor‖², to each ``p.grad``."""
    if weight == 0:
        return
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in anchor and param.grad is not None:
                param.grad.add_(param - anchor[name], alpha=weight)


class Strategy:
    """FedAvg on every hook. ``initial(j)`` gives the j-th freshly initialised full parameter
    set (j = 0 is the cell's model; algorithms with several global models use j ≥ 1).
    ``context`` carries what some algorithms need beyond that (``public``: the shared public
    set G; ``model_spec``, ``train_spec``, ``seed``, ``clients``: the federation's size); an
    algorithm ignores what it does not use."""

    # Whether the server releases a model every round even when no hospital was drawn (a DP
    # wrapper whose accountant counts every round does; otherwise an empty round changes nothing).
    releases_every_round = False
    # Whether a hospital may send its mean training loss beside its parameters (a wrapper that
    # privatises the update, ``fedhet.training.client_dp``, says no: the loss is not covered).
    releases_loss = True
    # The extras a client sends beside parameters, counts and loss (``Update.payload``).
    sends: frozenset[str] = frozenset()
    # Whether each hospital also trains a personal model on its own records, beside the shared
    # one, that never leaves it and is what it is evaluated with (Ditto).
    personal_model = False
    # Whether each hospital is evaluated after one gradient step of this size on its own
    # training records, from the model it received (Per-FedAvg); None: evaluated as received.
    adaptation_step: float | None = None

    def __init__(self, spec: AlgorithmSpec, initial: Callable[[int], Parameters], **context):
        self.spec = spec
        self.models: list[Parameters] = [self.sent(initial(0))]

    # --- server side ---------------------------------------------------------------------

    def message(self) -> Message:
        return Message(self.models)

    def aggregate(self, updates: list[Update]) -> None:
        self.server_step(self.average(updates), updates)

    def average(self, updates: list[Update]) -> Parameters:
        return weighted_mean(updates)

    def server_step(self, mean: Parameters, updates: list[Update]) -> None:
        self.models = [mean]

    def model_name(self, choice: int, hospital: str) -> str:
        """The name of the model a hospital ends with, for the metric tables."""
        return "global"

    def public_share(self, index: int) -> PublicRecords | None:
        """Public records the server hands client ``index`` once, to train on beside its own
        (shared data); None for algorithms without a public set."""
        return None

    # --- client side ---------------------------------------------------------------------

    def choose(self, message: Message, loss: Callable[[Parameters], float], state: dict[str, Any]) -> int:
        return 0

    def adjust_gradients(self, model: nn.Module, local: LocalRound) -> None:
        """Add the local objective's extra gradient to ``p.grad`` (FedAvg: none)."""

    def after_training(self, final: Parameters, local: LocalRound) -> dict[str, Any]:
        """The declared extras of this round's update (FedAvg: none)."""
        return {}

    def end_training(self, model: nn.Module, local: LocalRound) -> None:
        """After the local loop, before the model is read and sent (Per-FedAvg: finish a pair of
        batches cut short by the end of the round; FedAvg: nothing)."""

    def personal_gradients(self, model: nn.Module, local: LocalRound) -> None:
        """The personal objective's extra gradient, with ``personal_model`` (none here)."""

    def personal_training(self, spec: TrainSpec) -> TrainSpec:
        """How the personal model trains, with ``personal_model``: as the shared one here."""
        return spec

    def personal(self, name: str) -> bool:
        return False

    def sent(self, parameters: Parameters) -> Parameters:
        """The part of a parameter set that leaves the hospital."""
        return {k: v for k, v in parameters.items() if not self.personal(k)}
