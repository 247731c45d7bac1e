"""The reproducibility check: rerun the cells behind committed tables and report how far the
rebuilt tables are from the committed ones (``fedhet repro-check``).

Owns the table comparison (``compare_tables``: per numeric column, the largest absolute
deviation and the row where it occurs; a missing or extra row or column is a structural
mismatch) and the rerun (``rebuild``: Snakemake builds the same tables under a run name of
their own, ``results/<run>/<dataset>/tables/``, so nothing committed or already built is
overwritten). A deviation is reported, not judged: only a structural mismatch, or a deviation
above an explicitly given tolerance, fails the check. Tables are compared as written (CSV, six
significant digits), so on the machine and library build that made them the deviation is 0.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from fedhet.analysis.provenance import collect, provenance_table
from fedhet.workflow.config import results_root

REPORT_COLUMNS = ["table", "column", "max_abs_deviation", "row", "committed", "rerun", "n_rows", "status", "detail"]
DEFAULT_RUN = "repro-check"


class ReproError(ValueError):
    """The rerun itself failed (Snakemake's error, a table it did not build, a bad argument)."""


@dataclass
class Comparison:
    """One table's comparison: ``rows`` in ``REPORT_COLUMNS`` order, ``structural`` the
    mismatches that make the tables incomparable (missing rows or columns)."""

    rows: list[dict] = field(default_factory=list)
    structural: list[str] = field(default_factory=list)


def key_columns(table: pd.DataFrame) -> list[str]:
    """The columns that name a row (every non-numeric one, e.g. ``metric``)."""
    return [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]


def row_labels(table: pd.DataFrame, keys: list[str]) -> list[str]:
    """A readable name per row: ``metric=auroc`` (``#k`` after a repeated one), or its position
    where no column names rows."""
    if not keys:
        return [f"row {i}" for i in range(len(table))]
    base = [
        ",".join(f"{k}={v}" for k, v in zip(keys, values, strict=True)) for values in table[keys].astype(str).values
    ]
    seen: dict[str, int] = {}
    labels = []
    for label in base:
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return labels


def deviation(committed: float, rerun: float) -> float:
    """|rerun − committed|; 0 where both are undefined (NaN), infinite where only one is."""
    if pd.isna(committed) and pd.isna(rerun):
        return 0.0
    if pd.isna(committed) or pd.isna(rerun):
        return math.inf
    return abs(float(rerun) - float(committed))


def compare_tables(name: str, committed: pd.DataFrame, rerun: pd.DataFrame) -> Comparison:
    """Per numeric column of ``committed``: the largest absolute deviation of ``rerun`` from it
    and the (first) row where it occurs. Rows are matched by their key columns (by position
    where there are none); a row or column in one table only is a structural mismatch."""
    out = Comparison()
    keys = key_columns(committed)
    missing_columns = [c for c in committed.columns if c not in rerun.columns]
    extra_columns = [c for c in rerun.columns if c not in committed.columns]
    for kind, columns in (("missing column", missing_columns), ("extra column", extra_columns)):
        for column in columns:
            out.structural.append(f"{name}: {kind} {column!r} in the rerun")
    mistyped = [c for c in keys if c in rerun.columns and pd.api.types.is_numeric_dtype(rerun[c])]
    out.structural += [f"{name}: column {c!r} names rows in one table, holds numbers in the other" for c in mistyped]
    # no common way to name rows: match them by position
    naming = [] if mistyped or any(c in missing_columns for c in keys) else keys
    left = committed.set_axis(row_labels(committed, naming))
    right = rerun.set_axis(row_labels(rerun, naming))
    for label in left.index.difference(right.index, sort=False):
        out.structural.append(f"{name}: row {label!r} missing from the rerun")
    for label in right.index.difference(left.index, sort=False):
        out.structural.append(f"{name}: row {label!r} in the rerun only")
    for problem in out.structural:
        out.rows.append(_row(name, problem=problem))
    common = left.index.intersection(right.index, sort=False)
    numeric = [c for c in committed.columns if c not in keys and c in rerun.columns and c not in mistyped]
    for column in numeric:
        if not len(common):
            break
        devs = pd.Series([deviation(left.at[r, column], right.at[r, column]) for r in common], index=common)
        worst = devs.idxmax() if devs.max() > 0 else None  # no row stands out where none deviates
        out.rows.append(
            {
                "table": name,
                "column": column,
                "max_abs_deviation": float(devs.max()),
                "row": worst or "",
                "committed": left.at[worst, column] if worst else math.nan,
                "rerun": right.at[worst, column] if worst else math.nan,
                "n_rows": len(common),
                "status": "ok",
                "detail": "",
            }
        )
    return out


def _row(name: str, problem: str) -> dict:
    return {**dict.fromkeys(REPORT_COLUMNS, None), "table": name, "status": "structural", "detail": problem}


def judge(report: pd.DataFrame, tolerance: float | None) -> pd.DataFrame:
    """``report`` with each numeric row's status ``above tolerance`` where its deviation exceeds
    ``tolerance``; None judges nothing (deviation is reported, not judged)."""
    if tolerance is None:
        return report
    numeric = report["status"] != "structural"
    above = numeric & (report["max_abs_deviation"].astype(float) > tolerance)
    return report.assign(status=report["status"].where(~above, "above tolerance"))


def dataset_of(config_path: Path, workdir: Path) -> str:
    """The dataset ``config_path`` runs on: its own ``data.dataset``, else the default config's."""
    for path in (config_path, workdir / "config" / "config.yaml"):
        stated = (yaml.safe_load(Path(path).read_text()) or {}).get("data") or {}
        if stated.get("dataset"):
            return stated["dataset"]
    raise ReproError(f"{config_path}: no data.dataset, and none in {workdir}/config/config.yaml")


def rebuild(
    config: Path, tables: list[str], workdir: Path, run: str = DEFAULT_RUN, cores: int = 1, rerun_cells: bool = True
) -> Path:
    """Build ``tables`` (file names under ``tables/``, e.g. ``table2.csv``) with ``config`` under
    the run name ``run``, with Snakemake in ``workdir``; ``rerun_cells`` retrains every training
    cell behind them even where the run already holds it. Returns the run's results root."""
    workdir = Path(workdir).resolve()
    config = Path(config).resolve()
    root = workdir / results_root({"run": run, "data": {"dataset": dataset_of(config, workdir)}})
    targets = [str((root / "tables" / t).relative_to(workdir)) for t in tables]
    with tempfile.TemporaryDirectory() as tmp:
        override = Path(tmp) / "repro_run.yaml"
        override.write_text(yaml.safe_dump({"run": run}))
        cmd = [sys.executable, "-m", "snakemake", *targets, "--cores", str(cores)]
        if rerun_cells:
            cmd += ["--forcerun", "train_cell"]
        cmd += ["--configfile", str(config), str(override)]
        done = subprocess.run(cmd, cwd=workdir, env=dict(os.environ), capture_output=True, text=True)
    if done.returncode != 0:
        raise ReproError(f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}")
    return root


def machine_provenance(root: Path) -> dict:
    """This machine's provenance, with the thread count the rerun cells trained with."""
    record = collect()
    cells = provenance_table(sorted(Path(root).glob("cells/**/provenance.json")))
    if len(cells):
        record["threads"] = ";".join(sorted(set(";".join(cells["threads"]).split(";"))))
    return record


def check(
    config: Path,
    committed: list[Path],
    out: Path,
    workdir: Path = Path("."),
    run: str = DEFAULT_RUN,
    cores: int = 1,
    tolerance: float | None = None,
    rerun_cells: bool = True,
    provenance_out: Path | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Rerun the cells behind the ``committed`` tables, rebuild them, and write the report to
    ``out`` (and with ``provenance_out`` the rerun cells' ``fedhet.analysis.provenance`` table). Returns
    the report and its failures: structural mismatches, and deviations above ``tolerance``."""
    from fedhet.io import write_csv_atomic

    committed = [Path(p) for p in committed]
    names = [p.name for p in committed]
    if len(set(names)) != len(names):
        raise ReproError(f"two committed tables share a name: {names}")
    root = rebuild(config, names, workdir, run, cores, rerun_cells)
    comparisons = []
    for path in committed:
        rebuilt = root / "tables" / path.name
        if rebuilt.resolve() == path.resolve():
            raise ReproError(f"{path}: the rerun would overwrite the committed table; choose another --run")
        if not rebuilt.is_file():
            raise ReproError(f"{rebuilt}: Snakemake did not build it")
        comparisons.append(compare_tables(path.stem, pd.read_csv(path), pd.read_csv(rebuilt)))
    report = judge(pd.DataFrame([r for c in comparisons for r in c.rows], columns=REPORT_COLUMNS), tolerance)
    machine = machine_provenance(root)
    report = report.assign(**machine)
    write_csv_atomic(report, out)
    if provenance_out is not None:
        write_csv_atomic(provenance_table(sorted(root.glob("cells/**/provenance.json"))), provenance_out)
    failures = [p for c in comparisons for p in c.structural]
    above = report[report["status"] == "above tolerance"]
    failures += [
        f"{r.table} {r.column}: deviation {r.max_abs_deviation:.6g} at {r.row} above tolerance {tolerance:g}"
        for r in above.itertuples()
    ]
    return report, failures
