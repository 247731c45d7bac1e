"""The public proxy federation: what public hyperparameter tuning trains and scores on.

Owns drawing, for one scenario and seed, a stand-in for every hospital from records no hospital
holds. A proxy has its hospital's class counts in training and in test, so it trains with the
same sampling rate, steps, noise multiplier and FedAvg weight as the hospital it stands for; its
test split plays the validation split. A tuning run on the proxies reads no hospital's record,
so choosing a setting by its scores costs no ε: the private records enter only the final run
with the chosen setting.

The public records are the dataset's public split where it ships one (PneumoniaMNIST's official
val split, ``fedhet.data.sources.SourceData.public_images``), else the pool records the hospitals left
(FashionMNIST), under the consent logic of the shared set G. They are far fewer than the
hospitals hold, so each proxy draws *with replacement*: from one part of the public records for
its training split and from a disjoint part for its test split, so that no proxy is scored on
an image it trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhet.data.partition import HospitalDraw, PartitionError, Scenario, allocate, split_counts


@dataclass(frozen=True)
class PublicRecords:
    """The records public tuning may use: positions into ``binary`` (and the images and labels
    that go with it), per class."""

    binary: np.ndarray
    index: dict[int, np.ndarray]  # class → positions


def leftover_records(binary: np.ndarray, scenario: Scenario, seed: int, test_fraction: float) -> PublicRecords:
    """The pool records no hospital of ``scenario`` holds at ``seed`` (what the shared set G and
    the audit canaries also draw from)."""
    _, rest = allocate(binary, scenario, seed, test_fraction)
    return PublicRecords(binary, {label: np.sort(rest[label]) for label in (0, 1)})


def split_records(binary: np.ndarray) -> PublicRecords:
    """Every record of a public split."""
    return PublicRecords(binary, {label: np.flatnonzero(binary == label) for label in (0, 1)})


def draw_proxies(
    public: PublicRecords, hospitals: list[HospitalDraw], hospital_binary: np.ndarray, seed: int, fraction: float
) -> list[HospitalDraw]:
    """One proxy per hospital: per class, as many training and test records as the hospital
    holds (``hospital_binary`` labels its indices), drawn with replacement, the training ones
    from a ``1 - fraction`` part of ``public`` and the test ones from the disjoint rest.
    Indices point into ``public.binary``'s arrays."""
    rng = np.random.default_rng([seed, 2])
    parts = {}
    for label, records in public.index.items():
        records = rng.permutation(records)
        n_train, n_test = split_counts(len(records), fraction)
        parts[label] = (records[:n_train], records[n_train:])
    proxies = []
    for hospital in hospitals:
        splits = []
        for which, index in enumerate((hospital.train_index, hospital.test_index)):
            taken = []
            for label in (1, 0):
                need = int(np.sum(hospital_binary[index] == label))
                source = parts[label][which]
                if need and not len(source):
                    kind = "abnormal" if label else "normal"
                    split = ("training", "test")[which]
                    raise PartitionError(
                        f"public proxy of {hospital.name}: needs {need} {kind} {split} records but the public"
                        f" records hold {len(public.index[label])} {kind} in all, none for its {split} part"
                    )
                taken.append(rng.choice(source, size=need, replace=True))
            splits.append(np.sort(np.concatenate(taken)))
        proxies.append(HospitalDraw(hospital.name, hospital.type, splits[0], splits[1]))
    return proxies
