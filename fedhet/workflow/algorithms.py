"""Federated algorithms: the registry, each algorithm's parameters, and its cell key.

Torch-free, so that the workflow can build, check and parse cell paths without loading torch.
Each algorithm's code is one module of ``fedhet.training.algorithms`` (``<module>`` below), a
``fedhet.training.strategy.Strategy`` subclass named ``Strategy``, imported only when a cell
trains.

Adding an algorithm: write its module (and its tests) and add one ``Algorithm`` entry to
``ALGORITHMS`` below, with its parameters and their ranges. Nothing else names it: the config
schema, the experiment grids and the cell paths take any registered key.

A key spells the algorithm and every parameter, in the registry's order: ``fedavg``,
``fedprox-mu0.01``, ``fedper-head1``, ``shared-beta0.05-alpha0.5``, ``ifca-k2``, ``scaffold-eta1``,
``perfedavg-alpha0.01``, ``ditto-lam0.1``, ``ditto-lam10-rho0.1``, ``qffl-q1``. A parameter added
later (``Param.keyed_at_default``, Ditto's ``rho``) is spelled only where it is not at its default.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """One numeric parameter: its default and its closed range."""

    name: str
    default: float
    low: float
    high: float
    integer: bool = False
    # False for a parameter added after its algorithm's keys were in use: at its default it is
    # left out of the key, so that those keys go on naming the same cells.
    keyed_at_default: bool = True

    def check(self, value: float, where: str) -> float:
        if not (self.low <= value <= self.high) or math.isnan(value):
            raise ValueError(f"{where}: {self.name}={value:g} is outside [{self.low:g}, {self.high:g}]")
        if self.integer and value != int(value):
            raise ValueError(f"{where}: {self.name}={value:g} must be a whole number")
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class Algorithm:
    name: str
    module: str
    summary: str
    params: tuple[Param, ...] = ()
    # False where the algorithm acts on a choice computed from a hospital's private records
    # that DP-SGD's accountant does not cover (IFCA's cluster pick): refused under DP.
    dp_compatible: bool = True
    # True where the algorithm needs the shared public set G drawn beside the hospitals.
    needs_shared_data: bool = False
    # False where its updates carry extras beside the parameters (IFCA's pick, SCAFFOLD's
    # control variates) that client-level DP's noise would not cover: refused under it.
    client_level: bool = True


ALGORITHMS = {
    a.name: a
    for a in (
        Algorithm("fedavg", "fedavg", "FedAvg: every client trains the global model; weighted mean by records"),
        Algorithm(
            "fedprox",
            "fedprox",
            "FedProx: FedAvg plus (mu/2)||w - w_global||^2 in each client's objective",
            (Param("mu", 0.01, 0.0, 100.0),),
        ),
        Algorithm(
            "fedper",
            "fedper",
            "FedPer: the last `head` layers stay at each hospital; only the body is averaged",
            (Param("head", 1, 1, 2, integer=True),),
        ),
        Algorithm(
            "shared",
            "shared",
            "Shared data (Zhao et al.): a public set G of beta x all training records warms the model up;"
            " each client trains on its records plus an alpha share of G",
            (Param("beta", 0.05, 0.0, 1.0), Param("alpha", 0.5, 0.0, 1.0)),
            needs_shared_data=True,
        ),
        Algorithm(
            "ifca",
            "ifca",
            "IFCA: k global models; each client trains the one with the lowest loss on its own records",
            (Param("k", 2, 1, 8, integer=True),),
            dp_compatible=False,
            client_level=False,
        ),
        Algorithm(
            "scaffold",
            "scaffold",
            "SCAFFOLD: control variates correct each client's drift; the server steps by eta toward the mean",
            (Param("eta", 1.0, 0.1, 10.0),),
            client_level=False,
        ),
        Algorithm(
            "perfedavg",
            "perfedavg",
            "Per-FedAvg (first-order): the global model trained as a start for one adaptation step of size alpha;"
            " each hospital is evaluated after that step on its own records",
            (Param("alpha", 0.01, 0.0, 1.0),),
        ),
        Algorithm(
            "ditto",
            "ditto",
            "Ditto: each hospital also trains a personal model, kept near the global one by (lam/2)||v - w||^2,"
            " and is evaluated with it; the personal model steps at rho x the training lr",
            (Param("lam", 0.1, 0.0, 1000.0), Param("rho", 1.0, 0.001, 10.0, keyed_at_default=False)),
        ),
        Algorithm(
            "qffl",
            "qffl",
            "q-FFL (q-FedAvg): hospitals whose loss is higher weigh more, by loss^q; q = 0 is FedAvg",
            (Param("q", 1.0, 0.0, 20.0),),
            # each hospital sends the global model's loss on its records, which ε does not cover
            dp_compatible=False,
            client_level=False,
        ),
    )
}

_NUMBER = r"[0-9.]+(?:e[+-]?[0-9]+)?"
_PART = re.compile(rf"(?P<name>[a-z]+)(?P<value>{_NUMBER})")


@dataclass(frozen=True)
class AlgorithmSpec:
    """An algorithm with every parameter set; ``key()`` and ``parse()`` round-trip."""

    name: str = "fedavg"
    params: tuple[tuple[str, float], ...] = ()

    @property
    def info(self) -> Algorithm:
        return ALGORITHMS[self.name]

    def __getitem__(self, param: str) -> float:
        return dict(self.params)[param]

    def key(self) -> str:
        declared = {p.name: p for p in self.info.params}
        return self.name + "".join(
            f"-{name}{value:g}"
            for name, value in self.params
            if declared[name].keyed_at_default or value != declared[name].default
        )

    @classmethod
    def parse(cls, key: str, where: str = "algorithm") -> AlgorithmSpec:
        """A spec from its key; parameters left out take their defaults. ``ValueError`` names
        ``where`` and the offending part for an unknown algorithm or a bad parameter."""
        name, *parts = str(key).split("-")
        if name not in ALGORITHMS:
            raise ValueError(f"{where}: unknown algorithm {name!r} in {key!r} (known: {', '.join(ALGORITHMS)})")
        info = ALGORITHMS[name]
        declared = {p.name: p for p in info.params}
        given: dict[str, float] = {}
        for part in parts:
            match = _PART.fullmatch(part)
            if not match or match["name"] not in declared:
                expected = ", ".join(f"{p.name}<number>" for p in info.params) or "no parameters"
                raise ValueError(f"{where}: {key!r}: bad parameter {part!r} for {name} (takes {expected})")
            given[match["name"]] = float(match["value"])
        params = tuple((p.name, p.check(given.get(p.name, p.default), f"{where}: {key!r}")) for p in info.params)
        return cls(name, params)


FEDAVG = AlgorithmSpec()


def canonical_key(key: str, where: str = "algorithm") -> str:
    return AlgorithmSpec.parse(key, where).key()


def load_strategy(spec: AlgorithmSpec, **context):
    """The algorithm's ``Strategy`` (imports torch): ``context`` as ``fedhet.training.strategy.Strategy``."""
    module = importlib.import_module(f"fedhet.training.algorithms.{spec.info.module}")
    return module.Strategy(spec, **context)
