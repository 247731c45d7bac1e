import pytest
import torch
from test_algorithms import TRAIN, run, sites, values

from fedhet.training.algorithms import ditto as ditto_module
from fedhet.training.strategy import Strategy
from fedhet.workflow.algorithms import AlgorithmSpec, load_strategy


def train_losses(result):
    rounds = result.rounds
    return rounds[rounds["quantity"] == "train_loss"].set_index(["round", "hospital"])["value"]


def test_the_shared_model_trains_as_fedavg_bit_for_bit_and_hospitals_are_evaluated_with_their_own():
    fedavg, ditto = run("fedavg", seed=3), run("ditto-lam0.1", seed=3)
    assert train_losses(ditto).equals(train_losses(fedavg))  # what is sent is FedAvg's, every round
    assert not values(ditto)[0].equals(values(fedavg)[0])  # evaluated with the personal models
    assert set(ditto.metrics["model"]) == {"large_1", "small_1", "small_2"}


def test_with_its_personal_model_disabled_ditto_is_fedavg_bit_for_bit(monkeypatch):
    monkeypatch.setattr(ditto_module.Strategy, "personal_model", False)
    monkeypatch.setattr(ditto_module.Strategy, "model_name", Strategy.model_name)
    fedavg, ditto = values(run("fedavg", seed=3)), values(run("ditto-lam0.1", seed=3))
    assert ditto[0].equals(fedavg[0]) and ditto[1].equals(fedavg[1])


def test_large_lambda_pulls_the_personal_model_to_the_global_one():
    """The personal model's distance to the global model falls as λ grows (the global model is
    FedAvg's: the shared training is FedAvg's bit for bit)."""
    shared = run("fedavg", seed=4).final_states["small_1"]

    def distance(lam):
        personal = run(f"ditto-lam{lam:g}", seed=4).final_states["small_1"]
        return sum(float((personal[k] - shared[k]).norm() ** 2) for k in personal)

    assert distance(5) < distance(0.5) < distance(0)


def test_the_personal_step_adds_lambda_times_the_distance_to_the_global_model():
    hospitals = sites()
    init = hospitals[0].client.model_state()
    strategy = load_strategy(AlgorithmSpec.parse("ditto-lam0.5"), initial=lambda j: init, train_spec=TRAIN)
    model = hospitals[1].client.model
    anchor = {k: v + 1.0 for k, v in model.state_dict().items()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    local = type("Local", (), {"start": anchor})()
    strategy.personal_gradients(model, local)
    assert all(torch.allclose(p.grad, torch.full_like(p, -0.5)) for p in model.parameters())


@pytest.mark.parametrize("key", ["ditto-lam0.1", "ditto-lam1000"])
def test_ditto_sends_what_fedavg_sends(key):
    hospitals = sites()
    init = hospitals[0].client.model_state()
    strategy = load_strategy(AlgorithmSpec.parse(key), initial=lambda j: init, train_spec=TRAIN)
    update = hospitals[2].client.train(strategy.message(), 1, strategy)
    assert update.payload == {} and set(update.parameters) == set(init)
