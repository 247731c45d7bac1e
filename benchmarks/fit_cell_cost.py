"""Fit the cost model of ``fedhet.analysis.plan`` to measured cell times, and write fedhet/analysis/cell_cost.json.

    python benchmarks/fit_cell_cost.py          # reads docs/results/runtime.csv

A cell's seconds = overhead + plain images / plain rate + DP images / DP rate. The overhead is
the measured time a cell spends outside training (process start, data, evaluation: the median of
the newest quick-grid run in benchmarks/results/grid_quick.json); the two rates are fitted by
least squares to the committed full-scale cells (one thread per cell, two cells on two cores).
The median and largest relative error of the fit are stored with it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from fedhet.analysis.plan import COST_FILE, trained_images

ROOT = Path(__file__).resolve().parent.parent
EPOCHS, TEST_FRACTION = 10, 0.2  # the study config the runtime table was measured with


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", type=Path, default=ROOT / "docs/results/runtime.csv")
    parser.add_argument("--grid", type=Path, default=ROOT / "benchmarks/results/grid_quick.json")
    parser.add_argument("--out", type=Path, default=COST_FILE)
    args = parser.parse_args()
    runtime = pd.read_csv(args.runtime)
    images = np.array(
        [trained_images(r.scenario, r.mode, r.dp, EPOCHS, TEST_FRACTION) for r in runtime.itertuples()], dtype=float
    )
    overhead = json.loads(args.grid.read_text())["runs"][-1]["median_outside_training_s"]
    seconds = runtime["seconds"].to_numpy()
    (per_plain, per_dp), *_ = np.linalg.lstsq(images, seconds - overhead, rcond=None)
    error = np.abs(overhead + images @ [per_plain, per_dp] - seconds) / seconds
    fit = {
        "overhead_seconds": round(float(overhead), 3),
        "plain_images_per_second": round(float(1 / per_plain), 1),
        "dp_images_per_second": round(float(1 / per_dp), 1),
        "cells": len(runtime),
        "median_relative_error": round(float(np.median(error)), 3),
        "max_relative_error": round(float(np.max(error)), 3),
        "source": str(args.runtime.relative_to(ROOT)) if args.runtime.is_relative_to(ROOT) else str(args.runtime),
    }
    args.out.write_text(json.dumps(fit, indent=2) + "\n")
    print(json.dumps(fit, indent=2))


if __name__ == "__main__":
    main()
