"""Ditto (Li, Hu, Beirami and Smith 2021, "Ditto: fair and robust federated learning through
personalization"): every hospital keeps a personal model beside the shared one.

Each round a hospital trains the shared model exactly as in FedAvg and sends it; then it trains
its personal model v for the same number of local epochs on its own records, minimising its loss
plus (λ/2)‖v − w‖², w the global model it received this round (the paper's Algorithm 1 with the
personal step as local SGD). v starts at the first global model. A hospital is evaluated with v.

What crosses to the server: exactly what FedAvg sends. v never leaves the hospital, so it adds
nothing to what the server sees, and the shared model's training is FedAvg's bit for bit (its
own optimiser and data order; tested). Under DP-SGD the shared model is trained privately as in
FedAvg and ε is unchanged; v is trained without DP, because it stays where the records are. ε
therefore covers what the hospital sends, not v: publishing a hospital's personal model would
need DP of its own. Large λ pulls v to the global model, λ = 0 makes it a model trained on the
hospital's records alone, started from the first global model.

The personal model steps at ρ × the training learning rate (``rho``, default 1). Under DP-SGD the
shared model's rate is tuned for clipped, noised gradients and often sits well above what the
unclipped personal objective tolerates; ρ keeps the personal model at the rate its λ was
chosen with.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from fedhet.training import strategy
from fedhet.workflow.specs import TrainSpec


class Strategy(strategy.Strategy):
    personal_model = True

    def personal_gradients(self, model: nn.Module, local: strategy.LocalRound) -> None:
        strategy.add_proximal_gradient(model, local.start, self.spec["lam"])

    def personal_training(self, spec: TrainSpec) -> TrainSpec:
        return replace(spec, lr=spec.lr * self.spec["rho"])

    def model_name(self, choice: int, hospital: str) -> str:
        return hospital
