"""Benchmark a federated cell's cost against the number of hospitals at a fixed total of records.

The study's large hospital beside N small ones sharing 12,000 small-hospital records (Figure 14's
layout: 3,000 each at N = 4, 47 each at N = 256), every hospital in every round, final metrics
only. Each repeat times every N back to back at one thread; the report gives, per N, the median
wall time with its min–max and the time per training image, and, per repeat, the ratio of the
largest N's time per training image to the smallest's (median [min–max] over repeats). Training
images per cell stay within 0.4% across N, so a ratio near 1 means the cost follows records, not
hospitals.

    python benchmarks/bench_many.py --counts 4 256 --repeats 3 --threads 1 \
        --out benchmarks/results/many_hospitals.json

Needs the FashionMNIST files: set FEDHET_DATA_MIRROR or config data.mirror. Run it on a quiet
machine: other work on the cores moves these numbers by tens of percent.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch
from bench_cell import run_federated_cell

from fedhet.workflow.config import load_config

SMALL_TOTAL = 12_000


def many_config(config: dict, count: int) -> dict:
    """``config`` with its small hospitals replaced by ``count`` sharing ``SMALL_TOTAL`` records."""
    out = copy.deepcopy(config)
    small = next(h for h in out["hospitals"] if h["type"] == "small")
    small.update(count=count, size=round(SMALL_TOTAL / count))
    out["training"].update(client_fraction=1.0)
    out["evaluation"].update(every_round=False)
    return out


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--counts", type=int, nargs="+", default=[4, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/many_hospitals.json"))
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error(f"--repeats {args.repeats}: a benchmark figure is the median of at least 3 runs")
    base = load_config(args.config)
    runs: dict[int, list[dict]] = {n: [] for n in args.counts}
    with tempfile.TemporaryDirectory() as work:
        # Interleaved, so that a drift in the machine's speed falls on every N alike.
        for _ in range(args.repeats):
            for n in args.counts:
                runs[n].append(run_federated_cell(many_config(base, n), args.seed, args.threads, Path(work) / str(n)))
    cells = {}
    for n, results in runs.items():
        images = results[0]["train_images"]
        walls = [r["wall_seconds"] for r in results]
        cells[str(n)] = {
            "small_hospitals": n,
            "small_size": round(SMALL_TOTAL / n),
            "train_images": images,
            "wall_seconds": summary(walls),
            "train_seconds": summary([r["train_seconds"] for r in results]),
            "microseconds_per_train_image": summary([w / images * 1e6 for w in walls]),
        }
    low, high = min(args.counts), max(args.counts)

    def per_image(n: int, i: int) -> float:
        return runs[n][i]["wall_seconds"] / runs[n][i]["train_images"]

    report = {
        "machine": {"processor": platform.processor() or platform.machine(), "threads": args.threads},
        "torch": torch.__version__,
        "repeats": args.repeats,
        "cells": cells,
        # Within each repeat (the two cells ran back to back), per training image, so that the
        # <0.4% difference in records does not count as cost.
        "ratio": {
            "over": [high, low],
            **summary([per_image(high, i) / per_image(low, i) for i in range(args.repeats)]),
        },
        "config": {"model": base["model"], "training": many_config(base, 1)["training"]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
