"""Sweep analysis: metric curves against a grid coordinate, their bands, and trend tests.

Turns the tidy cell metrics of an experiment into per-seed points (one per cell, hospital
type and metric: the large hospital's value, the small hospitals' mean), summarises them
over seeds (mean and 95% t-interval, computed here, never by the plotting library), and
tests each curve for a trend, with a Holm correction over all curves of the table.

The trend test is blocked by seed. Within a seed the small hospitals hold the same images at
every grid point, so a seed's points are not independent draws: a pooled least-squares fit
over all seeds' points treats them as such and, when the slope varies from seed to seed,
gives p-values that are too small. Instead the slope of the metric on the swept coordinate
is fitted within each seed, b_s = Σ(x − x̄_s)(y − ȳ_s) / Σ(x − x̄_s)², and the k per-seed
slopes are tested with a one-sample t-test against 0: estimate b̄ = mean(b_s), SE =
sd(b_s) / √k, 95% CI b̄ ± t(0.975, k − 1)·SE, two-sided p from t = b̄ / SE with k − 1
degrees of freedom. With a balanced design (the same x in every seed) this equals the test
of the fixed slope in a mixed model with a random intercept and slope per seed, and needs
no mixed-model dependency. With one seed there is no between-seed spread and the test is
undefined (NaN p-value and CI, with a note). Spearman's ρ is computed within each seed and
reported as its mean over seeds (no p-value: the t-test above is the test).

The test's inputs, one row per curve, seed and grid point (:func:`trend_points`), are a
table of their own, so that the trend table is one pure function of them
(:func:`trends_from_points`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from fedhet.analysis.metrics import summarise
from fedhet.analysis.tables import group_mean
from fedhet.data.partition import Scenario
from fedhet.workflow.algorithms import FEDAVG
from fedhet.workflow.experiments import coordinate
from fedhet.workflow.specs import FOCUS_TYPE, REFERENCE_TYPE

CURVES = {REFERENCE_TYPE: "large hospital", FOCUS_TYPE: "small hospitals (mean)"}
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


TREND_METHOD = "per-seed slopes, t across seeds"


def linear_trend(x: np.ndarray, y: np.ndarray, seed: np.ndarray, level: float = 0.95) -> dict:
    """Seed-blocked trend of y on x (see the module docstring): the mean of the per-seed
    least-squares slopes with its t-interval and two-sided p-value over seeds (df = seeds − 1),
    the SD of the per-seed slopes, and the mean per-seed Spearman's ρ. Non-finite y are
    dropped; a seed with fewer than 2 distinct x values has no slope and is left out."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    seed = np.asarray(seed)
    keep = np.isfinite(y)
    x, y, seed = x[keep], y[keep], seed[keep]
    out = {"n_seeds": 0, "n_points": len(x), "slope": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    out.update(p_value=math.nan, spearman_rho=math.nan, slope_sd_seeds=math.nan, method=TREND_METHOD, note="")
    slopes, rhos = [], []
    for s in pd.unique(seed):
        xs, ys = x[seed == s], y[seed == s]
        if np.ptp(xs) == 0:
            continue  # one x value (or none left after dropping NaN): no slope for this seed
        dx = xs - xs.mean()
        slopes.append(float(np.dot(dx, ys - ys.mean()) / np.dot(dx, dx)))
        if len(xs) >= 3 and np.ptp(ys) > 0:
            rhos.append(float(stats.spearmanr(xs, ys).statistic))
    slopes = np.array(slopes)
    k = len(slopes)
    out["n_seeds"] = k
    dropped = len(pd.unique(seed)) - k
    notes = [f"{dropped} seed(s) with fewer than 2 x values left out"] if dropped else []
    if rhos:
        out["spearman_rho"] = float(np.mean(rhos))
    if k == 0:
        out["note"] = "; ".join([*notes, "no seed with 2 or more x values"])
        return out
    out["slope"] = float(slopes.mean())
    if k == 1:
        out["note"] = "; ".join([*notes, "a single seed: no spread of slopes across seeds, test undefined"])
        return out
    sd = float(slopes.std(ddof=1))
    se = sd / math.sqrt(k)
    out["slope_sd_seeds"] = sd
    if se == 0:
        # e.g. a flat curve (AUROC 1.0 everywhere): every seed has the same slope, no spread to test
        zero = out["slope"] == 0
        notes.append("metric constant" if np.ptp(y) == 0 else "per-seed slopes identical")
        out.update(ci_low=out["slope"], ci_high=out["slope"], p_value=1.0 if zero else 0.0, note="; ".join(notes))
        return out
    half = float(stats.t.ppf(0.5 + level / 2, k - 1)) * se
    t = out["slope"] / se
    out.update(
        ci_low=out["slope"] - half,
        ci_high=out["slope"] + half,
        p_value=float(2 * stats.t.sf(abs(t), k - 1)),
        note="; ".join(notes),
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


POINT_KEYS = ["experiment", "dp", "curve", "metric", "x"]  # with the facets: what identifies a curve
POINT_VALUES = ["x_value", "seed", "value"]


def trend_points(metrics: pd.DataFrame, experiments: dict[str, dict]) -> pd.DataFrame:
    """The trend test's inputs: one row per experiment, DP setting, curve (large / small mean),
    metric, value of the other grid keys (facets, e.g. ``small.abnormal_ratio``; NaN for an
    experiment without them), grid point and seed. ``x`` names the experiment's first grid key
    (the swept one), ``x_value`` is its value in the cell, ``value`` the metric (NaN kept: the
    test drops it). A lone grid point (e.g. a DP cell on the core scenario) is no curve and
    is left out.

    ``experiments`` maps a name to ``{"scenarios": [...], "grid": {key: values}}``.
    """
    parts, facet_columns = [], []
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
        curves = points.groupby(["dp", "curve", "metric", *others])[x_key].transform("nunique")
        points = points[curves >= 2]
        part = points[["dp", "curve", "metric", *others, "seed", "value"]].assign(
            experiment=name, curve=points["curve"].map(CURVES), x=x_key, x_value=points[x_key]
        )
        parts.append(part)
        facet_columns += [k for k in others if k not in facet_columns]
    columns = [*POINT_KEYS, *facet_columns, *POINT_VALUES]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True).reindex(columns=columns)


def trends_from_points(points: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The trend table from :func:`trend_points`'s table (or its CSV): one row per curve
    (experiment, DP setting, curve, metric, facets) with the seed-blocked test of
    :func:`linear_trend`, the slope per 10 points of the swept ratio, Holm-adjusted p-values
    over all rows and a verdict. Rows keep the experiments' order, sorted within each."""
    facets = [c for c in points.columns if c not in POINT_KEYS + POINT_VALUES]
    rows = []
    for name in pd.unique(points["experiment"]):
        one = points[points["experiment"] == name]
        by = ["dp", "curve", "metric", "x", *facets]
        for group_keys, group in one.groupby(by, sort=True, dropna=False):
            if group["x_value"].nunique() < 2:
                continue
            row = {"experiment": name, **dict(zip(by, group_keys, strict=True))}
            row.update(
                linear_trend(group["x_value"].to_numpy(), group["value"].to_numpy(), group["seed"].to_numpy(), level)
            )
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["slope_per_10pp"] = table["slope"] * 0.1
    table["p_holm"] = holm(table["p_value"])
    table["verdict"] = table.apply(verdict, axis=1)
    return table


def trend_table(metrics: pd.DataFrame, experiments: dict[str, dict]) -> pd.DataFrame:
    """One row per experiment, curve (large / small mean), metric and value of the other
    grid keys: the seed-blocked trend of the metric against the experiment's first grid key,
    i.e. :func:`trends_from_points` of :func:`trend_points`."""
    return trends_from_points(trend_points(metrics, experiments))


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
