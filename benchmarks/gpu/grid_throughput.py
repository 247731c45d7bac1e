"""Throughput of a grid run: which training cells finished in a time window, and how fast.

Reads the Snakemake benchmark files of ``train_cell`` (``results/benchmarks/train_cell/...tsv``,
one per finished cell) and the window's start and end (Unix seconds), and prints a JSON
summary: cells finished, seconds per cell (median and range, non-private and DP-SGD cells
apart) and cells per hour over the window.

    python benchmarks/gpu/grid_throughput.py results START END --slots 12
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def finished_cells(results: Path, start: float, end: float) -> pd.DataFrame:
    """One row per train_cell benchmark file written inside [start, end]."""
    rows = []
    for path in sorted((results / "benchmarks" / "train_cell").rglob("*.tsv")):
        if not start <= path.stat().st_mtime <= end:
            continue
        seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[0])
        cell = path.relative_to(results / "benchmarks" / "train_cell").with_suffix("")
        scenario, mode, algorithm, dp, seed = cell.parts
        rows.append(
            {"cell": str(cell), "mode": mode, "algorithm": algorithm, "private": dp != "nodp", "seconds": seconds}
        )
    columns = {"cell": str, "mode": str, "algorithm": str, "private": bool, "seconds": float}
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def summary(cells: pd.DataFrame, window: float, slots: int) -> dict:
    def stats(part: pd.DataFrame) -> dict:
        s = part["seconds"]
        return {"cells": len(s), "median_s": s.median(), "min_s": s.min(), "max_s": s.max()} if len(s) else {"cells": 0}

    return {
        "window_seconds": window,
        "slots": slots,
        "cells_finished": len(cells),
        "cells_per_hour": len(cells) / window * 3600 if window > 0 else None,
        "nodp": stats(cells[~cells["private"]]),
        "dp": stats(cells[cells["private"]]),
        "by_mode": {mode: stats(part) for mode, part in cells.groupby("mode")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("start", type=float)
    parser.add_argument("end", type=float)
    parser.add_argument("--slots", type=int, required=True, help="cells run at once (--resources gpu=N)")
    parser.add_argument("--cells-out", type=Path, help="also write the finished cells as CSV")
    args = parser.parse_args()
    cells = finished_cells(args.results, args.start, args.end)
    if args.cells_out:
        cells.to_csv(args.cells_out, index=False)
    print(json.dumps(summary(cells, args.end - args.start, args.slots), indent=2, default=float))


if __name__ == "__main__":
    main()
