"""DP-SGD's cost against plain SGD, with spread: per step and per full-scale cell, at 1 and 2
threads, each measurement an independent process, repeated, alternated between thread counts.

Each run's ratio is measured within that run (the plain and DP timings of one process, on the
same machine state); the JSON holds every run and, per quantity, the median with min–max:

    FEDHET_DATA_MIRROR=... python benchmarks/bench_dp_ratio.py --runs 3 --out benchmarks/results/dp_ratio.json

Per step: ``bench_dp_step.py`` (one Poisson batch of the study's CNN, best of its rounds). Per
cell: ``bench_cell.py --dp all-eps1-delta1e-05-clip1`` (the study's federated cell without DP,
then with DP-SGD at every hospital; training seconds and wall seconds). Run it on a quiet
machine: nothing else may share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DP = "all-eps1-delta1e-05-clip1"


def _run(script: str, threads: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "out.json"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        command = [sys.executable, str(HERE / script), "--threads", str(threads), "--out", str(out), *extra]
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def step(threads: int) -> dict:
    report = _run("bench_dp_step.py", threads, [])
    ms = report["ms_per_step"]
    return {"plain_ms": ms["plain"], "dp_ms": ms["bookkeeping"], "ratio": ms["bookkeeping"] / ms["plain"]}


def cell(threads: int) -> dict:
    report = _run("bench_cell.py", threads, ["--dp", DP])
    return {
        "plain_train_s": report["train_seconds"],
        "dp_train_s": report["dp"]["train_seconds"],
        "ratio_train": report["dp_over_nodp_train_seconds"],
        "plain_wall_s": report["wall_seconds"],
        "dp_wall_s": report["dp"]["wall_seconds"],
        "ratio_wall": report["dp_over_nodp_wall_seconds"],
    }


def spread(runs: list[dict]) -> dict:
    """Per quantity: median, min and max over the runs."""
    return {
        key: {"median": statistics.median(values), "min": min(values), "max": max(values)}
        for key in runs[0]
        for values in [[run[key] for run in runs]]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dp_ratio.json"))
    args = parser.parse_args()
    measured: dict[str, dict[int, list[dict]]] = {"step": {}, "cell": {}}
    for _ in range(args.runs):  # alternated, so drift hits every thread count alike
        for threads in args.threads:
            measured["step"].setdefault(threads, []).append(step(threads))
            measured["cell"].setdefault(threads, []).append(cell(threads))
    report = {
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "dp": DP,
        "runs": args.runs,
        **{
            kind: {str(t): {"runs": runs, "spread": spread(runs)} for t, runs in by_threads.items()}
            for kind, by_threads in measured.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: {t: v["spread"] for t, v in report[k].items()} for k in ("step", "cell")}, indent=2))


if __name__ == "__main__":
    main()
