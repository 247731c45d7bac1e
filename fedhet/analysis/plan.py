"""The size and cost of a configuration before any job runs: training cells per experiment and
an estimate of their CPU time.

Owns counting a configuration's cells (core, experiments, validation cells, audits) and the cost
model: a cell's seconds = overhead + (images trained without DP) / plain rate + (images trained
under DP-SGD) / DP rate, images being each training hospital's training records × rounds ×
local epochs. The three numbers are fitted by ``benchmarks/fit_cell_cost.py`` to the measured
seconds of the committed full-scale cells (``docs/results/runtime.csv``: one thread per cell, two
cells on two cores) and stored in ``cell_cost.json`` beside this module. Torch-free: the
Snakefile prints ``plan_text`` before any job.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fedhet.data.partition import Scenario, split_counts
from fedhet.privacy.audit import audit_cells, engine_audits
from fedhet.workflow.config import Cell, core_cells
from fedhet.workflow.experiments import experiment_cells, validation_cells
from fedhet.workflow.specs import PLACEMENT_TYPES, REFERENCE_TYPE, DPSpec, TrainSpec

COST_FILE = Path(__file__).with_name("cell_cost.json")


@dataclass(frozen=True)
class CellCost:
    """seconds = overhead + plain images / plain_rate + DP images / dp_rate (images per second)."""

    overhead: float
    plain_rate: float
    dp_rate: float

    @classmethod
    def load(cls, path: Path = COST_FILE) -> CellCost:
        fit = json.loads(Path(path).read_text())
        return cls(fit["overhead_seconds"], fit["plain_images_per_second"], fit["dp_images_per_second"])

    def seconds(self, plain_images: float, dp_images: float) -> float:
        return self.overhead + plain_images / self.plain_rate + dp_images / self.dp_rate


def participation(clients: int, fraction: float, sampling: str) -> float:
    """The expected share of a run's ``clients`` that trains in a round
    (``fedhet.training.server.select_clients``)."""
    if clients == 1:
        return 1.0
    if sampling == "poisson":
        return fraction
    return max(1, math.ceil(fraction * clients - 1e-9)) / clients


def trained_images(
    scenario: str,
    mode: str,
    dp: str,
    epochs: int,
    test_fraction: float,
    validation_fraction: float | None = None,
    fraction: float = 1.0,
    sampling: str = "fixed",
) -> tuple[float, float]:
    """(images trained without DP, images trained under DP-SGD) by one cell over ``epochs``
    (rounds × local epochs): every training hospital's training records, each epoch, times the
    share of a federated round's hospitals that trains (client sampling)."""
    spec = DPSpec.parse(dp)
    plain = private = 0.0
    hospitals = Scenario.parse(scenario).hospitals()
    if mode == "federated":
        epochs = epochs * participation(len(hospitals), fraction, sampling)
    for _, group in hospitals:
        if mode == "large_only" and group.type != REFERENCE_TYPE:
            continue  # the others only evaluate
        per_class = [split_counts(count, test_fraction)[0] for count in (group.n_abnormal, group.n_normal)]
        if validation_fraction is not None:  # the validation view trains on the rest of its training records
            per_class = [split_counts(count, validation_fraction)[0] for count in per_class]
        n = sum(per_class)
        record_level = spec.enabled and not spec.client_level
        if record_level and (spec.placement == "all" or PLACEMENT_TYPES.get(spec.placement) == group.type):
            private += n * epochs
        else:
            plain += n * epochs
    return plain, private


def _cell_seconds(config: dict, cell: Cell, cost: CellCost) -> float:
    data, training = config["data"], TrainSpec(**config["training"])
    validation = data.get("validation_fraction") if cell.holdout == "validation" else None
    epochs = training.rounds * training.local_epochs
    images = trained_images(
        cell.scenario,
        cell.mode,
        cell.dp,
        epochs,
        data["test_fraction"],
        validation,
        training.client_fraction,
        training.client_sampling,
    )
    return cost.seconds(*images)


def plan_table(config: dict, cost: CellCost | None = None) -> pd.DataFrame:
    """One row per group of cells (core, each experiment, validation cells, audits): cells in
    the group, cells first counted there (a cell two experiments share is trained once), and the
    estimated CPU hours of those; a last row ``total``."""
    cost = cost or CellCost.load()
    groups: list[tuple[str, list]] = [("core", core_cells(config))]
    groups += [(name, experiment_cells(config, name)) for name in config["experiments"]]
    groups += [("validation (selection)", validation_cells(config, tuning=False))]
    groups += [("validation (DP tuning)", validation_cells(config, tuning=True))]
    audits = audit_cells(config)
    groups += [("audit", [a.cell for a in audits])]
    rows, seen = [], set()
    for name, cells in groups:
        keys = [c.key() for c in cells]
        new = [c for c, k in zip(cells, keys, strict=True) if k not in seen]
        if name == "audit":
            new = cells  # canary cells are cells of their own, never shared
        seen.update(keys)
        seconds = sum(_cell_seconds(config, c, cost) for c in new)
        rows.append({"cells": name, "n_cells": len(cells), "n_new": len(new), "cpu_hours": seconds / 3600})
    engine = engine_audits(config)
    if engine:
        training = TrainSpec(**config["training"])
        seconds = 0.0
        for a in engine:
            group = dict(Scenario.parse(a.scenario).hospitals())[a.hospital]
            n = sum(split_counts(c, config["data"]["test_fraction"])[0] for c in (group.n_abnormal, group.n_normal))
            seconds += cost.seconds(0, n * training.rounds * training.local_epochs)
        rows.append(
            {"cells": "engine audit", "n_cells": len(engine), "n_new": len(engine), "cpu_hours": seconds / 3600}
        )
    table = pd.DataFrame(rows)
    total = {"cells": "total", "n_cells": int(table["n_new"].sum()), "n_new": int(table["n_new"].sum())}
    return pd.concat([table, pd.DataFrame([{**total, "cpu_hours": table["cpu_hours"].sum()}])], ignore_index=True)


def plan_text(config: dict, cores: int) -> str:
    """The plan as a few lines: cells per group, CPU hours, and wall hours on ``cores`` cores
    (CPU hours / cores: a lower bound that ignores the longest cell and other load)."""
    table = plan_table(config)
    width = max(len(c) for c in table["cells"])
    on = f"{cores} core{'s' if cores != 1 else ''}"
    lines = ["fedhet plan: the configuration's cells, CPU time estimated from the measured cost per trained image"]
    for row in table.itertuples():
        shared = f" ({row.n_cells - row.n_new} shared)" if row.n_new != row.n_cells else ""
        lines.append(f"  {row.cells:<{width}}  {row.n_new:>5} cells{shared:<14} {row.cpu_hours:7.2f} CPU h")
    total = table.iloc[-1]["cpu_hours"]
    lines.append(
        f"  wall time on {on}: at least {total / max(cores, 1):.2f} h (the estimate's median error is about 15%)"
    )
    return "\n".join(lines)
