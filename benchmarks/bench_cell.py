"""Benchmark one full-scale federated cell on this machine.

Measures, in one run: a dense fp32 matmul peak (the reference), then one federated cell
at the study's setup (5 hospitals, 10 rounds): wall time, training images/s, and the
achieved training GFLOP/s as a fraction of the measured peak.

    python benchmarks/bench_cell.py --config config/config.yaml --threads 2 \
        --out benchmarks/results/cell_nodp.json
    # and the same cell with DP-SGD at every hospital, timed in the same run:
    python benchmarks/bench_cell.py --dp all-eps1-delta1e-05-clip1 --out benchmarks/results/cell_dp.json

Needs the FashionMNIST files: set FEDHET_DATA_MIRROR or config data.mirror.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from fedhet.cli import prepare_inputs
from fedhet.data.partition import Scenario, read_hospital
from fedhet.device import CPU, DEVICES, resolve_device
from fedhet.privacy.accounting import private_hospitals
from fedhet.training.client import Client
from fedhet.training.federated import Site, run_mode
from fedhet.training.model import train_flops_per_image
from fedhet.workflow.config import Cell, core_scenario, load_config, model_spec, optim_key, train_spec
from fedhet.workflow.specs import DPSpec


def matmul_peak(threads: int, n: int = 2048, repeats: int = 20) -> float:
    """Best-of GFLOP/s of an n×n fp32 matmul."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def train_federation(sites: list[Site], mspec, tspec, seed: int, every_round: bool, device=CPU, progress=None):
    """The federated mode of a cell on prepared sites, no external set: what the benchmarks time
    (here and in benchmarks/peers/)."""
    return run_mode(
        "federated", sites, None, mspec, tspec, seed, eval_every_round=every_round, progress=progress, device=device
    )


def run_federated_cell(
    config: dict, seed: int, threads: int, work: Path, dp_key: str = "nodp", device: torch.device = CPU
) -> dict:
    torch.set_num_threads(threads)
    cell = Cell(core_scenario(config).key(), "federated", seed, dp_key, optim=optim_key(config))
    partitions, _ = prepare_inputs(config, cell, work)
    mspec, tspec = model_spec(config), train_spec(config, cell.optim)
    scenario = Scenario.parse(cell.scenario)
    dp = DPSpec.parse(dp_key, **config["privacy"])
    private = private_hospitals(dp, dict(scenario.hospitals_by_type()))
    sites = [
        Site(
            Client(
                read_hospital(partitions / f"{name}.parquet", name),
                mspec,
                tspec,
                seed,
                i,
                dp=dp if name in private else None,
                device=device,
            ),
            group.type,
        )
        for i, (name, group) in enumerate(scenario.hospitals())
    ]
    start = time.perf_counter()
    result = train_federation(sites, mspec, tspec, seed, config["evaluation"]["every_round"], device)
    wall = time.perf_counter() - start  # the metrics came back to the host: the GPU is done
    images = sum(s.client.train_images for s in sites)
    train_seconds = sum(s.client.train_seconds for s in sites)
    small = result.metrics[(result.metrics.hospital_type == "small") & (result.metrics.metric == "auroc")]
    return {
        "cell": str(cell),
        "wall_seconds": wall,
        "train_seconds": train_seconds,
        "train_images": images,
        "images_per_second": images / train_seconds,
        "train_gflops": images * train_flops_per_image(mspec) / train_seconds / 1e9,
        "small_mean_auroc": float(small["value"].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cell_nodp.json"))
    parser.add_argument("--dp", default=None, help="also time this DP key (e.g. all-eps1-delta1e-05-clip1)")
    parser.add_argument("--matmul-size", type=int, default=2048, help="side of the matmul that measures peak")
    parser.add_argument("--device", choices=DEVICES, default="cpu")
    args = parser.parse_args()
    config = load_config(args.config)
    device = resolve_device(args.device)
    # The CPU's matmul peak is the reference for a CPU run; a GPU's would say nothing here.
    peak = matmul_peak(args.threads, args.matmul_size) if device.type == "cpu" else None
    with tempfile.TemporaryDirectory() as work:
        cell = run_federated_cell(config, args.seed, args.threads, Path(work), device=device)
        dp_cell = run_federated_cell(config, args.seed, args.threads, Path(work), args.dp, device) if args.dp else None
    report = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": args.threads,
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        },
        "torch": torch.__version__,
        "matmul_peak_gflops": peak,
        **cell,
        "fraction_of_peak": cell["train_gflops"] / peak if peak else None,
        "config": {"model": config["model"], "training": config["training"], "privacy": config["privacy"]},
    }
    if dp_cell is not None:
        report["dp"] = dp_cell
        report["dp_over_nodp_train_seconds"] = dp_cell["train_seconds"] / cell["train_seconds"]
        report["dp_over_nodp_wall_seconds"] = dp_cell["wall_seconds"] / cell["wall_seconds"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
