import math

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO
from fedhet.analysis.tuning import (
    SCORE,
    choices_yaml,
    dp_selection_table,
    release_score,
    tuning_charges,
    with_tuning,
)
from fedhet.privacy.tuning_charge import Candidate, charge_composition
from fedhet.workflow.config import validate_config
from fedhet.workflow.experiments import chosen_cells

SCENARIO = "large1x100r0.5-small2x50r0.1"
N_TEST, N_ABNORMAL = 500, 50  # a small hospital's validation split
NOISE = 5.0


def test_release_score_is_the_balanced_true_class_probability_plus_noise_on_each_class_sum():
    exact = release_score(0.8, 0.9, N_ABNORMAL, N_TEST - N_ABNORMAL, 0.0, np.random.default_rng(0))
    assert exact == pytest.approx((0.8 + 0.9) / 2)
    rng = np.random.default_rng(1)
    draws = np.array([release_score(0.8, 0.9, 50, 450, NOISE, rng) for _ in range(20000)])
    # each class sum gets N(0, σ²): the score's std is σ/2 · √(1/n₁² + 1/n₀²)
    expected = NOISE / 2 * math.sqrt(1 / 50**2 + 1 / 450**2)
    assert draws.mean() == pytest.approx(0.85, abs=4 * expected / math.sqrt(len(draws)))
    assert draws.std() == pytest.approx(expected, rel=0.03)
    # a diverged model's record counts 0 (its share stays bounded), not NaN
    assert release_score(math.nan, math.nan, 50, 450, 0.0, rng) == 0.0


def tuning_rows(holdout: str, mode: str, dp: str, optim: str, seed: int, score: float) -> list[dict]:
    """A tuning cell's metric rows: each small hospital's per-class true-class probabilities
    (both ``score``), a recall, and the large hospital's (never read)."""
    base = {"scenario": SCENARIO, "mode": mode, "algorithm": "fedavg", "dp": dp, "holdout": holdout}
    rows = []
    for hospital, kind in (("small_1", "small"), ("small_2", "small"), ("large_1", "large")):
        value = score if kind == "small" else 1.0
        for metric, v in (("p_true_abnormal", value), ("p_true_normal", value), ("recall", 1.0 - value)):
            rows.append(
                base
                | {"optim": optim, "seed": seed, "hospital": hospital, "hospital_type": kind, "metric": metric}
                | {"value": v, "n_test": N_TEST, "n_test_abnormal": N_ABNORMAL}
            )
    return rows


CANDIDATES = {  # (dp key, optim key) -> the small hospitals' score over two seeds
    ("nodp", "lr0.01"): (0.80, 0.82),
    ("nodp", "lr0.1"): (0.55, 0.53),
    ("all-eps1-delta1e-05-clip1", "lr0.01"): (0.60, 0.62),
    ("all-eps1-delta1e-05-clip0.1", "lr0.1"): (0.90, 0.94),
    ("all-eps1-delta1e-05-clip0.1", "lr0.03"): (math.nan, math.nan),  # diverged: scores 0, never chosen
}


def tuning_metrics() -> pd.DataFrame:
    rows = [
        r
        for holdout in ("validation", "public")
        for (dp, optim), values in CANDIDATES.items()
        for seed, v in enumerate(values)
        for r in tuning_rows(holdout, "federated", dp, optim, seed, v if holdout == "validation" else 1 - v)
    ]
    test_rows = tuning_rows("test", "federated", "all-eps1-delta1e-05-clip1", "lr0.01", 0, 0.99)
    return pd.DataFrame(rows + test_rows)  # a test cell is never read


def test_dp_selection_chooses_per_way_of_tuning_from_the_released_scores():
    table = dp_selection_table(tuning_metrics(), NOISE)
    assert len(table) == 2 * len(CANDIDATES) and (table["metric"] == SCORE).all()
    assert set(table["holdout"]) == {"validation", "public"}
    public = table[table["holdout"] == "public"].set_index(["dp", "optim"])
    private = table[table["holdout"] == "validation"].set_index(["dp", "optim"])
    # public proxies' scores go out exactly; private ones with the hospital's noise
    assert (public["score_noise"] == 0).all() and (private["score_noise"] == NOISE).all()
    assert public.loc[("nodp", "lr0.1"), "mean"] == pytest.approx(1 - 0.54)
    noisy = private.loc[("nodp", "lr0.01"), "mean"]
    assert noisy != pytest.approx(0.81, abs=1e-6) and noisy == pytest.approx(0.81, abs=0.1)
    assert dp_selection_table(tuning_metrics(), NOISE)["mean"].equals(table["mean"])  # the same release twice
    chosen = {(h, d): o for h, d, o in table.loc[table["chosen"], ["holdout", "dp", "optim"]].itertuples(index=False)}
    assert chosen == {
        ("validation", "nodp"): "lr0.01",
        ("validation", "all-eps1-delta1e-05-clip0.1"): "lr0.1",
        ("public", "nodp"): "lr0.1",
        ("public", "all-eps1-delta1e-05-clip1"): "lr0.01",
    }
    # one choice per (way, setting); the count of runs behind it is what a private choice pays for
    assert table.groupby(["holdout", "placement"])["chosen"].sum().to_dict() == {
        ("public", "all"): 1,
        ("public", "none"): 1,
        ("validation", "all"): 1,
        ("validation", "none"): 1,
    }
    assert set(private.loc[private["placement"] == "all", "candidates"]) == {3 * 2}


def test_choices_written_as_config_train_exactly_the_chosen_settings():
    table = dp_selection_table(tuning_metrics(), NOISE)
    config = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    config["hospitals"] = [
        {"type": "large", "count": 1, "size": 100, "abnormal_ratio": 0.5},
        {"type": "small", "count": 2, "size": 50, "abnormal_ratio": 0.1},
    ]
    for holdout in ("validation", "public"):
        entry = yaml.safe_load(choices_yaml(table, holdout))
        assert entry["chosen_on"] == holdout
        config["experiments"] = {"tuned": entry | {"seeds": [0]}}
        cells = chosen_cells(validate_config(config), "tuned")
        chosen = table[table["chosen"] & (table["holdout"] == holdout)]
        assert {(c.dp, c.optim, c.holdout) for c in cells} == {(r.dp, r.optim, "test") for r in chosen.itertuples()}


SIGMA_L, Q_L, STEPS_L = 1.1, 0.02, 400
SIGMA_S, Q_S, STEPS_S = 2.5, 0.1, 80
DELTA = 1e-5


def privacy_rows(mode: str, dp: str, optim: str, seed: int, holdout: str, scale: int = 1) -> list[dict]:
    """A cell's privacy rows: large_1 trains privately in both modes; the small hospitals
    train privately in federated mode and not at all in large_only mode. ``scale``: steps
    of a final run on all training records against a tuning run's."""
    cell = {"scenario": SCENARIO, "mode": mode, "algorithm": "fedavg", "dp": dp, "optim": optim}
    cell |= {"seed": seed, "holdout": holdout}
    large = {"hospital": "large_1", "private": True, "trained": True, "sigma": SIGMA_L, "q": Q_L}
    rows = [cell | large | {"steps": STEPS_L * scale, "epsilon_spent": 0.9, "delta": DELTA}]
    for name in ("small_1", "small_2"):
        if mode == "federated":
            small = {"private": True, "trained": True, "sigma": SIGMA_S, "q": Q_S, "steps": STEPS_S * scale}
            rows.append(cell | {"hospital": name} | small | {"epsilon_spent": 0.95, "delta": DELTA})
        else:
            small = {"private": False, "trained": False, "sigma": math.nan, "q": math.nan, "steps": math.nan}
            rows.append(cell | {"hospital": name} | small | {"epsilon_spent": math.nan, "delta": math.nan})
    return rows


DP = "all-eps1-delta1e-05-clip1"


def charge_inputs():
    candidates = pd.DataFrame(
        [
            r
            for mode in ("federated", "large_only")
            for clip in (0.1, 1)
            for optim in ("lr0.01", "lr0.1")
            for seed in (0, 1)
            for r in privacy_rows(mode, f"all-eps1-delta1e-05-clip{clip:g}", optim, seed, "validation")
        ]
        + privacy_rows("federated", DP, "lr0.1", 0, "test")  # a test cell is never a candidate
    )
    finals = pd.DataFrame(
        privacy_rows("federated", DP, "lr0.1", 0, "test", scale=2)
        + privacy_rows("large_only", DP, "lr0.01", 0, "test", scale=2)
    )
    return candidates, finals


def test_tuning_charge_composes_every_candidate_run_and_score_with_the_final_run():
    candidates, finals = charge_inputs()
    table = tuning_charges(candidates, finals, NOISE).set_index(["mode", "hospital"])
    runs = 2 * 2 * 2  # C × lr × seeds of each setting
    assert set(table["candidates"]) == {runs}
    # the large hospital trains in every candidate and releases no score
    large = table.loc[("federated", "large_1")]
    expected = charge_composition(
        Candidate(SIGMA_L, Q_L, STEPS_L, math.inf, DELTA),
        runs,
        final=Candidate(SIGMA_L, Q_L, 2 * STEPS_L, math.inf, DELTA),
    )
    assert large["epsilon_total"] == pytest.approx(expected.epsilon_total, rel=1e-9)
    assert large["epsilon_training"] == pytest.approx(expected.epsilon_training, rel=1e-9)
    # a small hospital trains and releases its score in every candidate
    small = table.loc[("federated", "small_1")]
    expected = charge_composition(
        Candidate(SIGMA_S, Q_S, STEPS_S, NOISE, DELTA),
        runs,
        final=Candidate(SIGMA_S, Q_S, 2 * STEPS_S, math.inf, DELTA),
    )
    assert small["epsilon_total"] == pytest.approx(expected.epsilon_total, rel=1e-9)
    assert small["epsilon_tuning"] > 0 and small["epsilon_total"] > small["epsilon_training"]
    # in large_only mode a small hospital only scores: its score releases are all it pays
    scorer = table.loc[("large_only", "small_2")]
    assert scorer["epsilon_training"] == 0
    only_scores = charge_composition(Candidate(0.0, 1.0, 0, NOISE, DELTA), runs)
    assert scorer["epsilon_total"] == pytest.approx(only_scores.epsilon_total, rel=1e-9)


def test_tuning_charge_refuses_a_setting_without_candidates_and_candidates_that_differ():
    candidates, finals = charge_inputs()
    with pytest.raises(ValueError, match="no validation cell of mode federated, placement all, ε = 1 for large_1"):
        tuning_charges(candidates[candidates["mode"] == "large_only"], finals, NOISE)
    odd = candidates.copy()
    odd.loc[odd.index[0], "sigma"] = 3.0
    with pytest.raises(ValueError, match="candidates of large_1 differ"):
        tuning_charges(odd, finals, NOISE)


def test_a_figures_privacy_rows_carry_the_charge_of_the_way_each_setting_was_tuned():
    candidates, finals = charge_inputs()
    charges = tuning_charges(candidates, finals, NOISE)
    variants = pd.DataFrame(
        [
            {"tuning": "fixed", "mode": "large_only", "dp": DP, "optim": "lr0.01"},
            {"tuning": "validation", "mode": "large_only", "dp": DP, "optim": "lr0.01"},
            {"tuning": "public", "mode": "federated", "dp": DP, "optim": "lr0.1"},
            {"tuning": "validation", "mode": "federated", "dp": DP, "optim": "lr0.1"},
        ]
    )
    rows = with_tuning(finals, variants, charges).set_index(["tuning", "mode", "hospital"])
    assert len(rows) == 2 * len(finals)  # each cell under both of its ways
    # fixed and public: the run's own ε, nothing for the choice
    for tuning, mode in (("fixed", "large_only"), ("public", "federated")):
        row = rows.loc[(tuning, mode, "large_1")]
        assert row["epsilon_tuning"] == 0 and row["epsilon_total"] == row["epsilon_spent"] == 0.9
    charged = charges.set_index(["mode", "hospital"])
    for mode, hospital in (("federated", "small_1"), ("large_only", "large_1"), ("large_only", "small_1")):
        row = rows.loc[("validation", mode, hospital)]
        assert row["epsilon_total"] == charged.loc[(mode, hospital), "epsilon_total"]
    with pytest.raises(ValueError, match="need their tuning charges"):
        with_tuning(finals, variants, None)
