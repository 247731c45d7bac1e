import math

import pandas as pd
import pytest
import yaml

from conftest import REPO
from fedhet.analysis.figures import fig1_data
from fedhet.analysis.tables import (
    STUDY,
    PrivacyBudgetError,
    budget_table,
    check_privacy_budgets,
    comparison_markdown,
    comparison_table,
    external_table,
    group_mean,
    study_reference,
)
from fedhet.workflow.config import validate_config

SCENARIO = "large1x100r0.5-small2x50r0.1"


def privacy_rows(spent: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "scenario": [SCENARIO] * 2,
            "mode": ["federated"] * 2,
            "dp": ["all-eps1-delta1e-05-clip1"] * 2,
            "algorithm": ["fedavg"] * 2,
            "holdout": ["test"] * 2,
            "optim": ["lr0.01"] * 2,
            "seed": [0, 0],
            "hospital": ["large_1", "small_1"],
            "private": [False, True],
            "epsilon_target": [math.nan, 1.0],
            "epsilon_spent": [math.nan, spent],
        }
    )


def test_privacy_budget_check():
    check_privacy_budgets(privacy_rows(0.999))  # within budget; the non-private NaN row is ignored
    with pytest.raises(PrivacyBudgetError, match=r"seed0 small_1: spent ε 1.02 > target 1"):
        check_privacy_budgets(privacy_rows(1.02))


def test_the_clipping_only_control_passes_the_budget_check_with_infinite_epsilon():
    rows = privacy_rows(math.inf).assign(dp="all-epsinf-delta1e-05-clip1")
    rows.loc[rows["private"], "epsilon_target"] = math.inf
    check_privacy_budgets(rows)  # no guarantee was promised, none is broken
    rows.loc[rows["private"], "epsilon_target"] = 1.0
    with pytest.raises(PrivacyBudgetError, match=r"spent ε inf > target 1"):
        check_privacy_budgets(rows)  # but an unbounded spend never passes for a finite target


def metric_rows(mode: str, seed: int, values: dict[str, float]) -> list[dict]:
    types = {"large_1": "large", "small_1": "small", "small_2": "small"}
    return [
        {
            "scenario": SCENARIO,
            "mode": mode,
            "algorithm": "fedavg",
            "dp": "nodp",
            "holdout": "test",
            "optim": "lr0.01",
            "seed": seed,
            "hospital": h,
            "hospital_type": types[h],
        }
        | {"metric": "auroc", "value": v}
        for h, v in values.items()
    ]


def test_small_mean_then_seed_interval():
    rows = metric_rows("federated", 0, {"large_1": 0.5, "small_1": 0.8, "small_2": 1.0})
    rows += metric_rows("federated", 1, {"large_1": 0.5, "small_1": 0.6, "small_2": 0.8})
    metrics = pd.DataFrame(rows)
    per_seed = group_mean(metrics, "small").set_index("seed")["value"]
    assert per_seed.to_dict() == pytest.approx({0: 0.9, 1: 0.7})
    table = comparison_table(metrics, ("federated", "local"), STUDY).set_index("metric")
    assert table.loc["auroc", "federated_mean"] == pytest.approx(0.8)
    # two seeds, sd 0.1414: half-width t(0.975, 1) · sd / √2 = 12.7062 · 0.1
    assert table.loc["auroc", "federated_ci_high"] - 0.8 == pytest.approx(1.270620, rel=1e-5)
    # each mode's column carries that mode's published value for that metric (placement, not value)
    for mode in ("federated", "local"):
        assert table[f"{mode}_study"].dropna().to_dict() == STUDY[mode]
    assert math.isnan(table.loc["auroc", "local_mean"])
    # without a reference (another setup than the study's) there is no study column at all
    plain = comparison_table(metrics, ("federated", "local"))
    assert not any(c.endswith("_study") for c in plain) and "(study)" not in comparison_markdown(
        plain, ("federated", "local")
    )


def test_the_study_numbers_belong_to_the_study_setup_only():
    study = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    assert study_reference(study) == STUDY
    # the same in another order of classes is still the study's relabelling
    assert study_reference({**study, "data": {**study["data"], "abnormal_classes": [9, 7, 8]}}) == STUDY
    two_large = [{"type": "large", "count": 2, "size": 15000, "abnormal_ratio": 0.5},
                 {"type": "small", "count": 8, "size": 1500, "abnormal_ratio": 0.1}]  # fmt: skip
    for changed in (
        {**study, "hospitals": two_large},
        {**study, "data": {**study["data"], "abnormal_classes": [0, 6]}},  # Shirt and T-shirt
        {**study, "data": {**study["data"], "dataset": "pneumonia_mnist", "abnormal_classes": [1]}},
    ):
        assert study_reference(changed) is None
    metrics = pd.DataFrame(metric_rows("federated", 0, {"small_1": 0.8}) + metric_rows("local", 0, {"small_1": 0.7}))
    assert "study" not in fig1_data(metrics, None) and fig1_data(metrics, STUDY)["study"].notna().all()


def test_budget_table_averages_small_hospitals_per_round():
    values = {1: {"small_1": 0.2, "small_2": 0.4, "large_1": 0.9}, 2: {"small_1": 0.6, "small_2": 0.8, "large_1": 1.0}}
    rounds = pd.DataFrame(
        [
            {
                "scenario": SCENARIO,
                "mode": "federated",
                "algorithm": "fedavg",
                "dp": "nodp",
                "holdout": "test",
                "optim": "lr0.01",
                "seed": seed,
                "model": "global",
                "round": r,
            }
            | {"hospital": h, "quantity": "recall", "value": v + 0.1 * seed}
            for seed in (0, 1)
            for r, by_hospital in values.items()
            for h, v in by_hospital.items()
        ]
    )
    budget = budget_table(rounds).set_index("round")
    # per seed: mean of the two small hospitals (the large one left out), then mean over seeds
    assert budget.loc[1, "mean"] == pytest.approx(0.35) and budget.loc[2, "mean"] == pytest.approx(0.75)
    assert (budget["n"] == 2).all()


def test_external_table_scores_the_models_the_small_hospitals_use():
    def rows(mode, seed, models):
        out = []
        for hospital, (model, value) in models.items():
            kind = "external" if hospital.startswith("external") else hospital.split("_")[0]
            out.append({"scenario": SCENARIO, "mode": mode, "algorithm": "fedavg", "dp": "nodp", "holdout": "test",
                        "optim": "lr0.01", "seed": seed, "hospital": "external" if kind == "external" else hospital,
                        "hospital_type": kind, "model": model, "metric": "auroc", "value": value})  # fmt: skip
        return out

    metrics = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        # local: each hospital its own model; the external rows score every model
        own = {name: (name, 0.9) for name in ("small_1", "small_2", "large_1")}
        scored = {"external_a": ("small_1", 0.70 + shift), "external_b": ("small_2", 0.80 + shift)}
        metrics += rows("local", seed, {**own, **scored, "external_c": ("large_1", 0.99)})
        metrics += rows("federated", seed, {"small_1": ("global", 0.9), "external": ("global", 0.95 + shift)})
    table = external_table(pd.DataFrame(metrics)).set_index("mode")
    assert table.loc["local", "mean"] == pytest.approx(0.76)  # small_1's and small_2's models, not large_1's
    assert table.loc["federated", "mean"] == pytest.approx(0.96) and table.loc["federated", "n"] == 2
