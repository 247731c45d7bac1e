"""Per-FedAvg (Fallah, Mokhtari and Ozdaglar 2020), its first-order variant (Per-FedAvg FO): the
global model is trained to be a good start for one step of adaptation at each hospital.

Local training takes the local batches in pairs. The first batch D of a pair gives g(w; D), and
the model moves to w' = w − α g(w; D) without an optimiser step; the second batch D' gives
g(w'; D'), and the optimiser (learning rate β = ``training.lr``, with its momentum) applies it
at w: w ← w − β g(w'; D'). This is the paper's update with the Hessian term dropped (the FO
variant; the HF variant's Hessian-vector products are not implemented). A round that ends after
the first batch of a pair returns to w. Each hospital is evaluated after one adaptation step of
size α on its own whole training split, from the model it received (a full-batch step rather
than the paper's one stochastic batch, so that evaluation draws nothing at random).

What crosses to the server: exactly what FedAvg sends. Under DP-SGD both gradients of a pair are
DP-SGD's noised batch gradients, one per sampled batch as in FedAvg, so the update is
post-processing of them and ε is unchanged (tested). The adapted model is computed and
evaluated at the hospital and never sent; ε does not cover it, so publishing it would need DP
of its own.
"""

from __future__ import annotations

import torch
from torch import nn

from fedhet.training import strategy


class Strategy(strategy.Strategy):
    def __init__(self, spec, initial, **context):
        super().__init__(spec, initial, **context)
        self.adaptation_step = float(spec["alpha"])

    def adjust_gradients(self, model: nn.Module, local: strategy.LocalRound) -> None:
        params = list(model.parameters())
        with torch.no_grad():
            if "anchor" not in local.state:  # first batch of a pair: to w' = w − α g(w; D)
                local.state["anchor"] = [p.detach().clone() for p in params]
                for p in params:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-self.adaptation_step)
                    p.grad = None  # no optimiser step on this batch
            else:  # second batch: g(w'; D') is applied at w by the optimiser
                for p, anchor in zip(params, local.state.pop("anchor"), strict=True):
                    p.copy_(anchor)

    def end_training(self, model: nn.Module, local: strategy.LocalRound) -> None:
        anchor = local.state.pop("anchor", None)
        if anchor is not None:  # the round ended on the first batch of a pair: back to w
            with torch.no_grad():
                for p, w in zip(model.parameters(), anchor, strict=True):
                    p.copy_(w)

    def model_name(self, choice: int, hospital: str) -> str:
        return hospital
