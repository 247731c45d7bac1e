"""Figures: the plotted data as tidy tables, and Altair charts saved as SVG.

Intervals are computed in pandas (``fedhet.metrics``), never by Vega's bootstrap, so the
same results always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import vl_convert as vlc

from fedhet import atomic_output
from fedhet.tables import MODE_LABELS, STUDY, seed_summary


def fig1_data(metrics: pd.DataFrame) -> pd.DataFrame:
    """Small hospitals' mean AUROC per mode, with the study's value beside it."""
    s = seed_summary(metrics, "small")
    s = s[s["metric"] == "auroc"].copy()
    s["mode_label"] = s["mode"].map(MODE_LABELS)
    s["study"] = s["mode"].map(lambda m: STUDY[m]["auroc"])
    order = {m: i for i, m in enumerate(MODE_LABELS)}
    return s.sort_values("mode", key=lambda c: c.map(order)).reset_index(drop=True)


def style(chart: alt.Chart, spec: dict) -> alt.Chart:
    return chart.configure_axis(labelFontSize=spec["font_size"], titleFontSize=spec["font_size"]).configure_legend(
        labelFontSize=spec["font_size"], titleFontSize=spec["font_size"]
    )


def fig1_chart(data: pd.DataFrame, spec: dict) -> alt.Chart:
    order = list(data["mode_label"])
    base = alt.Chart(data).encode(x=alt.X("mode_label:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)))
    low = max(0.0, float(min(data["ci_low"].min(), data["study"].min(), data["mean"].min())) - 0.02)
    y = alt.Y("mean:Q", title="AUROC (mean of small hospitals)", scale=alt.Scale(domain=[low, 1.0]))
    bars = base.mark_bar(color="#4c78a8", clip=True).encode(
        y=y, tooltip=["mode_label", "mean", "ci_low", "ci_high", "n"]
    )
    errors = base.mark_rule(strokeWidth=2).encode(y="ci_low:Q", y2="ci_high:Q")
    study = base.mark_tick(color="#e45756", thickness=3, size=30).encode(y="study:Q")
    chart = (bars + errors + study).properties(
        width=spec["width"],
        height=spec["height"],
        title=alt.TitleParams(
            "Figure 1: AUROC on the small hospitals' test data",
            subtitle="bars: fedhet mean, black: 95% CI over seeds, red ticks: the study",
        ),
    )
    return style(chart, spec)


def save_svg(chart: alt.Chart, path: str | Path) -> None:
    svg = vlc.vegalite_to_svg(chart.to_json())
    with atomic_output(path) as tmp:
        tmp.write_text(svg)
