"""IFCA, the Iterative Federated Clustering Algorithm (Ghosh et al. 2020): k global models.

Every round the server sends all k models; each client picks the one with the lowest loss on
its own training records, trains it and sends it back with the index of its pick (``choice``,
one integer: its cluster; the one extra it declares). The server averages within each cluster
(weighted by records, as FedAvg); a model no client picked stays as it was. Model 0 starts from
the cell's initialisation, the others from their own seeds, so k = 1 is FedAvg exactly.

Chosen over CFL (Sattler et al. 2021) because it needs no similarity threshold or recursive
splitting and its one parameter, k, says what the study asks: do the large and the small
hospitals end in different clusters? The pick is a function of private records that DP-SGD's
accountant does not cover, so IFCA is refused under DP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fedhet.training import strategy
from fedhet.workflow.algorithms import AlgorithmSpec


class Strategy(strategy.Strategy):
    sends = frozenset({"choice"})

    def __init__(self, spec: AlgorithmSpec, initial: Callable[[int], strategy.Parameters], **context):
        super().__init__(spec, initial)
        self.models = [self.sent(initial(j)) for j in range(int(spec["k"]))]

    def aggregate(self, updates: list[strategy.Update]) -> None:
        for cluster in range(len(self.models)):
            members = [u for u in updates if u.choice == cluster]
            if members:
                self.models[cluster] = strategy.weighted_mean(members)

    def model_name(self, choice: int, hospital: str) -> str:
        return "global" if len(self.models) == 1 else f"cluster{choice}"

    def choose(
        self, message: strategy.Message, loss: Callable[[strategy.Parameters], float], state: dict[str, Any]
    ) -> int:
        if len(message.models) == 1:
            return 0
        losses = [loss(params) for params in message.models]
        return min(range(len(losses)), key=losses.__getitem__)

    def after_training(self, final: strategy.Parameters, local: strategy.LocalRound) -> dict[str, Any]:
        return {"choice": local.choice}
