import math

import pytest
import torch
from test_algorithms import TRAIN, run, sites, values

from fedhet.training.strategy import Update
from fedhet.workflow.algorithms import AlgorithmSpec, load_strategy
from fedhet.workflow.settings import setting_problem
from fedhet.workflow.specs import DPSpec, TrainSpec


def test_with_q_zero_qffl_is_fedavg_bit_for_bit():
    fedavg = values(run("fedavg", seed=1))
    flat = values(run("qffl-q0", seed=1))
    assert flat[0].equals(fedavg[0]) and flat[1].equals(fedavg[1])
    fair = values(run("qffl-q5", seed=1))
    assert not fair[1].equals(fedavg[1])  # a positive q moves the model


def test_server_step_by_hand():
    """Two hospitals, one parameter, q = 1, lr = 0.5 (L = 2)."""
    start = {"w": torch.tensor([1.0])}
    strategy = load_strategy(AlgorithmSpec.parse("qffl-q1"), initial=lambda j: start, train_spec=TrainSpec(lr=0.5))
    updates = [
        Update({"w": torch.tensor([0.0])}, 1, math.nan, {"start_loss": 0.5}),
        Update({"w": torch.tensor([3.0])}, 3, math.nan, {"start_loss": 2.0}),
    ]
    # Δ_1 = 2(1 − 0) = 2, Δ_2 = 2(1 − 3) = −4; numerator Σ n F Δ = 1·0.5·2 + 3·2·(−4) = −23;
    # h = Σ n (q F^0 Δ² + L F) = 1(4 + 1) + 3(16 + 4) = 65; w ← 1 + 23/65
    strategy.aggregate(updates)
    assert float(strategy.models[0]["w"]) == pytest.approx(1 + 23 / 65, rel=1e-6)


def test_each_hospital_sends_the_global_models_loss_on_its_records_and_nothing_else():
    hospitals = sites()
    init = hospitals[0].client.model_state()
    strategy = load_strategy(AlgorithmSpec.parse("qffl-q1"), initial=lambda j: init, train_spec=TRAIN)
    client = hospitals[1].client
    expected = client.training_loss(init)
    update = client.train(strategy.message(), 1, strategy)
    assert update.payload == {"start_loss": pytest.approx(expected)}


@pytest.mark.parametrize("placement", ["all", "small_hospitals", "client_level"])
def test_qffl_is_refused_under_dp_because_its_loss_is_not_covered(placement):
    problem = setting_problem("federated", AlgorithmSpec.parse("qffl-q1"), DPSpec(placement, 1.0))
    assert problem is not None and problem[0] == "algorithms"
    assert setting_problem("federated", AlgorithmSpec.parse("qffl-q1"), DPSpec()) is None
