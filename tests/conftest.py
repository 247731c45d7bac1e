"""Shared fixtures: the FashionMNIST mirror and small synthetic hospitals."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from fedhet.data.datasets import dataset_spec
from fedhet.data.partition import HospitalData, Scenario, write_partitions
from fedhet.data.sources import MIRROR_ENV, DataError, fetch_file

REPO = Path(__file__).resolve().parent.parent
OUT = "results/fashion_mnist"  # where the quick config's outputs go (no run name; its dataset)


def _data_dir(marker: str, shared: str) -> Path | None:
    """The first directory holding ``marker``: among $FEDHET_DATA_MIRROR's (``os.pathsep``-
    separated), then the checkout's ../shared/data/<shared>. Absolute: the workflow tests run
    in other directories."""
    listed = [Path(p) for p in (os.environ.get(MIRROR_ENV) or "").split(os.pathsep) if p]
    for candidate in [*listed, REPO.parent / "shared" / "data" / shared]:
        if (candidate / marker).is_file():
            return candidate.resolve()
    return None


def mirror_dir() -> Path | None:
    return _data_dir("train-labels-idx1-ubyte.gz", "fashion-mnist")


def medmnist_dir() -> Path | None:
    return _data_dir("pneumoniamnist.npz", "medmnist")


def _downloaded(dataset: str) -> Path | None:
    """The dataset's official files, downloaded once into a cache (``$FEDHET_TEST_CACHE``,
    default ~/.cache/fedhet), MD5-checked; None where they cannot be fetched."""
    spec = dataset_spec(dataset)
    cache = Path(os.environ.get("FEDHET_TEST_CACHE") or Path.home() / ".cache" / "fedhet") / dataset
    try:
        for name in spec.files:
            if not (cache / name).is_file():
                fetch_file(spec, name, cache / name, mirror=None)
    except DataError:
        return None
    return cache


def _found(path: Path | None, dataset: str) -> Path:
    """A directory with ``dataset``'s official files: a mirror, else a download; else the test
    is skipped with what to do."""
    path = path or _downloaded(dataset)
    if path is None:
        spec = dataset_spec(dataset)
        pytest.skip(
            f"no {dataset} files and no network: download {', '.join(spec.files)} from {spec.base_url}"
            f" into a directory and name it in ${MIRROR_ENV}"
        )
    return path


@pytest.fixture(scope="session")
def medmnist_mirror() -> Path:
    return _found(medmnist_dir(), "pneumonia_mnist")


@pytest.fixture(scope="session")
def fashion_mirror() -> Path:
    return _found(mirror_dir(), "fashion_mnist")


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "rules", "scripts", "config", "envs", "report", "profiles"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, overrides: dict | None = None, mirror: Path | str) -> str:
    configfiles = ["config/quick.yaml"]
    if overrides:
        (workdir / "override.yaml").write_text(yaml.safe_dump(overrides))
        configfiles.append("override.yaml")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", *configfiles]
    env = {**os.environ, "FEDHET_DATA_MIRROR": str(mirror)}
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done.stdout + done.stderr


@pytest.fixture(scope="session")
def quick_build(tmp_path_factory, fashion_mirror) -> Path:
    """The quick DAG built once (``snakemake all`` on config/quick.yaml): the workflow tests
    read it, and the SLURM test compares the cells it sends through SLURM with it."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(workdir, "all", mirror=fashion_mirror)
    return workdir


TINY = {
    "data": {"dataset": "fashion_mnist", "abnormal_classes": [7, 8, 9]},
    "hospitals": [
        {"type": "large", "count": 1, "size": 600, "abnormal_ratio": 0.5},
        {"type": "small", "count": 2, "size": 150, "abnormal_ratio": 0.2},
    ],
    "training": {"rounds": 1},
    "evaluation": {"every_round": False},
    "experiments": {},
}


@pytest.fixture()
def tiny_config(tmp_path, fashion_mirror, monkeypatch) -> Path:
    """A config file of three small hospitals and one round, for end-to-end cells in seconds."""
    monkeypatch.setenv("FEDHET_DATA_MIRROR", str(fashion_mirror))
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def synthetic_hospital(name: str, n_train: int, n_test: int, ratio: float, seed: int) -> HospitalData:
    """Images whose label is visible (a bright square for abnormal): learnable in a few steps."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = (np.arange(n) < round(n * ratio)).astype(np.int64)
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        images[labels == 1, 8:20, 8:20] += 150
        return images, labels

    train_images, train_labels = make(n_train)
    test_images, test_labels = make(n_test)
    return HospitalData(name, train_images, train_labels, test_images, test_labels)


@pytest.fixture(scope="session")
def tiny_partitions(tmp_path_factory):
    rng = np.random.default_rng(0)
    binary = np.arange(900) % 2
    images, labels = rng.integers(0, 256, (900, 28, 28), dtype=np.uint8), binary * 7
    scenario = Scenario.parse("large1x300r0.5-small2x250r0.5")
    parts = tmp_path_factory.mktemp("parts")
    write_partitions(parts, images, labels, binary, scenario, 0, 0.2)
    return scenario, parts


# A cell small enough for unit tests (run_cell on tiny_partitions).
TINY_CONFIG = {
    "model": {"conv1_channels": 4, "conv2_channels": 8, "kernel_size": 5},
    "training": {"rounds": 2, "batch_size": 16},
    "evaluation": {"threshold": 0.5, "every_round": False},
}
