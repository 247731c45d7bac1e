"""Throughput of a grid run, read from Snakemake's log: which training cells finished, how long
each took, and how many finished per hour.

Snakemake stamps every job's start and finish with the time (1 s resolution); a cell's seconds
are the difference, so they include its process start and data loading. Cells still running
when the run was stopped are counted as unfinished.

    python benchmarks/gpu/grid_throughput.py grid.log --slots 14 --cells-out cells.csv > grid.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")
FINISHED = re.compile(r"Finished jobid: (\d+) \(Rule: train_cell\)")


def cell_times(log: str) -> pd.DataFrame:
    """One row per train_cell job that started: its wildcards, start, finish (NaT if none)."""
    lines = log.splitlines()
    now, rows, finished = None, {}, {}
    for i, line in enumerate(lines):
        if stamp := STAMP.match(line):
            now = dt.datetime.strptime(" ".join(stamp.group(1).split()), "%a %b %d %H:%M:%S %Y")
        elif line.strip() in ("rule train_cell:", "localrule train_cell:"):
            fields = {}
            for detail in lines[i + 1 :]:
                # The job's block is its indented lines: it ends at a blank line, or at the next
                # job's timestamp where Snakemake starts two jobs in one second.
                if not detail.startswith(" "):
                    break
                if job := JOBID.match(detail):
                    fields["jobid"] = int(job.group(1))
                elif wildcards := WILDCARDS.match(detail):
                    fields.update(pair.split("=", 1) for pair in wildcards.group(1).split(", "))
            rows[fields["jobid"]] = {**fields, "start": now}
        elif done := FINISHED.search(line):
            finished[int(done.group(1))] = now
    cells = pd.DataFrame(list(rows.values()))
    cells["finish"] = pd.to_datetime(cells["jobid"].map(finished))
    cells["seconds"] = (cells["finish"] - cells["start"]).dt.total_seconds()
    cells["private"] = cells["dp"] != "nodp"
    return cells


def summary(cells: pd.DataFrame, slots: int) -> dict:
    done = cells.dropna(subset=["finish"])

    def stats(part: pd.DataFrame) -> dict:
        s = part["seconds"]
        return {"cells": len(s), "median_s": s.median(), "min_s": s.min(), "max_s": s.max()} if len(s) else {"cells": 0}

    window = (done["finish"].max() - cells["start"].min()).total_seconds() if len(done) else 0.0
    return {
        "slots": slots,
        "cells_started": len(cells),
        "cells_finished": len(done),
        "window_seconds": window,  # first cell's start to last cell's finish
        "cells_per_hour": len(done) / window * 3600 if window else None,
        "nodp": stats(done[~done["private"]]),
        "dp": stats(done[done["private"]]),
        "by_mode": {mode: stats(part) for mode, part in done.groupby("mode")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="Snakemake's output of the grid run")
    parser.add_argument("--slots", type=int, required=True, help="cells run at once (--resources gpu=N)")
    parser.add_argument("--cells-out", type=Path, help="also write one row per cell as CSV")
    args = parser.parse_args()
    cells = cell_times(args.log.read_text())
    if args.cells_out:
        cells.to_csv(args.cells_out, index=False)
    print(json.dumps(summary(cells, args.slots), indent=2, default=float))


if __name__ == "__main__":
    main()
