"""Provenance: which machine and library build computed a result.

Owns the record each training cell writes beside its metrics (``provenance.json``: CPU model,
torch's CPU kernel capability, torch and Python versions, torch's thread count) and the table
that counts a run's cells per (CPU model, capability, torch version) (``tables/provenance.csv``).
A cell's numbers are bit-identical on one machine and library build; across CPUs, torch's
kernels take other paths (e.g. AVX2 vs AVX512) and the last digits move (README,
"Reproducibility"), so these fields say which results are comparable bit for bit.

Torch-free at import: the Snakefile and rules import fedhet modules, and torch is imported
inside ``collect`` only.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pandas as pd

FIELDS = ("cpu_model", "cpu_capability", "torch_version", "threads", "python_version")
GROUP = ["cpu_model", "cpu_capability", "torch_version"]  # what decides the kernels' paths
FILENAME = "provenance.json"
UNKNOWN = "unknown"


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's "model name" from ``cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def collect() -> dict:
    """This process's provenance: the fields of ``FIELDS``. ``threads`` is torch's intra-op
    thread count now (a training cell sets it first)."""
    import torch  # here only: importing this module must not import torch

    return {
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "python_version": platform.python_version() or sys.version.split()[0],
    }


def write(path: str | Path, record: dict | None = None) -> dict:
    """Write ``record`` (default: ``collect()``) as JSON to ``path``, atomically."""
    from fedhet.io import write_text_atomic

    record = collect() if record is None else record
    write_text_atomic(json.dumps(record, indent=2, sort_keys=True) + "\n", path)
    return record


def beside(metrics_path: str | Path) -> Path:
    """Where a cell's provenance lives: ``provenance.json`` in its metrics' directory."""
    return Path(metrics_path).with_name(FILENAME)


def read(path: str | Path) -> dict:
    """A provenance record; every field ``unknown`` for a cell written before cells kept one."""
    path = Path(path)
    if not path.is_file():
        return dict.fromkeys(FIELDS, UNKNOWN)
    record = json.loads(path.read_text())
    return {field: record.get(field, UNKNOWN) for field in FIELDS}


def provenance_table(paths: list[str | Path]) -> pd.DataFrame:
    """One row per distinct (cpu_model, cpu_capability, torch_version) among the records at
    ``paths`` (``provenance.json`` files), with the number of cells (``n_cells``) and the thread
    counts seen (``threads``, sorted, ``;``-separated)."""
    records = pd.DataFrame([read(p) for p in paths], columns=list(FIELDS))
    if records.empty:
        return pd.DataFrame(columns=[*GROUP, "threads", "n_cells"])
    records["threads"] = records["threads"].astype(str)
    grouped = records.groupby(GROUP, as_index=False, dropna=False).agg(
        threads=("threads", lambda s: ";".join(sorted(set(s), key=lambda t: (len(t), t)))),
        n_cells=("threads", "size"),
    )
    return grouped.sort_values("n_cells", ascending=False, kind="stable").reset_index(drop=True)
