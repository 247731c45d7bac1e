"""Book-keeping clipping (``fedhet.privacy.clipping``) against per-example gradients from ``torch.func``
and against Opacus' hooks engine: the same norms, the same clipped sums, the same noised
gradients and the same ε."""

from __future__ import annotations

import pytest
import torch
from test_privacy import SMALL_MODEL, hospital
from torch import nn
from torch.func import functional_call, grad, vmap

from fedhet.privacy.clipping import BookKeeping
from fedhet.training.client import Client
from fedhet.workflow.specs import DPSpec, TrainSpec


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Odd(nn.Module):
    """Convolutions with stride, dilation, rectangular kernels, no bias; a linear layer on a
    3-d input (T > 1 positions): the cases the CNN alone does not exercise."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, (3, 2), stride=2, padding=(1, 0))
        self.conv2 = nn.Conv2d(3, 4, 3, dilation=2, padding=2, bias=False)
        self.mix = nn.Linear(4, 5)  # applied at every position
        self.head = nn.Linear(5 * 12, 2)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))  # (n, 4, 4, 3)
        x = self.mix(x.flatten(2).transpose(1, 2))  # (n, 12, 5)
        return self.head(x.flatten(1))


def per_example(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p, xi, yi):
        return nn.functional.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])

    return vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)


@pytest.mark.parametrize("ghost", [None, True, False])
@pytest.mark.parametrize("channels_last", [True, False])
def test_norms_and_clipped_sums_equal_torch_func_per_example_gradients(ghost, channels_last):
    torch.manual_seed(0)
    model = Odd()
    x, y = torch.randn(12, 2, 8, 7), torch.randint(0, 2, (12,))
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    grads = per_example(model, x, y)
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads.values()], dim=1).norm(dim=1)
    clip = float(norms.median())  # about half the examples are clipped
    sums, bk_norms = BookKeeping(model, ghost=ghost).clipped_sum(x, y, clip)
    torch.testing.assert_close(bk_norms, norms, rtol=1e-5, atol=1e-7)
    factors = (clip / (norms + 1e-6)).clamp(max=1.0)
    assert (factors < 1).sum() >= 5 and (factors == 1).sum() >= 5
    for name, param in model.named_parameters():
        torch.testing.assert_close(sums[param], torch.einsum("i,i...->...", factors, grads[name]), rtol=1e-5, atol=1e-7)


def test_the_rule_instantiates_the_cnn_convolutions_and_ghosts_its_linear_layer():
    from fedhet.training.model import build_model

    model = build_model(SMALL_MODEL, 0)
    bk = BookKeeping(model)
    seen = []
    layer = BookKeeping._layer
    BookKeeping._layer = staticmethod(lambda *args: seen.append(layer(*args)) or seen[-1])
    try:
        bk.clipped_sum(torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 0, 1]), 1.0)
    finally:
        BookKeeping._layer = staticmethod(layer)
    assert [(type(s.module).__name__, s.ghost) for s in seen] == [
        ("Conv2d", False),
        ("Conv2d", False),
        ("Linear", True),
    ]


def test_layers_it_cannot_clip_are_refused_naming_the_parameter():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match="parameter '1.weight' is in another layer"):
        BookKeeping(model)
    with pytest.raises(ValueError, match="grouped, string or non-zero padding"):
        BookKeeping(nn.Conv2d(2, 2, 3, groups=2))


def twins(spec: DPSpec, channels_last: bool = True) -> tuple[Client, Client]:
    """The same private hospital (data, seed, model) under book-keeping and Opacus hooks."""
    train = TrainSpec(rounds=2, batch_size=16, lr=0.05)
    pair = []
    for mode in ("bookkeeping", "hooks"):
        c = Client(
            hospital("small_1", 300), SMALL_MODEL, train, 0, 0, dp=DPSpec(**{**spec.__dict__, "grad_sample_mode": mode})
        )
        if not channels_last:
            c.model.to(memory_format=torch.contiguous_format)
        pair.append(c)
    return pair[0], pair[1]


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("noise", [True, False])
def test_the_noised_gradient_equals_opacus_hooks_on_the_same_batch(channels_last, noise):
    bk, opacus = twins(DPSpec("all", 2.0, max_grad_norm=0.1), channels_last)
    if not noise:
        bk.batches.engine.sigma = 0.0
        opacus.batches.engine.dp_optimizer.noise_multiplier = 0.0
    (x, y), (x2, y2) = next(iter(bk.batches.loader)), next(iter(opacus.batches.loader))
    assert torch.equal(y, y2) and torch.equal(x, x2)  # one Poisson sampler, one seed: one batch
    if not channels_last:
        x = x.contiguous()
    bk.batches.gradient(x, y)
    opacus.batches.gradient(x, y)
    for p, q in zip(bk.model.parameters(), opacus.model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)
    ours = torch.cat([p.grad.flatten() for p in bk.model.parameters()])
    theirs = torch.cat([p.grad.flatten() for p in opacus.model.parameters()])
    assert float((ours - theirs).norm() / theirs.norm()) <= 1e-5


def test_epsilon_spent_is_the_same_under_both_engines():
    bk, opacus = twins(DPSpec("all", 1.0))
    for c in (bk, opacus):
        for _ in range(2):  # the two planned epochs
            for x, y in c.batches.epoch():
                c.batches.gradient(x, y)
                c.batches.optimizer.step()
    assert bk.batches.engine.accountant.history == opacus.batches.engine.accountant.history
    spent = [c.privacy_record() for c in (bk, opacus)]
    assert spent[0].steps == spent[1].steps > 0
    assert spent[0].epsilon_spent == spent[1].epsilon_spent <= 1.0


def test_a_frozen_weight_neither_counts_in_the_norm_nor_gets_a_sum():
    torch.manual_seed(1)
    model = Odd()
    model.conv1.weight.requires_grad_(False)
    x, y = torch.randn(6, 2, 8, 7), torch.randint(0, 2, (6,))
    grads = per_example(model, x, y)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    norms = torch.stack([grads[name].flatten(1).norm(dim=1) for name in trainable], dim=1).norm(dim=1)
    sums, bk_norms = BookKeeping(model).clipped_sum(x, y, 1.0)
    torch.testing.assert_close(bk_norms, norms, rtol=1e-5, atol=1e-7)
    assert model.conv1.weight not in sums and model.conv1.bias in sums


def test_an_empty_poisson_batch_adds_the_same_noise_and_counts_a_step_in_both_engines():
    bk, opacus = twins(DPSpec("all", 1.0))
    x, y = next(iter(bk.batches.loader))
    empty_x, empty_y = x[:0], y[:0]
    for c in (bk, opacus):
        c.batches.gradient(empty_x, empty_y)
    for p, q in zip(bk.model.parameters(), opacus.model.parameters(), strict=True):
        assert p.grad.abs().sum() > 0  # noise alone: σC/B per coordinate
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-8)
    assert bk.batches.steps == opacus.batches.steps == 1


def test_clipping_only_clips_without_noise_and_reports_no_guarantee():
    spec = DPSpec("all", float("inf"), max_grad_norm=0.05)
    bk, opacus = twins(spec)
    assert bk.batches.sigma == opacus.batches.sigma == 0.0
    x, y = next(iter(bk.batches.loader))
    for c in (bk, opacus):
        c.batches.gradient(x, y)
    expected = bk.batches.engine.expected_batch_size
    sums, norms = BookKeeping(bk.model).clipped_sum(x, y, 0.05)
    assert (norms > 0.05).all()  # every example clipped: the control still clips
    for p, q in zip(bk.model.parameters(), opacus.model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, sums[p] / expected)  # nothing added
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-7)
    record = bk.privacy_record()
    assert record.private and record.sigma == 0.0 and record.epsilon_spent == float("inf")
