"""Records beyond the hospitals: the shared public set G and the privacy audit's canaries.

Both are drawn from the pool records no hospital of the scenario holds, at the pool's class
balance, from the same seeded permutations the hospitals were drawn from
(``fedhet.data.partition.allocate``), so drawing them never changes what a hospital holds: G from
the near end of what the hospitals left, the canaries from the far end. Written in the
hospital file format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from fedhet.data.partition import PartitionError, Scenario, allocate, images_table, table_images
from fedhet.io import atomic_output


def records_beyond(rest: dict[int, np.ndarray], size: int, binary: np.ndarray, what: str) -> dict[int, int]:
    """How many records of each class a set of ``size`` at the pool's class balance takes from
    what the hospitals left; raises naming ``what`` when the pool cannot give them."""
    n_abnormal = int(round(size * binary.mean()))
    need = {1: n_abnormal, 0: size - n_abnormal}
    for label, name in ((1, "abnormal"), (0, "normal")):
        if need[label] > len(rest[label]):
            raise PartitionError(
                f"{what}: needs {need[label]} {name} images beyond the hospitals'"
                f" but the pool has {len(rest[label])} left"
            )
    return need


def draw_shared(binary: np.ndarray, scenario: Scenario, seed: int, test_fraction: float, beta: float) -> np.ndarray:
    """The shared public set G (Zhao et al. 2018): round(β × all hospitals' training records)
    pool records no hospital holds, at the pool's class balance, taken after the hospitals
    from the same seeded permutations (so G never changes what a hospital holds)."""
    draws, rest = allocate(binary, scenario, seed, test_fraction)
    size = int(round(beta * sum(len(d.train_index) for d in draws)))
    need = records_beyond(rest, size, binary, f"shared set beta={beta:g} for {scenario.key()}")
    return np.sort(np.concatenate([rest[1][: need[1]], rest[0][: need[0]]]))


def write_shared(path: Path, images: np.ndarray, labels: np.ndarray, binary: np.ndarray, index: np.ndarray) -> None:
    """G in the hospital file format, every record a training record."""
    table = images_table(images[index], labels[index], binary[index], ["train"] * len(index), index)
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)


def draw_canaries(binary: np.ndarray, scenario: Scenario, seed: int, test_fraction: float, count: int) -> Canaries:
    """An audit's ``count`` canaries: pool records no hospital holds, at the pool's class balance,
    taken from the far end of what the hospitals left (the shared set G takes from the near
    end), each with its label flipped (a mislabelled record is what a model must memorise to
    fit, so membership shows in its loss) and included with probability ½ (seeded)."""
    _, rest = allocate(binary, scenario, seed, test_fraction)
    need = records_beyond(rest, count, binary, f"audit canaries={count} for {scenario.key()}")
    index = np.sort(np.concatenate([rest[label][len(rest[label]) - need[label] :] for label in (1, 0)]))
    included = np.random.default_rng([seed, 3, count]).random(count) < 0.5
    return Canaries(index, 1 - binary[index], included)


@dataclass(frozen=True)
class Canaries:
    source_index: np.ndarray
    labels: np.ndarray  # the flipped binary labels they are trained and scored with
    included: np.ndarray  # bool: put into the audited hospital's training data


def write_canaries(path: Path, images: np.ndarray, labels: np.ndarray, canaries: Canaries) -> None:
    """The canaries in the hospital file format (``binary_label`` flipped, ``split`` = ``train``
    where included, ``out`` where not): the auditor's record of every coin flip."""
    split = np.where(canaries.included, "train", "out").tolist()
    index = canaries.source_index
    table = images_table(images[index], labels[index], canaries.labels, split, index)
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)


def read_canaries(path: Path) -> tuple[np.ndarray, Canaries]:
    """(images, canaries) as ``write_canaries`` wrote them."""
    table = pq.read_table(path)
    images = table_images(table).copy()  # writable: torch refuses to wrap a read-only buffer
    canaries = Canaries(
        table.column("source_index").to_numpy(),
        table.column("binary_label").to_numpy().astype(np.int64),
        np.asarray(table.column("split").to_pylist()) == "train",
    )
    return images, canaries
