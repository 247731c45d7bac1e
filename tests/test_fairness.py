import pandas as pd
import pytest

from fedhet.analysis.fairness import fairness_table, per_cell
from fedhet.analysis.metrics import DIVERGED

SMALL = {"small_1": 0.0, "small_2": 0.2, "small_3": 0.1}


def cells(algorithm: str, lift: float, seeds=(0, 1, 2)) -> list[dict]:
    """The small hospitals at base + lift (small_1 the worst-off); the large one at 0.9 − lift/2."""
    rows = []
    for seed in seeds:
        values = {**{h: 0.5 + v + lift * (h == "small_1") + 0.01 * seed for h, v in SMALL.items()}}
        values["large_1"] = 0.9 - lift / 2
        for hospital, value in values.items():
            rows.append(
                {
                    "scenario": "s",
                    "mode": "federated",
                    "algorithm": algorithm,
                    "dp": "nodp",
                    "optim": "lr0.01",
                    "holdout": "test",
                    "seed": seed,
                    "hospital": hospital,
                    "hospital_type": hospital.split("_")[0],
                    "metric": "recall",
                    "value": value,
                    "missing_reason": "",
                }
            )
    return rows


def test_worst_small_spread_and_large_paired_with_fedavg():
    metrics = pd.DataFrame(cells("fedavg", 0.0) + cells("qffl-q1", 0.15))
    table = fairness_table(metrics).set_index(["algorithm", "stat"])
    fedavg, fair = table.loc["fedavg"], table.loc["qffl-q1"]
    assert fedavg.loc["worst_small", "mean"] == pytest.approx(0.51)  # small_1: 0.5 + seeds' 0.00–0.02
    assert fedavg.loc["spread_small", "mean"] == pytest.approx(0.2)
    # the lift moves small_1 to 0.65: small_3 (0.6) is the worst now, the spread is 0.1
    assert fair.loc["worst_small", "mean"] == pytest.approx(0.61)
    assert fair.loc["worst_small", "diff_mean"] == pytest.approx(0.10)
    assert fair.loc["spread_small", "diff_mean"] == pytest.approx(-0.10)
    assert fair.loc["large", "diff_mean"] == pytest.approx(-0.075)
    assert (table["n"] == 3).all() and (table["n_pairs"] == 3).all()


def test_per_cell_reads_each_seed_on_its_own():
    rows = per_cell(pd.DataFrame(cells("fedavg", 0.0)))
    worst = rows[rows["stat"] == "worst_small"].set_index("seed")["value"]
    assert worst.to_dict() == pytest.approx({0: 0.5, 1: 0.51, 2: 0.52})


def test_without_fedavg_there_is_nothing_to_pair_with():
    with pytest.raises(ValueError, match="no FedAvg cell"):
        fairness_table(pd.DataFrame(cells("qffl-q1", 0.1)))


def test_a_diverged_small_hospital_leaves_its_cell_without_a_worst_or_a_spread():
    """The best of the rest must not pass for the worst-off hospital; a metric undefined for a
    reason of the test split still leaves that hospital out."""
    rows = cells("fedavg", 0.0)
    for row in rows:
        if row["hospital"] == "small_1" and row["seed"] == 1:
            row.update(value=float("nan"), missing_reason=DIVERGED)
        if row["hospital"] == "small_1" and row["seed"] == 2:
            row.update(value=float("nan"), missing_reason="no case predicted abnormal")
    got = per_cell(pd.DataFrame(rows)).set_index(["stat", "seed"])["value"]
    assert got[("worst_small", 0)] == pytest.approx(0.5) and got[("worst_small", 2)] == pytest.approx(0.62)
    assert pd.isna(got[("worst_small", 1)]) and pd.isna(got[("spread_small", 1)])
    assert got[("large", 1)] == pytest.approx(0.9)
