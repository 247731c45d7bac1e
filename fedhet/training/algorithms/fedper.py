"""FedPer (Arivazhagan et al. 2019): the last ``head`` layers are personal.

Each hospital keeps its own head: it is never sent and never averaged; the server averages
only the body. A hospital's model is the federated body with its own head, and it is evaluated
with that model on its own test split; on the external test set every hospital's model is
evaluated (rows named after the hospital). Layers are the model's parameterised modules in
definition order (the CNN's conv1, conv2, fc): ``head=1`` keeps the classifier, ``head=2``
the second convolution too.
"""

from __future__ import annotations

from collections.abc import Callable

from fedhet.training import strategy
from fedhet.workflow.algorithms import AlgorithmSpec


def layers(parameters: strategy.Parameters) -> list[str]:
    """Module prefixes of a state dict in definition order (``fc.weight`` → ``fc``)."""
    return list(dict.fromkeys(name.rsplit(".", 1)[0] for name in parameters))


class Strategy(strategy.Strategy):
    def __init__(self, spec: AlgorithmSpec, initial: Callable[[int], strategy.Parameters], **context):
        names = layers(initial(0))
        head = int(spec["head"])
        if head >= len(names):
            raise ValueError(f"algorithm {spec.key()}: head={head} leaves no shared layer of {names}")
        self.head_layers = frozenset(names[-head:])
        super().__init__(spec, initial)

    def personal(self, name: str) -> bool:
        return name.rsplit(".", 1)[0] in self.head_layers

    def model_name(self, choice: int, hospital: str) -> str:
        return hospital
