import json

import numpy as np
import pytest

from fedhet.data.holdout import write_holdout_partitions
from fedhet.data.partition import HospitalGroup, PartitionError, Scenario, draw, read_hospital
from fedhet.data.public_proxy import draw_proxies, leftover_records, split_records
from fedhet.data.sources import SourceData

# The FashionMNIST pool in miniature: 18,000 abnormal and 42,000 normal labels.
BINARY = np.r_[np.ones(18000, dtype=np.int64), np.zeros(42000, dtype=np.int64)]
STUDY = Scenario((HospitalGroup("large", 1, 30000, 0.5), HospitalGroup("small", 4, 3000, 0.1)))
DATA = {"abnormal_classes": [1], "test_fraction": 0.2, "validation_fraction": 0.2}


def test_proxies_copy_each_hospitals_class_counts_from_records_no_hospital_holds():
    hospitals = draw(BINARY, STUDY, seed=0, test_fraction=0.2)
    public = leftover_records(BINARY, STUDY, seed=0, test_fraction=0.2)
    held = np.concatenate([np.r_[h.train_index, h.test_index] for h in hospitals])
    assert len(np.intersect1d(np.r_[public.index[0], public.index[1]], held)) == 0
    assert len(public.index[1]) == 18000 - 15000 - 4 * 300  # what the hospitals left
    proxies = draw_proxies(public, hospitals, BINARY, seed=0, fraction=0.2)
    train_part, test_part = set(), set()
    for hospital, proxy in zip(hospitals, proxies, strict=True):
        assert (proxy.name, proxy.type) == (hospital.name, hospital.type)
        for mine, theirs in ((proxy.train_index, hospital.train_index), (proxy.test_index, hospital.test_index)):
            assert len(mine) == len(theirs) and BINARY[mine].sum() == BINARY[theirs].sum()
            assert len(np.intersect1d(mine, held)) == 0
        train_part |= set(proxy.train_index)
        test_part |= set(proxy.test_index)
    assert not train_part & test_part  # no proxy is scored on an image any proxy trained on
    # far fewer public records than the large hospital holds: drawn with replacement
    assert len(np.unique(proxies[0].train_index)) < len(proxies[0].train_index)
    again = draw_proxies(public, hospitals, BINARY, seed=0, fraction=0.2)
    assert all(np.array_equal(a.train_index, b.train_index) for a, b in zip(proxies, again, strict=True))
    other = draw_proxies(public, hospitals, BINARY, seed=1, fraction=0.2)
    assert not np.array_equal(proxies[1].train_index, other[1].train_index)


def test_a_public_pool_without_a_class_is_refused_naming_the_proxy():
    hospitals = draw(BINARY, STUDY, seed=0, test_fraction=0.2)
    only_normal = split_records(np.zeros(100, dtype=np.int64))
    with pytest.raises(PartitionError, match="public proxy of large_1: needs 12000 abnormal training records"):
        draw_proxies(only_normal, hospitals, BINARY, seed=0, fraction=0.2)


def test_a_datasets_public_split_feeds_the_proxies_and_the_manifest_says_public(tmp_path):
    rng = np.random.default_rng(0)
    pool_labels = np.r_[np.ones(400, dtype=np.int64), np.zeros(600, dtype=np.int64)]
    public_labels = np.r_[np.ones(30, dtype=np.int64), np.zeros(70, dtype=np.int64)]
    source = SourceData(
        pool_images=np.zeros((1000, 4, 4), np.uint8),
        pool_labels=pool_labels,
        external_images=np.zeros((1, 4, 4), np.uint8),
        external_labels=np.zeros(1, np.int64),
        public_images=rng.integers(1, 255, size=(100, 4, 4), dtype=np.uint8),  # pool images are all 0
        public_labels=public_labels,
    )
    scenario = Scenario((HospitalGroup("large", 1, 500, 0.5), HospitalGroup("small", 2, 100, 0.1)))
    test = write_holdout_partitions(tmp_path / "test", source, DATA, scenario, 0)
    info = write_holdout_partitions(tmp_path / "public", source, DATA, scenario, 0, "public")
    assert info["holdout"] == "public" and test["holdout"] == "test"
    manifest = json.loads((tmp_path / "public" / "manifest.json").read_text())
    counts = ("n_train", "n_train_abnormal", "n_test", "n_test_abnormal")
    for proxy, hospital in zip(manifest["hospitals"], test["hospitals"], strict=True):
        assert [proxy[k] for k in counts] == [hospital[k] for k in counts]
    small = read_hospital(tmp_path / "public" / "small_1.parquet")
    assert (small.train_images > 0).any(axis=(1, 2)).all()  # every image from the public split
