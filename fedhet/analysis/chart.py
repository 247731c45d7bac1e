"""The pieces every fedhet figure shares: styling, grids of panels under one title, metric
labels and value axes, the hospital groups drawn, and writing a chart as SVG."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import vl_convert as vlc

from fedhet.io import atomic_output
from fedhet.workflow.specs import FOCUS_TYPE, REFERENCE_TYPE

GROUP_LABELS = {FOCUS_TYPE: "small hospitals (mean)", REFERENCE_TYPE: "large hospital"}


def style(chart: alt.Chart, spec: dict) -> alt.Chart:
    return chart.configure_axis(labelFontSize=spec["font_size"], titleFontSize=spec["font_size"]).configure_legend(
        labelFontSize=spec["font_size"], titleFontSize=spec["font_size"]
    )


def titled_grid(rows: list[list[alt.Chart]], title: str, subtitle: str | list[str], spec: dict) -> alt.Chart:
    """Panels in rows under one title and subtitle (a list: one line each), styled."""
    chart = alt.vconcat(*[alt.hconcat(*row) for row in rows]).properties(
        title=alt.TitleParams(title, subtitle=subtitle)
    )
    return style(chart, spec).configure_title(fontSize=spec["font_size"] + 2)


def save_svg(chart: alt.Chart, path: str | Path) -> None:
    svg = vlc.vegalite_to_svg(chart.to_json())
    with atomic_output(path) as tmp:
        tmp.write_text(svg)


METRIC_LABELS = {
    "recall": "recall",
    "precision": "precision",
    "auroc": "AUROC",
    "specificity": "specificity",
    "auprc": "AUPRC",
}


def value_scale(data: pd.DataFrame, margin: float = 0.02) -> alt.Scale:
    """A metric axis spanning every mean and interval in ``data``, kept within [0, 1]."""
    low = max(0.0, float(np.nanmin(data[["ci_low", "mean"]].to_numpy())) - margin)
    high = min(1.0, float(np.nanmax(data[["ci_high", "mean"]].to_numpy())) + margin)
    return alt.Scale(domain=[low, high], zero=False)
