"""BreastMNIST (MedMNIST v2; breast ultrasound, Al-Dhabyani et al. 2020), 28 × 28 grey.

Official splits: train 546 (the pool), val 78 (public), test 156 (external). Class 0 is
malignant, class 1 normal or benign: a config relabels class 0 abnormal.
"""

from fedhet.data.sources import DatasetSpec, read_medmnist

SPEC = DatasetSpec(
    name="breast_mnist",
    base_url="https://zenodo.org/records/10519652/files/",
    files={"breastmnist.npz": "750601b1f35ba3300ea97c75c52ff8f6"},
    reader=read_medmnist,
    pool_class_counts={0: 147, 1: 399},  # the official train split
    class_names={0: "malignant", 1: "normal or benign"},
)
