"""Command line: run one grid cell outside Snakemake, for debugging.

``fedhet cell --config config/quick.yaml --mode federated --seed 0 --out /tmp/cell`` fetches
the data (from the mirror if set), draws the partitions and trains, with the same code the
workflow's rules call.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from tqdm import tqdm

from fedhet import setup_logging
from fedhet.analysis.repro import DEFAULT_RUN
from fedhet.analysis.repro import check as repro_check
from fedhet.data.beyond_hospitals import draw_shared, write_shared
from fedhet.data.datasets import dataset_spec, load_source
from fedhet.data.holdout import write_holdout_partitions
from fedhet.data.partition import PartitionError, write_external
from fedhet.data.sources import DataError, binary_labels, fetch_file, resolve_mirror
from fedhet.device import DEVICES, resolve_device
from fedhet.training.cell import run_cell
from fedhet.training.federated import MODES
from fedhet.workflow.algorithms import ALGORITHMS, AlgorithmSpec
from fedhet.workflow.config import Cell, ConfigError, core_scenario, load_config, merged_config, optim_key
from fedhet.workflow.specs import DPSpec, check_spec


def prepare_inputs(config: dict, cell: Cell, out: Path) -> tuple[Path, Path]:
    """Fetch the data and draw this cell's partitions under ``out``."""
    spec = dataset_spec(config["data"]["dataset"])
    raw = out / "data" / spec.name / "raw"
    mirror = resolve_mirror(config["data"]["mirror"])
    for name in spec.files:
        if not (raw / name).exists():
            fetch_file(spec, name, raw / name, mirror)
    source = load_source(spec.name, raw)
    classes = config["data"]["abnormal_classes"]
    external = out / "data" / spec.name / "external.parquet"
    write_external(
        external, source.external_images, source.external_labels, binary_labels(source.external_labels, classes)
    )
    partitions = Path(cell.partitions(str(out)))
    write_holdout_partitions(partitions, source, config["data"], core_scenario(config), cell.seed, cell.holdout)
    return partitions, external


def prepare_shared(config: dict, cell: Cell, algorithm: AlgorithmSpec, out: Path) -> Path | None:
    """The shared public set G under ``out``, for algorithms that train on one."""
    if not algorithm.info.needs_shared_data:
        return None
    spec = dataset_spec(config["data"]["dataset"])
    source = load_source(spec.name, out / "data" / spec.name / "raw")
    binary = binary_labels(source.pool_labels, config["data"]["abnormal_classes"])
    index = draw_shared(binary, core_scenario(config), cell.seed, config["data"]["test_fraction"], algorithm["beta"])
    path = out / "shared.parquet"
    write_shared(path, source.pool_images, source.pool_labels, binary, index)
    return path


@contextlib.contextmanager
def progress_bar(enabled: bool):
    """A tqdm bar over rounds (one bar per training run of the mode) when in a terminal."""
    if not enabled:
        yield None
        return
    bars: dict[str, tqdm] = {}

    def update(label: str, done: int, total: int) -> None:
        bar = bars.get(label) or bars.setdefault(label, tqdm(total=total, desc=label, unit="round", leave=True))
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        for bar in bars.values():
            bar.close()


def cmd_cell(args: argparse.Namespace) -> None:
    config = load_config(args.config, {"device": args.device} if args.device else None)
    resolve_device(config["device"])  # no GPU for `cuda`: stop before any data is fetched
    dp = DPSpec.parse(args.dp)  # a bad key stops here too
    check_spec(dp)
    algorithm = AlgorithmSpec.parse(args.algorithm, "--algorithm")
    cell = Cell(core_scenario(config).key(), args.mode, args.seed, dp.key(), algorithm.key(), optim=optim_key(config))
    out = Path(args.out)
    interactive = sys.stderr.isatty()  # a progress bar replaces the per-round log lines on screen
    setup_logging(out / "cell.log", console=not interactive)
    partitions, external = prepare_inputs(config, cell, out)
    shared = prepare_shared(config, cell, algorithm, out)
    with progress_bar(enabled=interactive) as progress:
        metrics = run_cell(
            config,
            cell,
            partitions,
            external,
            out / "metrics.parquet",
            out / "rounds.parquet",
            threads=args.threads,
            privacy_out=out / "privacy.parquet",
            progress=progress,
            shared_path=shared,
        )
    own = metrics[metrics["hospital_type"] != "external"]
    print(own.pivot_table(index="hospital", columns="metric", values="value").round(4).to_string())


def cmd_repro_check(args: argparse.Namespace) -> int:
    report, failures = repro_check(
        args.config,
        args.table,
        args.out,
        workdir=args.workdir,
        run=args.run,
        cores=args.cores,
        tolerance=args.tolerance,
        rerun_cells=not args.reuse,
        provenance_out=args.provenance_out,
    )
    numeric = report[report["status"] != "structural"]
    for r in numeric.itertuples():
        print(f"{r.table:>10} {r.column:<22} max |deviation| {r.max_abs_deviation:.6g} at {r.row}")
    print(f"report: {args.out}")
    for failure in failures:
        print(f"fedhet repro-check: {failure}", file=sys.stderr)
    return 1 if failures else 0


def cmd_plan(args: argparse.Namespace) -> int:
    from fedhet.analysis.plan import plan_text

    print(plan_text(merged_config([Path("config/config.yaml"), *args.config]), args.cores))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedhet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cell = sub.add_parser("cell", help="train and evaluate one cell of the core scenario")
    cell.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    cell.add_argument("--mode", choices=MODES, default="federated")
    cell.add_argument("--seed", type=int, default=0)
    cell.add_argument("--out", type=Path, required=True)
    cell.add_argument("--threads", type=int, default=2)
    cell.add_argument("--device", choices=DEVICES, help="where to train (default: the config's device, cpu)")
    cell.add_argument(
        "--dp", default="nodp", help="DP key, e.g. all-eps1-delta1e-05-clip1 (placement-eps-delta-clip) or nodp"
    )
    cell.add_argument(
        "--algorithm", default="fedavg", help=f"algorithm key, e.g. fedprox-mu0.01 ({', '.join(ALGORITHMS)})"
    )
    cell.set_defaults(func=cmd_cell)
    repro = sub.add_parser(
        "repro-check",
        help="rerun the cells behind committed tables and report the deviation from them",
        description="Rerun the cells behind committed tables (Snakemake, under results/<run>/<dataset>/) and "
        "write, per table and numeric column, the largest absolute deviation from the committed value, the row "
        "where it occurs, and this machine's provenance. Exit 1 on a missing row or column, or with --tolerance "
        "on a deviation above it; a deviation alone is reported, not judged.",
    )
    repro.add_argument("--config", type=Path, required=True, help="the config that made the tables")
    repro.add_argument(
        "--table", type=Path, action="append", required=True, help="a committed table (repeat): table2.csv etc."
    )
    repro.add_argument("--out", type=Path, required=True, help="the report (CSV)")
    repro.add_argument("--run", default=DEFAULT_RUN, help=f"run name the rerun goes under (default {DEFAULT_RUN})")
    repro.add_argument("--cores", type=int, default=1, help="Snakemake's --cores (default 1)")
    repro.add_argument("--workdir", type=Path, default=Path("."), help="the workflow's directory (default .)")
    repro.add_argument("--tolerance", type=float, help="fail where a deviation exceeds it (default: never)")
    repro.add_argument("--reuse", action="store_true", help="keep cells the run already holds (default: retrain)")
    repro.add_argument("--provenance-out", type=Path, help="also write the rerun cells' provenance table here")
    repro.set_defaults(func=cmd_repro_check)
    plan = sub.add_parser(
        "plan",
        help="count a configuration's training cells and estimate their CPU time",
        description="Cells per experiment (a cell two experiments share counted once) and CPU hours estimated "
        "from the measured cost per trained image, for config/config.yaml with the given --config files "
        "merged in as Snakemake's --configfile merges them.",
    )
    plan.add_argument("--config", type=Path, action="append", default=[], help="an override file (repeat)")
    plan.add_argument("--cores", type=int, default=8, help="cores the wall time is estimated for (default 8)")
    plan.set_defaults(func=cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (ConfigError, DataError, PartitionError, ValueError) as err:
        print(f"fedhet: error: {err}", file=sys.stderr)
        return 2
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
