"""What a machine-independent kernel setting costs: one PneumoniaMNIST federated core cell, timed
under torch's default CPU kernels and under settings that take other kernel paths.

Settings (each run is a fresh process, one thread, settings interleaved run by run):

    default         torch as the workflow runs it
    mkldnn_off      torch.backends.mkldnn.enabled = False (convolutions leave oneDNN)
    deterministic   torch.use_deterministic_algorithms(True)
    isa_avx2        ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2, MKL_ENABLE_INSTRUCTIONS=AVX2:
                    this machine made to take the kernel paths of an AVX2 CPU
    mkldnn_off_avx2 both: compared with mkldnn_off, whether oneDNN off leaves the numbers to no
                    ISA-dependent kernel on this machine

For each: wall seconds of the cell (training and evaluation, as ``fedhet.training.cell.run_cell`` runs it
in the workflow) over ``--runs`` runs (median, min, max); whether its metrics equal the default's
bit for bit (else the largest absolute difference), and the ``*_avx2`` settings' with their twin
on this machine's own ISA; the small hospitals' mean AUROC, precision and recall under each. One
machine cannot say whether a setting makes results equal *across* machines: the AVX2 settings
only show whether another kernel path changes them here.

    FEDHET_DATA_MIRROR=../shared/data/medmnist python benchmarks/bench_kernels.py \\
        --out benchmarks/results/kernels.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
SETTINGS = {"default": {}, "mkldnn_off": {}, "deterministic": {}, "isa_avx2": AVX2, "mkldnn_off_avx2": AVX2}
TWIN = {"mkldnn_off_avx2": "mkldnn_off", "isa_avx2": "default"}  # the same setting on the machine's own ISA
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def worker(setting: str, config_path: Path, seed: int, work: Path) -> dict:
    """One cell under ``setting``, in this process: seconds, metrics (as a list of values)."""
    import torch

    from fedhet.analysis.provenance import collect
    from fedhet.training.cell import run_cell
    from fedhet.workflow.config import Cell, core_scenario, load_config, optim_key

    if setting.startswith("mkldnn_off"):
        torch.backends.mkldnn.enabled = False
    elif setting == "deterministic":
        torch.use_deterministic_algorithms(True)
    config = load_config(config_path)
    cell = Cell(core_scenario(config).key(), "federated", seed, "nodp", optim=optim_key(config))
    out = work / setting
    start = time.perf_counter()
    metrics = run_cell(
        config,
        cell,
        Path(cell.partitions(str(work))),
        work / "data" / config["data"]["dataset"] / "external.parquet",
        out / "metrics.parquet",
        out / "rounds.parquet",
        threads=1,
    )
    seconds = time.perf_counter() - start
    metrics = metrics.sort_values(["hospital", "model", "metric"], kind="stable")
    small = metrics[metrics["hospital_type"] == "small"].groupby("metric")["value"].mean()
    return {
        "seconds": seconds,
        "values": [float(v) for v in metrics["value"]],
        "small_mean": {m: float(small[m]) for m in ("auroc", "precision", "recall")},
        "provenance": collect(),
    }


def prepare(config_path: Path, seed: int, work: Path) -> None:
    from fedhet.cli import prepare_inputs
    from fedhet.workflow.config import Cell, core_scenario, load_config, optim_key

    config = load_config(config_path)
    prepare_inputs(config, Cell(core_scenario(config).key(), "federated", seed, "nodp", optim=optim_key(config)), work)


def run_one(setting: str, args: argparse.Namespace, work: Path) -> dict:
    env = {**os.environ, **ONE_THREAD, **SETTINGS[setting]}
    cmd = [sys.executable, __file__, "--worker", setting, "--config", str(args.config), "--seed", str(args.seed)]
    done = subprocess.run([*cmd, "--work", str(work)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def same(a: list[float], b: list[float]) -> bool:
    """Bit-equal value by value, an undefined value (NaN) equal to an undefined one."""
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


def summary(setting: str, runs: list[dict], reference: list[float]) -> dict:
    seconds = [r["seconds"] for r in runs]
    values = runs[0]["values"]
    same_runs = all(same(r["values"], values) for r in runs)
    diffs = [abs(a - b) for a, b in zip(values, reference, strict=True) if not (a != a and b != b)]
    return {
        "setting": setting,
        "runs": len(runs),
        "seconds_median": statistics.median(seconds),
        "seconds_min": min(seconds),
        "seconds_max": max(seconds),
        "seconds": seconds,
        "runs_identical": same_runs,
        "metrics_equal_default": same(values, reference),
        "max_abs_metric_difference_vs_default": max(diffs) if diffs else 0.0,
        "small_mean": runs[0]["small_mean"],
        "cpu_capability_seen_by_torch": runs[0]["provenance"]["cpu_capability"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/pneumonia.yaml"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/kernels.json"))
    parser.add_argument("--worker", choices=list(SETTINGS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.config, args.seed, args.work)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare(args.config, args.seed, work)
        runs: dict[str, list[dict]] = {s: [] for s in args.settings}
        for i in range(args.runs):  # interleaved: a drift in the machine's speed hits every setting alike
            for setting in args.settings:
                runs[setting].append(run_one(setting, args, work))
                print(f"run {i + 1}/{args.runs} {setting}: {runs[setting][-1]['seconds']:.1f}s", file=sys.stderr)
    reference = runs[args.settings[0]][0]["values"]
    from fedhet.analysis.provenance import collect

    machine = collect()
    machine["threads"] = 1
    results = [summary(s, runs[s], reference) for s in args.settings]
    for r in results:
        twin = TWIN.get(r["setting"])
        if twin in runs:
            r["twin_on_own_isa"] = twin
            r["metrics_equal_twin"] = same(runs[r["setting"]][0]["values"], runs[twin][0]["values"])
    base = results[0]["seconds_median"]
    for r in results:
        r["median_over_default"] = r["seconds_median"] / base
    report = {
        "cell": f"{args.config} federated core cell, seed {args.seed}, nodp (run_cell, one thread)",
        "machine": machine,
        "settings": results,
        "note": "metrics_equal_default compares every metric value of the cell bit for bit with the first "
        "setting's; one machine cannot show whether a setting makes results equal across machines.",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "settings"}, indent=2))
    for r in results:
        print(
            f"{r['setting']:>14}: median {r['seconds_median']:.1f}s [{r['seconds_min']:.1f}, {r['seconds_max']:.1f}]"
            f" x{r['median_over_default']:.2f}; equal to default: {r['metrics_equal_default']}"
            f" (max diff {r['max_abs_metric_difference_vs_default']:.3g}); AUROC {r['small_mean']['auroc']:.6f}"
            + (f"; equal to {r['twin_on_own_isa']}: {r['metrics_equal_twin']}" if "twin_on_own_isa" in r else "")
        )


if __name__ == "__main__":
    main()
