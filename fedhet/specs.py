"""Specs of a training cell's model and optimisation: plain dataclasses, no torch.

Kept free of heavy imports so that the workflow (Snakefile, config validation) can build
them without loading torch or opacus.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    conv1_channels: int = 16
    conv2_channels: int = 32
    kernel_size: int = 5
    image_size: int = 28


@dataclass(frozen=True)
class TrainSpec:
    rounds: int = 10
    local_epochs: int = 1
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    client_fraction: float = 1.0
