"""The strategy interface: what a federated algorithm decides on each side of the boundary.

Server side (sees only ``Update``s, never records):
    ``messages()``          the parameter sets every selected client receives this round
                            (FedAvg: one global model; IFCA: k of them);
    ``aggregate(updates)``  turns the clients' updates into the next round's messages.
Client side (runs at the hospital, beside its records; given the messages as arguments and
never touching the server's state):
    ``choose(messages, loss)``   which received model to start from (``loss(params)`` is the
                                 model's loss on the hospital's own training records);
    ``adjust_gradients(model, start)``  an extra term of the local objective, added to the
                                 batch gradient after it is formed (and noised, under DP);
    ``personal(name)``           which parameters stay at the hospital: never sent, never averaged.

What crosses from client to server is an ``Update``: the non-personal parameters, the number of
training records (FedAvg's weight), the mean training loss (NaN at a private hospital and
under client-level DP: ε does not cover it) and, for algorithms that send several models, the
index of the one it trained (IFCA's cluster: one integer per client per round).

``Strategy`` below is FedAvg's behaviour on every hook; an algorithm overrides what it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fedhet.algorithms import AlgorithmSpec

Parameters = dict[str, torch.Tensor]
PublicRecords = tuple[torch.Tensor, torch.Tensor]  # images (N, 1, H, W) float, binary labels


@dataclass(frozen=True)
class Update:
    """What a client sends to the server: parameters, counts and one choice; no records."""

    parameters: Parameters
    n_samples: int
    loss: float
    choice: int = 0


def weighted_mean(updates: list[Update]) -> Parameters:
    """w = Σ_k (n_k / n) w_k over ``updates``, n = Σ_k n_k (FedAvg's aggregation).

    Accumulates in float64 so the average does not depend on summation rounding.
    """
    if not updates:
        raise ValueError("weighted_mean needs at least one client update")
    n = sum(u.n_samples for u in updates)
    if n <= 0:
        raise ValueError("aggregation: the participating clients hold no training samples")
    averaged = {}
    for key, first in updates[0].parameters.items():
        if not first.is_floating_point():
            averaged[key] = first.clone()  # e.g. BatchNorm counters: not averaged
            continue
        acc = torch.zeros_like(first, dtype=torch.float64)
        for update in updates:
            acc += update.parameters[key].to(torch.float64) * (update.n_samples / n)
        averaged[key] = acc.to(first.dtype)
    return averaged


class Strategy:
    """FedAvg on every hook. ``initial(j)`` gives the j-th freshly initialised full parameter
    set (j = 0 is the cell's model; algorithms with several global models use j ≥ 1).
    ``context`` carries what some algorithms need beyond that (``public``: the shared public
    set G; ``model_spec``, ``train_spec``, ``seed``); an algorithm ignores what it does not use."""

    # Whether a hospital may send its mean training loss beside its parameters (a wrapper that
    # privatises the update, ``fedhet.client_dp``, says no: the loss is not covered).
    releases_loss = True

    def __init__(self, spec: AlgorithmSpec, initial: Callable[[int], Parameters], **context):
        self.spec = spec
        self.models: list[Parameters] = [self.sent(initial(0))]

    # --- server side ---------------------------------------------------------------------

    def messages(self) -> list[Parameters]:
        return self.models

    def aggregate(self, updates: list[Update]) -> None:
        self.models = [weighted_mean(updates)]

    def model_name(self, choice: int, hospital: str) -> str:
        """The name of the model a hospital ends with, for the metric tables."""
        return "global"

    def public_share(self, index: int) -> PublicRecords | None:
        """Public records the server hands client ``index`` once, to train on beside its own
        (shared data); None for algorithms without a public set."""
        return None

    # --- client side ---------------------------------------------------------------------

    def choose(self, messages: list[Parameters], loss: Callable[[Parameters], float]) -> int:
        return 0

    def adjust_gradients(self, model: nn.Module, start: Parameters) -> None:
        """Add the local objective's extra gradient to ``p.grad`` (FedAvg: none)."""

    def personal(self, name: str) -> bool:
        return False

    def sent(self, parameters: Parameters) -> Parameters:
        """The part of a parameter set that leaves the hospital."""
        return {k: v for k, v in parameters.items() if not self.personal(k)}
