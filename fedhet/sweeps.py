"""Sweep analysis: metric curves against a grid coordinate, their bands, and trend tests.

Turns the tidy cell metrics of an experiment into per-seed points (one per cell, hospital
type and metric: the large hospital's value, the small hospitals' mean), summarises them
over seeds (mean and 95% t-interval, computed here, never by the plotting library), and
tests each curve for a trend: the least-squares slope against the swept ratio with its 95%
CI and p-value, Spearman's ρ, and a Holm correction over all curves of the table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from fedhet.algorithms import FEDAVG
from fedhet.experiments import coordinate
from fedhet.metrics import summarise
from fedhet.partition import Scenario
from fedhet.tables import group_mean

CURVES = {"large": "large hospital", "small": "small hospitals (mean)"}
TREND_METRICS = ("recall", "precision", "auroc")


def curve_points(metrics: pd.DataFrame, keys: list[str], metric_names: tuple[str, ...]) -> pd.DataFrame:
    """Per cell, hospital type (``curve``) and metric: the value, with each grid key's
    coordinate read off the cell's scenario."""
    parts = [group_mean(metrics, hospital_type) for hospital_type in CURVES]
    points = pd.concat(parts, ignore_index=True).rename(columns={"hospital_type": "curve"})
    points = points[points["metric"].isin(metric_names)].reset_index(drop=True)
    scenarios = {key: Scenario.parse(key) for key in points["scenario"].unique()}
    for key in keys:
        points[key] = [coordinate(scenarios[s], key) for s in points["scenario"]]
    return points


def linear_trend(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> dict:
    """Least-squares slope of y on x with its t-interval and two-sided p-value, and
    Spearman's rank correlation. Non-finite y are dropped."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    out = {"n_points": len(x), "slope": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    out.update(spearman_rho=math.nan, spearman_p=math.nan, note="")
    if len(x) < 3 or np.ptp(x) == 0:
        out["note"] = "fewer than 3 points or a single x value"
        return out
    if np.ptp(y) == 0:
        # A flat curve (e.g. AUROC 1.0 everywhere) has slope 0 with no uncertainty to test.
        out.update(slope=0.0, ci_low=0.0, ci_high=0.0, p_value=1.0, note="metric constant")
        return out
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + level / 2, len(x) - 2) * fit.stderr
    rho, p_rho = stats.spearmanr(x, y)
    out.update(
        slope=float(fit.slope),
        ci_low=float(fit.slope - half),
        ci_high=float(fit.slope + half),
        p_value=float(fit.pvalue),
        spearman_rho=float(rho),
        spearman_p=float(p_rho),
    )
    return out


def holm(p_values: pd.Series) -> pd.Series:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN)."""
    p = p_values.to_numpy(dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(p))
    adjusted = np.full_like(p, np.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return pd.Series(adjusted, index=p_values.index)


def verdict(row: pd.Series, alpha: float = 0.05) -> str:
    if not np.isfinite(row["p_holm"]) or row["p_holm"] >= alpha:
        return "no clear trend"
    return "rises" if row["slope"] > 0 else "falls"


def trend_table(metrics: pd.DataFrame, experiments: dict[str, dict]) -> pd.DataFrame:
    """One row per experiment, curve (large / small mean), metric and value of the other
    grid keys: the slope of the metric against the experiment's first grid key.

    ``experiments`` maps a name to ``{"scenarios": [...], "grid": {key: values}}``; every
    point (one cell = one seed at one grid point) enters the regression.
    """
    rows = []
    for name, spec in experiments.items():
        keys = list(spec["grid"])
        if not keys:
            continue
        x_key, others = keys[0], [k for k in keys[1:] if len(spec["grid"][k]) > 1]
        cells = sweep_cells(metrics[metrics["scenario"].isin(spec["scenarios"])])
        if cells.empty:
            continue
        points = curve_points(cells, [x_key, *others], TREND_METRICS)
        # A sweep with DP settings has one curve per DP key.
        for group_keys, group in points.groupby(["dp", "curve", "metric", *others], sort=True):
            dp, curve, metric, *facet = group_keys
            if group[x_key].nunique() < 2:
                continue  # a lone grid point (e.g. a DP cell on the core scenario) is no curve
            row = {"experiment": name, "dp": dp, "curve": CURVES[curve], "metric": metric, "x": x_key}
            row.update(dict(zip(others, facet, strict=True)))
            row["n_seeds"] = group["seed"].nunique()
            row.update(linear_trend(group[x_key].to_numpy(), group["value"].to_numpy()))
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["slope_per_10pp"] = table["slope"] * 0.1
    table["p_holm"] = holm(table["p_value"])
    table["verdict"] = table.apply(verdict, axis=1)
    return table


def sweep_cells(metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows the sweeps are about: federated FedAvg cells evaluated on their test splits
    (a remedy or a selection cell on the same scenario is another question)."""
    keep = (metrics["mode"] == "federated") & (metrics["algorithm"] == FEDAVG.key()) & (metrics["holdout"] == "test")
    return metrics[keep]


def sweep_summary(metrics: pd.DataFrame, x: str, facet: str, metric_names: tuple[str, ...]) -> pd.DataFrame:
    """Mean and 95% CI over seeds of each curve at each (facet, x), federated without DP: a
    sweep figure's plotted data."""
    keys = [x] if facet == "metric" else [x, facet]
    cells = sweep_cells(metrics)
    points = curve_points(cells[cells["dp"] == "nodp"], keys, metric_names)
    summary = summarise(points, ["curve", "metric", *keys])
    summary["curve"] = summary["curve"].map(CURVES)
    return summary


def paired_difference(
    metrics: pd.DataFrame, first: list[str], second: list[str], keys: list[str], metric_names: tuple[str, ...]
) -> pd.DataFrame:
    """first − second, per seed at equal grid coordinates ``keys``, then mean and 95% CI
    over seeds (paired: for a seed, the small hospitals hold the same images in both)."""

    def points(scenarios: list[str]) -> pd.DataFrame:
        cells = sweep_cells(metrics[metrics["scenario"].isin(scenarios)])
        return curve_points(cells[cells["dp"] == "nodp"], keys, metric_names).drop(columns=["n_hospitals"])

    on = ["curve", "metric", "seed", *keys]
    both = points(first).merge(points(second), on=on, suffixes=("_first", "_second"))
    both = both[both["scenario_first"] != both["scenario_second"]]
    both["value"] = both["value_first"] - both["value_second"]
    summary = summarise(both, ["curve", "metric", *keys])
    summary["curve"] = summary["curve"].map(CURVES)
    return summary


def count_vs_size(metrics: pd.DataFrame, experiments: dict[str, dict]) -> pd.DataFrame:
    """The study's Figure 5 reading as numbers: small hospitals' and large hospital's metric at
    fixed size minus at fixed abnormal count, for equal ratios (paired by seed). Empty when
    the config lacks either experiment."""
    if not {"fixed_size", "fixed_count"} <= set(experiments):
        return pd.DataFrame()
    keys = ["large.abnormal_ratio", "small.abnormal_ratio"]
    return paired_difference(
        metrics,
        experiments["fixed_size"]["scenarios"],
        experiments["fixed_count"]["scenarios"],
        keys,
        TREND_METRICS,
    )
