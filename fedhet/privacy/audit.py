"""Empirical privacy audit from one training run (Steinke, Nasr and Jagielski, NeurIPS 2023).

Owns the statistics of the audit. m canary records are each put into a hospital's training
data with probability ½, independently; after the one training run the auditor scores every
canary (e.g. minus its loss under the final model), guesses "in" for the k₊ highest scores and
"out" for the k₋ lowest, abstains on the rest, and counts its correct guesses v among its
r = k₊ + k₋ guesses. If training is (ε, δ)-DP towards each record, v can exceed what ε-DP
randomized response would give, Binomial(r, e^ε / (1 + e^ε)), only through the δ term of
their Theorem 5.2:

    P[v correct or more] ≤ P[Bin(r, p_ε) ≥ v] + 2 m δ · max_{1 ≤ i ≤ v} P[v > Bin(r, p_ε) ≥ v − i] / i.

``epsilon_lower_bound`` is the largest ε this bound rejects at the observed v with the given
confidence: with that probability the true ε of the training is at least it. It can never
exceed the accounted ε unless the implementation (or its accounting) is wrong.

Also owns the audit's cells (the ``audit`` config section: canaries at one hospital of the core
scenario, one cell per DP setting and seed, under ``results/<dataset>/audit/``, never in a
figure) and its table. Planting and scoring the canaries is ``fedhet.training.canary``'s; this module
stays free of torch, for the workflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from fedhet.data.datasets import dataset_spec
from fedhet.data.sources import pool_counts
from fedhet.workflow.config import Cell, ConfigError, core_scenario, optim_key
from fedhet.workflow.experiments import dp_section_specs
from fedhet.workflow.keys import AUDIT_CELL, ENGINE_AUDIT
from fedhet.workflow.specs import CanarySpec, DPSpec, OptimSpec


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """Probability of ≥ v correct guesses out of r (m canaries) under (ε, δ)-DP: the bound above."""
    from scipy import stats  # imported here: training processes import fedhet modules, not this

    if not 0 <= v <= r <= m:
        raise ValueError(f"audit: need 0 ≤ v ≤ r ≤ m, got v={v}, r={r}, m={m}")
    p = 1.0 / (1.0 + math.exp(-epsilon))
    tail = float(stats.binom.sf(v - 1, r, p))  # P[Bin(r, p) ≥ v]
    below = stats.binom.pmf(np.arange(v - 1, -1, -1), r, p)  # P[Bin = v − i], i = 1..v
    ratio = float(np.max(np.cumsum(below) / np.arange(1, v + 1))) if v else 0.0
    return min(1.0, tail + 2 * m * delta * ratio)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, confidence: float = 0.95) -> float:
    """The largest ε whose p-value at (m, r, v) is below 1 − confidence (0 when none is)."""
    level = 1.0 - confidence
    if p_value(m, r, v, 0.0, delta) > level:
        return 0.0
    low, high = 0.0, 1.0
    while p_value(m, r, v, high, delta) <= level:  # the p-value rises with ε
        low, high = high, 2 * high
        if high > 1e3:
            return math.inf  # every guess right and many of them: no finite ε explains it
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if p_value(m, r, v, mid, delta) <= level else (low, mid)
    return low


def guesses(scores: np.ndarray, included: np.ndarray, k_plus: int, k_minus: int) -> tuple[int, int]:
    """(r, v): guess "in" for the k₊ highest scores and "out" for the k₋ lowest; count the right ones."""
    scores, included = np.asarray(scores, dtype=float), np.asarray(included, dtype=bool)
    if k_plus + k_minus > len(scores):
        raise ValueError(f"audit: {k_plus} + {k_minus} guesses for {len(scores)} canaries")
    order = np.argsort(-scores, kind="stable")
    right = int(included[order[:k_plus]].sum()) + int((~included[order[len(order) - k_minus :]]).sum())
    return k_plus + k_minus, right


class AuditError(ValueError):
    """An empirical lower bound above the accounted ε: DP-SGD or its accounting is wrong."""


@dataclass(frozen=True)
class AuditCell:
    """A training cell with canaries planted: its own key and directory (``audit/``), so that it
    never stands in for the cell without them."""

    cell: Cell
    canaries: CanarySpec

    def key(self) -> str:
        """``<scenario>/<mode>/<algorithm>/<dp>/<optim>/<canaries>/seed<k>`` (``fedhet.workflow.keys.AUDIT_CELL``)."""
        c = self.cell
        fields = {"scenario": c.scenario, "mode": c.mode, "algorithm": c.algorithm, "dp": c.dp, "optim": c.optim}
        return AUDIT_CELL.key(**fields, canaries=self.canaries.key(), seed=c.seed)

    def directory(self, root: str = "results") -> str:
        return f"{root}/{AUDIT_CELL.directory}/{self.key()}"  # AUDIT_CELL.path, from a built key

    @classmethod
    def parse(cls, key: str) -> AuditCell:
        f = AUDIT_CELL.parse(key)
        if not f["seed"].isdigit():
            raise ValueError(f"audit cell key {key!r}: seed {f['seed']!r} is not a number (audit cells test only)")
        cell = Cell(f["scenario"], f["mode"], int(f["seed"]), f["dp"], f["algorithm"])
        cell = replace(cell, optim=OptimSpec.parse(f["optim"]).key())
        return cls(cell, CanarySpec.parse(f["canaries"]))


AUDIT_MODES = ("federated", "local")  # where the audited hospital trains (large_only: audit it in local)


def audit_delta(section: dict) -> float:
    """The δ of the bound for the cell without DP: the private cells' δ (1e-5 without any)."""
    return float((section.get("dp") or {}).get("delta", 1e-5))


def audit_dp_specs(section: dict) -> list[DPSpec]:
    """The audit's DP settings, and always a cell without DP: there the bound should be positive."""
    private = [spec for spec in dp_section_specs(section.get("dp"), "audit.dp") if spec.enabled]
    return [DPSpec(), *private]


def audit_cells(config: dict) -> list[AuditCell]:
    """Every audit cell of the config (none when ``audit.seeds`` is empty or absent)."""
    section = config.get("audit") or {}
    if not section.get("seeds"):
        return []
    scenario = core_scenario(config).key()
    canaries = CanarySpec(section["hospital"], int(section["canaries"]))
    return [
        AuditCell(Cell(scenario, section["mode"], int(seed), dp.key(), optim=optim_key(config)), canaries)
        for dp in audit_dp_specs(section)
        for seed in section["seeds"]
    ]


@dataclass(frozen=True)
class EngineAudit:
    """One white-box engine audit: the audited hospital of the core scenario trains alone under
    one DP-SGD setting with ``count`` gradient canaries (``fedhet.training.gradient_audit``)."""

    scenario: str
    hospital: str
    dp: str
    optim: str
    count: int
    seed: int

    def key(self) -> str:
        """``engine/<scenario>/<hospital>/<dp>/<optim>/m<count>/seed<k>`` (``fedhet.workflow.keys.ENGINE_AUDIT``)."""
        return ENGINE_AUDIT.key(
            scenario=self.scenario, hospital=self.hospital, dp=self.dp, optim=self.optim, m=self.count, seed=self.seed
        )

    def directory(self, root: str = "results") -> str:
        return f"{root}/{ENGINE_AUDIT.directory}/{self.key()}"

    @classmethod
    def parse(cls, key: str) -> EngineAudit:
        f = ENGINE_AUDIT.parse(key)
        if not (f["m"].isdigit() and f["seed"].isdigit()):
            raise ValueError(f"engine audit key {key!r}: m and seed must be numbers")
        optim = OptimSpec.parse(f["optim"]).key()
        dp = DPSpec.parse(f["dp"]).key()
        return cls(f["scenario"], f["hospital"], dp, optim, int(f["m"]), int(f["seed"]))


def engine_audits(config: dict) -> list[EngineAudit]:
    """Every engine audit of the config: audit.dp's DP-SGD settings (the clipping-only ε = ∞ is
    the control) × ``audit.engine.seeds`` (none when empty)."""
    section = config.get("audit") or {}
    engine = section.get("engine") or {}
    if not engine.get("seeds"):
        return []
    scenario, optim = core_scenario(config).key(), optim_key(config)
    specs = [spec for spec in dp_section_specs(section.get("dp"), "audit.dp") if spec.enabled]
    return [
        EngineAudit(scenario, section["hospital"], spec.key(), optim, int(engine["canaries"]), int(seed))
        for spec in specs
        for seed in engine["seeds"]
    ]


def check_audit(config: dict) -> None:
    """Raise ``ConfigError`` naming the ``audit`` key that cannot work, before any job runs."""
    section = config.get("audit") or {}
    engine = section.get("engine") or {}
    if not section.get("seeds") and not engine.get("seeds"):
        return
    scenario = core_scenario(config)
    names = scenario.hospital_names()
    if section["hospital"] not in names:
        raise ConfigError(f"audit.hospital {section['hospital']!r} is not a hospital of the core scenario: {names}")
    if any(spec.client_level for spec in audit_dp_specs(section)):
        raise ConfigError("audit.dp.placement client_level: canaries are records, client-level DP protects hospitals")
    if engine.get("seeds"):
        _check_engine(section, engine)
    if not section.get("seeds"):
        return
    if section["mode"] not in AUDIT_MODES:
        raise ConfigError(f"audit.mode {section['mode']!r} is not one of {AUDIT_MODES}")
    if not 0 < float(section["guesses"]) <= 1:
        raise ConfigError(f"audit.guesses {section['guesses']} must be a fraction of the canaries in (0, 1]")
    if not 0 < float(section["confidence"]) < 1:
        raise ConfigError(f"audit.confidence {section['confidence']} must be in (0, 1)")
    count, data = int(section["canaries"]), config["data"]
    if count < 2 or _guesses_per_side(count, float(section["guesses"])) < 1:
        raise ConfigError(
            f"audit.canaries {count}: too few for one guess each way at audit.guesses {section['guesses']}"
        )
    pool = dict(zip((1, 0), pool_counts(dataset_spec(data["dataset"]), data["abnormal_classes"]), strict=True))
    used = {
        1: sum(g.n_abnormal * g.count for g in scenario.groups),
        0: sum(g.n_normal * g.count for g in scenario.groups),
    }
    abnormal = int(round(count * pool[1] / (pool[0] + pool[1])))
    for label, need in ((1, abnormal), (0, count - abnormal)):
        if need > pool[label] - used[label]:
            raise ConfigError(
                f"audit.canaries {count}: needs {need} {('normal', 'abnormal')[label]} images outside the hospitals,"
                f" the pool has {pool[label] - used[label]} left"
            )


def _check_engine(section: dict, engine: dict) -> None:
    if not [spec for spec in audit_dp_specs(section) if spec.enabled]:
        raise ConfigError(
            "audit.engine.seeds: the engine audit needs DP-SGD settings in audit.dp (ε = .inf: the control)"
        )
    if _guesses_per_side(int(engine["canaries"]), float(engine["guesses"])) < 1:
        raise ConfigError(
            f"audit.engine.canaries {engine['canaries']}: too few for one guess each way at"
            f" audit.engine.guesses {engine['guesses']}"
        )


def _guesses_per_side(count: int, fraction: float) -> int:
    return int(round(fraction * count / 2))


def max_bound(m: int, r: int, delta: float, confidence: float = 0.95) -> float:
    """The largest bound a design (m canaries, r guesses) can give: every guess right. A row
    whose accounted ε is at or above it cannot fail, whatever the training does."""
    return epsilon_lower_bound(m, r, r, delta, confidence)


def audit_row(scores: pd.DataFrame, guess_fraction: float, delta: float, confidence: float) -> dict:
    """One audit from one cell's canary scores: k₊ = k₋ = round(fraction · m / 2) guesses each
    way, fixed before any score is seen, the ε lower bound they give and the design's
    ``max_bound``."""
    m = len(scores)
    k = _guesses_per_side(m, guess_fraction)
    r, v = guesses(scores["score"].to_numpy(), scores["included"].to_numpy(), k, k)
    return {
        "canaries": m,
        "included": int(scores["included"].sum()),
        "guesses": r,
        "correct": v,
        "delta": delta,
        "confidence": confidence,
        "epsilon_lower_bound": epsilon_lower_bound(m, r, v, delta, confidence),
        "max_bound": max_bound(m, r, delta, confidence),
    }


def with_power(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``conclusive`` (the design could have shown a bound above the accounted ε:
    ``max_bound`` > ``epsilon_accounted``; never for a cell without DP, whose ε is ∞) and
    ``bound_ratio`` (bound / accounted ε, 0 without DP)."""
    accounted = table["epsilon_accounted"].astype(float)
    finite = np.isfinite(accounted)
    out = table.assign(conclusive=finite & (table["max_bound"] > accounted))
    return out.assign(bound_ratio=np.where(finite, table["epsilon_lower_bound"] / accounted.where(finite, 1.0), 0.0))


def audit_table(
    cells: list[tuple[pd.DataFrame, pd.DataFrame]], guess_fraction: float, confidence: float, delta: float
) -> pd.DataFrame:
    """One row per audit cell: the ε its audited hospital's accountant reports (∞ without DP)
    beside the empirical lower bound. ``cells`` holds each cell's (scores, privacy rows);
    ``delta`` is the δ of the bound where the cell has none (no DP)."""
    rows = []
    for scores, privacy in cells:
        first = scores.iloc[0]
        hospital = CanarySpec.parse(first["canaries"]).hospital
        record = privacy.set_index("hospital").loc[hospital]
        private = bool(record["private"])
        cell_delta = float(record["delta"]) if private else delta
        rows.append(
            {
                "scenario": first["scenario"],
                "mode": first["mode"],
                "dp": first["dp"],
                "seed": int(first["seed"]),
                "hospital": hospital,
                "epsilon_target": float(record["epsilon_target"]) if private else math.inf,
                "epsilon_accounted": float(record["epsilon_spent"]) if private else math.inf,
                **audit_row(scores, guess_fraction, cell_delta, confidence),
            }
        )
    return checked(with_power(pd.DataFrame(rows)))


def checked(table: pd.DataFrame) -> pd.DataFrame:
    """``table``, or ``AuditError`` if any row's bound is above its accounted ε."""
    violations = table[table["epsilon_lower_bound"] > table["epsilon_accounted"]]
    if len(violations):
        # The bound is below the true ε with the stated confidence, so above the accounted ε it
        # means DP-SGD or its accountant is wrong (or, less often than 1 − confidence, chance).
        raise AuditError(f"audit: ε lower bound above the accounted ε (a DP bug):\n{violations.to_string()}")
    return table


def engine_audit_table(
    cells: list[tuple[dict, pd.DataFrame, pd.DataFrame]], guess_fraction: float, confidence: float
) -> pd.DataFrame:
    """One row per engine-audit run (``fedhet.training.gradient_audit``): its labels, the accounted ε of
    the audited hospital (∞ for the clipping-only control) and the bound from its gradient
    canaries' scores. ``cells`` holds each run's (labels, scores, privacy rows)."""
    rows = []
    for labels, scores, privacy in cells:
        (record,) = privacy.to_dict("records")
        spent = float(record["epsilon_spent"])
        rows.append(
            {**labels, "epsilon_accounted": spent, **audit_row(scores, guess_fraction, record["delta"], confidence)}
        )
    return checked(with_power(pd.DataFrame(rows)))
