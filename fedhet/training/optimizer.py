"""The local optimizer a hospital steps with (``training.optimizer``).

``sgd`` is fedhet's own SGD with momentum and weight decay: the arithmetic of
``torch.optim.SGD`` (no dampening, no Nesterov) operation for operation, so its steps are
bit-identical, without ``torch.optim``'s first-use import of ``torch._dynamo``, which takes
about 2.6 s: longer than a quick cell trains. ``adam`` is ``torch.optim.Adam``.

An optimizer here is what the local loop and the DP engines use of one: ``param_groups``,
``state`` (cleared to restart momentum), ``defaults``, ``zero_grad`` and ``step``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import torch

from fedhet.workflow.specs import OPTIMIZERS, TrainSpec


class SGD:
    """p ← p − lr·b with b ← momentum·b + (g + weight_decay·p), b starting at the first g."""

    def __init__(
        self, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ):
        self.defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
        self.param_groups = [{"params": list(params), **self.defaults}]
        self.state: defaultdict[torch.Tensor, dict] = defaultdict(dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:  # a frozen or unused parameter stays as it is
                    continue
                grad = p.grad if weight_decay == 0 else p.grad.add(p, alpha=weight_decay)
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = torch.clone(grad).detach()
                    else:
                        buf.mul_(momentum).add_(grad)
                    grad = buf
                p.add_(grad, alpha=-lr)


Optimizer = SGD | torch.optim.Optimizer


def make_optimizer(params, spec: TrainSpec) -> Optimizer:
    if spec.optimizer == "sgd":
        return SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    raise ValueError(f"training.optimizer: unknown optimizer {spec.optimizer!r} ({', '.join(OPTIMIZERS)})")
