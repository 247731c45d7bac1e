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
"""

from __future__ import annotations

import math

import numpy as np


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
