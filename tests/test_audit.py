"""The one-run audit (Steinke, Nasr and Jagielski 2023): its statistics, cells and table."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fedhet.data.beyond_hospitals import draw_canaries, write_canaries
from fedhet.data.partition import Scenario, read_hospital, write_partitions
from fedhet.privacy.audit import (
    AuditCell,
    AuditError,
    EngineAudit,
    audit_cells,
    audit_table,
    check_audit,
    engine_audits,
    epsilon_lower_bound,
    guesses,
    p_value,
)
from fedhet.training.canary import CanaryAudit
from fedhet.training.cell import run_cell
from fedhet.workflow.config import Cell, ConfigError, optim_key
from fedhet.workflow.specs import CanarySpec


def test_without_privacy_loss_the_p_value_is_a_fair_coins_tail():
    assert p_value(1000, 100, 60, 0.0, 0.0) == pytest.approx(stats.binom.sf(59, 100, 0.5))
    values = [p_value(1000, 100, 70, eps, 1e-5) for eps in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < 0.001 < values[-1]  # rises with ε
    assert p_value(1000, 100, 70, 0.5, 1e-3) > p_value(1000, 100, 70, 0.5, 0.0)  # δ adds to it


def test_lower_bound_is_zero_for_chance_guessing_and_large_for_perfect_guessing():
    assert epsilon_lower_bound(1000, 200, 100, 1e-5) == 0.0
    perfect = epsilon_lower_bound(1000, 200, 200, 1e-5)
    assert 2.5 < perfect < 10
    assert epsilon_lower_bound(1000, 200, 200, 1e-5, confidence=0.99) < perfect


def test_the_bound_is_sound_for_a_mechanism_of_known_epsilon():
    """Randomized response with ε = 1: each guess is right with probability e/(1+e). The 95%
    lower bound must stay at or below 1 in about 95% of runs, and not be vacuous."""
    rng = np.random.default_rng(0)
    p, r = math.e / (1 + math.e), 500
    bounds = np.array([epsilon_lower_bound(1000, r, int(rng.binomial(r, p)), 1e-5) for _ in range(300)])
    assert (bounds <= 1.0).mean() >= 0.92
    assert np.median(bounds) > 0.6


def test_guesses_take_the_highest_scores_as_in_and_the_lowest_as_out():
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.5, 0.7])
    included = np.array([True, False, False, False, True, True])
    # in: 0.9 (right), 0.8 (wrong); out: 0.1 (right), 0.2 (right)
    assert guesses(scores, included, 2, 2) == (4, 3)
    assert guesses(scores, included, 1, 0) == (1, 1)
    with pytest.raises(ValueError, match="4 \\+ 3 guesses for 6 canaries"):
        guesses(scores, included, 4, 3)


# --- the audit's cells: canaries planted at one hospital, scored from the final model -------

TRAINING = {"rounds": 20, "batch_size": 32, "lr": 0.05}
AUDIT_MODEL = {"conv1_channels": 8, "conv2_channels": 16, "kernel_size": 5}


@pytest.fixture(scope="module")
def canary_pool(tmp_path_factory):
    """Random images with labels no model can learn but any can memorise, as hospitals of 200
    training records, and 200 canaries from the rest of the pool."""
    rng = np.random.default_rng(0)
    binary = np.arange(1400) % 2
    images, labels = rng.integers(0, 256, (1400, 28, 28), dtype=np.uint8), binary * 7
    scenario = Scenario.parse("large1x300r0.5-small2x250r0.5")
    root = tmp_path_factory.mktemp("audit")
    write_partitions(root / "parts", images, labels, binary, scenario, 0, 0.2)
    write_canaries(root / "canaries.parquet", images, labels, draw_canaries(binary, scenario, 0, 0.2, 200))
    return scenario, root


def _audit(root, scenario, dp: str, mode: str = "local"):
    config = {"model": AUDIT_MODEL, "training": TRAINING, "evaluation": {"threshold": 0.5, "every_round": False}}
    canaries = CanaryAudit.load(CanarySpec("small_1", 200), root / "canaries.parquet")
    out = root / dp
    cell = Cell(scenario.key(), mode, 0, dp, optim=optim_key(config))
    run_cell(
        config,
        cell,
        root / "parts",
        None,
        out / "m.parquet",
        out / "r.parquet",
        privacy_out=out / "p.parquet",
        audit=(canaries, out / "scores.parquet"),
    )
    scores, privacy = pd.read_parquet(out / "scores.parquet"), pd.read_parquet(out / "p.parquet")
    return scores, privacy, audit_table([(scores, privacy)], 0.5, 0.95, 1e-5).iloc[0]


def test_memorised_canaries_give_a_positive_bound_without_dp(canary_pool):
    scenario, root = canary_pool
    scores, privacy, row = _audit(root, scenario, "nodp")
    assert len(scores) == 200 and scores["included"].sum() == row["included"]
    assert scores.groupby("included")["score"].mean()[True] > scores.groupby("included")["score"].mean()[False]
    assert row["epsilon_accounted"] == math.inf and row["epsilon_lower_bound"] > 1.0
    assert row["guesses"] == 100 and row["correct"] > 80
    # the planted cell's own tables carry its canaries: they never pass for the cell without them
    assert (
        set(privacy["canaries"])
        == set(pd.read_parquet(root / "nodp" / "m.parquet")["canaries"])
        == {"canaries-small_1-m200"}
    )


def test_under_dp_sgd_the_bound_stays_below_the_accounted_epsilon(canary_pool):
    scenario, root = canary_pool
    _, privacy, row = _audit(root, scenario, "all-eps1-delta1e-05-clip1")
    assert row["epsilon_accounted"] <= 1.0
    assert row["epsilon_lower_bound"] <= row["epsilon_accounted"]
    hospital = privacy.set_index("hospital").loc["small_1"]
    assert hospital["private"] and hospital["epsilon_spent"] == row["epsilon_accounted"]


def test_planting_adds_the_included_canaries_to_one_hospitals_training_records_only(canary_pool):
    scenario, root = canary_pool
    canaries = CanaryAudit.load(CanarySpec("small_1", 200), root / "canaries.parquet")
    hospitals = {name: read_hospital(root / "parts" / f"{name}.parquet", name) for name in scenario.hospital_names()}
    planted = canaries.plant(hospitals, {"small_1", "small_2"})
    n_in = int(canaries.canaries.included.sum())
    assert len(planted["small_1"].train_labels) == len(hospitals["small_1"].train_labels) + n_in
    assert np.array_equal(planted["small_1"].test_labels, hospitals["small_1"].test_labels)
    assert planted["small_2"] is hospitals["small_2"]
    with pytest.raises(ValueError, match="hospital small_1 does not train in this mode"):
        canaries.plant(hospitals, {"large_1"})
    with pytest.raises(ValueError, match="holds 200 canaries, the audit canaries-small_1-m100 needs 100"):
        CanaryAudit.load(CanarySpec("small_1", 100), root / "canaries.parquet")


def test_a_bound_above_the_accounted_epsilon_fails_the_table():
    included = np.arange(400) % 2 == 0
    scores = pd.DataFrame({"score": included.astype(float), "included": included}).assign(
        scenario="s", mode="federated", dp="all-eps0.1-delta1e-05-clip1", seed=0, canaries="canaries-small_1-m400"
    )
    privacy = pd.DataFrame(
        [{"hospital": "small_1", "private": True, "epsilon_target": 0.1, "epsilon_spent": 0.1, "delta": 1e-5}]
    )
    with pytest.raises(AuditError, match="ε lower bound above the accounted ε"):
        audit_table([(scores, privacy)], 0.5, 0.95, 1e-5)


def test_audit_cell_keys_round_trip():
    cell = AuditCell(
        Cell("large1x30000r0.5-small4x3000r0.1", "federated", 2, "all-eps4-delta1e-05-clip1", optim="lr0.03"),
        CanarySpec("small_1", 1000),
    )
    assert cell.key() == (
        "large1x30000r0.5-small4x3000r0.1/federated/fedavg/all-eps4-delta1e-05-clip1/lr0.03/canaries-small_1-m1000/seed2"
    )
    assert AuditCell.parse(cell.key()) == cell
    assert CanarySpec.parse("canaries-small_1-m1000") == CanarySpec("small_1", 1000)
    with pytest.raises(ValueError, match="canary key 'canaries-small_1'"):
        CanarySpec.parse("canaries-small_1")


AUDIT = {
    "seeds": [0],
    "hospital": "small_1",
    "canaries": 1000,
    "mode": "federated",
    "guesses": 0.2,
    "confidence": 0.95,
    "dp": {"placement": ["all"], "epsilon": [1, 4], "delta": 1e-5, "max_grad_norm": 1.0},
}


def _config(**audit):
    return {
        "data": {"dataset": "fashion_mnist", "abnormal_classes": [7, 8, 9], "test_fraction": 0.2},
        "hospitals": [
            {"type": "large", "count": 1, "size": 30000, "abnormal_ratio": 0.5},
            {"type": "small", "count": 4, "size": 3000, "abnormal_ratio": 0.1},
        ],
        "audit": {**AUDIT, **audit},
    }


def test_audit_cells_are_one_per_dp_setting_and_seed_with_one_without_dp():
    cells = audit_cells(_config(seeds=[0, 1]))
    assert [c.cell.dp for c in cells] == [
        "nodp",
        "nodp",
        "all-eps1-delta1e-05-clip1",
        "all-eps1-delta1e-05-clip1",
        "all-eps4-delta1e-05-clip1",
        "all-eps4-delta1e-05-clip1",
    ]
    assert {c.canaries.key() for c in cells} == {"canaries-small_1-m1000"}
    assert audit_cells(_config(seeds=[])) == []


@pytest.mark.parametrize(
    ("audit", "message"),
    [
        ({"hospital": "small_9"}, "audit.hospital 'small_9' is not a hospital"),
        (
            {"canaries": 10000},
            "audit.canaries 10000: needs 3000 abnormal images outside the hospitals, the pool has 1800 left",
        ),
        ({"canaries": 4, "guesses": 0.1}, "audit.canaries 4: too few for one guess each way"),
        ({"dp": {**AUDIT["dp"], "placement": ["client_level"]}}, "client-level DP protects hospitals"),
        ({"mode": "large_only"}, "audit.mode 'large_only' is not one of"),
    ],
)
def test_an_audit_that_cannot_work_is_refused_naming_its_key(audit, message):
    with pytest.raises(ConfigError, match=message):
        check_audit(_config(**audit))


def test_engine_audits_are_one_per_dp_sgd_setting_and_seed_and_their_keys_round_trip():
    config = _config(seeds=[], engine={"seeds": [0, 2], "canaries": 4000, "guesses": 0.6})
    check_audit(config)  # the engine audit needs no black-box seeds
    audits = engine_audits(config)
    assert [(a.dp, a.seed) for a in audits] == [
        ("all-eps1-delta1e-05-clip1", 0),
        ("all-eps1-delta1e-05-clip1", 2),
        ("all-eps4-delta1e-05-clip1", 0),
        ("all-eps4-delta1e-05-clip1", 2),
    ]
    assert (
        audits[0].key()
        == "engine/large1x30000r0.5-small4x3000r0.1/small_1/all-eps1-delta1e-05-clip1/lr0.01/m4000/seed0"
    )
    assert all(EngineAudit.parse(a.key()) == a for a in audits)
    assert engine_audits(_config()) == []
    with pytest.raises(ValueError, match="engine audit key 'engine/x/small_1'"):
        EngineAudit.parse("engine/x/small_1")


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ({"canaries": 3, "guesses": 0.1}, "audit.engine.canaries 3: too few for one guess each way"),
    ],
)
def test_an_engine_audit_that_cannot_work_is_refused_naming_its_key(engine, message):
    with pytest.raises(ConfigError, match=message):
        check_audit(_config(seeds=[], engine={"seeds": [0], **engine}))
    with pytest.raises(ConfigError, match="the engine audit needs DP-SGD settings in audit.dp"):
        check_audit(_config(seeds=[], dp=None, engine={"seeds": [0], "canaries": 100, "guesses": 0.6}))
