"""Client-level DP (DP-FedAvg): the server's clipping and noise, its accounting, and the cell."""

import math

import dp_accounting
import pandas as pd
import pytest
import torch

from conftest import TINY_CONFIG
from fedhet.privacy.accounting import RDP_ORDERS
from fedhet.training.cell import run_cell
from fedhet.training.client_dp import ClientLevelDP
from fedhet.training.strategy import Update
from fedhet.workflow.algorithms import FEDAVG, AlgorithmSpec, load_strategy
from fedhet.workflow.config import Cell
from fedhet.workflow.specs import DPSpec

START = {"w": torch.zeros(4000), "b": torch.zeros(3)}


def server(epsilon: float, clip: float, seed: int = 0, rounds: int = 10, clients: int = 2) -> ClientLevelDP:
    strategy = load_strategy(FEDAVG, initial=lambda j: {k: v.clone() for k, v in START.items()})
    return ClientLevelDP(strategy, DPSpec("client_level", epsilon, 1e-5, clip), rounds, seed, clients)


def update(scale: float, n: int) -> Update:
    return Update({"w": torch.full((4000,), scale), "b": torch.full((3,), scale)}, n_samples=n, loss=0.0)


def test_without_noise_it_is_the_equal_weight_mean_of_clipped_updates():
    # ε = ∞: no noise. Update norms: 0.01·√4003 ≈ 0.63 (under S = 1) and 10·√4003 ≈ 633 (clipped to 1).
    dp = server(math.inf, 1.0)
    dp.aggregate([update(0.01, 10), update(10.0, 10_000)])  # record counts do not weigh in
    (new,) = dp.message().models
    clipped = 10.0 / (10.0 * math.sqrt(4003))
    torch.testing.assert_close(new["w"], torch.full((4000,), (0.01 + clipped) / 2))
    assert dp.record("small_1").epsilon_spent == math.inf and dp.sigma == 0


def test_noise_has_the_calibrated_scale_and_is_the_seeds():
    dp = server(1.0, 0.5, seed=3, clients=4)
    dp.aggregate([update(0.0, 1)] * 4)  # four hospitals that did not move: the release is pure noise
    (new,) = dp.message().models
    expected = dp.sigma * 0.5 / 4
    assert new["w"].std().item() == pytest.approx(expected, rel=0.05)
    again = server(1.0, 0.5, seed=3, clients=4)
    again.aggregate([update(0.0, 1)] * 4)
    other = server(1.0, 0.5, seed=4, clients=4)
    other.aggregate([update(0.0, 1)] * 4)
    assert torch.equal(again.message().models[0]["w"], new["w"]) and not torch.equal(
        other.message().models[0]["w"], new["w"]
    )


def test_the_stated_relation_is_the_one_sigma_is_calibrated_for():
    """σ is calibrated for sensitivity S: one hospital absent moves the sum by at most S (the
    stated add/remove relation); one replaced moves it by up to 2S, which the privacy rows do
    not claim."""
    from fedhet.privacy.accounting import NEIGHBOURING

    def released_sum(updates):
        dp = server(math.inf, 1.0, clients=4)  # no noise: the clipped sum over the fixed m = 4
        dp.aggregate(updates)
        return torch.cat([v.flatten() for v in dp.message().models[0].values()]).double() * 4

    others = [update(0.01, 5), update(-0.02, 5), update(0.005, 5)]
    present = released_sum([*others, update(3.0, 5)])
    assert float((present - released_sum(others)).norm()) == pytest.approx(1.0, rel=1e-5)
    assert float((present - released_sum([*others, update(-3.0, 5)])).norm()) == pytest.approx(2.0, rel=1e-5)
    assert NEIGHBOURING["client"].startswith("add/remove one hospital's update")


@pytest.mark.parametrize("epsilon", [1.0, 8.0])
def test_epsilon_over_the_rounds_matches_dp_accounting(epsilon):
    rounds = 10
    dp = server(epsilon, 1.0, rounds=rounds)
    for _ in range(rounds):
        dp.aggregate([update(0.001, 1)] * 5)
    record = dp.record("large_1")
    assert record.steps == rounds and record.q == 1.0 and record.level == "client"
    assert 0.99 * epsilon <= record.epsilon_spent <= epsilon
    # Google's accountants: the Gaussian mechanism, unsampled, composed over the rounds
    event = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(dp.sigma), rounds)
    pld = dp_accounting.pld.PLDAccountant().compose(event).get_epsilon(1e-5)
    rdp = dp_accounting.rdp.RdpAccountant(orders=list(RDP_ORDERS)).compose(event).get_epsilon(1e-5)
    assert record.epsilon_spent == pytest.approx(pld, rel=0.02) and record.epsilon_spent <= rdp * 1.001


def test_a_cell_under_client_level_dp_records_every_hospitals_participation(tmp_path, tiny_partitions):
    scenario, parts = tiny_partitions
    dp = DPSpec("client_level", 4.0, 1e-5, 0.5)
    cell = Cell(scenario.key(), "federated", 0, dp.key())
    out = tmp_path / "cell"
    run_cell(TINY_CONFIG, cell, parts, None, out / "m.parquet", out / "r.parquet", privacy_out=out / "p.parquet")
    table = pd.read_parquet(out / "p.parquet")
    assert table["private"].all() and (table["level"] == "client").all() and table["steps"].eq(2).all()
    assert ((table["epsilon_spent"] <= 4.0) & (table["epsilon_spent"] >= 0.97 * 4.0)).all()
    assert table["sigma"].nunique() == 1  # one mechanism, the server's, for every hospital
    # no exact training loss leaves a hospital under client-level DP: the noise does not cover it
    rounds = pd.read_parquet(out / "r.parquet")
    losses = rounds.loc[rounds["quantity"] == "train_loss", "value"]
    assert len(losses) and losses.isna().all()


def released_noise(updates: int, clients: int, stated: int = 0) -> torch.Tensor:
    """The noise of one release when ``updates`` hospitals, each not moving, report
    (``clients`` in the federation, ``stated`` the config's nominal K, 0 if none)."""
    strategy = load_strategy(FEDAVG, initial=lambda j: {k: v.clone() for k, v in START.items()})
    dp = ClientLevelDP(strategy, DPSpec("client_level", 1.0, 1e-5, 0.5, clients=stated), 10, 3, clients)
    dp.aggregate([update(0.0, 1)] * updates)
    return dp.message().models[0]["w"]


def test_a_hospital_absent_does_not_change_the_noise_scale():
    # Five hospitals configured; in one federation all five report, in its neighbour one is
    # absent. Dividing by the count received would show 4 against 5 in the noise scale.
    everyone, one_absent = released_noise(5, clients=5), released_noise(4, clients=5)
    torch.testing.assert_close(everyone, one_absent)  # same seed, same public denominator
    assert everyone.std().item() == pytest.approx(server(1.0, 0.5).sigma * 0.5 / 5, rel=0.05)


def test_a_stated_nominal_count_is_the_denominator_and_in_the_key():
    spec = DPSpec("client_level", 1.0, 1e-5, 0.5, clients=10)
    assert spec.key() == "client_level-eps1-delta1e-05-clip0.5-K10" and DPSpec.parse(spec.key()) == spec
    assert DPSpec.parse("client_level-eps1-delta1e-05-clip0.5-rdp-K3").clients == 3
    # the same noise draw divided by 10 instead of 5
    torch.testing.assert_close(released_noise(5, clients=5, stated=10) * 2, released_noise(5, clients=5))


def test_a_nominal_count_is_refused_outside_client_level_dp():
    from fedhet.workflow.specs import check_spec

    with pytest.raises(ValueError, match="dp clients 4: .* not of placement all"):
        check_spec(DPSpec("all", 1.0, 1e-5, 1.0, clients=4))


@pytest.mark.parametrize(
    "mode, algorithm, message",
    [
        ("local", "fedavg", "client-level DP protects hospitals in a federation, not mode local"),
        ("federated", "ifca-k2", "ifca-k2 cannot run under client-level DP .*: its updates carry extras"),
    ],
)
def test_client_level_dp_is_refused_where_it_protects_nothing(tmp_path, tiny_partitions, mode, algorithm, message):
    scenario, parts = tiny_partitions
    key = AlgorithmSpec.parse(algorithm).key()
    cell = Cell(scenario.key(), mode, 0, DPSpec("client_level", 4.0).key(), key)
    with pytest.raises(ValueError, match=message):
        run_cell(TINY_CONFIG, cell, parts, None, tmp_path / "m.parquet", tmp_path / "r.parquet")
    assert not (tmp_path / "m.parquet").exists()


def test_poisson_client_sampling_draws_each_hospital_with_probability_c_reproducibly():
    import numpy as np

    from fedhet.training.server import select_clients

    draws = [select_clients(8, 0.25, np.random.default_rng(7), "poisson") for _ in range(2)]
    assert draws[0] == draws[1]  # the run's generator decides
    rng = np.random.default_rng(0)
    rounds = [select_clients(8, 0.25, rng, "poisson") for _ in range(4000)]
    counts = np.bincount(np.concatenate([r for r in rounds if r]).astype(int), minlength=8) / 4000
    assert np.allclose(counts, 0.25, atol=0.03)  # 4σ of a Binomial(4000, 0.25) share
    assert any(not r for r in rounds) and len({len(r) for r in rounds}) > 3  # empty rounds happen; sizes vary


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_poisson_sampled_client_level_epsilon_matches_dp_accounting(fraction):
    rounds = 20
    strategy = load_strategy(FEDAVG, initial=lambda j: {k: v.clone() for k, v in START.items()})
    spec = DPSpec("client_level", 2.0, 1e-5, 1.0)
    dp = ClientLevelDP(strategy, spec, rounds, 0, 16, fraction, sampling="poisson")
    for r in range(rounds):
        dp.aggregate([update(0.001, 1)] * (r % 3))  # every round counts, one with no hospital too
    record = dp.record("small_1")
    assert record.q == fraction and record.steps == rounds and 0.99 * 2.0 <= record.epsilon_spent <= 2.0
    sampled = dp_accounting.PoissonSampledDpEvent(fraction, dp_accounting.GaussianDpEvent(dp.sigma))
    event = dp_accounting.SelfComposedDpEvent(sampled, rounds)
    pld = dp_accounting.pld.PLDAccountant().compose(event).get_epsilon(1e-5)
    assert record.epsilon_spent == pytest.approx(pld, rel=0.03)
    fixed = ClientLevelDP(strategy, spec, rounds, 0, 16, fraction)
    assert fixed.q == 1.0 and fixed.sigma > dp.sigma  # a fixed-size draw claims no amplification
