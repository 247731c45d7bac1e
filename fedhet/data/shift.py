"""Acquisition shift: a hospital's scanner, simulated as a seeded transform of its images.

Owns ``ShiftSpec`` (a kind and a severity 1–5, key ``<kind><severity>`` such as ``blur3``) and
``apply_shift``, which the partition step calls on one hospital's images (training and test
split alike) when its group has a ``shift``. The external test set is never shifted.

The kinds are those MedMNIST-C (Di Salvo et al. 2024) lists as realistic for PneumoniaMNIST:
exposure and detector response (gamma, contrast, brightness), noise (Gaussian, speckle),
resolution (Gaussian blur, pixelation). Their five levels follow MedMNIST-C's for
PneumoniaMNIST where the operation does not depend on resolution (gamma, contrast, brightness,
noise). Blur and pixelation do: MedMNIST-C sizes them for 224-pixel images, so here they are
rescaled to 28 pixels (a blur of σ pixels at 224 is σ/8 at 28) and kept visible at that size.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Transform = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]  # floats in [0, 1]


def _gamma(x: np.ndarray, gamma: float, rng: np.random.Generator) -> np.ndarray:
    return x**gamma


def _contrast(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    means = x.mean(axis=(1, 2), keepdims=True)  # about each image's (and channel's) own mean, as a detector would
    return (x - means) * factor + means


def _brightness(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    return x * factor


def _gaussian_noise(x: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    return x + rng.normal(0.0, sd, size=x.shape)


def _speckle(x: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    return x * (1.0 + rng.normal(0.0, sd, size=x.shape))


def _blur(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage  # here: every training process imports this module, few blur

    # over height and width only: never across images, nor across a colour image's channels
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma) + (0,) * (x.ndim - 3), mode="nearest")


def _pixelate(x: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Down to ``scale`` of the side by block averaging, back up by nearest neighbour."""
    side = x.shape[1]
    small = max(1, int(round(side * scale)))
    edges = np.linspace(0, side, small + 1).round().astype(int)
    cells = np.repeat(np.arange(small), np.diff(edges))  # which coarse pixel each row/column falls in
    sums = np.zeros((x.shape[0], small, small, *x.shape[3:]))  # a colour image keeps its channels
    np.add.at(sums, (slice(None), cells[:, None], cells[None, :]), x)
    counts = (np.diff(edges)[:, None] * np.diff(edges)[None, :]).reshape(small, small, *[1] * (x.ndim - 3))
    return (sums / counts)[:, cells][:, :, cells]


@dataclass(frozen=True)
class ShiftKind:
    transform: Transform
    levels: tuple[float, float, float, float, float]  # the parameter at severities 1..5
    meaning: str


KINDS: dict[str, ShiftKind] = {
    "gamma": ShiftKind(_gamma, (1.1, 1.2, 1.3, 1.4, 1.6), "x ** gamma (darker mid-tones)"),
    "contrast": ShiftKind(_contrast, (0.9, 0.8, 0.7, 0.6, 0.4), "contrast about the image mean × factor"),
    "brightness": ShiftKind(_brightness, (0.9, 0.8, 0.7, 0.6, 0.5), "intensity × factor (under-exposure)"),
    "noise": ShiftKind(_gaussian_noise, (0.04, 0.05, 0.06, 0.07, 0.08), "additive Gaussian noise, sd"),
    "speckle": ShiftKind(_speckle, (0.05, 0.07, 0.10, 0.15, 0.20), "multiplicative Gaussian noise, sd"),
    "blur": ShiftKind(_blur, (0.4, 0.6, 0.8, 1.0, 1.3), "Gaussian blur, sigma in pixels at 28 × 28"),
    "pixelate": ShiftKind(_pixelate, (0.8, 0.7, 0.6, 0.5, 0.4), "resolution × factor, then back up"),
}

_KEY = re.compile(r"(?P<kind>[a-z]+)(?P<severity>[1-5])")


@dataclass(frozen=True)
class ShiftSpec:
    kind: str
    severity: int

    def key(self) -> str:
        return f"{self.kind}{self.severity}"

    @classmethod
    def parse(cls, key: str) -> ShiftSpec:
        match = _KEY.fullmatch(key)
        if not match or match["kind"] not in KINDS:
            raise ValueError(f"shift {key!r}: expected <kind><severity 1-5> with kind one of {sorted(KINDS)}")
        return cls(match["kind"], int(match["severity"]))

    @property
    def parameter(self) -> float:
        return KINDS[self.kind].levels[self.severity - 1]


NO_SHIFT = ("", "none")  # how a group without a shift may say so


def normalise_shift(value: str | None) -> str:
    """A group's ``shift`` as it appears in keys: '' for none, else the canonical key."""
    return "" if value in (None, *NO_SHIFT) else ShiftSpec.parse(str(value)).key()


def apply_shift(images: np.ndarray, spec: ShiftSpec, rng: np.random.Generator) -> np.ndarray:
    """``images`` (N, H, W) or, in colour, (N, H, W, C) uint8 as the shifted scanner would record
    them, uint8 again, of the same shape."""
    x = images.astype(np.float64) / 255.0
    shifted = KINDS[spec.kind].transform(x, spec.parameter, rng)
    return np.clip(np.rint(shifted * 255.0), 0, 255).astype(np.uint8)
