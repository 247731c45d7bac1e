from dataclasses import replace

import pytest
import torch
from test_algorithms import SPEC, TRAIN, run, sites, values

from fedhet.training.algorithms import ditto as ditto_module
from fedhet.training.federated import run_mode
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


def test_rho_is_left_out_of_the_key_at_its_default_so_older_keys_name_the_same_cells():
    assert AlgorithmSpec.parse("ditto-lam10-rho1").key() == "ditto-lam10"
    assert AlgorithmSpec.parse("ditto-lam10")["rho"] == 1.0
    spec = AlgorithmSpec.parse("ditto-lam10-rho0.1")
    assert spec.key() == "ditto-lam10-rho0.1" and AlgorithmSpec.parse(spec.key()) == spec
    with pytest.raises(ValueError, match="rho=0 is outside"):
        AlgorithmSpec.parse("ditto-lam10-rho0")


def _personal_models(lr: float, rho: float) -> dict[str, torch.Tensor]:
    train = replace(TRAIN, lr=lr)
    algorithm = AlgorithmSpec.parse(f"ditto-lam0-rho{rho:g}")
    result = run_mode("federated", sites(3, train=train), None, SPEC, train, 3, algorithm=algorithm)
    return result.final_states["small_1"]


def test_the_personal_model_steps_at_rho_times_the_training_rate():
    """With λ = 0 the personal model sees the global one only as its start (the initial model,
    whatever the lr), so at lr 0.1 and ρ = 0.5 it trains exactly as at lr 0.05 and ρ = 1; the
    shared model, trained at the two rates, differs."""
    halved, plain = _personal_models(0.1, 0.5), _personal_models(0.05, 1.0)
    assert all(torch.equal(halved[k], plain[k]) for k in plain)
    assert not all(torch.equal(a, b) for a, b in zip(_personal_models(0.1, 1.0).values(), plain.values(), strict=True))
