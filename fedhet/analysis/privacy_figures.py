"""The privacy figures (6–7, 11–13): metrics against ε per training mode and DP placement,
and, in the tuned figures, per way lr and C were set (fixed, chosen on public proxies, chosen
privately and placed at its total ε)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from fedhet.analysis.chart import GROUP_LABELS, METRIC_LABELS, titled_grid, value_scale
from fedhet.analysis.metrics import summarise
from fedhet.analysis.tables import MODE_LABELS, group_mean, with_settings
from fedhet.workflow.experiments import TUNINGS
from fedhet.workflow.figure_specs import PrivacyFigure

PLACEMENT_LABELS = {
    "all": "DP at every hospital",
    "small_hospitals": "DP at small hospitals only",
    "large_hospitals": "DP at large hospitals only",
    "client_level": "client-level DP at the server",
}


def curve_label(mode: str, placement: str, clipping_only: bool = False) -> str:
    if placement == "none":
        return f"{MODE_LABELS[mode]}, no DP"
    label = "large only, DP" if mode == "large_only" else f"{MODE_LABELS[mode]}, {PLACEMENT_LABELS[placement]}"
    return f"{label}, clipping only (ε = ∞)" if clipping_only else label


def privacy_figure_data(
    metrics: pd.DataFrame,
    figure: PrivacyFigure,
    variants: pd.DataFrame | None = None,
    charges: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per tuning (how lr and C were set, ``fedhet.workflow.experiments.TUNINGS``), curve (mode and DP
    placement), evaluated group (small mean, large) and metric: mean and 95% CI over seeds at
    each ε. References are drawn flat: no-DP rows (no ε) and clipping-only rows (ε = ∞: the
    curve's clipping without its noise).

    ``variants`` (tuning, mode, dp, optim) says which cells each tuning drew (a cell chosen two
    ways counts under both; none: all fixed). A privately tuned setting is placed at
    ``epsilon_axis`` = its total ε from ``charges`` (``fedhet.analysis.tuning.tuning_charges``: the
    largest over its private hospitals of training plus tuning); the others at their ε."""
    points = pd.concat([group_mean(metrics, t) for t in GROUP_LABELS], ignore_index=True)
    # With the hyperparameters each point trained with: fixed in Figures 6-7, chosen per setting in 12-13.
    points = with_settings(points[points["metric"].isin(figure.metrics)])
    if variants is None:
        points = points.assign(tuning="fixed")
    else:
        points = points.merge(variants[["tuning", "mode", "dp", "optim"]].drop_duplicates(), on=["mode", "dp", "optim"])
    wanted = set(figure.curves) | {(mode, "none") for mode in figure.references}
    points = points[[(m, p) in wanted for m, p in zip(points["mode"], points["placement"], strict=True)]]
    points = points.assign(epsilon_axis=points["epsilon"])
    charged = (points["tuning"] == "validation") & np.isfinite(points["epsilon"])
    if charged.any():
        if charges is None:
            raise ValueError(f"fig{figure.number}: privately tuned settings need their tuning charges")
        total = charges.groupby(["mode", "dp", "optim"])["epsilon_total"].max()
        keys = zip(points.loc[charged, "mode"], points.loc[charged, "dp"], points.loc[charged, "optim"], strict=True)
        points.loc[charged, "epsilon_axis"] = [total[key] for key in keys]
    data = summarise(
        points,
        ["tuning", "mode", "placement", "hospital_type", "metric", "epsilon", "epsilon_axis", "delta"]
        + ["max_grad_norm", "lr"],
    )
    clipping_only = np.isinf(data["epsilon"])
    data["curve"] = [
        curve_label(m, p, c) for m, p, c in zip(data["mode"], data["placement"], clipping_only, strict=True)
    ]
    data["reference"] = (data["placement"] == "none") | clipping_only
    data["group"] = data["hospital_type"].map(GROUP_LABELS)
    data.insert(0, "figure", figure.number)
    order = ["tuning", "metric", "hospital_type", "reference", "curve", "epsilon"]
    return data.sort_values(order, kind="stable").reset_index(drop=True)


def privacy_chart(data: pd.DataFrame, figure: PrivacyFigure, spec: dict) -> alt.Chart:
    """Metrics against ε (log axis): DP curves with 95% bands; no-DP and clipping-only
    references dashed. One panel per metric and group; with several tunings, one column per
    tuning, the privately tuned one against its total ε."""
    eps = data.loc[~data["reference"], "epsilon_axis"]
    # a margin on the log axis, so that a curve's end points (and a lone tuned point) show whole
    low_eps, high_eps = float(eps.min()) / 1.25, float(eps.max()) * 1.25
    # A reference is one value per seed set: drawn flat across the ε range.
    flat = data[data["reference"]]
    plotted = pd.concat(
        [data[~data["reference"]], flat.assign(epsilon_axis=low_eps), flat.assign(epsilon_axis=high_eps)],
        ignore_index=True,
    )
    tunings = [t for t in TUNINGS if t in set(data["tuning"])]
    deltas = ", ".join(f"{d:g}".replace("e-0", "e-") for d in sorted(data["delta"].dropna().unique()))
    what = "training, and tuning where charged" if "validation" in tunings else "whole training"
    x = alt.X(
        "epsilon_axis:Q",
        title=f"ε (per hospital, {what}; δ = {deltas})",
        scale=alt.Scale(type="log", domain=[low_eps, high_eps], nice=False),
        axis=alt.Axis(format="~g"),
    )
    line_color = alt.Color(
        "curve:N", title=None, legend=alt.Legend(orient="bottom", symbolType="stroke", columns=2, labelLimit=400)
    )
    dash = alt.StrokeDash("reference:N", legend=None, scale=alt.Scale(domain=[False, True], range=[[1, 0], [5, 4]]))

    def panel(metric: str, group: str, tuning: str, title: str) -> alt.Chart:
        subset = plotted[plotted["metric"] == metric]
        rows = subset[(subset["group"] == group) & (subset["tuning"] == tuning)]
        base = alt.Chart(rows).encode(x=x, detail="curve:N")
        scale = value_scale(subset)
        band = base.mark_area(opacity=0.15, clip=True).encode(
            y=alt.Y("ci_low:Q", scale=scale), y2="ci_high:Q", fill=alt.Fill("curve:N", legend=None)
        )
        line = base.mark_line(point=True, clip=True).encode(
            y=alt.Y("mean:Q", title=METRIC_LABELS[metric], scale=scale),
            color=line_color,
            strokeDash=dash,
            tooltip=["curve", "epsilon", "epsilon_axis", "lr", "max_grad_norm", "mean", "ci_low", "ci_high", "n"],
        )
        return (band + line).properties(width=spec["width"], height=spec["height"], title=title)

    letters = iter("abcdefghijklmnopqrstuvwxyz")
    if len(tunings) == 1:
        grid = [
            [
                panel(metric, group, tunings[0], f"({next(letters)}) {METRIC_LABELS[metric]}, {group}")
                for group in GROUP_LABELS.values()
            ]
            for metric in figure.metrics
        ]
    else:
        grid = [
            [
                panel(
                    metric,
                    group,
                    tuning,
                    f"({next(letters)}) {METRIC_LABELS[metric]}, {group}: {TUNING_LABELS[tuning]}",
                )
                for tuning in tunings
            ]
            for metric in figure.metrics
            for group in GROUP_LABELS.values()
        ]
    subtitle = "line: mean over seeds; band: 95% CI over seeds; dashed: the same training without DP"
    if np.isinf(data["epsilon"]).any():
        subtitle += ", or clipping without noise (ε = ∞)"
    return titled_grid(grid, figure.title, subtitle, spec)


TUNING_LABELS = {"fixed": "lr and C fixed", "public": "tuned on public proxies", "validation": "tuned privately"}
