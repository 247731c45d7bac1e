"""SCAFFOLD (Karimireddy et al. 2020): control variates that correct each client's drift.

The server keeps a control variate c and each hospital its own cᵢ (both 0 at the start; cᵢ is
the hospital's state, kept across rounds). Each round the server sends the global model x and
c; the hospital trains from x with every batch gradient corrected by c − cᵢ, ending at y after
K optimiser steps, and updates its control by the paper's option II,

    cᵢ⁺ = cᵢ − c + (x − y) / (K·η·w̄),

where η is the local learning rate and w̄ the mean weight a gradient gets under SGD momentum β
restarted each round (w̄ = 1 without momentum; with a constant gradient g, x − y = K·η·w̄·g).
It sends its parameters and Δcᵢ = cᵢ⁺ − cᵢ. The server steps x ← x + η_g·(ȳ − x), ȳ the
record-weighted mean of the y (FedAvg's), and c ← c + Σᵢ Δcᵢ / N over the N hospitals of the
federation. ``eta`` is η_g. In the first round every control is 0, so that round is FedAvg's
exactly; server arithmetic is in float64, so η_g = 1 with the controls held at 0 is FedAvg bit
for bit.

Under DP-SGD at a hospital, the correction is added to the gradient after clipping and noise
(it depends on no record), and cᵢ⁺ is computed from x, c, the previous cᵢ and y, the output
of DP-SGD, with K fixed by the public record count: post-processing, so ε is unchanged.
Under client-level DP the Δcᵢ would cross without the server's noise: refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fedhet.training import strategy
from fedhet.workflow.algorithms import AlgorithmSpec
from fedhet.workflow.specs import TrainSpec

CONTROL = "control"
DELTA = "control_delta"


def momentum_weight(steps: int, beta: float) -> float:
    """w̄: the mean over ``steps`` SGD steps (momentum ``beta``, buffer restarted) of the total
    weight each step's gradient gets in the displacement, (1/K)·Σⱼ (1 − βʲ)/(1 − β)."""
    if beta == 0:
        return 1.0
    total = (steps - beta * (1 - beta**steps) / (1 - beta)) / (1 - beta)
    return total / steps


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float64)


class Strategy(strategy.Strategy):
    sends = frozenset({DELTA})

    def __init__(
        self,
        spec: AlgorithmSpec,
        initial: Callable[[int], strategy.Parameters],
        train_spec: TrainSpec | None = None,
        clients: int | None = None,
        **context,
    ):
        if train_spec is None or clients is None:
            raise ValueError(f"algorithm {spec.key()}: needs the training spec and the federation's size")
        if train_spec.optimizer != "sgd":
            raise ValueError(
                f"algorithm {spec.key()}: its control update assumes SGD steps; training.optimizer is"
                f" {train_spec.optimizer!r}"
            )
        super().__init__(spec, initial)
        self.lr, self.beta, self.clients = train_spec.lr, train_spec.momentum, clients
        floating = {k: v for k, v in self.models[0].items() if v.is_floating_point()}
        self.control = {k: torch.zeros_like(v) for k, v in floating.items()}

    # --- server side ---------------------------------------------------------------------

    def message(self) -> strategy.Message:
        return strategy.Message(self.models, {CONTROL: self.control})

    def server_step(self, mean: strategy.Parameters, updates: list[strategy.Update]) -> None:
        (x,) = self.models
        eta = self.spec["eta"]
        self.models = [
            {
                k: (_f64(v) + eta * (_f64(mean[k]) - _f64(v))).to(v.dtype) if v.is_floating_point() else mean[k]
                for k, v in x.items()
            }  # fmt: skip
        ]
        for k, c in self.control.items():
            total = sum((_f64(u.payload[DELTA][k]) for u in updates), torch.zeros_like(c, dtype=torch.float64))
            self.control[k] = (_f64(c) + total / self.clients).to(c.dtype)

    # --- client side ---------------------------------------------------------------------

    def adjust_gradients(self, model: nn.Module, local: strategy.LocalRound) -> None:
        correction = local.state.get("correction")
        if correction is None:
            own = local.state.get(CONTROL, {})
            server = local.message.payload[CONTROL]
            correction = {k: c - own[k] if k in own else c.clone() for k, c in server.items()}
            # all zero (the first round): skip, so that the round is FedAvg's to the bit
            local.state["correction"] = correction = {k: v for k, v in correction.items() if v.any()}
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in correction and param.grad is not None:
                    param.grad.add_(correction[name])

    def after_training(self, final: strategy.Parameters, local: strategy.LocalRound) -> dict[str, Any]:
        local.state.pop("correction", None)
        server = local.message.payload[CONTROL]
        own = local.state.get(CONTROL) or {k: torch.zeros_like(c) for k, c in server.items()}
        new = self.new_control(own, server, local.start, final, local.steps)
        local.state[CONTROL] = new
        return {DELTA: {k: new[k] - own[k] for k in new}}

    def new_control(
        self,
        own: strategy.Parameters,
        server: strategy.Parameters,
        start: strategy.Parameters,
        final: strategy.Parameters,
        steps: int,
    ) -> strategy.Parameters:
        """cᵢ⁺ = cᵢ − c + (x − y)/(K·η·w̄) (option II)."""
        if steps == 0:
            return dict(own)
        scale = 1.0 / (steps * self.lr * momentum_weight(steps, self.beta))
        return {
            k: (_f64(own[k]) - _f64(server[k]) + (_f64(start[k]) - _f64(final[k])) * scale).to(server[k].dtype)
            for k in server
        }
