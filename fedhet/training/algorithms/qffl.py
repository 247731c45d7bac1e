"""q-FFL (Li, Sanjabi, Beirami and Smith 2020, "Fair resource allocation in federated
learning"): q-FedAvg, the server's step weighted toward the hospitals the global model serves
worst.

Each hospital k computes F_k, the loss of the round's global model w on its own training
records, trains as in FedAvg to w_k, and sends w_k, its record count n_k and F_k (declared
extra ``start_loss``). With L = 1/lr the Lipschitz estimate of the paper and Δ_k = L(w − w_k),
the server steps

    w ← w − Σ_k n_k F_k^q Δ_k / Σ_k n_k (q F_k^(q−1) ‖Δ_k‖² + L F_k^q),

the paper's q-FedAvg with each hospital weighted by its records (the paper samples devices in
proportion to them instead). Written as w ← (1 − s) w + s · w̄, where w̄ is the mean of the w_k
with weights n_k F_k^q and s = L Σ n_k F_k^q / Σ_k n_k (q F_k^(q−1) ‖Δ_k‖² + L F_k^q) ≤ 1, q = 0
gives s = 1 and w̄ = FedAvg's mean: FedAvg bit for bit.

What crosses to the server: FedAvg's parameters and count, plus one number per hospital, F_k.
F_k is a function of the hospital's records that DP-SGD's accountant does not cover, so q-FFL is
refused under DP-SGD and under client-level DP (``fedhet.workflow.algorithms``: ``dp_compatible``
and ``client_level`` are False) rather than sending it in clear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fedhet.training import strategy
from fedhet.training.strategy import Message, Parameters, Update, weighted_mean

# A loss of exactly 0 would give 0^(q−1) = ∞ for q < 1; a hospital the model fits perfectly
# gets this floor instead.
LOSS_FLOOR = 1e-12


class Strategy(strategy.Strategy):
    sends = frozenset({"start_loss"})

    def __init__(self, spec, initial, **context):
        super().__init__(spec, initial, **context)
        self.q = float(spec["q"])
        self.lipschitz = 1.0 / context["train_spec"].lr

    # --- client side: the global model's loss on the hospital's own records ------------------

    def choose(self, message: Message, loss: Callable[[Parameters], float], state: dict[str, Any]) -> int:
        state["start_loss"] = loss(message.models[0])
        return 0

    def after_training(self, final: Parameters, local: strategy.LocalRound) -> dict[str, Any]:
        return {"start_loss": float(local.state["start_loss"])}

    # --- server side -----------------------------------------------------------------------

    def weights(self, updates: list[Update]) -> list[float]:
        return [u.n_samples * max(u.payload["start_loss"], LOSS_FLOOR) ** self.q for u in updates]

    def average(self, updates: list[Update]) -> Parameters:
        return weighted_mean(updates, self.weights(updates))

    def server_step(self, mean: Parameters, updates: list[Update]) -> None:
        step = self.step_size(updates)
        if step == 1.0:  # q = 0 (or every hospital already at the model): FedAvg's mean exactly
            self.models = [mean]
            return
        start, blended = self.models[0], {}
        for k, v in mean.items():
            if v.is_floating_point():
                v = ((1.0 - step) * start[k].to(torch.float64) + step * v.to(torch.float64)).to(v.dtype)
            blended[k] = v
        self.models = [blended]

    def step_size(self, updates: list[Update]) -> float:
        """s = L Σ n_k F_k^q / Σ_k n_k (q F_k^(q−1) ‖Δ_k‖² + L F_k^q), Δ_k = L (w − w_k)."""
        start, lipschitz, q = self.models[0], self.lipschitz, self.q
        weighted = sum(self.weights(updates))
        curvature = 0.0
        for update in updates:
            loss = max(update.payload["start_loss"], LOSS_FLOOR)
            squared = sum(
                float(((start[k].to(torch.float64) - v.to(torch.float64)) ** 2).sum())
                for k, v in update.parameters.items()
                if v.is_floating_point()
            )
            curvature += update.n_samples * loss ** (q - 1.0) * lipschitz**2 * squared
        return lipschitz * weighted / (lipschitz * weighted + q * curvature)
