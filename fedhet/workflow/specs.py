"""Specs of a training cell's model, optimisation and privacy: plain dataclasses, no torch.

Kept free of heavy imports so that the workflow (Snakefile, config validation) can build
them without loading torch or opacus.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ModelSpec:
    conv1_channels: int = 16
    conv2_channels: int = 32
    kernel_size: int = 5
    image_size: int = 28
    channels: int = 1  # 1 grey, 3 colour: the dataset's (fedhet.data.sources.DatasetSpec.channels)


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
    client_sampling: str = "fixed"  # one of CLIENT_SAMPLINGS


# How the hospitals of a federated round are drawn (``fedhet.training.server.select_clients``):
# ``fixed``, ⌈C·K⌉ of them uniformly without replacement; ``poisson``, each independently with
# probability C, the scheme client-level DP's accountant amplifies by (q = C).
CLIENT_SAMPLINGS = ("fixed", "poisson")


@dataclass(frozen=True)
class OptimSpec:
    """The optimiser settings a grid may vary per cell (today the learning rate; the rest of
    ``TrainSpec`` is fixed per configuration). Its key is a path component of every cell, so a
    cell trained with another learning rate never stands in for this one."""

    lr: float = TrainSpec.lr

    def key(self) -> str:
        """Path component, e.g. ``lr0.01``."""
        return f"lr{self.lr:g}"

    @classmethod
    def parse(cls, key: str) -> OptimSpec:
        match = _OPTIM_KEY.fullmatch(key)
        if not match or not float(match["lr"]) > 0:
            raise ValueError(f"optimiser key {key!r}: expected lr<learning rate > 0>, e.g. lr0.01")
        return cls(float(match["lr"]))

    def apply(self, spec: TrainSpec) -> TrainSpec:
        """``spec`` with this cell's settings in place."""
        return replace(spec, lr=self.lr)


# Training modes (``fedhet.training.federated`` implements them) and whether the cell's algorithm
# applies: the non-federated modes are the study's references, trained with FedAvg alone.
MODE_TAKES_ALGORITHM = {"federated": True, "local": False, "large_only": False}
# The study's two hospital roles, each named by the hospital type that plays it in a layout
# (``hospitals[].type``; the schema accepts only these names): the reference, the specialist
# hospital that trains alone in ``large_only``, and the focus, the hospitals whose metrics the
# study reports and whose scores choose hyperparameters. Every module takes a role from here.
REFERENCE_TYPE = "large"
FOCUS_TYPE = "small"
HOSPITAL_TYPES = (REFERENCE_TYPE, FOCUS_TYPE)

# Where DP applies: DP-SGD at every hospital, or at those of one type; or client-level DP
# (fedhet.training.client_dp), where the server clips each hospital's update and adds the noise.
CLIENT_LEVEL = "client_level"
PLACEMENT_TYPES = {"small_hospitals": FOCUS_TYPE, "large_hospitals": REFERENCE_TYPE}  # DP-SGD at one type
PLACEMENTS = ("none", "all", *PLACEMENT_TYPES, CLIENT_LEVEL)
ACCOUNTANTS = ("prv", "rdp")
# How per-example gradients are clipped: fedhet's book-keeping (fedhet.privacy.clipping), or Opacus
# computing per-sample gradients ("hooks" was its fastest on our CNN; "ew" and "functorch"
# were 2.3–2.7× slower), kept as the reference.
OPTIMIZERS = ("sgd", "adam")  # the local optimizer (fedhet.training.optimizer.make_optimizer)
OPACUS_MODES = ("hooks", "ew", "functorch")
GRAD_SAMPLE_MODES = ("bookkeeping", *OPACUS_MODES)
DEFAULT_GRAD_SAMPLE_MODE = "bookkeeping"


@dataclass(frozen=True)
class DPSpec:
    """Where DP-SGD applies and with which guarantee: (ε, δ) per private hospital."""

    placement: str = "none"
    epsilon: float = math.inf
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "prv"
    # Client-level DP only: the public nominal number of hospitals K that DP-FedAvg divides the
    # noised sum by (0: the number of hospitals in the federation, from the config).
    clients: int = 0
    # An implementation choice, not part of the guarantee: left out of the key.
    grad_sample_mode: str = DEFAULT_GRAD_SAMPLE_MODE

    @property
    def enabled(self) -> bool:
        return self.placement != "none"

    @property
    def client_level(self) -> bool:
        """DP-FedAvg: ``max_grad_norm`` bounds each hospital's update, the server adds the noise."""
        return self.placement == CLIENT_LEVEL

    @property
    def clipping_only(self) -> bool:
        """ε = ∞: per-example clipping to C and Poisson sampling, but no noise (σ = 0). A
        control that separates the cost of clipping from the cost of noise; it protects nobody."""
        return self.enabled and math.isinf(self.epsilon)

    def key(self) -> str:
        """Canonical path component: ``nodp`` or e.g. ``all-eps1-delta1e-05-clip1`` (``-rdp`` for
        the RDP accountant, ``-K<k>`` for a stated nominal number of hospitals)."""
        if not self.enabled:
            return "nodp"
        key = f"{self.placement}-eps{self.epsilon:g}-delta{self.delta:g}-clip{self.max_grad_norm:g}"
        if self.accountant != "prv":
            key += f"-{self.accountant}"
        return f"{key}-K{self.clients}" if self.clients else key

    @classmethod
    def parse(cls, key: str, **options) -> DPSpec:
        """Inverse of ``key``; ``options`` set fields the key leaves out (``grad_sample_mode``)."""
        if key == "nodp":
            return cls(**options)
        match = _DP_KEY.fullmatch(key)
        if not match:
            raise ValueError(f"dp key {key!r}: expected 'nodp' or <placement>-eps<ε>-delta<δ>-clip<C>[-rdp]")
        return cls(
            placement=match["placement"],
            epsilon=float(match["eps"]),
            delta=float(match["delta"]),
            max_grad_norm=float(match["clip"]),
            accountant=match["accountant"] or "prv",
            clients=int(match["clients"] or 0),
            **options,
        )


_NUMBER = r"[0-9.]+(?:e[+-]?[0-9]+)?|inf"
_OPTIM_KEY = re.compile(rf"lr(?P<lr>{_NUMBER})")
_DP_KEY = re.compile(
    rf"(?P<placement>[a-z_]+)-eps(?P<eps>{_NUMBER})-delta(?P<delta>{_NUMBER})-clip(?P<clip>{_NUMBER})"
    r"(?:-(?P<accountant>[a-z]+))?(?:-K(?P<clients>[0-9]+))?"
)


def check_spec(spec: DPSpec) -> None:
    """Raise ``ValueError`` naming the offending value of an impossible spec."""
    if spec.placement not in PLACEMENTS:
        raise ValueError(f"dp placement {spec.placement!r} is not one of {PLACEMENTS}")
    if spec.grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise ValueError(f"dp grad_sample_mode {spec.grad_sample_mode!r} is not one of {GRAD_SAMPLE_MODES}")
    if not spec.enabled:
        return
    if not spec.epsilon > 0:
        raise ValueError(f"dp epsilon {spec.epsilon:g} must be > 0 (inf: clipping without noise)")
    if not (0 < spec.delta < 1):
        raise ValueError(f"dp delta {spec.delta:g} must be in (0, 1)")
    if not (0 < spec.max_grad_norm < math.inf):
        raise ValueError(f"dp clip norm max_grad_norm {spec.max_grad_norm:g} must be a finite number > 0")
    if spec.accountant not in ACCOUNTANTS:
        raise ValueError(f"dp accountant {spec.accountant!r} is not one of {ACCOUNTANTS}")
    if spec.clients < 0 or (spec.clients and not spec.client_level):
        raise ValueError(
            f"dp clients {spec.clients}: the nominal number of hospitals is a setting of placement"
            f" {CLIENT_LEVEL} (an integer ≥ 1), not of placement {spec.placement}"
        )


@dataclass(frozen=True)
class CanarySpec:
    """An audit's canaries (``fedhet.privacy.audit``): ``count`` records drawn from outside every
    hospital, labels flipped, each put into ``hospital``'s training data with probability ½."""

    hospital: str  # e.g. small_1
    count: int

    def key(self) -> str:
        """Path component of an audit cell, e.g. ``canaries-small_1-m1000``."""
        return f"canaries-{self.hospital}-m{self.count}"

    @classmethod
    def parse(cls, key: str) -> CanarySpec:
        match = _CANARY_KEY.fullmatch(key)
        if not match:
            raise ValueError(f"canary key {key!r}: expected canaries-<hospital>-m<count>, e.g. canaries-small_1-m1000")
        return cls(match["hospital"], int(match["count"]))


_CANARY_KEY = re.compile(r"canaries-(?P<hospital>[a-z][a-z0-9_]*)-m(?P<count>[0-9]+)")
