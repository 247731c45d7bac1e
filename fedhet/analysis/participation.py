"""Who took part in a figure trained with client sampling, and what each hospital type got.

One row per cell and hospital type, from the cell's rounds (``quantity == "selected"``: one row
per hospital drawn into a round) and its metrics on the hospitals' own test splits:
``hospitals`` (of that type), ``rounds_drawn`` (the mean over them of the rounds each was drawn
in), ``never_drawn`` (how many were drawn in no round) and the type's mean ``recall`` and
``auroc`` (hospitals where a metric is undefined are left out of its mean). With a few hospitals
drawn at random each round, whether one that holds most of the cases took part can matter more
than the layout: this table is what separates the two.
"""

from __future__ import annotations

import pandas as pd

from fedhet.analysis.tables import CELL_KEYS

SELECTED = "selected"
OUTCOMES = ("recall", "auroc")
COLUMNS = [*CELL_KEYS, "hospital_type", "hospitals", "rounds_drawn", "never_drawn", *OUTCOMES]


def participation_table(rounds: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """``COLUMNS`` for every cell and hospital type in ``metrics`` (the external test set aside)."""
    own = metrics[metrics["hospital_type"] != "external"]
    hospitals = own[[*CELL_KEYS, "hospital", "hospital_type"]].drop_duplicates()
    drawn = rounds[rounds["quantity"] == SELECTED].groupby([*CELL_KEYS, "hospital"]).size().rename("rounds")
    hospitals = hospitals.join(drawn, on=[*CELL_KEYS, "hospital"])
    hospitals["rounds"] = hospitals["rounds"].fillna(0)
    by = [*CELL_KEYS, "hospital_type"]
    table = hospitals.groupby(by).agg(
        hospitals=("hospital", "size"),
        rounds_drawn=("rounds", "mean"),
        never_drawn=("rounds", lambda r: int((r == 0).sum())),
    )
    outcomes = own[own["metric"].isin(OUTCOMES)].pivot_table(index=by, columns="metric", values="value", aggfunc="mean")
    table = table.join(outcomes.reindex(columns=list(OUTCOMES)))
    return table.reset_index()[COLUMNS].sort_values(by, ignore_index=True)
