"""FedProx (Li et al. 2020): FedAvg whose clients minimise their loss plus (μ/2)‖w − w_global‖².

Only the client's objective differs from FedAvg. The proximal term's gradient μ(w − w_global)
depends on no record, so it is added to the batch gradient after that gradient is formed: under
DP-SGD after clipping and noise (a term inside the loss would be clipped with the data, or
overwritten by the noised sum), which costs no privacy. With μ = 0 it is FedAvg exactly.
"""

from __future__ import annotations

from torch import nn

from fedhet.training import strategy


class Strategy(strategy.Strategy):
    def adjust_gradients(self, model: nn.Module, local: strategy.LocalRound) -> None:
        strategy.add_proximal_gradient(model, local.start, self.spec["mu"])
