"""The fairness view of a remedy figure: what each algorithm gives the worst-off small hospital,
how far apart the small hospitals end up, and what it costs the large hospital.

Per cell (one seed) and metric, from each hospital's model on its own test split:
``worst_small`` is the lowest value among the small hospitals, ``spread_small`` the highest
minus the lowest, ``large`` the large hospital's (the mean where a layout has several). Each is
summarised over seeds with a 95% t-interval, and paired by seed (same partitions) with FedAvg's
cell of the same scenario, DP and learning rate: ``diff_*`` is the algorithm's value minus
FedAvg's.

A metric that is undefined at a hospital for a reason of its test split (no case predicted
abnormal, a single class) leaves that hospital out of the minimum and the spread. A hospital whose
model diverged is the worst off by any reading, so its cell has no ``worst_small`` and no
``spread_small`` for any metric: the cell counts in ``n`` of neither, rather than passing the
best of the rest for the worst.
"""

from __future__ import annotations

import pandas as pd

from fedhet.analysis.metrics import DIVERGED, summarise
from fedhet.analysis.tables import CELL_KEYS, CONDITION_KEYS
from fedhet.workflow.algorithms import FEDAVG
from fedhet.workflow.specs import FOCUS_TYPE, REFERENCE_TYPE

METRICS = ("recall", "precision", "auroc", "auprc")
STATS = ("worst_small", "spread_small", "large")


def per_cell(metrics: pd.DataFrame, names: tuple[str, ...] = METRICS) -> pd.DataFrame:
    """One row per cell, metric and statistic (``STATS``), before averaging over seeds."""
    rows = metrics[metrics["metric"].isin(names) & metrics["hospital_type"].isin([FOCUS_TYPE, REFERENCE_TYPE])]
    by = [*CELL_KEYS, "metric"]
    small = rows[rows["hospital_type"] == FOCUS_TYPE].groupby(by)["value"]
    large = rows[rows["hospital_type"] == REFERENCE_TYPE].groupby(by)["value"].mean()
    parts = {"worst_small": small.min(), "spread_small": small.max() - small.min(), "large": large}
    diverged = rows[(rows["hospital_type"] == FOCUS_TYPE) & (rows["missing_reason"] == DIVERGED)]
    diverged = pd.MultiIndex.from_frame(diverged[by].drop_duplicates())
    for stat in ("worst_small", "spread_small"):
        parts[stat] = parts[stat].where(~parts[stat].index.isin(diverged))
    return pd.concat(
        [part.rename("value").reset_index().assign(stat=stat) for stat, part in parts.items()], ignore_index=True
    )


def fairness_table(metrics: pd.DataFrame, names: tuple[str, ...] = METRICS) -> pd.DataFrame:
    """Mean and 95% CI over seeds of each statistic, and its paired difference to FedAvg."""
    cells = per_cell(metrics, names)
    keys = [*CONDITION_KEYS, "metric", "stat"]
    level = summarise(cells, keys)
    pair_on = [k for k in CELL_KEYS if k != "algorithm"] + ["metric", "stat"]
    reference = cells[cells["algorithm"] == FEDAVG.key()][[*pair_on, "value"]]
    if reference.empty:
        raise ValueError("fairness: no FedAvg cell to pair with (a remedy experiment lists fedavg)")
    paired = cells.merge(reference, on=pair_on, suffixes=("", "_fedavg"))
    paired["value"] = paired["value"] - paired["value_fedavg"]
    diff = summarise(paired, keys).rename(
        columns={"mean": "diff_mean", "ci_low": "diff_low", "ci_high": "diff_high", "n": "n_pairs"}
    )
    table = level.merge(diff, on=keys, how="left")
    order = {stat: i for i, stat in enumerate(STATS)}
    return table.sort_values(
        [*CONDITION_KEYS, "metric", "stat"], key=lambda c: c.map(order) if c.name == "stat" else c, kind="stable"
    ).reset_index(drop=True)
