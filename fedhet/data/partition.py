"""Hospital partitions: which source images each hospital holds, and its train/test split.

Owns the ``Scenario`` (hospital groups with sizes and abnormal ratios), its canonical
string key (used in output paths, so a path names its parameters), the feasibility
checks, the seeded disjoint draw (``allocate``: also what the hospitals leave, which
``fedhet.data.beyond_hospitals`` and ``fedhet.data.public_proxy`` draw from), the validation view, and
the per-hospital Parquet files plus manifest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedhet.data.shift import ShiftSpec, apply_shift, normalise_shift
from fedhet.io import atomic_output


class PartitionError(ValueError):
    """A requested partition cannot be drawn from the pool."""


@dataclass(frozen=True)
class HospitalGroup:
    """``count`` hospitals of one type, each with ``size`` images at ``abnormal_ratio``, and
    optionally a scanner ``shift`` (a ``fedhet.data.shift.ShiftSpec`` key; '' for none)."""

    type: str
    count: int
    size: int
    abnormal_ratio: float
    shift: str = ""

    @property
    def n_abnormal(self) -> int:
        return int(round(self.size * self.abnormal_ratio))

    @property
    def n_normal(self) -> int:
        return self.size - self.n_abnormal


_GROUP_KEY = re.compile(
    r"(?P<type>[a-z][a-z0-9_]*?)(?P<count>\d+)x(?P<size>\d+)r(?P<ratio>[0-9.e-]+?)(?:_(?P<shift>[a-z]+[1-5]))?"
)


@dataclass(frozen=True)
class Scenario:
    groups: tuple[HospitalGroup, ...]

    def key(self) -> str:
        """Canonical path component, e.g. ``large1x30000r0.5-small4x3000r0.1`` (with a scanner
        shift at the small hospitals: ``…-small4x3000r0.1_blur3``)."""
        return "-".join(
            f"{g.type}{g.count}x{g.size}r{g.abnormal_ratio:g}" + (f"_{g.shift}" if g.shift else "") for g in self.groups
        )

    @classmethod
    def parse(cls, key: str) -> Scenario:
        groups = []
        # Groups are joined by "-", and a type starts with a letter: a ratio's exponent (1e-05) is no join.
        for part in re.split(r"-(?=[a-z])", key):
            match = _GROUP_KEY.fullmatch(part)
            if not match:
                raise PartitionError(f"scenario key {key!r}: cannot parse {part!r}")
            groups.append(
                HospitalGroup(
                    type=match["type"],
                    count=int(match["count"]),
                    size=int(match["size"]),
                    abnormal_ratio=float(match["ratio"]),
                    shift=match["shift"] or "",
                )
            )
        return cls(tuple(groups))

    @classmethod
    def from_config(cls, hospitals: list[dict]) -> Scenario:
        return cls(tuple(HospitalGroup(**{**h, "shift": normalise_shift(h.get("shift"))}) for h in hospitals))

    def hospitals(self) -> list[tuple[str, HospitalGroup]]:
        """Hospital names (``large_1``, ``small_1`` … ``small_4``) with their group."""
        return [(f"{g.type}_{i + 1}", g) for g in self.groups for i in range(g.count)]

    def hospitals_by_type(self) -> list[tuple[str, str]]:
        return [(name, group.type) for name, group in self.hospitals()]

    def hospital_names(self) -> list[str]:
        return [name for name, _ in self.hospitals()]


def split_counts(n: int, test_fraction: float) -> tuple[int, int]:
    """(train, test) sizes of one class under a stratified split."""
    n_test = int(round(n * test_fraction))
    return n - n_test, n_test


def check_feasible(scenario: Scenario, n_pool_abnormal: int, n_pool_normal: int, test_fraction: float) -> None:
    """Raise ``PartitionError`` naming the numbers if the scenario cannot be drawn."""
    for g in scenario.groups:
        if not 0.0 <= g.abnormal_ratio <= 1.0:
            raise PartitionError(f"hospital type {g.type!r}: abnormal_ratio {g.abnormal_ratio} is outside [0, 1]")
        if g.count < 1 or g.size < 1:
            raise PartitionError(f"hospital type {g.type!r}: count {g.count} and size {g.size} must be ≥ 1")
        for label, n in (("abnormal", g.n_abnormal), ("normal", g.n_normal)):
            n_train, n_test = split_counts(n, test_fraction)
            if n > 0 and (n_train < 1 or n_test < 1):
                raise PartitionError(
                    f"hospital type {g.type!r}: {n} {label} images (size {g.size} × ratio "
                    f"{g.abnormal_ratio}) are too few for a stratified {1 - test_fraction:g}/"
                    f"{test_fraction:g} split: train gets {n_train}, test gets {n_test}"
                )
    need_abnormal = sum(g.count * g.n_abnormal for g in scenario.groups)
    need_normal = sum(g.count * g.n_normal for g in scenario.groups)
    for label, need, have in (
        ("abnormal", need_abnormal, n_pool_abnormal),
        ("normal", need_normal, n_pool_normal),
    ):
        if need > have:
            detail = ", ".join(
                f"{g.count} × {g.type} ({g.n_abnormal if label == 'abnormal' else g.n_normal})" for g in scenario.groups
            )
            raise PartitionError(
                f"scenario {scenario.key()}: needs {need} {label} images ({detail}) but the pool holds only {have}"
            )


@dataclass(frozen=True)
class HospitalDraw:
    name: str
    type: str
    train_index: np.ndarray  # indices into the source pool
    test_index: np.ndarray


def draw(binary: np.ndarray, scenario: Scenario, seed: int, test_fraction: float) -> list[HospitalDraw]:
    """Draw every hospital's images without replacement, stratified train/test split.

    Hospitals take consecutive slices of one seeded permutation of each class, smallest
    groups first. So for a fixed seed the small hospitals hold the same images whatever
    the large hospital's size or ratio: sweeps over the large hospital compare like with
    like (common random numbers) instead of adding resampling noise.
    """
    return allocate(binary, scenario, seed, test_fraction)[0]


def allocate(
    binary: np.ndarray, scenario: Scenario, seed: int, test_fraction: float
) -> tuple[list[HospitalDraw], dict[int, np.ndarray]]:
    """The hospitals' draws and, per class, the permuted pool records no hospital took."""
    abnormal_pool = np.flatnonzero(binary == 1)
    normal_pool = np.flatnonzero(binary == 0)
    check_feasible(scenario, len(abnormal_pool), len(normal_pool), test_fraction)
    rng = np.random.default_rng(seed)
    pools = {1: rng.permutation(abnormal_pool), 0: rng.permutation(normal_pool)}
    cursor = {0: 0, 1: 0}
    by_name = {}
    order = sorted(scenario.hospitals(), key=lambda item: item[1].size)
    for name, group in order:
        train_parts, test_parts = [], []
        for label, n in ((1, group.n_abnormal), (0, group.n_normal)):
            taken = pools[label][cursor[label] : cursor[label] + n]
            cursor[label] += n
            n_train, _ = split_counts(n, test_fraction)
            train_parts.append(taken[:n_train])
            test_parts.append(taken[n_train:])
        by_name[name] = HospitalDraw(
            name=name,
            type=group.type,
            train_index=np.sort(np.concatenate(train_parts)),
            test_index=np.sort(np.concatenate(test_parts)),
        )
    rest = {label: pools[label][cursor[label] :] for label in pools}
    return [by_name[name] for name in scenario.hospital_names()], rest


def validation_view(draws: list[HospitalDraw], binary: np.ndarray, seed: int, fraction: float) -> list[HospitalDraw]:
    """Each hospital's training records split again, stratified: ``fraction`` of them become
    its validation split (in the place of the test split, which is left out entirely), the
    rest its training split. Hyperparameters are chosen on these, never on a test split."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for hospital in draws:
        train_parts, val_parts = [], []
        for label in (1, 0):
            records = rng.permutation(hospital.train_index[binary[hospital.train_index] == label])
            n_train, _ = split_counts(len(records), fraction)
            train_parts.append(records[:n_train])
            val_parts.append(records[n_train:])
        out.append(
            HospitalDraw(
                hospital.name,
                hospital.type,
                np.sort(np.concatenate(train_parts)),
                np.sort(np.concatenate(val_parts)),
            )
        )
    return out


def hospital_table(
    images: np.ndarray, labels: np.ndarray, binary: np.ndarray, hospital: HospitalDraw, scanner: Scanner | None = None
) -> pa.Table:
    """One hospital's records; with a ``scanner``, its images as that scanner records them."""
    index = np.concatenate([hospital.train_index, hospital.test_index])
    split = ["train"] * len(hospital.train_index) + ["test"] * len(hospital.test_index)
    pixels = images[index] if scanner is None else apply_shift(images[index], scanner.spec, scanner.rng)
    return images_table(pixels, labels[index], binary[index], split, index)


@dataclass(frozen=True)
class Scanner:
    """A hospital's acquisition shift and the generator its random parts draw from."""

    spec: ShiftSpec
    rng: np.random.Generator


def scanners(scenario: Scenario, seed: int) -> dict[str, Scanner]:
    """The shifted hospitals' scanners, each seeded by (partition seed, hospital position): the
    same seed redraws the same shifted images."""
    return {
        name: Scanner(ShiftSpec.parse(group.shift), np.random.default_rng([seed, 2, i]))
        for i, (name, group) in enumerate(scenario.hospitals())
        if group.shift
    }


def images_table(
    images: np.ndarray, labels: np.ndarray, binary: np.ndarray, split: list[str], source_index: np.ndarray
) -> pa.Table:
    shape = list(images.shape[1:])  # (H, W), or (H, W, C) in colour
    flat = pa.array(np.ascontiguousarray(images, dtype=np.uint8).reshape(-1))
    table = pa.table(
        {
            "image": pa.FixedSizeListArray.from_arrays(flat, int(np.prod(shape))),
            "label": pa.array(labels, pa.int64()),
            "binary_label": pa.array(binary, pa.int8()),
            "split": pa.array(split, pa.string()).dictionary_encode(),
            "source_index": pa.array(source_index, pa.int64()),
        }
    )
    return table.replace_schema_metadata({"image_shape": json.dumps(shape)})


def write_external(path: Path, images: np.ndarray, labels: np.ndarray, binary: np.ndarray) -> None:
    """The dataset's official test set, in the hospital file format (all rows ``test``)."""
    table = images_table(images, labels, binary, ["test"] * len(labels), np.arange(len(labels)))
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)


@dataclass(frozen=True)
class HospitalData:
    """One hospital's images as loaded by a client. Never sent to the server."""

    name: str
    train_images: np.ndarray  # (n, H, W) uint8
    train_labels: np.ndarray  # (n,) binary
    test_images: np.ndarray
    test_labels: np.ndarray


def table_images(table: pa.Table) -> np.ndarray:
    """The (n, H, W) (or, in colour, (n, H, W, C)) uint8 images of a table written by
    ``images_table``."""
    shape = json.loads(table.schema.metadata[b"image_shape"])
    return table.column("image").combine_chunks().values.to_numpy().reshape(-1, *shape)


def read_hospital(path: Path, name: str | None = None) -> HospitalData:
    table = pq.read_table(path)
    images = table_images(table)
    binary = table.column("binary_label").to_numpy().astype(np.int64)
    is_train = np.asarray(table.column("split").to_pylist()) == "train"
    return HospitalData(
        name=name or Path(path).stem,
        train_images=images[is_train],
        train_labels=binary[is_train],
        test_images=images[~is_train],
        test_labels=binary[~is_train],
    )


def manifest(
    scenario: Scenario, seed: int, test_fraction: float, draws: list[HospitalDraw], binary: np.ndarray
) -> dict:
    shifts = {name: group.shift for name, group in scenario.hospitals()}
    hospitals = []
    for hospital in draws:
        shift = shifts[hospital.name]
        row = {
            "hospital": hospital.name,
            "type": hospital.type,
            "shift": shift,  # the scanner its images were recorded with ('' for the source's own)
            "shift_parameter": ShiftSpec.parse(shift).parameter if shift else None,
        }
        for split, index in (("train", hospital.train_index), ("test", hospital.test_index)):
            row[f"n_{split}"] = int(len(index))
            row[f"n_{split}_abnormal"] = int(binary[index].sum())
            row[f"prevalence_{split}"] = float(binary[index].mean()) if len(index) else float("nan")
        hospitals.append(row)
    return {
        "scenario": scenario.key(),
        "groups": [asdict(g) for g in scenario.groups],
        "seed": seed,
        "test_fraction": test_fraction,
        "hospitals": hospitals,
    }


def write_partitions(
    out_dir: Path,
    images: np.ndarray,
    labels: np.ndarray,
    binary: np.ndarray,
    scenario: Scenario,
    seed: int,
    test_fraction: float,
    draws: list[HospitalDraw] | None = None,
    holdout: str = "test",
) -> dict:
    """Write ``<hospital>.parquet`` files and ``manifest.json`` into ``out_dir``: the hospitals'
    ``draw`` or, given, other ``draws`` indexing ``images`` (a validation view, public proxies:
    ``fedhet.data.holdout``), recorded under ``holdout``.

    Everything is written to a sibling temporary directory first and renamed at the end,
    so an error (including an infeasible request, checked before any write) leaves nothing.
    """
    if draws is None:
        draws = draw(binary, scenario, seed, test_fraction)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        shifted = scanners(scenario, seed)
        for hospital in draws:
            table = hospital_table(images, labels, binary, hospital, shifted.get(hospital.name))
            pq.write_table(table, tmp / f"{hospital.name}.parquet")
        info = manifest(scenario, seed, test_fraction, draws, binary)
        info["holdout"] = holdout
        (tmp / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info
