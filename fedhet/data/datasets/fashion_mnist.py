"""FashionMNIST (Xiao, Rasul and Vollgraf 2017): the study's stand-in for medical images.

The pool is the 60,000 training images, the external test set the 10,000 test images; no public
split ships, so public tuning draws on the pool records the hospitals leave.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedhet.data.sources import DatasetSpec, SourceData, check_images, read_idx


def read(directory: Path, spec: DatasetSpec) -> SourceData:
    arrays = []
    for images, labels in (("train-images", "train-labels"), ("t10k-images", "t10k-labels")):
        x = read_idx(directory / f"{images}-idx3-ubyte.gz")
        y = read_idx(directory / f"{labels}-idx1-ubyte.gz").astype(np.int64)
        check_images(x, y, spec, str(directory / f"{images}-idx3-ubyte.gz"))
        arrays += [x, y]
    return SourceData(*arrays)


SPEC = DatasetSpec(
    name="fashion_mnist",
    base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    files={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    reader=read,
    pool_class_counts={c: 6000 for c in range(10)},
    class_names=dict(
        enumerate(
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        )
    ),
)
