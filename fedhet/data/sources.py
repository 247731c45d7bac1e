"""Source datasets: fetching, checksum verification and reading into numpy arrays.

Owns everything that touches the raw files. A dataset is described by a ``DatasetSpec``
(its files and their MD5s) and read into a ``SourceData`` (images, labels, per split).
Training code only ever sees ``SourceData``-derived partitions, so a new dataset plugs
in by adding a spec and a reader here.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIRROR_ENV = "FEDHET_DATA_MIRROR"


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or unreachable."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    base_url: str
    files: dict[str, str]  # file name -> MD5 of the file as distributed
    reader: str  # key into READERS
    # Images per original class in the pool hospitals draw from, as distributed. Known up
    # front so that an infeasible grid is rejected when the workflow is built, before any
    # download; ``tests/test_data.py`` checks them against the files.
    pool_class_counts: dict[int, int]
    class_names: dict[int, str]  # the original classes, as the dataset's documentation names them

    def describe_classes(self) -> str:
        return ", ".join(f"{c} {name}" for c, name in self.class_names.items())


@dataclass(frozen=True)
class SourceData:
    """One dataset in memory: the pool hospitals draw from, an external test set and, where the
    dataset ships one, a public split no hospital holds (what public tuning trains on)."""

    pool_images: np.ndarray  # (N, H, W) uint8
    pool_labels: np.ndarray  # (N,) int64, original class labels
    external_images: np.ndarray
    external_labels: np.ndarray
    # None: public tuning draws from the pool records no hospital holds (fedhet.data.public_proxy)
    public_images: np.ndarray | None = None
    public_labels: np.ndarray | None = None


FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    files={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    reader="idx",
    pool_class_counts={c: 6000 for c in range(10)},
    class_names=dict(
        enumerate(
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        )
    ),
)

PNEUMONIA_MNIST = DatasetSpec(
    name="pneumonia_mnist",
    base_url="https://zenodo.org/records/10519652/files/",
    files={"pneumoniamnist.npz": "28209eda62fecd6e6a2d98b1501bb15f"},
    reader="medmnist",
    pool_class_counts={0: 1214, 1: 3494},  # the official train split
    class_names={0: "normal", 1: "pneumonia"},
)

DATASETS = {spec.name: spec for spec in (FASHION_MNIST, PNEUMONIA_MNIST)}


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None


def check_abnormal_classes(spec: DatasetSpec, abnormal_classes: list[int]) -> None:
    """The relabelling must name classes the dataset has and leave at least one normal class."""
    unknown = sorted(set(abnormal_classes) - set(spec.class_names))
    if unknown:
        raise DataError(
            f"data.abnormal_classes: {unknown} {'is not a class' if len(unknown) == 1 else 'are not classes'} of"
            f" {spec.name}, whose classes are {spec.describe_classes()}"
        )
    if set(spec.class_names) <= set(abnormal_classes):
        raise DataError(
            f"data.abnormal_classes: {sorted(abnormal_classes)} leaves no normal class in {spec.name}"
            f" (classes {spec.describe_classes()})"
        )


def pool_counts(spec: DatasetSpec, abnormal_classes: list[int]) -> tuple[int, int]:
    """(abnormal, normal) images in the pool under the given relabelling."""
    abnormal = sum(n for c, n in spec.pool_class_counts.items() if c in abnormal_classes)
    return abnormal, sum(spec.pool_class_counts.values()) - abnormal


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_mirror(configured: str | None) -> list[Path] | None:
    """The mirror directories to copy from, searched in order (several joined by ``os.pathsep``,
    e.g. one per dataset): the environment variable wins over config."""
    value = os.environ.get(MIRROR_ENV) or configured
    return [Path(part) for part in value.split(os.pathsep) if part] if value else None


def fetch_file(spec: DatasetSpec, file_name: str, dest: Path, mirror: list[Path] | None) -> Path:
    """Copy (mirror) or download (official source) one file, verify its MD5, then move it
    into place. A bad or partial file never remains at ``dest``."""
    expected = spec.files[file_name]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        if mirror is not None:
            found = [directory / file_name for directory in mirror if (directory / file_name).is_file()]
            if not found:
                where = ", ".join(str(d) for d in mirror)
                raise DataError(
                    f"{file_name}: not found in mirror directory {where} (set by config data.mirror or ${MIRROR_ENV})"
                )
            shutil.copyfile(found[0], tmp)
        else:
            _download(spec.base_url + file_name, tmp, file_name)
        actual = md5sum(tmp)
        if actual != expected:
            raise DataError(
                f"{file_name}: MD5 {actual} does not match the official {expected} "
                "(truncated or corrupt file); it was not kept"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _download(url: str, dest: Path, file_name: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as err:
        raise DataError(
            f"{file_name}: could not download {url} ({err}). Without network access, put the "
            f"official files in a directory and point config data.mirror or ${MIRROR_ENV} at it"
        ) from err


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataError(f"{path}: unknown IDX data type 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header promises {expected} data bytes for shape {shape}, file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _read_fashion(directory: Path, spec: DatasetSpec) -> SourceData:
    return SourceData(
        pool_images=read_idx(directory / "train-images-idx3-ubyte.gz"),
        pool_labels=read_idx(directory / "train-labels-idx1-ubyte.gz").astype(np.int64),
        external_images=read_idx(directory / "t10k-images-idx3-ubyte.gz"),
        external_labels=read_idx(directory / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
    )


def _read_medmnist(directory: Path, spec: DatasetSpec) -> SourceData:
    (file_name,) = spec.files
    with np.load(directory / file_name) as npz:
        # The official splits keep their roles: hospitals draw from train, val is public (what
        # public tuning trains and scores on, so no hospital record chooses a setting) and test
        # is the external set.
        return SourceData(
            pool_images=npz["train_images"],
            pool_labels=npz["train_labels"].reshape(-1).astype(np.int64),
            external_images=npz["test_images"],
            external_labels=npz["test_labels"].reshape(-1).astype(np.int64),
            public_images=npz["val_images"],
            public_labels=npz["val_labels"].reshape(-1).astype(np.int64),
        )


READERS: dict[str, Callable[[Path, DatasetSpec], SourceData]] = {"idx": _read_fashion, "medmnist": _read_medmnist}


def load_source(name: str, directory: Path) -> SourceData:
    """Read a fetched dataset from ``directory``."""
    spec = dataset_spec(name)
    return READERS[spec.reader](Path(directory), spec)


def binary_labels(labels: np.ndarray, abnormal_classes: list[int]) -> np.ndarray:
    """1 for the abnormal classes, 0 for the rest."""
    return np.isin(labels, np.asarray(abnormal_classes)).astype(np.int64)
