"""Figures: the plotted data as tidy tables, and Altair charts saved as SVG.

Intervals are computed in pandas (``fedhet.analysis.metrics``), never by Vega's bootstrap, so the
same results always give the same bytes.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from fedhet.analysis.chart import GROUP_LABELS, METRIC_LABELS, style, titled_grid, value_scale
from fedhet.analysis.metrics import summarise
from fedhet.analysis.privacy_figures import PLACEMENT_LABELS, privacy_chart, privacy_figure_data
from fedhet.analysis.sweeps import sweep_summary
from fedhet.analysis.tables import MODE_LABELS, group_mean, seed_summary
from fedhet.data.partition import Scenario
from fedhet.workflow.algorithms import FEDAVG
from fedhet.workflow.experiments import coordinate
from fedhet.workflow.figure_specs import (
    MODE_FIGURES,
    PRIVACY_FIGURES,
    REMEDY_FIGURES,
    SWEEP_FIGURES,
    ModeFigure,
    RemedyFigure,
    SweepFigure,
)
from fedhet.workflow.specs import DPSpec


def fig1_data(metrics: pd.DataFrame, reference: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    """Small hospitals' mean AUROC per mode, with ``reference``'s (the study's) value beside it."""
    s = seed_summary(metrics)
    s = s[s["metric"] == "auroc"].copy()
    s["mode_label"] = s["mode"].map(MODE_LABELS)
    if reference is not None:
        s["study"] = s["mode"].map(lambda m: reference[m]["auroc"])
    order = {m: i for i, m in enumerate(MODE_LABELS)}
    return s.sort_values("mode", key=lambda c: c.map(order)).reset_index(drop=True)


def fig1_chart(data: pd.DataFrame, spec: dict) -> alt.Chart:
    order = list(data["mode_label"])
    base = alt.Chart(data).encode(x=alt.X("mode_label:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)))
    drawn = [c for c in ("ci_low", "study", "mean") if c in data]
    low = max(0.0, float(data[drawn].min().min()) - 0.02)
    y = alt.Y("mean:Q", title="AUROC (mean of small hospitals)", scale=alt.Scale(domain=[low, 1.0]))
    bars = base.mark_bar(color="#4c78a8", clip=True).encode(
        y=y, tooltip=["mode_label", "mean", "ci_low", "ci_high", "n"]
    )
    errors = base.mark_rule(strokeWidth=2).encode(y="ci_low:Q", y2="ci_high:Q")
    layers, subtitle = bars + errors, "bars: fedhet mean, black: 95% CI over seeds"
    if "study" in data:  # only where the run is the study's setup (fedhet.analysis.tables.study_reference)
        layers += base.mark_tick(color="#e45756", thickness=3, size=30).encode(y="study:Q")
        subtitle += ", red ticks: the study"
    chart = layers.properties(
        width=spec["width"],
        height=spec["height"],
        title=alt.TitleParams("Figure 1: AUROC on the small hospitals' test data", subtitle=subtitle),
    )
    return style(chart, spec)


def sweep_figure_data(metrics: pd.DataFrame, figure: SweepFigure) -> pd.DataFrame:
    """A sweep figure's plotted data: one row per panel, curve and x, mean and 95% CI over
    seeds, with the panel's title."""
    data = sweep_summary(metrics, figure.x, figure.facet, figure.metrics)
    data = data.rename(columns={figure.x: "x"})
    if figure.facet == "metric":
        order = {m: i for i, m in enumerate(figure.metrics)}
        data["panel_index"] = data["metric"].map(order)
        data["panel"] = [
            f"({'abcdefgh'[i]}) {METRIC_LABELS[m]}" for i, m in zip(data["panel_index"], data["metric"], strict=True)
        ]
    else:
        values = sorted(data[figure.facet].unique())
        data["panel_index"] = data[figure.facet].map({v: i for i, v in enumerate(values)})
        what = figure.facet.split(".")[0]
        data["panel"] = [
            f"({'abcdefgh'[i]}) {what} hospitals at {v:.0%} abnormal"
            for i, v in zip(data["panel_index"], data[figure.facet], strict=True)
        ]
    data.insert(0, "figure", figure.number)
    return data.sort_values(["metric", "panel_index", "curve", "x"], kind="stable").reset_index(drop=True)


def sweep_chart(data: pd.DataFrame, figure: SweepFigure, spec: dict) -> alt.Chart:
    """Mean curves with 95% bands, one panel per facet value; a row per metric (or, when the
    panels are the metrics, all in one row)."""
    x_what = figure.x.split(".")[0]
    x_scale = alt.Scale(domain=[float(data["x"].min()), float(data["x"].max())], nice=False)
    x = alt.X("x:Q", title=f"{x_what} hospital's abnormal ratio", axis=alt.Axis(format="%"), scale=x_scale)
    line_color = alt.Color("curve:N", title=None, legend=alt.Legend(orient="bottom", symbolType="stroke"))
    band_fill = alt.Fill("curve:N", legend=None)  # same palette and order as the lines
    rows = []
    for metric in figure.metrics:
        subset = data[data["metric"] == metric]
        scale = value_scale(subset)
        panels = []
        for index in sorted(subset["panel_index"].unique()):
            panel = subset[subset["panel_index"] == index]
            base = alt.Chart(panel).encode(x=x)
            band = base.mark_area(opacity=0.2, clip=True).encode(
                y=alt.Y("ci_low:Q", scale=scale), y2="ci_high:Q", fill=band_fill
            )
            line = base.mark_line(point=True, clip=True).encode(
                y=alt.Y("mean:Q", title=METRIC_LABELS[metric], scale=scale),
                color=line_color,
                tooltip=["curve", "x", "mean", "ci_low", "ci_high", "n"],
            )
            panels.append(
                (band + line).properties(width=spec["width"], height=spec["height"], title=panel["panel"].iloc[0])
            )
        rows.append(panels)
    if figure.facet == "metric":
        rows = [[panel for row in rows for panel in row]]
    return titled_grid(rows, figure.title, "line: mean over seeds; band: 95% CI over seeds", spec)


def setting_label(scenario: str, dp: str) -> str:
    """A panel title for one grid point and DP setting, e.g. ``large 50%, small 5%; ε = 1`` (a
    scanner shift follows its group's ratio: ``small 10% blur4``)."""
    groups = ", ".join(
        f"{g.type} {g.abnormal_ratio:.0%}" + (f" {g.shift}" if g.shift else "") for g in Scenario.parse(scenario).groups
    )
    spec = DPSpec.parse(dp)
    return f"{groups}; " + (f"ε = {spec.epsilon:g}" if spec.enabled else "no DP")


def remedy_figure_data(metrics: pd.DataFrame, figure: RemedyFigure) -> pd.DataFrame:
    """Per setting (grid point × DP), algorithm, evaluated group and metric: mean and 95% CI
    over seeds, and the paired difference to FedAvg on the same seeds (same partitions)."""
    points = pd.concat([group_mean(metrics, t) for t in GROUP_LABELS], ignore_index=True)
    points = points[points["metric"].isin(figure.metrics)]
    keys = ["scenario", "dp", "hospital_type", "metric"]
    level = summarise(points, [*keys, "algorithm"])
    reference = points[points["algorithm"] == FEDAVG.key()][[*keys, "seed", "value"]]
    paired = points.merge(reference, on=[*keys, "seed"], suffixes=("", "_fedavg"))
    paired["value"] = paired["value"] - paired["value_fedavg"]
    diff = summarise(paired, [*keys, "algorithm"]).rename(
        columns={"mean": "diff_mean", "ci_low": "diff_low", "ci_high": "diff_high", "n": "n_pairs"}
    )
    diff = diff[[*keys, "algorithm", "diff_mean", "diff_low", "diff_high", "n_pairs"]]
    data = level.merge(diff, on=[*keys, "algorithm"])
    data["setting"] = [setting_label(sc, dp) for sc, dp in zip(data["scenario"], data["dp"], strict=True)]
    data["group"] = data["hospital_type"].map(GROUP_LABELS)
    data.insert(0, "figure", figure.number)
    return data.sort_values(["metric", "hospital_type", "setting", "algorithm"], kind="stable").reset_index(drop=True)


def remedy_chart(data: pd.DataFrame, figure: RemedyFigure, spec: dict) -> alt.Chart:
    """Paired difference to FedAvg (95% CI over seeds) per algorithm: one row per metric, one
    panel per setting; a rule at zero (no change)."""
    shown = data[data["algorithm"] != FEDAVG.key()]
    order = sorted(shown["algorithm"].unique())
    rows = []
    for metric in figure.metrics:
        subset = shown[shown["metric"] == metric]
        values = np.abs(subset[["diff_low", "diff_high", "diff_mean"]].to_numpy(dtype=float))
        span = max(float(np.nanmax(values)) if np.isfinite(values).any() else 0.0, 1e-3)
        scale = alt.Scale(domain=[-span * 1.05, span * 1.05], nice=False)
        panels = []
        for setting in sorted(subset["setting"].unique()):
            panel = subset[subset["setting"] == setting]
            base = alt.Chart(panel).encode(
                y=alt.Y("algorithm:N", sort=order, title=None),
                yOffset=alt.YOffset("group:N"),
                color=alt.Color("group:N", title=None, legend=alt.Legend(orient="bottom")),
            )
            rule = base.mark_rule(strokeWidth=2).encode(x=alt.X("diff_low:Q", scale=scale), x2="diff_high:Q")
            point = base.mark_point(filled=True, size=50).encode(
                x=alt.X("diff_mean:Q", scale=scale, title=f"{METRIC_LABELS[metric]} minus FedAvg's"),
                tooltip=["algorithm", "group", "mean", "diff_mean", "diff_low", "diff_high", "n_pairs"],
            )
            zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="gray", strokeDash=[4, 3]).encode(x="x:Q")
            panels.append((zero + rule + point).properties(width=spec["width"], height=spec["height"], title=setting))
        rows.append(panels)
    subtitle = ["paired by seed (same partitions): mean difference to FedAvg and its 95% CI; left of 0: worse"]
    return titled_grid(rows, figure.title, subtitle + [figure.note] * bool(figure.note), spec)


def dp_label(dp: str) -> str:
    """A DP setting as a curve's name: ``no DP``, ``client-level DP, ε = 10``."""
    spec = DPSpec.parse(dp)
    if not spec.enabled:
        return "no DP"
    return f"{PLACEMENT_LABELS[spec.placement]}, ε = {spec.epsilon:g}"


def mode_figure_data(metrics: pd.DataFrame, figure: ModeFigure) -> pd.DataFrame:
    """Per training mode, evaluated group (small hospitals' mean on their own test splits, the
    large hospital), metric and value of ``figure.x``: mean and 95% CI over seeds."""
    points = pd.concat([group_mean(metrics, t) for t in GROUP_LABELS], ignore_index=True)
    points = points[points["metric"].isin(figure.metrics)].copy()
    scenarios = {key: Scenario.parse(key) for key in points["scenario"].unique()}
    points["x"] = [coordinate(scenarios[key], figure.x) for key in points["scenario"]]
    data = summarise(points, [figure.curves, "hospital_type", "metric", "x"])
    data["curve"] = data[figure.curves].map(MODE_LABELS if figure.curves == "mode" else dp_label)
    data["group"] = data["hospital_type"].map(GROUP_LABELS)
    data.insert(0, "figure", figure.number)
    return data


def mode_chart(data: pd.DataFrame, figure: ModeFigure, spec: dict) -> alt.Chart:
    """One panel per metric (rows) and evaluated group (columns); a line per training mode."""
    what, field = figure.x.split(".")
    titles = {"shift": f"{what} hospitals' {field} severity (0: none)", "count": f"number of {what} hospitals"}
    x = alt.X("x:O", title=titles.get(field, figure.x), axis=alt.Axis(labelAngle=0))
    order = list(MODE_LABELS.values()) if figure.curves == "mode" else sorted(data["curve"].unique())
    legend = alt.Legend(orient="bottom", symbolType="stroke", labelLimit=0)
    color = alt.Color("curve:N", title=None, sort=order, legend=legend)
    rows = []
    for metric in figure.metrics:
        subset = data[data["metric"] == metric]
        scale = value_scale(subset)
        panels = []
        for group in GROUP_LABELS.values():
            panel = subset[subset["group"] == group]
            base = alt.Chart(panel).encode(x=x, color=color)
            errors = base.mark_rule(strokeWidth=2, opacity=0.5).encode(y=alt.Y("ci_low:Q", scale=scale), y2="ci_high:Q")
            line = base.mark_line(point=True).encode(
                y=alt.Y("mean:Q", title=METRIC_LABELS[metric], scale=scale),
                tooltip=["curve", "x", "mean", "ci_low", "ci_high", "n"],
            )
            panels.append((errors + line).properties(width=spec["width"], height=spec["height"], title=group))
        rows.append(panels)
    return titled_grid(rows, figure.title, "line: mean over seeds; bar: 95% CI over seeds", spec)


# Each figure family: its specs by number, how its plotted data are made, how they are drawn.
FIGURE_KINDS = (
    (SWEEP_FIGURES, sweep_figure_data, sweep_chart),
    (PRIVACY_FIGURES, privacy_figure_data, privacy_chart),
    (REMEDY_FIGURES, remedy_figure_data, remedy_chart),
    (MODE_FIGURES, mode_figure_data, mode_chart),
)


def _kind(number: int):
    for specs, data, chart in FIGURE_KINDS:
        if number in specs:
            return specs[number], data, chart
    raise ValueError(f"no figure {number}")


def figure_data(metrics: pd.DataFrame, number: int, **context) -> pd.DataFrame:
    """The plotted data of Figure ``number`` (2–13); ``context``: a privacy figure's
    ``variants`` and ``charges`` (``privacy_figure_data``)."""
    figure, data, _ = _kind(number)
    return data(metrics, figure, **context)


def figure_chart(data: pd.DataFrame, number: int, spec: dict) -> alt.Chart:
    figure, _, chart = _kind(number)
    return chart(data, figure, spec)
