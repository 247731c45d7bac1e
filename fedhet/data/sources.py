"""Source datasets: fetching, checksum verification and reading into numpy arrays.

Owns everything that touches the raw files: the ``DatasetSpec`` a dataset module declares (its
files and their MD5s, its reader, classes and image size), the ``SourceData`` a reader returns
(images and labels per split), fetching with checksums, and the readers of the two formats the
shipped datasets use (IDX files and MedMNIST ``.npz``). The datasets themselves are one module
each in ``fedhet.data.datasets``. Training code only ever sees ``SourceData``-derived
partitions.
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
    reader: Callable[[Path, DatasetSpec], SourceData]  # the fetched files → SourceData
    # Images per original class in the pool hospitals draw from, as distributed. Known up
    # front so that an infeasible grid is rejected when the workflow is built, before any
    # download; ``tests/test_data.py`` checks them against the files.
    pool_class_counts: dict[int, int]
    class_names: dict[int, str]  # the original classes, as the dataset's documentation names them
    image_size: int = 28  # images are image_size × image_size pixels
    channels: int = 1  # 1: grey, (N, H, W); 3: colour, (N, H, W, 3)

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


def read_medmnist(directory: Path, spec: DatasetSpec) -> SourceData:
    """A MedMNIST-format ``.npz`` (``{train,val,test}_{images,labels}``). The official splits
    keep their roles: hospitals draw from train, val is public (what public tuning trains and
    scores on, so no hospital record chooses a setting) and test is the external set."""
    (file_name,) = spec.files
    path = directory / file_name
    with np.load(path) as npz:
        missing = sorted({f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")} - set(npz.files))
        if missing:
            raise DataError(f"{path}: not a MedMNIST-format file, it lacks {', '.join(missing)}")
        splits = {}
        for split in ("train", "val", "test"):
            images, labels = npz[f"{split}_images"], npz[f"{split}_labels"].reshape(-1).astype(np.int64)
            check_images(images, labels, spec, f"{path} ({split})")
            splits[split] = (images, labels)
    return SourceData(*splits["train"], *splits["test"], *splits["val"])


def check_images(images: np.ndarray, labels: np.ndarray, spec: DatasetSpec, where: str) -> None:
    """Images must be uint8 of shape (N, size, size), or (N, size, size, channels) in colour, with
    one label each, and the labels the spec's classes."""
    colour = (spec.channels,) if spec.channels > 1 else ()
    expected = (len(labels), spec.image_size, spec.image_size, *colour)
    if images.shape != expected or images.dtype != np.uint8:
        shown = ", ".join(["N", str(spec.image_size), str(spec.image_size), *map(str, colour)])
        raise DataError(
            f"{where}: images of shape {images.shape} and type {images.dtype}; {spec.name} expects uint8 of"
            f" shape ({shown}) with N = {len(labels)} labels"
        )
    unknown = sorted(set(np.unique(labels).tolist()) - set(spec.class_names))
    if unknown:
        raise DataError(f"{where}: labels {unknown} are not classes of {spec.name} ({spec.describe_classes()})")


def binary_labels(labels: np.ndarray, abnormal_classes: list[int]) -> np.ndarray:
    """1 for the abnormal classes, 0 for the rest."""
    return np.isin(labels, np.asarray(abnormal_classes)).astype(np.int64)
