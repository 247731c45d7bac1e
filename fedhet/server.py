"""The server side of FedAvg: client selection and weighted parameter averaging.

The server works only with ``ClientUpdate`` objects (parameters and training-set sizes)
and never imports or touches client data.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fedhet.client import ClientUpdate, State


def fedavg(updates: list[ClientUpdate]) -> State:
    """w = Σ_k (n_k / n) w_k over the participating clients, n = Σ_k n_k.

    Accumulates in float64 so the average does not depend on summation rounding.
    """
    if not updates:
        raise ValueError("fedavg needs at least one client update")
    n = sum(u.n_samples for u in updates)
    if n <= 0:
        raise ValueError("fedavg: participating clients hold no training samples")
    averaged = {}
    for key, first in updates[0].state.items():
        if not first.is_floating_point():
            averaged[key] = first.clone()  # e.g. BatchNorm counters: not averaged
            continue
        acc = torch.zeros_like(first, dtype=torch.float64)
        for update in updates:
            acc += update.state[key].to(torch.float64) * (update.n_samples / n)
        averaged[key] = acc.to(first.dtype)
    return averaged


def select_clients(n_clients: int, fraction: float, rng: np.random.Generator) -> list[int]:
    """max(1, ⌈C·K⌉) distinct client indices, drawn uniformly each round (McMahan et al.)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"training.client_fraction: {fraction} must be in (0, 1]")
    m = max(1, math.ceil(fraction * n_clients - 1e-9))
    if m >= n_clients:
        return list(range(n_clients))
    return sorted(rng.choice(n_clients, size=m, replace=False).tolist())
