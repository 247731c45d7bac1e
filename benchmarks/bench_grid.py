"""Grid throughput on this machine: cells per hour of a Snakemake grid, and what a cell's
process spends outside training (start-up, data loading, DP calibration, writing).

Either runs a grid from a clean export of one or more git revisions, one after the other (for a
before/after comparison on the same machine), or reads a finished run:

    python benchmarks/bench_grid.py --revisions 4e2dfc0 HEAD --config config/quick.yaml \
        --cores 2 --out benchmarks/results/grid_quick.json
    python benchmarks/bench_grid.py --workdir /path/to/run --log run.log --cores 2 \
        --out benchmarks/results/grid_privacy.json

Cell times come from Snakemake's log (``gpu/grid_throughput.py``); each cell's training time
from its log ("trained in"), its process time from its ``benchmark:`` file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
from grid_throughput import cell_times, summary  # noqa: E402

TRAINED = re.compile(r"trained in ([\d.]+)s")


def cell_path(row: pd.Series) -> str:
    # Cells have had an optimiser component (<dp>/lr0.01/) since the learning-rate grids; earlier logs lack it.
    optim = f"/{row['optim']}" if isinstance(row.get("optim"), str) else ""
    return f"{row['scenario']}/{row['mode']}/{row['algorithm']}/{row['dp']}{optim}/seed{row['seed']}"


def process_split(workdir: Path, cells: pd.DataFrame) -> pd.DataFrame:
    """Per finished cell: process seconds (benchmark file), training seconds (its log) and the
    rest, outside training."""
    rows = []
    for _, row in cells.dropna(subset=["finish"]).iterrows():
        key = cell_path(row)
        # results/<dataset>/ since outputs are dataset-scoped; results/ directly before that
        bench = _first(workdir, f"benchmarks/train_cell/{key}.tsv")
        log = _first(workdir, f"logs/train_cell/{key}.log")
        trained = TRAINED.findall(log.read_text()) if log else []
        if bench and trained:
            process = float(pd.read_csv(bench, sep="\t")["s"].iloc[0])
            rows.append({"cell": key, "process_s": process, "train_s": float(trained[-1])})
    split = pd.DataFrame(rows, columns=["cell", "process_s", "train_s"])
    split["outside_training_s"] = split["process_s"] - split["train_s"]
    return split


def _first(workdir: Path, tail: str) -> Path | None:
    found = [p for p in (workdir / "results" / tail, *(workdir / "results").glob(f"*/{tail}")) if p.exists()]
    return found[0] if found else None


def measure(workdir: Path, log: str, cores: int) -> dict:
    cells = cell_times(log)
    split = process_split(workdir, cells)
    return {
        **summary(cells, cores),
        "median_process_s": split["process_s"].median(),
        "median_train_s": split["train_s"].median(),
        "median_outside_training_s": split["outside_training_s"].median(),
        "outside_training_share": split["outside_training_s"].sum() / split["process_s"].sum(),
    }


def run_revision(revision: str, config: str, cores: int, targets: list[str]) -> dict:
    """Build ``targets`` from a clean export of ``revision`` in a temporary directory."""
    sha = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": str(work)}  # the export's fedhet, not the installed one
        start = time.perf_counter()
        done = subprocess.run(["snakemake", "--cores", str(cores), *targets, "--configfile", config],
                              cwd=work, env=env, capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{revision}: snakemake failed\n{done.stderr[-3000:]}")
        result = measure(work, done.stdout + done.stderr, cores)
    return {"revision": sha, "config": config, "targets": targets, "run_wall_seconds": wall,
            "cells_per_hour_whole_run": result["cells_finished"] / wall * 3600, **result}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", nargs="+", help="git revisions to build the grid of, in turn")
    parser.add_argument("--config", default="config/quick.yaml")
    parser.add_argument("--targets", nargs="+", default=["all"])
    parser.add_argument("--workdir", type=Path, help="read a finished run here instead")
    parser.add_argument("--log", type=Path, help="that run's Snakemake output")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.workdir:
        runs = [{"workdir": str(args.workdir), **measure(args.workdir, args.log.read_text(), args.cores)}]
    else:
        runs = [run_revision(r, args.config, args.cores, args.targets) for r in args.revisions]
    report = {"machine": {"cpus": os.cpu_count()}, "cores": args.cores, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
