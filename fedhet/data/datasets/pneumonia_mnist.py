"""PneumoniaMNIST (MedMNIST v2; paediatric chest X-rays, Kermany et al. 2018), 28 × 28 grey.

Official splits: train 4,708 (the pool), val 524 (public), test 624 (external).
"""

from fedhet.data.sources import DatasetSpec, read_medmnist

SPEC = DatasetSpec(
    name="pneumonia_mnist",
    base_url="https://zenodo.org/records/10519652/files/",
    files={"pneumoniamnist.npz": "28209eda62fecd6e6a2d98b1501bb15f"},
    reader=read_medmnist,
    pool_class_counts={0: 1214, 1: 3494},  # the official train split
    class_names={0: "normal", 1: "pneumonia"},
)
