import copy

import pytest
import torch
import yaml
from test_algorithms import TRAIN, run, sites, values

from conftest import REPO
from fedhet.training.algorithms import scaffold as scaffold_module
from fedhet.training.algorithms.scaffold import momentum_weight
from fedhet.training.client_dp import ClientLevelDP
from fedhet.training.server import fit
from fedhet.training.strategy import Strategy, Update
from fedhet.workflow.algorithms import AlgorithmSpec, load_strategy
from fedhet.workflow.config import validate_config
from fedhet.workflow.experiments import ExperimentError, check_experiments
from fedhet.workflow.specs import DPSpec, TrainSpec


def test_with_its_controls_held_at_zero_scaffold_is_fedavg_bit_for_bit(monkeypatch):
    fedavg = values(run("fedavg", seed=2))
    moving = values(run("scaffold-eta1", seed=2))
    assert not moving[1].equals(fedavg[1])  # the controls move from round 2 on, and so does the model
    first = moving[1].xs(1, level="round")
    assert first.equals(fedavg[1].xs(1, level="round"))  # round 1: every control is 0
    monkeypatch.setattr(scaffold_module.Strategy, "new_control", lambda self, own, *rest: dict(own))
    held = values(run("scaffold-eta1", seed=2))
    assert held[0].equals(fedavg[0]) and held[1].equals(fedavg[1])


def test_option_two_control_update_by_hand():
    init = sites()[0].client.model_state()
    strategy = load_strategy(
        AlgorithmSpec.parse("scaffold"), initial=lambda j: init, train_spec=TrainSpec(lr=0.25, momentum=0.0), clients=2
    )
    one = {"w": torch.tensor([1.0, -2.0])}
    new = strategy.new_control(
        own=one, server={"w": torch.tensor([0.5, 0.5])}, start={"w": torch.tensor([2.0, 0.0])},
        final={"w": torch.tensor([1.0, 1.0])}, steps=4,
    )  # fmt: skip
    # cᵢ − c + (x − y)/(K·η) = [1 − 0.5 + 1/1, −2 − 0.5 − 1/1]
    assert torch.equal(new["w"], torch.tensor([1.5, -3.5]))


@pytest.mark.parametrize("beta, steps", [(0.9, 1), (0.9, 37), (0.5, 10), (0.0, 5)])
def test_momentum_weight_is_the_displacement_of_a_constant_gradient(beta, steps):
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=beta)
    for _ in range(steps):
        param.grad = torch.ones(1)
        optimizer.step()
    assert float(-param.detach()) == pytest.approx(steps * 0.1 * momentum_weight(steps, beta), rel=1e-6)


class Chatty(Strategy):
    """FedAvg that sends what it does not declare."""

    def after_training(self, final, local):
        return {"loss_per_record": 0.1}


def test_exactly_the_declared_extras_cross_to_the_server():
    init = sites()[0].client.model_state()
    client = sites()[1].client
    with pytest.raises(ValueError, match=r"hospital small_1: update carries \['loss_per_record'\], the algorithm"):
        chatty = Chatty(AlgorithmSpec(), initial=lambda j: init)
        client.train(chatty.message(), 1, chatty)
    scaffold = load_strategy(AlgorithmSpec.parse("scaffold"), initial=lambda j: init, train_spec=TRAIN, clients=3)
    assert set(client.train(scaffold.message(), 1, scaffold).payload) == {"control_delta"}

    class Forged:  # a client whose update the server did not ask for
        def train(self, message, epochs, strategy):
            return Update(init, 1, 0.0, {"records": "…"})

    with pytest.raises(ValueError, match=r"server, from client 0: update carries \['records'\]"):
        fit(Strategy(AlgorithmSpec(), initial=lambda j: init), [Forged()], TRAIN, None, "x", lambda r, u: None)


def test_client_level_dp_refuses_scaffold_naming_both():
    init = sites()[0].client.model_state()
    dp = DPSpec("client_level", 10.0)
    scaffold = load_strategy(AlgorithmSpec.parse("scaffold"), initial=lambda j: init, train_spec=TRAIN, clients=3)
    with pytest.raises(ValueError, match=r"scaffold-eta1: its updates carry control_delta, .*client_level-eps10"):
        ClientLevelDP(scaffold, dp, rounds=2, seed=0, clients=3)
    config = validate_config(yaml.safe_load((REPO / "config" / "quick.yaml").read_text()))
    config = copy.deepcopy(config)
    config["experiments"] = {
        "mine": {"algorithms": ["fedavg", "scaffold"], "dp": {"placement": ["client_level"], "epsilon": [10]}}
    }
    with pytest.raises(ExperimentError, match=r"mine.algorithms\[1\]: scaffold-eta1 cannot run under client-level DP"):
        check_experiments(validate_config(config))


def test_scaffold_is_refused_with_adam_naming_the_optimizer():
    init = sites()[0].client.model_state()
    with pytest.raises(ValueError, match="training.optimizer is 'adam'"):
        load_strategy(
            AlgorithmSpec.parse("scaffold"), initial=lambda j: init, train_spec=TrainSpec(optimizer="adam"), clients=2
        )
