import gzip
import hashlib
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from fedhet.data import sources as data
from fedhet.data.datasets import dataset_spec, load_source
from fedhet.data.datasets.fashion_mnist import SPEC as FASHION_MNIST
from fedhet.data.sources import DataError, binary_labels, fetch_file, read_idx
from fedhet.workflow.config import ConfigError, validate_config

TINY_HOSPITALS = [{"type": "large", "count": 1, "size": 100, "abnormal_ratio": 0.5}]


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    codes = {np.dtype("uint8"): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.tobytes()
    (gzip.open if compress else open)(path, "wb").write(raw)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    write_idx(path, images, compress)
    np.testing.assert_array_equal(read_idx(path), images)


def test_read_idx_big_endian_ints(tmp_path):
    values = np.array([1, -2, 70000], dtype=">i4")
    write_idx(tmp_path / "v.idx", values)
    np.testing.assert_array_equal(read_idx(tmp_path / "v.idx"), [1, -2, 70000])


def test_read_idx_rejects_truncated_and_bad_magic(tmp_path):
    write_idx(tmp_path / "x.idx", np.zeros((4, 5), dtype=np.uint8))
    raw = (tmp_path / "x.idx").read_bytes()
    (tmp_path / "short.idx").write_bytes(raw[:-3])
    with pytest.raises(DataError, match="short.idx"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "bad.idx")


def test_checksum_failure_names_file_and_keeps_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    name = "train-labels-idx1-ubyte.gz"
    (mirror / name).write_bytes(b"not the real file")
    dest = tmp_path / "out" / name
    with pytest.raises(DataError, match=name):
        fetch_file(FASHION_MNIST, name, dest, [mirror])
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_missing_mirror_file_is_named(tmp_path):
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*mirror"):
        fetch_file(FASHION_MNIST, "t10k-labels-idx1-ubyte.gz", tmp_path / "x", [tmp_path])


def test_no_network_message_explains_mirror(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="FEDHET_DATA_MIRROR"):
        fetch_file(FASHION_MNIST, "t10k-labels-idx1-ubyte.gz", tmp_path / "x", None)
    assert not (tmp_path / "x").exists()


def test_mirror_env_overrides_config(monkeypatch, tmp_path):
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path))
    assert data.resolve_mirror("/somewhere/else") == [tmp_path]
    monkeypatch.delenv(data.MIRROR_ENV)
    assert data.resolve_mirror("/somewhere/else") == [Path("/somewhere/else")]
    assert data.resolve_mirror(None) is None


def test_a_mirror_list_is_searched_in_order(monkeypatch, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    name = "t10k-labels-idx1-ubyte.gz"
    for directory, content in ((first, b"corrupt"), (second, b"also corrupt")):
        directory.mkdir()
        (directory / name).write_bytes(content)
    monkeypatch.setenv(data.MIRROR_ENV, f"{tmp_path / 'none'}{os.pathsep}{second}{os.pathsep}{first}")
    mirrors = data.resolve_mirror(None)
    assert mirrors == [tmp_path / "none", second, first]
    # the first directory that has the file is used (and its bytes are checked)
    monkeypatch.setattr(
        data, "md5sum", lambda path: FASHION_MNIST.files[name] if path.read_bytes() == b"also corrupt" else "x"
    )
    fetch_file(FASHION_MNIST, name, tmp_path / "out" / name, mirrors)
    assert (tmp_path / "out" / name).read_bytes() == b"also corrupt"
    with pytest.raises(DataError, match=f"{name}: not found in mirror directory {tmp_path / 'none'}"):
        fetch_file(FASHION_MNIST, name, tmp_path / "x", [tmp_path / "none"])


@pytest.mark.parametrize(
    "dataset, classes, message",
    [
        (
            "fashion_mnist",
            [7, 10],
            r"data.abnormal_classes: \[10\] is not a class of fashion_mnist, whose classes are 0 T-shirt/top, .*",
        ),
        (
            "pneumonia_mnist",
            [1, 2, 3],
            r"\[2, 3\] are not classes of pneumonia_mnist, whose classes are 0 normal, 1 pneumonia",
        ),
        ("pneumonia_mnist", [0, 1], r"data.abnormal_classes: \[0, 1\] leaves no normal class in pneumonia_mnist"),
    ],
)
def test_abnormal_classes_must_be_the_datasets_and_leave_a_normal_one(dataset, classes, message):
    config = {"data": {"dataset": dataset, "abnormal_classes": classes}, "hospitals": TINY_HOSPITALS}
    with pytest.raises(ConfigError, match=message):
        validate_config(config)
    config["data"]["abnormal_classes"] = classes[:1]
    validate_config(config)  # a class the dataset has, with normal ones left, passes


def test_real_fashion_mnist(fashion_mirror, tmp_path):
    for name in FASHION_MNIST.files:
        fetch_file(FASHION_MNIST, name, tmp_path / name, [fashion_mirror])
        assert hashlib.md5((tmp_path / name).read_bytes()).hexdigest() == FASHION_MNIST.files[name]
    source = load_source("fashion_mnist", tmp_path)
    assert source.pool_images.shape == (60000, 28, 28) and source.pool_images.dtype == np.uint8
    assert source.external_images.shape == (10000, 28, 28)
    assert dict(enumerate(np.bincount(source.pool_labels).tolist())) == FASHION_MNIST.pool_class_counts
    assert source.public_images is None  # public tuning draws from the records no hospital holds
    binary = binary_labels(source.pool_labels, [7, 8, 9])
    assert (binary.sum(), len(binary) - binary.sum()) == data.pool_counts(FASHION_MNIST, [7, 8, 9]) == (18000, 42000)


def test_pneumonia_mnist_plugs_in(tmp_path, monkeypatch, medmnist_mirror):
    mirror = medmnist_mirror
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))  # the production path: the variable wins over config
    spec = dataset_spec("pneumonia_mnist")
    fetch_file(spec, "pneumoniamnist.npz", tmp_path / "pneumoniamnist.npz", data.resolve_mirror("/nonexistent"))
    source = load_source("pneumonia_mnist", tmp_path)
    assert source.pool_images.shape == (4708, 28, 28)  # the official train split
    assert set(np.unique(source.pool_labels)) == {0, 1}
    assert dict(enumerate(np.bincount(source.pool_labels).tolist())) == spec.pool_class_counts == {0: 1214, 1: 3494}
    # the official val split is public: what public tuning draws its proxies from
    assert source.public_images.shape == (524, 28, 28)
    assert np.bincount(source.public_labels).tolist() == [135, 389]
    # the official test split is the external set
    assert source.external_images.shape == (624, 28, 28)
    assert np.bincount(source.external_labels).tolist() == [234, 390]


def test_breast_mnist_plugs_in(tmp_path, medmnist_mirror):
    spec = dataset_spec("breast_mnist")
    fetch_file(spec, "breastmnist.npz", tmp_path / "breastmnist.npz", [medmnist_mirror])
    source = load_source("breast_mnist", tmp_path)
    assert dict(enumerate(np.bincount(source.pool_labels).tolist())) == spec.pool_class_counts == {0: 147, 1: 399}
    assert source.public_images.shape == (78, 28, 28) and source.external_images.shape == (156, 28, 28)
    # malignant (class 0) is the abnormal class of config/breast.yaml
    assert data.pool_counts(spec, [0]) == (147, 399)


def write_npz(path, images, labels, **drop):
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    for key in drop:
        arrays.pop(key)
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "images, drop, message",
    [
        (
            np.zeros((4, 32, 32), np.uint8),
            {},
            r"\(train\): images of shape \(4, 32, 32\) .* expects uint8 of shape \(N, 28, 28\)",
        ),
        (np.zeros((4, 28, 28, 3), np.uint8), {}, r"images of shape \(4, 28, 28, 3\)"),
        (np.zeros((4, 28, 28), np.float32), {}, r"type float32"),
        (np.zeros((4, 28, 28), np.uint8), {"val_labels": True}, r"not a MedMNIST-format file, it lacks val_labels"),
    ],
)
def test_a_medmnist_file_of_another_shape_is_refused_naming_the_file(tmp_path, images, drop, message):
    spec = dataset_spec("breast_mnist")
    write_npz(tmp_path / "breastmnist.npz", images, np.array([[0], [1], [0], [1]]), **drop)
    with pytest.raises(DataError, match="breastmnist.npz.*" + message):
        spec.reader(tmp_path, spec)


def test_labels_outside_the_datasets_classes_are_refused(tmp_path):
    spec = dataset_spec("breast_mnist")
    write_npz(tmp_path / "breastmnist.npz", np.zeros((3, 28, 28), np.uint8), np.array([[0], [1], [2]]))
    with pytest.raises(DataError, match=r"labels \[2\] are not classes of breast_mnist"):
        spec.reader(tmp_path, spec)
