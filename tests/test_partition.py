import json

import numpy as np
import pytest

from fedhet.data.beyond_hospitals import draw_canaries, draw_shared
from fedhet.data.partition import (
    HospitalGroup,
    PartitionError,
    Scenario,
    draw,
    read_hospital,
    validation_view,
    write_partitions,
)

# The FashionMNIST pool in miniature: 18,000 abnormal and 42,000 normal labels.
BINARY = np.r_[np.ones(18000, dtype=np.int64), np.zeros(42000, dtype=np.int64)]
STUDY = Scenario((HospitalGroup("large", 1, 30000, 0.5), HospitalGroup("small", 4, 3000, 0.1)))


def test_counts_prevalence_split_and_disjointness():
    draws = draw(BINARY, STUDY, seed=0, test_fraction=0.2)
    assert [d.name for d in draws] == ["large_1", "small_1", "small_2", "small_3", "small_4"]
    seen = []
    for d in draws:
        size, ratio = (30000, 0.5) if d.type == "large" else (3000, 0.1)
        assert len(d.train_index) == 0.8 * size and len(d.test_index) == 0.2 * size
        for index, n in ((d.train_index, 0.8 * size), (d.test_index, 0.2 * size)):
            assert BINARY[index].sum() == ratio * n  # stratified: same prevalence in both splits
        seen += [d.train_index, d.test_index]
    everything = np.concatenate(seen)
    assert len(np.unique(everything)) == len(everything) == 42000


def test_same_seed_same_draw_and_other_seed_differs():
    a, b, c = (draw(BINARY, STUDY, s, 0.2) for s in (3, 3, 4))
    assert all(np.array_equal(x.train_index, y.train_index) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1].train_index, c[1].train_index)


def test_small_hospitals_do_not_move_when_the_large_one_changes():
    other = Scenario((HospitalGroup("large", 1, 20000, 0.2), HospitalGroup("small", 4, 3000, 0.1)))
    a, b = draw(BINARY, STUDY, 0, 0.2), draw(BINARY, other, 0, 0.2)
    for x, y in zip(a[1:], b[1:], strict=True):
        assert np.array_equal(x.train_index, y.train_index) and np.array_equal(x.test_index, y.test_index)


def test_scenario_key_round_trip():
    key = STUDY.key()
    assert key == "large1x30000r0.5-small4x3000r0.1"
    assert Scenario.parse(key) == STUDY
    odd = Scenario((HospitalGroup("big_site", 2, 123, 0.125),))
    assert Scenario.parse(odd.key()) == odd
    tiny = Scenario((HospitalGroup("large", 1, 30000, 1e-5), HospitalGroup("small", 4, 3000, 0.1, "blur2")))
    assert tiny.key() == "large1x30000r1e-05-small4x3000r0.1_blur2" and Scenario.parse(tiny.key()) == tiny


@pytest.mark.parametrize(
    "groups, message",
    [
        ([HospitalGroup("large", 1, 30000, 0.7)], r"needs 21000 abnormal .* only 18000"),
        ([HospitalGroup("large", 1, 50000, 0.1)], r"needs 45000 normal .* only 42000"),
        ([HospitalGroup("large", 1, 100, 1.5)], r"abnormal_ratio 1.5 is outside \[0, 1\]"),
        ([HospitalGroup("small", 1, 20, 0.1)], r"2 abnormal images .* too few .* test gets 0"),
    ],
)
def test_infeasible_requests_stop_before_writing(tmp_path, groups, message):
    images = np.zeros((len(BINARY), 2, 2), dtype=np.uint8)
    out = tmp_path / "partitions" / "seed0"
    with pytest.raises(PartitionError, match=message):
        write_partitions(out, images, BINARY, BINARY, Scenario(tuple(groups)), 0, 0.2)
    assert not (tmp_path / "partitions").exists() or list((tmp_path / "partitions").iterdir()) == []


def test_parquet_files_and_manifest(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=2000)
    binary = (labels >= 7).astype(np.int64)
    images = rng.integers(0, 256, size=(2000, 28, 28), dtype=np.uint8)
    scenario = Scenario((HospitalGroup("large", 1, 500, 0.5), HospitalGroup("small", 2, 100, 0.1)))
    info = write_partitions(tmp_path / "seed7", images, labels, binary, scenario, 7, 0.2)
    assert sorted(p.name for p in (tmp_path / "seed7").iterdir()) == [
        "large_1.parquet",
        "manifest.json",
        "small_1.parquet",
        "small_2.parquet",
    ]
    assert json.loads((tmp_path / "seed7" / "manifest.json").read_text()) == info
    small = read_hospital(tmp_path / "seed7" / "small_2.parquet")
    assert small.train_images.dtype == np.uint8 and small.train_images.shape == (80, 28, 28)
    assert small.train_labels.sum() == 8 and small.test_labels.sum() == 2
    row = next(h for h in info["hospitals"] if h["hospital"] == "small_2")
    assert row["n_test"] == 20 and row["prevalence_test"] == pytest.approx(0.1)
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "seed7" / "small_2.parquet").to_pandas()
    assert set(table.columns) == {"image", "label", "binary_label", "split", "source_index"}
    # every row is the source image it claims to be
    for _, r in table.head(5).iterrows():
        np.testing.assert_array_equal(np.asarray(r["image"]).reshape(28, 28), images[r["source_index"]])
        assert r["label"] == labels[r["source_index"]]


def test_shared_set_is_disjoint_from_every_hospital_at_the_pool_balance():
    draws = draw(BINARY, STUDY, seed=3, test_fraction=0.2)
    held = np.concatenate([np.r_[d.train_index, d.test_index] for d in draws])
    shared = draw_shared(BINARY, STUDY, seed=3, test_fraction=0.2, beta=0.1)
    assert len(shared) == round(0.1 * 33600) and len(np.intersect1d(shared, held)) == 0
    assert BINARY[shared].sum() == round(len(shared) * 0.3)  # the pool's 30% abnormal
    assert np.array_equal(shared, draw_shared(BINARY, STUDY, seed=3, test_fraction=0.2, beta=0.1))
    assert len(draw_shared(BINARY, STUDY, seed=3, test_fraction=0.2, beta=0.0)) == 0
    # the hospitals hold 16,200 of the 18,000 abnormal images (15,000 + 4 × 300): 1,800 are left
    with pytest.raises(PartitionError, match="shared set beta=0.5.*needs 5040 abnormal images.*has 1800 left"):
        draw_shared(BINARY, STUDY, seed=3, test_fraction=0.2, beta=0.5)


def test_canaries_lie_outside_every_hospital_and_the_shared_set_with_flipped_labels():
    draws = draw(BINARY, STUDY, seed=3, test_fraction=0.2)
    held = np.concatenate([np.r_[d.train_index, d.test_index] for d in draws])
    canaries = draw_canaries(BINARY, STUDY, seed=3, test_fraction=0.2, count=1000)
    shared = draw_shared(BINARY, STUDY, seed=3, test_fraction=0.2, beta=0.01)
    index = canaries.source_index
    assert len(np.unique(index)) == 1000 and not np.intersect1d(index, held).size
    assert not np.intersect1d(index, shared).size  # G from the near end, canaries from the far end
    assert np.array_equal(canaries.labels, 1 - BINARY[index]) and BINARY[index].sum() == 300
    assert 400 < canaries.included.sum() < 600  # each in with probability ½
    again = draw_canaries(BINARY, STUDY, seed=3, test_fraction=0.2, count=1000)
    assert np.array_equal(again.included, canaries.included) and np.array_equal(again.source_index, index)
    other = draw_canaries(BINARY, STUDY, seed=4, test_fraction=0.2, count=1000)
    assert not np.array_equal(other.included, canaries.included)
    with pytest.raises(PartitionError, match="audit canaries=10000 .*needs 3000 abnormal images.*has 1800 left"):
        draw_canaries(BINARY, STUDY, seed=3, test_fraction=0.2, count=10000)


def test_validation_view_carves_validation_from_training_records_only(tmp_path):
    draws = draw(BINARY, STUDY, seed=1, test_fraction=0.2)
    views = validation_view(draws, BINARY, seed=1, fraction=0.2)
    for d, v in zip(draws, views, strict=True):
        assert set(v.train_index) | set(v.test_index) == set(d.train_index)  # the test split is gone
        assert len(np.intersect1d(v.train_index, v.test_index)) == 0
        assert BINARY[v.test_index].sum() == round(0.2 * BINARY[d.train_index].sum())  # stratified
    images = np.zeros((60000, 2, 2), np.uint8)
    info = write_partitions(tmp_path / "p", images, BINARY, BINARY, STUDY, 1, 0.2, views, "validation")
    assert info["holdout"] == "validation" and info["hospitals"][1]["n_test"] == 480  # 20% of 2,400
