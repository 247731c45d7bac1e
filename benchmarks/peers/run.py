"""Peer benchmark: the same full-scale federated cell run by fedhet, a plain PyTorch loop and
Flower's Simulation Engine, on 1 and on 2 CPUs, alternated, each repeated.

Every runner is a fresh process pinned to the first N CPUs (``sched_setaffinity``), reading the
partitions the driver drew once. Per run it records the process's wall time (start-up, data
reading, Ray's start for Flower, training, final evaluation) and the training loop alone
(first round's start to last aggregation), and the small hospitals' mean AUROC, which shows the
runners learned the same model. The medians over repetitions go to the JSON.

    pip install -e '.[peers]'      # flwr[simulation]; not needed by the tests
    FEDHET_DATA_MIRROR=... python benchmarks/peers/run.py --reps 3 --out benchmarks/results/peers.json
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
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNNERS = {"fedhet": "fedhet_cell.py", "plain": "plain_loop.py", "flower": "flower_sim.py"}


def prepare(config_path: Path, seed: int, work: Path) -> tuple[Path, str]:
    """Draw the study cell's partitions once; every runner reads these files."""
    sys.path.insert(0, str(ROOT))
    from fedhet.cli import prepare_inputs
    from fedhet.workflow.config import Cell, core_scenario, load_config

    config = load_config(config_path)
    cell = Cell(core_scenario(config).key(), "federated", seed, "nodp")
    partitions, _ = prepare_inputs(config, cell, work)
    return partitions, cell.scenario


def run_one(runner: str, cpus: int, args: argparse.Namespace, partitions: Path, scenario: str, work: Path) -> dict:
    available = sorted(os.sched_getaffinity(0))
    if cpus > len(available):
        raise SystemExit(f"--cpus {cpus}: this process may use only CPUs {available}")
    pinned = set(available[:cpus])
    out = work / f"{runner}-{cpus}.json"
    out.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(HERE / RUNNERS[runner]),
        "--config",
        str(args.config),
        "--partitions",
        str(partitions),
        "--scenario",
        scenario,
        "--seed",
        str(args.seed),
        "--cpus",
        str(cpus),
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), str(ROOT)])}
    start = time.perf_counter()
    done = subprocess.run(
        command, env=env, preexec_fn=lambda: os.sched_setaffinity(0, pinned), capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"{runner} on {cpus} CPU(s) failed:\n{done.stderr[-4000:]}")
    result = json.loads(out.read_text())
    return {**result, "key": runner, "wall_seconds": wall, "outside_loop_seconds": wall - result["loop_seconds"]}


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for key in RUNNERS:
        for cpus in sorted({r["cpus"] for r in runs}):
            mine = [r for r in runs if r["key"] == key and r["cpus"] == cpus]
            if mine:
                rows.append(
                    {
                        "runner": mine[0]["runner"],
                        "key": key,
                        "cpus": cpus,
                        "repetitions": len(mine),
                        **{
                            f"{stat.__name__}_{m}": stat(r[m] for r in mine)
                            for m in ("wall_seconds", "loop_seconds", "outside_loop_seconds")
                            for stat in (statistics.median, min, max)
                        },
                        "small_mean_auroc": statistics.median(r["small_mean_auroc"] for r in mine),
                    }
                )
    return rows


RATIOS = {"plain_over_fedhet": ("plain", "fedhet"), "flower_over_plain": ("flower", "plain")}


def ratios(runs: list[dict]) -> dict:
    """Loop-time ratios within each repetition (the two runs were neighbours in time), per CPU
    count: median, min and max over the repetitions."""
    out: dict = {}
    for cpus in sorted({r["cpus"] for r in runs}):
        loop = {(r["key"], r["repetition"]): r["loop_seconds"] for r in runs if r["cpus"] == cpus}
        reps = sorted({rep for _, rep in loop})
        for name, (top, bottom) in RATIOS.items():
            values = [loop[top, r] / loop[bottom, r] for r in reps if (top, r) in loop and (bottom, r) in loop]
            if values:
                spread = {"median": statistics.median(values), "min": min(values), "max": max(values)}
                out.setdefault(str(cpus), {})[name] = spread
    return out


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config/config.yaml")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cpus", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runners", nargs="+", choices=list(RUNNERS), default=list(RUNNERS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/peers.json")
    args = parser.parse_args()
    args.config = args.config.resolve()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        partitions, scenario = prepare(args.config, args.seed, work)
        for rep in range(args.reps):
            # Alternated: each repetition rotates the runner order, so drift hits all alike.
            order = args.runners[rep % len(args.runners) :] + args.runners[: rep % len(args.runners)]
            for cpus in args.cpus:
                for runner in order:
                    run = run_one(runner, cpus, args, partitions, scenario, work)
                    runs.append({**run, "repetition": rep})
                    print(
                        f"rep {rep} {runner:7s} {cpus} CPU: wall {run['wall_seconds']:.1f}s loop "
                        f"{run['loop_seconds']:.1f}s AUROC {run['small_mean_auroc']:.4f}",
                        flush=True,
                    )
    report = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus_available": len(os.sched_getaffinity(0)),
        },
        "versions": {p: version(p) for p in ("torch", "flwr", "ray", "fedhet")},
        "config": str(args.config.relative_to(ROOT)) if args.config.is_relative_to(ROOT) else str(args.config),
        "scenario": scenario,
        "seed": args.seed,
        "summary": summarise(runs),
        "ratios": ratios(runs),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for row in report["summary"]:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
