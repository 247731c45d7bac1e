"""The server: each round it selects clients, sends them the strategy's message and hands
their ``Update``s to the strategy's aggregation.

It holds the strategy (the global models and the server's state) and talks to clients only
through ``train``, which returns an ``Update``: parameters, counts, a loss and the extras the
algorithm declares, which it checks. It never imports or touches client records
(``fedhet.training.client`` is used only as a type).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from fedhet.training.strategy import Strategy, Update, check_payload
from fedhet.workflow.specs import CLIENT_SAMPLINGS, TrainSpec

if TYPE_CHECKING:
    from fedhet.training.client import Client

log = logging.getLogger("fedhet")

RoundHook = Callable[[int, list[tuple[int, Update]]], None]


def select_clients(n_clients: int, fraction: float, rng: np.random.Generator, sampling: str = "fixed") -> list[int]:
    """The clients of one round of a federation of ``n_clients`` > 1, drawn on the run's
    generator: ``fixed``, max(1, ⌈C·K⌉) distinct indices uniformly (McMahan et al. 2017);
    ``poisson``, each client independently with probability C (possibly none), the scheme
    client-level DP's accountant assumes. A lone client trains every round."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"training.client_fraction: {fraction} must be in (0, 1]")
    if n_clients == 1:
        return [0]  # a hospital training alone (local, large only) trains every round
    if sampling == "poisson":
        return np.flatnonzero(rng.random(n_clients) < fraction).tolist()
    if sampling != "fixed":
        raise ValueError(f"training.client_sampling: {sampling!r} is not one of {CLIENT_SAMPLINGS}")
    m = max(1, math.ceil(fraction * n_clients - 1e-9))
    if m >= n_clients:
        return list(range(n_clients))
    return sorted(rng.choice(n_clients, size=m, replace=False).tolist())


def fit(
    strategy: Strategy,
    clients: Sequence[Client],
    spec: TrainSpec,
    rng: np.random.Generator,
    label: str,
    on_round: RoundHook,
    progress: Callable[[str, int, int], None] | None = None,
) -> None:
    """``spec.rounds`` rounds of federated training; ``on_round(r, [(client index, update)])``
    after each aggregation. A single client is plain local training."""
    start = time.perf_counter()
    for r in range(1, spec.rounds + 1):
        message = strategy.message()
        chosen = select_clients(len(clients), spec.client_fraction, rng, spec.client_sampling)
        updates = [(i, clients[i].train(message, spec.local_epochs, strategy)) for i in chosen]
        for i, update in updates:
            check_payload(update.payload, strategy.sends, f"server, from client {i}")
        if updates or strategy.releases_every_round:  # a Poisson round may draw no hospital
            strategy.aggregate([u for _, u in updates])
        on_round(r, updates)
        elapsed = time.perf_counter() - start
        eta = elapsed / r * (spec.rounds - r)
        # Private hospitals keep their loss (NaN): average what the others report.
        losses = [u.loss for _, u in updates if not math.isnan(u.loss)]
        mean_loss = np.mean(losses) if losses else np.nan
        log.info(f"{label} round {r}/{spec.rounds} loss {mean_loss:.4f} elapsed {elapsed:.1f}s ETA {eta:.1f}s")
        if progress is not None:
            progress(label, r, spec.rounds)
