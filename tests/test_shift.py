"""Scanner shift: the transforms, and what a shifted partition is."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fedhet.data.partition import HospitalGroup, Scenario, write_partitions
from fedhet.data.shift import KINDS, ShiftSpec, apply_shift, normalise_shift
from fedhet.workflow.config import ConfigError, validate_config
from fedhet.workflow.experiments import ExperimentError, grid_points

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(30, 226, size=(64, 28, 28), dtype=np.uint8)  # mid-range: no clipping hides a change


def test_shift_keys_round_trip_and_unknown_kinds_are_named():
    for kind in KINDS:
        for severity in range(1, 6):
            spec = ShiftSpec(kind, severity)
            assert ShiftSpec.parse(spec.key()) == spec
    assert normalise_shift("none") == normalise_shift(None) == ""
    with pytest.raises(ValueError, match="'sharpen2'.*kind one of"):
        ShiftSpec.parse("sharpen2")
    with pytest.raises(ValueError, match="'blur6'"):
        ShiftSpec.parse("blur6")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_changes_images_reproducibly_and_more_with_severity(kind):
    distances = []
    for severity in (1, 5):
        spec = ShiftSpec(kind, severity)
        a = apply_shift(IMAGES, spec, np.random.default_rng(7))
        b = apply_shift(IMAGES, spec, np.random.default_rng(7))
        assert a.dtype == np.uint8 and a.shape == IMAGES.shape
        np.testing.assert_array_equal(a, b)  # same generator, same images
        distances.append(np.abs(a.astype(float) - IMAGES).mean())
    assert 0 < distances[0] < distances[1], distances


def test_the_transforms_do_what_their_names_say():
    x = IMAGES.astype(float)
    dark = apply_shift(IMAGES, ShiftSpec("brightness", 5), RNG).astype(float)
    assert dark.mean() == pytest.approx(0.5 * x.mean(), rel=0.01)
    flat = apply_shift(IMAGES, ShiftSpec("contrast", 5), RNG).astype(float)
    assert flat.std(axis=(1, 2)).mean() == pytest.approx(0.4 * x.std(axis=(1, 2)).mean(), rel=0.02)
    assert flat.mean() == pytest.approx(x.mean(), abs=0.5)  # contrast about each image's mean
    blurred = apply_shift(IMAGES, ShiftSpec("blur", 5), RNG).astype(float)
    assert np.abs(np.diff(blurred, axis=2)).mean() < 0.5 * np.abs(np.diff(x, axis=2)).mean()
    coarse = apply_shift(IMAGES, ShiftSpec("pixelate", 5), RNG)  # 28 px at 0.4 → 11 blocks a side
    assert max(len(np.unique(row)) for row in coarse[0]) <= 11
    noisy = [apply_shift(IMAGES, ShiftSpec("noise", 3), np.random.default_rng(s)) for s in (1, 2)]
    assert not np.array_equal(*noisy)  # the noise is the generator's


def partition(tmp_path, name: str, scenario: Scenario, seed: int = 3) -> dict[str, pd.DataFrame]:
    labels = np.arange(600) % 10
    binary = (labels >= 7).astype(np.int64)
    images = np.random.default_rng(1).integers(0, 256, size=(600, 28, 28), dtype=np.uint8)
    write_partitions(tmp_path / name, images, labels, binary, scenario, seed, 0.2)
    return {h: pq.read_table(tmp_path / name / f"{h}.parquet").to_pandas() for h in scenario.hospital_names()}


def test_a_shifted_partition_differs_only_in_the_shifted_hospitals_images(tmp_path):
    plain = Scenario((HospitalGroup("large", 1, 200, 0.5), HospitalGroup("small", 2, 50, 0.2)))
    shifted = Scenario((HospitalGroup("large", 1, 200, 0.5), HospitalGroup("small", 2, 50, 0.2, "gamma4")))
    assert shifted.key() == "large1x200r0.5-small2x50r0.2_gamma4" != plain.key()  # its own path
    assert Scenario.parse(shifted.key()) == shifted
    a, b = partition(tmp_path, "plain", plain), partition(tmp_path, "shifted", shifted)
    again = partition(tmp_path, "again", shifted)
    for hospital in a:
        pd.testing.assert_frame_equal(a[hospital].drop(columns="image"), b[hospital].drop(columns="image"))
        same_images = all(np.array_equal(x, y) for x, y in zip(a[hospital]["image"], b[hospital]["image"], strict=True))
        assert same_images == hospital.startswith("large"), hospital  # the small hospitals' scanner only
        pd.testing.assert_frame_equal(b[hospital], again[hospital])  # reproducible from the seed
    manifest = json.loads((tmp_path / "shifted" / "manifest.json").read_text())
    assert {h["hospital"]: h["shift"] for h in manifest["hospitals"]} == {
        "large_1": "",
        "small_1": "gamma4",
        "small_2": "gamma4",
    }
    assert manifest["hospitals"][1]["shift_parameter"] == 1.4


def test_shift_in_config_and_grid_is_checked_and_keyed():
    hospitals = [
        {"type": "large", "count": 1, "size": 200, "abnormal_ratio": 0.5},
        {"type": "small", "count": 2, "size": 50, "abnormal_ratio": 0.2, "shift": "wobble2"},
    ]
    with pytest.raises(ConfigError, match="config key hospitals.1.shift: shift 'wobble2'"):
        validate_config({"hospitals": hospitals})
    hospitals[1]["shift"] = "none"
    config = validate_config({"hospitals": hospitals})
    config["experiments"] = {"scanner": {"grid": {"small.shift": ["none", "blur2", "blur4"]}}}
    keys = [point.scenario.key() for point in grid_points(config, "scanner")]
    assert keys == [
        "large1x200r0.5-small2x50r0.2",
        "large1x200r0.5-small2x50r0.2_blur2",
        "large1x200r0.5-small2x50r0.2_blur4",
    ]
    config["experiments"] = {"bad": {"grid": {"small.shift": ["blur9"]}}}
    with pytest.raises(ExperimentError, match="experiments.bad grid point \\(small.shift=blur9\\)"):
        grid_points(config, "bad")
