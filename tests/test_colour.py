"""The colour path: a MedMNIST-format RGB file (written here) through every stage."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_CONFIG
from fedhet.data import datasets
from fedhet.data.datasets import load_source
from fedhet.data.partition import Scenario, read_hospital, write_partitions
from fedhet.data.shift import ShiftSpec, apply_shift
from fedhet.data.sources import DatasetSpec, binary_labels, fetch_file, read_medmnist
from fedhet.training.cell import run_cell
from fedhet.training.model import build_model, to_tensor
from fedhet.workflow.config import Cell, model_spec


def colour_split(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Abnormal images carry a red square: learnable from colour alone."""
    labels = (np.arange(n) % 2).reshape(-1, 1)
    images = rng.integers(0, 60, size=(n, 28, 28, 3), dtype=np.uint8)
    images[labels[:, 0] == 1, 8:20, 8:20, 0] += 180
    return images, labels


@pytest.fixture()
def rgb(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 700), ("val", 60), ("test", 80)):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = colour_split(n, rng)
    source_dir = tmp_path / "mirror"
    source_dir.mkdir()
    np.savez(source_dir / "rgbmnist.npz", **arrays)
    md5 = hashlib.md5((source_dir / "rgbmnist.npz").read_bytes()).hexdigest()
    spec = DatasetSpec(
        name="rgb_mnist",
        base_url="https://example.invalid/",
        files={"rgbmnist.npz": md5},
        reader=read_medmnist,
        pool_class_counts={0: 350, 1: 350},
        class_names={0: "normal", 1: "abnormal"},
        channels=3,
    )
    monkeypatch.setitem(datasets.DATASETS, spec.name, spec)
    raw = tmp_path / "raw"
    fetch_file(spec, "rgbmnist.npz", raw / "rgbmnist.npz", [source_dir])
    return spec, raw


def test_a_colour_dataset_keeps_its_channels_from_file_to_a_trained_cell(tmp_path, rgb):
    spec, raw = rgb
    source = load_source(spec.name, raw)
    assert source.pool_images.shape == (700, 28, 28, 3) and source.public_images.shape == (60, 28, 28, 3)
    binary = binary_labels(source.pool_labels, [1])
    scenario = Scenario.parse("large1x300r0.5-small2x150r0.5")
    parts = tmp_path / "parts"
    write_partitions(parts, source.pool_images, source.pool_labels, binary, scenario, 0, 0.2)
    hospital = read_hospital(parts / "small_1.parquet", "small_1")
    assert hospital.train_images.shape == (120, 28, 28, 3) and hospital.test_images.shape == (30, 28, 28, 3)
    assert to_tensor(hospital.train_images).shape == (120, 3, 28, 28)
    config = {**TINY_CONFIG, "data": {"dataset": spec.name, "abnormal_classes": [1]}}
    assert build_model(model_spec(config), 0).conv1.in_channels == 3
    cell = Cell(scenario.key(), "federated", 0)
    run_cell(config, cell, parts, None, tmp_path / "m.parquet", tmp_path / "r.parquet")
    metrics = pd.read_parquet(tmp_path / "m.parquet").set_index(["hospital", "metric"])["value"]
    assert metrics[("small_1", "auroc")] > 0.9  # the red square is learnt through the colour channels


@pytest.mark.parametrize("kind", ["blur4", "pixelate3", "contrast3", "noise2"])
def test_a_shift_on_colour_images_keeps_their_shape_and_never_mixes_channels(kind):
    images = np.zeros((5, 28, 28, 3), np.uint8)
    images[:, 6:22, 6:22, 0] = 200  # red only
    shifted = apply_shift(images, ShiftSpec.parse(kind), np.random.default_rng(1))
    assert shifted.shape == images.shape and shifted.dtype == np.uint8
    assert not np.array_equal(shifted[..., 0], images[..., 0])
    if not kind.startswith("noise"):  # noise is drawn per channel; the others act on each channel alone
        assert not shifted[..., 1:].any()


def test_a_grey_file_is_refused_where_the_dataset_is_colour(tmp_path, rgb):
    spec, _ = rgb
    grey = tmp_path / "grey"
    grey.mkdir()
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = np.zeros((4, 28, 28), np.uint8)
        arrays[f"{split}_labels"] = np.array([[0], [1], [0], [1]])
    np.savez(grey / "rgbmnist.npz", **arrays)
    with pytest.raises(Exception, match=r"rgbmnist.npz \(train\): images of shape \(4, 28, 28\).*\(N, 28, 28, 3\)"):
        spec.reader(grey, spec)
