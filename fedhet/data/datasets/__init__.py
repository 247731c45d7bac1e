"""The datasets fedhet knows: one module each, declaring its ``SPEC`` (a
``fedhet.data.sources.DatasetSpec``), registered below. Adding a dataset is a module here and
its line in ``_MODULES``; the config schema's dataset list must name it too (a test compares
them)."""

from __future__ import annotations

from pathlib import Path

from fedhet.data.datasets import breast_mnist, fashion_mnist, pneumonia_mnist
from fedhet.data.sources import DataError, DatasetSpec, SourceData

_MODULES = (fashion_mnist, pneumonia_mnist, breast_mnist)
DATASETS: dict[str, DatasetSpec] = {module.SPEC.name: module.SPEC for module in _MODULES}


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None


def load_source(name: str, directory: str | Path) -> SourceData:
    """Read a fetched dataset from ``directory``."""
    spec = dataset_spec(name)
    return spec.reader(Path(directory), spec)
