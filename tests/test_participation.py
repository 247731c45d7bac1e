import math

import pandas as pd

from fedhet.analysis.participation import participation_table

CELL = {
    "scenario": "large1x600r0.5-small3x100r0.1",
    "mode": "federated",
    "algorithm": "fedavg",
    "dp": "nodp",
    "optim": "lr0.01",
    "holdout": "test",
}
HOSPITALS = {"large_1": "large", "small_1": "small", "small_2": "small", "small_3": "small"}


def metrics(seed: int, recall: dict[str, float]) -> pd.DataFrame:
    rows = [
        {**CELL, "seed": seed, "hospital": h, "hospital_type": t, "metric": m, "value": v}
        for h, t in {**HOSPITALS, "external": "external"}.items()
        for m, v in (("recall", recall.get(h, 0.5)), ("auroc", 0.9), ("precision", 0.1))
    ]
    return pd.DataFrame(rows)


def rounds(seed: int, drawn: list[tuple[int, str]]) -> pd.DataFrame:
    rows = [{**CELL, "seed": seed, "round": r, "hospital": h, "quantity": "selected", "value": 1.0} for r, h in drawn]
    rows.append({**CELL, "seed": seed, "round": 1, "hospital": "small_1", "quantity": "train_loss", "value": 0.3})
    return pd.DataFrame(rows)


def test_rounds_drawn_never_drawn_and_outcomes_per_cell_and_type():
    draws = {0: [(1, "small_1"), (2, "small_1"), (2, "large_1"), (3, "small_2")], 1: [(1, "small_3")]}
    table = participation_table(
        pd.concat([rounds(s, d) for s, d in draws.items()]),
        pd.concat([metrics(0, {"small_1": 1.0, "small_2": 0.0, "small_3": math.nan}), metrics(1, {})]),
    ).set_index(["seed", "hospital_type"])
    assert set(table.index.get_level_values("hospital_type")) == {"large", "small"}  # no external row
    assert table.loc[(0, "large"), ["hospitals", "rounds_drawn", "never_drawn"]].tolist() == [1, 1.0, 0]
    # small_1 twice, small_2 once, small_3 never; a loss row is not a draw
    assert table.loc[(0, "small"), ["hospitals", "rounds_drawn", "never_drawn"]].tolist() == [3, 1.0, 1]
    assert table.loc[(0, "small"), "recall"] == 0.5  # the undefined recall left out of the mean
    assert table.loc[(1, "large"), "never_drawn"] == 1 and table.loc[(1, "large"), "rounds_drawn"] == 0
    assert table.loc[(1, "small"), "never_drawn"] == 2 and table.loc[(1, "small"), "auroc"] == 0.9
