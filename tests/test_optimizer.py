import subprocess
import sys

import pytest
import torch

from fedhet.training.model import build_model
from fedhet.training.optimizer import SGD, make_optimizer
from fedhet.workflow.specs import ModelSpec, TrainSpec

SPEC = ModelSpec(conv1_channels=4, conv2_channels=8, kernel_size=3)


def batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 2, (16,), generator=g)) for _ in range(n)]


def trained(optimizer_class, momentum: float, weight_decay: float) -> list[torch.Tensor]:
    model = build_model(SPEC, 0)
    optimizer = optimizer_class(model.parameters(), lr=0.05, momentum=momentum, weight_decay=weight_decay)
    for i, (x, y) in enumerate(batches(6)):
        if i == 3:
            optimizer.state.clear()  # a new round: momentum restarts, as train_local does
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        if i % 2:
            model.fc.bias.grad = None  # a parameter without a gradient is left as it is
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 0.0), (0.9, 1e-3), (0.0, 0.0), (0.0, 1e-2)])
def test_sgd_steps_are_torchs_bit_for_bit(momentum, weight_decay):
    ours = trained(SGD, momentum, weight_decay)
    reference = trained(torch.optim.SGD, momentum, weight_decay)
    assert all(torch.equal(a, b) for a, b in zip(ours, reference, strict=True))
    assert not torch.equal(ours[0], build_model(SPEC, 0).conv1.weight)  # it did step


def test_sgd_never_loads_torch_dynamo():
    """torch.optim imports torch._dynamo on first use (seconds, longer than a quick cell trains)."""
    probe = (
        "import sys, torch; from fedhet.training.optimizer import make_optimizer; from fedhet.workflow.specs import "
        "TrainSpec; p = torch.nn.Parameter(torch.ones(3)); o = make_optimizer([p], TrainSpec()); "
        "p.grad = torch.ones(3); o.step(); o.zero_grad(); print('torch._dynamo' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_an_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match="'rmsprop'"):
        make_optimizer([torch.nn.Parameter(torch.ones(1))], TrainSpec(optimizer="rmsprop"))
