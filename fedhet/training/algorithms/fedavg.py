"""FedAvg (McMahan et al. 2017): every selected client trains the one global model from where
the server left it; the server takes the mean of their parameters weighted by record counts.

It is ``fedhet.training.strategy.Strategy`` unchanged: the base class's hooks are FedAvg's.
"""

from __future__ import annotations

from fedhet.training import strategy


class Strategy(strategy.Strategy):
    pass
