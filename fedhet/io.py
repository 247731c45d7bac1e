"""Writing outputs: every file fedhet writes goes through here, into a temporary sibling
renamed into place only when the write succeeds, so that a failed job never leaves a
half-written output behind for Snakemake to mistake for a finished one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write to; rename it into place only if the
    block succeeds, so a failed job never leaves a half-written output behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(text: str, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_csv_atomic(df: pd.DataFrame, path: str | Path) -> None:
    write_text_atomic(df.to_csv(index=False, float_format="%.6g"), path)
