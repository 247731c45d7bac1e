"""Aggregation of cell metrics into the study's tables.

Owns the "mean over small hospitals" headline view, seed summaries with 95% CIs, the
study's published numbers, and Tables 1–3 (CSV for machines, Markdown for people).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from fedhet.analysis.metrics import summarise
from fedhet.data.partition import Scenario
from fedhet.workflow.config import Cell, core_scenario
from fedhet.workflow.keys import CELL
from fedhet.workflow.specs import FOCUS_TYPE, DPSpec, OptimSpec

CELL_KEYS = ["scenario", "mode", "algorithm", "dp", "optim", "holdout", "seed"]
CONDITION_KEYS = [k for k in CELL_KEYS if k != "seed"]  # a cell without its seed
HEADLINE_METRICS = ["recall", "precision", "auroc", "specificity", "auprc"]

# The study's Tables 2–3: mean over the small hospitals' own test splits.
STUDY = {
    "federated": {"recall": 0.922, "precision": 0.889, "auroc": 0.993},
    "local": {"recall": 0.763, "precision": 0.666, "auroc": 0.967},
    "large_only": {"recall": 0.934, "precision": 0.602, "auroc": 0.970},
}
MODE_LABELS = {"federated": "federated", "local": "small only", "large_only": "large only"}
# What makes a run the study's setup: its data, its relabelling and its hospitals (Table 1).
STUDY_SETUP = {
    "dataset": "fashion_mnist",
    "abnormal_classes": [7, 8, 9],
    "hospitals": "large1x30000r0.5-small4x3000r0.1",
}


def study_reference(config: dict) -> dict[str, dict[str, float]] | None:
    """The study's published numbers where ``config`` is the study's setup, else None: they
    say nothing about another dataset, relabelling or layout, and are not drawn beside one."""
    setup = {
        "dataset": config["data"]["dataset"],
        "abnormal_classes": sorted(config["data"]["abnormal_classes"]),
        "hospitals": core_scenario(config).key(),
    }
    return STUDY if setup == STUDY_SETUP else None


def read_cells(paths: list[str | Path]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def group_mean(metrics: pd.DataFrame, hospital_type: str = FOCUS_TYPE) -> pd.DataFrame:
    """Per cell and metric: the mean over hospitals of ``hospital_type``, each evaluated on
    its own test split with the model its mode gives it."""
    rows = metrics[metrics["hospital_type"] == hospital_type]
    out = rows.groupby([*CELL_KEYS, "metric"], as_index=False).agg(
        value=("value", "mean"), n_hospitals=("value", "count")
    )
    return out.assign(hospital_type=hospital_type)


def seed_summary(metrics: pd.DataFrame, hospital_type: str = FOCUS_TYPE) -> pd.DataFrame:
    """Mean and 95% CI across seeds of the per-seed group mean."""
    return summarise(group_mean(metrics, hospital_type), [*CONDITION_KEYS, "metric"])


def external_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per mode and metric, over seeds: the external test set's verdict on the models the small
    hospitals use (the global model, each one's own, or the large hospital's), averaged over
    the small hospitals of each cell."""
    used = metrics.loc[metrics["hospital_type"] == FOCUS_TYPE, [*CELL_KEYS, "hospital", "model"]].drop_duplicates()
    external = metrics[metrics["hospital_type"] == "external"].drop(columns="hospital")
    rows = used.merge(external, on=[*CELL_KEYS, "model"])
    per_cell = rows.groupby([*CELL_KEYS, "metric"], as_index=False)["value"].mean()
    return summarise(per_cell, [*CONDITION_KEYS, "metric"])


def format_ci(mean: float, lo: float, hi: float) -> str:
    if pd.isna(mean):
        return "—"
    if pd.isna(lo):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {(hi - lo) / 2:.3f}"


def comparison_table(
    metrics: pd.DataFrame, modes: tuple[str, str], reference: dict[str, dict[str, float]] | None = None
) -> pd.DataFrame:
    """Two modes side by side, small hospitals' mean, one row per metric; with ``reference``
    (the study's numbers, ``study_reference``) a ``<mode>_study`` column beside each."""
    summary = seed_summary(metrics).set_index(["mode", "metric"])
    rows = []
    for metric in HEADLINE_METRICS:
        row = {"metric": metric}
        for mode in modes:
            found = (mode, metric) in summary.index
            for column, name in (("mean", "mean"), ("ci_low", "ci_low"), ("ci_high", "ci_high"), ("n", "seeds")):
                row[f"{mode}_{name}"] = summary.loc[(mode, metric), column] if found else float("nan")
            if reference is not None:
                row[f"{mode}_study"] = reference[mode].get(metric, float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_markdown(table: pd.DataFrame, modes: tuple[str, str]) -> str:
    sources = ("fedhet", "study") if f"{modes[0]}_study" in table else ("fedhet",)
    header = ["metric"] + [f"{MODE_LABELS[m]} ({who})" for m in modes for who in sources]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        cells = [r["metric"]]
        for m in modes:
            cells.append(format_ci(r[f"{m}_mean"], r[f"{m}_ci_low"], r[f"{m}_ci_high"]))
            if "study" in sources:
                cells.append("—" if pd.isna(r[f"{m}_study"]) else f"{r[f'{m}_study']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    seeds = int(table[[f"{m}_seeds" for m in modes]].max().max())
    lines.append("")
    lines.append(
        f"Mean over the small hospitals' own test splits; fedhet: mean ± 95% t-interval half-width over {seeds} "
        "seeds; — where the metric is undefined in every seed (e.g. precision when no case is predicted abnormal)."
    )
    return "\n".join(lines) + "\n"


def hospitals_table(manifest_paths: list[str | Path]) -> pd.DataFrame:
    """Table 1: the hospitals as actually drawn (identical counts for every seed)."""
    rows = []
    for path in manifest_paths:
        info = json.loads((Path(path) / "manifest.json").read_text())
        for h in info["hospitals"]:
            rows.append({"seed": info["seed"], **h})
    df = pd.DataFrame(rows)
    first = df[df["seed"] == df["seed"].min()].drop(columns="seed")
    first = first.assign(
        n_total=first["n_train"] + first["n_test"],
        abnormal_ratio=(first["n_train_abnormal"] + first["n_test_abnormal"]) / (first["n_train"] + first["n_test"]),
    )
    columns = [
        "hospital",
        "type",
        "n_total",
        "abnormal_ratio",
        "n_train",
        "n_train_abnormal",
        "n_test",
        "n_test_abnormal",
    ]
    if first.get("shift", pd.Series(dtype=str)).fillna("").astype(bool).any():  # a scanner shift somewhere
        columns.append("shift")
    return first[columns]


def markdown(df: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    def fmt(v):
        return float_format.format(v) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def runtime_table(benchmark_paths: list[str | Path]) -> pd.DataFrame:
    """Seconds and peak memory per training cell, from Snakemake's benchmark TSVs, whose paths
    are ``<root>/benchmarks/<rule>/<cell key>.tsv`` (``fedhet.workflow.keys.CELL.benchmark``)."""
    rows = []
    for path in benchmark_paths:
        path = Path(path)
        bench = pd.read_csv(path, sep="\t")
        key = "/".join(path.with_suffix("").parts[-len(CELL.segments) :])
        cell = Cell.parse(key)
        rows.append(
            {
                "rule": path.parts[-len(CELL.segments) - 1],
                **{k: getattr(cell, k) for k in ("scenario", "mode", "algorithm", "dp", "optim", "holdout", "seed")},
                "seconds": float(bench["s"].iloc[0]),
                "cpu_seconds": float(bench["cpu_time"].iloc[0]) if "cpu_time" in bench else float("nan"),
                "max_rss_mb": float(bench["max_rss"].iloc[0]) if "max_rss" in bench else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def budget_table(rounds: pd.DataFrame, metrics: tuple[str, ...] = ("recall", "precision", "auroc")) -> pd.DataFrame:
    """Small hospitals' mean metric after each round, per mode, mean and 95% CI over seeds.

    With a constant learning rate, the first r rounds of a run are exactly a run with r
    rounds, so this is the training-budget sweep over rounds at no extra cost.
    """
    types = {scenario: dict(Scenario.parse(scenario).hospitals_by_type()) for scenario in rounds["scenario"].unique()}
    rows = rounds[rounds["quantity"].isin(metrics)].copy()
    rows["hospital_type"] = [types[s].get(h, "") for s, h in zip(rows["scenario"], rows["hospital"], strict=True)]
    rows = rows[rows["hospital_type"] == FOCUS_TYPE]
    per_seed = rows.groupby([*CELL_KEYS, "round", "quantity"], as_index=False)["value"].mean()
    return summarise(per_seed, [*CONDITION_KEYS, "round", "quantity"]).rename(columns={"quantity": "metric"})


def budget_markdown(budget: pd.DataFrame) -> str:
    wide = budget.assign(
        cell=[
            format_ci(m, lo, hi) for m, lo, hi in zip(budget["mean"], budget["ci_low"], budget["ci_high"], strict=True)
        ]
    )
    wide["column"] = wide["mode"].map(MODE_LABELS) + " " + wide["metric"]
    table = wide.pivot_table(index="round", columns="column", values="cell", aggfunc="first").reset_index()
    return markdown(table)


class PrivacyBudgetError(RuntimeError):
    """A hospital spent more ε than its target."""


def check_privacy_budgets(table: pd.DataFrame, slack: float = 1e-9) -> None:
    """Raise naming every (cell, hospital) whose spent ε exceeds its target."""
    private = table[table["private"].astype(bool)]
    over = private[private["epsilon_spent"] > private["epsilon_target"] * (1 + slack)]
    if len(over):
        lines = [
            f"{r.scenario}/{r.mode}/{r.algorithm}/{r.dp}/{r.optim}/seed{r.seed} {r.hospital}: "
            f"spent ε {r.epsilon_spent:.6g} > target {r.epsilon_target:.6g}"
            for r in over.itertuples()
        ]
        raise PrivacyBudgetError("privacy budget exceeded:\n" + "\n".join(lines))


def cost_table(runtime: pd.DataFrame, experiments: dict[str, list[str]], cores: list[int]) -> pd.DataFrame:
    """Measured cost per experiment (and for every cell run): cells, seconds per cell, and
    the projected wall time on ``cores`` cores, max(total CPU seconds / cores, longest cell),
    i.e. the cells packed perfectly at the CPU use they were measured with.

    ``experiments`` maps a name to its cells' keys (``fedhet.workflow.config.Cell.key``)."""
    cpu = runtime["cpu_seconds"].where(runtime["cpu_seconds"].notna(), runtime["seconds"])
    key = [Cell(r.scenario, r.mode, r.seed, r.dp, r.algorithm, r.holdout, r.optim).key() for r in runtime.itertuples()]
    runtime = runtime.assign(cpu=cpu, key=key)
    groups = {name: runtime[runtime["key"].isin(cells)] for name, cells in experiments.items()}
    groups["all cells"] = runtime
    rows = []
    for name, cells in groups.items():
        row = {
            "cells": name,
            "n_cells": len(cells),
            "mean_seconds": cells["seconds"].mean(),
            "max_seconds": cells["seconds"].max(),
            "cpu_hours": cells["cpu"].sum() / 3600,
        }
        for n in cores:
            row[f"wall_hours_{n}_cores"] = max(cells["cpu"].sum() / n, cells["seconds"].max()) / 3600
        rows.append(row)
    return pd.DataFrame(rows)


def trends_markdown(trends: pd.DataFrame) -> str:
    facets = [c for c in trends.columns if "." in c and c != "x"]
    rows = trends.assign(
        slope=[
            f"{s:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            for s, lo, hi in zip(trends["slope_per_10pp"], trends["ci_low"] * 0.1, trends["ci_high"] * 0.1, strict=True)
        ],
        p=[f"{p:.2g}" for p in trends["p_value"]],
        p_holm=[f"{p:.2g}" for p in trends["p_holm"]],
    )
    dp = ["dp"] if trends["dp"].nunique() > 1 else []
    table = rows[["experiment", *dp, *facets, "curve", "metric", "slope", "p", "p_holm", "verdict"]]
    table = table.rename(columns={"slope": "slope per 10 points of ratio [95% CI]", "p_holm": "p (Holm)"})
    note = (
        "\nMean of the per-seed least-squares slopes of the metric on the large hospital's abnormal ratio, "
        "t-test across seeds; verdict at Holm-adjusted p < 0.05 over all rows.\n"
    )
    return markdown(table, float_format="{:g}") + note


SELECTION_METRIC = "auprc"  # threshold-free and driven by the rare abnormal class the small hospitals lack


def selection_table(metrics: pd.DataFrame, metric: str = SELECTION_METRIC) -> pd.DataFrame:
    """Hyperparameter choice on validation cells: per algorithm key, the small hospitals' mean
    ``metric`` on their validation splits (mean and 95% CI over seeds); per algorithm family the
    key with the highest mean is ``chosen`` (ties: the first in the table's order)."""
    rows = metrics[metrics["holdout"] == "validation"]
    summary = seed_summary(rows)
    summary = summary[summary["metric"] == metric].copy()
    summary["family"] = summary["algorithm"].str.split("-").str[0]
    summary = summary.sort_values(["scenario", "family", "algorithm"], kind="stable").reset_index(drop=True)
    summary["chosen"] = summary.index.isin(summary.groupby(["scenario", "family"])["mean"].idxmax())
    return summary[["scenario", "family", "algorithm", "metric", "mean", "ci_low", "ci_high", "n", "chosen"]]


def with_settings(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with their cell's DP setting and learning rate spelled out from the ``dp`` and
    ``optim`` keys: placement, ε, δ and C (NaN without DP), lr."""
    specs = {key: DPSpec.parse(key) for key in rows["dp"].unique()}

    def field(name: str):
        return rows["dp"].map(lambda k: getattr(specs[k], name) if specs[k].enabled else math.nan)

    return rows.assign(
        placement=rows["dp"].map(lambda k: specs[k].placement),
        epsilon=field("epsilon"),
        delta=field("delta"),
        max_grad_norm=field("max_grad_norm"),
        lr=rows["optim"].map(lambda k: OptimSpec.parse(k).lr),
    )
