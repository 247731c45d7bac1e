import pytest
import torch
from test_algorithms import TRAIN, run, sites
from torch import nn
from torch.func import functional_call, grad

from fedhet.training.strategy import LocalRound, Message
from fedhet.workflow.algorithms import AlgorithmSpec, load_strategy


def strategy(alpha: float = 0.1):
    init = sites()[0].client.model_state()
    return load_strategy(AlgorithmSpec.parse(f"perfedavg-alpha{alpha:g}"), initial=lambda j: init, train_spec=TRAIN)


def test_a_pair_of_batches_by_hand():
    """First batch: w' = w − α g₁ and no optimiser step; second: back to w with g₂ = g(w'; D')
    left for the optimiser; a round cut after a first batch returns to w."""
    per = strategy(alpha=0.25)
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
    local = LocalRound(Message([]), 0, {}, {})
    model.weight.grad = torch.tensor([[4.0, -8.0]])
    per.adjust_gradients(model, local)
    assert torch.equal(model.weight.detach(), torch.tensor([[0.0, 4.0]])) and model.weight.grad is None
    model.weight.grad = torch.tensor([[3.0, 3.0]])  # the gradient at w'
    per.adjust_gradients(model, local)
    assert torch.equal(model.weight.detach(), torch.tensor([[1.0, 2.0]]))
    assert torch.equal(model.weight.grad, torch.tensor([[3.0, 3.0]])) and "anchor" not in local.state
    model.weight.grad = torch.tensor([[10.0, 10.0]])
    per.adjust_gradients(model, local)
    per.end_training(model, local)
    assert torch.equal(model.weight.detach(), torch.tensor([[1.0, 2.0]])) and "anchor" not in local.state


def test_the_adaptation_step_is_one_gradient_step_on_the_mean_training_loss():
    client = sites()[1].client
    start = client.model_state()
    params = {k: v.clone() for k, v in start.items()}

    def mean_loss(p):
        return nn.functional.cross_entropy(functional_call(client.model, p, (client._x,)), client._y)

    expected = {k: params[k] - 0.3 * g for k, g in grad(mean_loss)(params).items()}
    adapted = client.adapted(start, 0.3)
    for k in expected:
        torch.testing.assert_close(adapted[k], expected[k], rtol=1e-5, atol=1e-6)
    assert not torch.equal(adapted["fc.weight"], start["fc.weight"])


def test_hospitals_are_evaluated_after_adapting_and_send_what_fedavg_sends():
    hospitals = sites()
    per = strategy()
    update = hospitals[2].client.train(per.message(), 1, per)
    assert update.payload == {} and set(update.parameters) == set(per.models[0])
    result = run("perfedavg-alpha0.1", seed=1)
    assert set(result.metrics["model"]) == {"large_1", "small_1", "small_2"}
    received = run("fedavg", seed=1)
    assert not result.metrics["value"].equals(received.metrics["value"])


@pytest.mark.parametrize("alpha", [0.01, 0.5])
def test_the_key_round_trips(alpha):
    spec = AlgorithmSpec.parse(f"perfedavg-alpha{alpha:g}")
    assert AlgorithmSpec.parse(spec.key()) == spec and spec["alpha"] == alpha
