"""What a cell trains and is evaluated on: its holdout.

Owns the three holdouts and drawing the partitions each needs from a loaded dataset:

* ``test``: each hospital's own records, evaluated on its test split (every figure's cells);
* ``validation``: each hospital's training records split again, evaluated on the carved-off
  part (private tuning: the choice reads private records, so ``fedhet.analysis.tuning`` charges it);
* ``public``: a public proxy of every hospital (``fedhet.data.public_proxy``), so tuning reads no
  hospital's record and costs no ε.

Test splits are never read by a tuning cell.
"""

from __future__ import annotations

from pathlib import Path

from fedhet.data.partition import Scenario, draw, validation_view, write_partitions
from fedhet.data.public_proxy import draw_proxies, leftover_records, split_records
from fedhet.data.sources import SourceData, binary_labels

HOLDOUTS = ("test", "validation", "public")


def write_holdout_partitions(
    out_dir: Path, source: SourceData, data: dict, scenario: Scenario, seed: int, holdout: str = "test"
) -> dict:
    """Draw ``scenario`` at ``seed`` from ``source`` under ``data`` (the config's data section:
    abnormal classes, test and validation fractions) and write the partitions ``holdout`` needs."""
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout {holdout!r} is not one of {HOLDOUTS}")
    classes, test_fraction = data["abnormal_classes"], data["test_fraction"]
    binary = binary_labels(source.pool_labels, classes)
    images, labels = source.pool_images, source.pool_labels
    draws = draw(binary, scenario, seed, test_fraction)
    if holdout == "validation":
        draws = validation_view(draws, binary, seed, data["validation_fraction"])
    elif holdout == "public":
        if source.public_images is None:
            public = leftover_records(binary, scenario, seed, test_fraction)
        else:
            images, labels = source.public_images, source.public_labels
            public = split_records(binary_labels(labels, classes))
        draws = draw_proxies(public, draws, binary, seed, data["validation_fraction"])
        binary = public.binary
    return write_partitions(out_dir, images, labels, binary, scenario, seed, test_fraction, draws, holdout)
