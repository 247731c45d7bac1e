"""PneumoniaMNIST (MedMNIST v2; paediatric chest X-rays, Kermany et al. 2018), 28 × 28 grey.

Official splits: train 4,708, val 524, test 624. The hospitals draw from train and val together
(5,232 images, the pool of the committed PneumoniaMNIST results); test is the external set. No
split is public, so public tuning has only the pool records the hospitals leave.
"""

from pathlib import Path

import numpy as np

from fedhet.data.sources import DatasetSpec, SourceData, read_medmnist


def read(directory: Path, spec: DatasetSpec) -> SourceData:
    split = read_medmnist(directory, spec)  # checks every split; val comes back as public
    return SourceData(
        np.concatenate([split.pool_images, split.public_images]),
        np.concatenate([split.pool_labels, split.public_labels]),
        split.external_images,
        split.external_labels,
    )


SPEC = DatasetSpec(
    name="pneumonia_mnist",
    base_url="https://zenodo.org/records/10519652/files/",
    files={"pneumoniamnist.npz": "28209eda62fecd6e6a2d98b1501bb15f"},
    reader=read,
    pool_class_counts={0: 1349, 1: 3883},  # the official train + val splits
    class_names={0: "normal", 1: "pneumonia"},
)
