"""Record-level differential privacy per hospital: placement, calibration and accounting.

Owns who is private under a ``DPSpec`` placement, the input checks, the noise calibration
and ε accounting, and the per-hospital ``PrivacyRecord``. The DP-SGD training itself is
``fedhet.privacy.dpsgd``.

ε is a budget for a hospital's whole training: σ is calibrated once from its sampling rate
and its total number of steps over all rounds. The server only averages what clients send,
which is post-processing and costs no extra privacy.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import warnings
from dataclasses import asdict, dataclass, fields

import pandas as pd

from fedhet.workflow.specs import ACCOUNTANTS, PLACEMENT_TYPES, DPSpec, check_spec

# Opacus' default RDP orders stop at 63, which cannot certify ε below ~0.1 at δ = 1e-5;
# the larger orders (as in Google's dp-accounting) make small budgets reachable.
RDP_ORDERS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [64, 96, 128, 192, 256, 512, 1024])
_INTEGER_ORDERS = tuple(order for order in RDP_ORDERS if float(order).is_integer())
# The PRV accountant's ε error bound, relative to the (looser, cheap) RDP ε: an absolute
# bound would be 10% of a budget of 0.1 but needlessly slow for a budget of 8.
PRV_RELATIVE_ERROR = 0.005
CALIBRATION_TOLERANCE = 0.01  # calibrated σ spends between (1 - tol)·ε and ε
# σ below 0.1 means ε in the thousands (no protection) and makes the accountants crawl.
SIGMA_RANGE = (0.1, 1e6)

log = logging.getLogger("fedhet")


def private_hospitals(spec: DPSpec, hospital_types: dict[str, str]) -> set[str]:
    """Names of the hospitals that train with DP-SGD under ``spec.placement`` (none under
    client-level DP, where the server adds the noise)."""
    check_spec(spec)
    if spec.placement == "all":
        return set(hospital_types)
    wanted = PLACEMENT_TYPES.get(spec.placement)  # None: no hospital runs DP-SGD
    return {name for name, kind in hospital_types.items() if kind == wanted}


def validate_dp(
    spec: DPSpec, n_train_by_hospital: dict[str, int], hospital_types: dict[str, str] | None = None
) -> None:
    """Check ``spec`` before any training: errors for impossible values, a warning per
    private hospital whose δ is not below 1/n (δ ≥ 1/n allows leaking a whole record).

    Without ``hospital_types`` every hospital in ``n_train_by_hospital`` counts as private.
    """
    check_spec(spec)
    if not spec.enabled:
        return
    private = private_hospitals(spec, hospital_types) if hospital_types is not None else set(n_train_by_hospital)
    for name in sorted(private & set(n_train_by_hospital)):
        n = n_train_by_hospital[name]
        if n < 1:
            raise ValueError(f"hospital {name}: private training needs ≥ 1 training record, has {n}")
        if spec.delta >= 1 / n:
            log.warning(
                f"hospital {name}: dp delta {spec.delta:g} ≥ 1/n = 1/{n}; δ should be well below 1/n "
                "(a mechanism that publishes one random record satisfies δ = 1/n)"
            )


# --- accounting --------------------------------------------------------------------------


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Steps of one Poisson-sampled epoch: Opacus keeps the plain loader's ⌈n/B⌉."""
    return math.ceil(n / batch_size)


def sampling_rate(n: int, batch_size: int) -> float:
    """q as Opacus computes it, 1/len(loader) = 1/⌈n/B⌉ (not B/n)."""
    return 1 / steps_per_epoch(n, batch_size)


History = list[tuple[float, float, int]]  # Opacus accountant history: (σ, q, steps)


def epsilon_of_history(history: History, delta: float, accountant: str = "prv") -> float:
    """ε spent by the compositions in ``history`` (an upper bound)."""
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"dp accountant {accountant!r} is not one of {ACCOUNTANTS}")
    if sum(steps for _, _, steps in history) == 0:
        return 0.0
    if any(sigma == 0 for sigma, _, steps in history if steps):
        return math.inf  # a noiseless step releases a clipped gradient exactly
    # Opacus warns when the best RDP order is the largest one: expected for large ε, and the
    # PRV accountant sizes its domain with default orders; neither affects the bound. With
    # q = 1 (fewer records than a batch) the PRV takes log(1 - q) = -inf, which it handles.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        if accountant == "rdp":
            return _rdp_epsilon(history, delta, RDP_ORDERS)
        from opacus.accountants import PRVAccountant  # see _rdp_epsilon

        prv = PRVAccountant()
        prv.history = list(history)
        # RDP bounds PRV from above, so this error bound stays a small fraction of the result.
        # Integer orders only: their closed form is fast, fractional ones are slow for large q.
        eps_error = PRV_RELATIVE_ERROR * _rdp_epsilon(history, delta, _INTEGER_ORDERS)
        return prv.get_epsilon(delta, eps_error=eps_error)


def _rdp_epsilon(history: History, delta: float, orders: tuple[float, ...]) -> float:
    # Opacus is imported on first use: importing it takes about 2 s, a third of a quick cell's
    # start-up, and a non-private cell never needs it.
    from opacus.accountants import RDPAccountant

    rdp = RDPAccountant()
    rdp.history = list(history)
    return rdp.get_epsilon(delta, alphas=list(orders))


def epsilon_spent(sigma: float, q: float, steps: int, delta: float, accountant: str = "prv") -> float:
    """ε of ``steps`` Poisson-subsampled Gaussian steps with noise multiplier ``sigma``."""
    return epsilon_of_history([(sigma, q, steps)], delta, accountant)


@functools.cache  # hospitals of one type share (q, steps): calibrate once per cell
def calibrate_sigma(epsilon: float, delta: float, q: float, steps: int, accountant: str = "prv") -> float:
    """The noise multiplier σ whose ε after ``steps`` steps lies in [(1 - tol)·ε, ε].

    The returned σ always spends at most ``epsilon`` under ``epsilon_spent``, the function
    that reports ε at the end, so a hospital that takes its planned steps lands on target.
    """
    if steps < 1:
        raise ValueError(f"calibrate_sigma: steps {steps} must be ≥ 1")
    if math.isinf(epsilon):
        return 0.0  # clipping only: no noise, no guarantee

    def log_ratio(log_sigma: float) -> float:
        # The PRV returns ε = inf for tiny σ; a large finite value keeps the root finder's
        # arithmetic defined and still means "far above target".
        return min(math.log(epsilon_spent(math.exp(log_sigma), q, steps, delta, accountant) / epsilon), 100.0)

    # The cheap, looser RDP σ is a good upper start for PRV (PRV needs ~0.85–0.95 of it),
    # where RDP can certify ε at all (not much below log(1/δ)/1023 with our orders).
    start = 1.0
    if accountant == "prv":
        with contextlib.suppress(ValueError):
            start = calibrate_sigma(epsilon, delta, q, steps, "rdp")
    try:
        (low, f_low), (high, f_high) = _bracket(log_ratio, math.log(start))
    except ValueError as err:
        raise ValueError(f"dp epsilon {epsilon:g} at delta {delta:g}, q={q:g}, {steps} steps: {err}") from None
    return math.exp(_illinois(log_ratio, low, f_low, high, f_high, math.log(1 - CALIBRATION_TOLERANCE)))


def _bracket(f, x: float, step: float = math.log(2)) -> tuple[tuple[float, float], tuple[float, float]]:
    """Points (low, f(low) > 0) and (high, f(high) ≤ 0) around the root of a decreasing f,
    starting at x and widening by ``step``."""
    high, f_high = x, f(x)
    while f_high > 0:
        if high > math.log(SIGMA_RANGE[1]):
            raise ValueError(f"unreachable, σ would exceed {SIGMA_RANGE[1]:g}")
        high, f_high = high + step, f(high + step)
    low, f_low = high - step / 3, f(high - step / 3)
    while f_low <= 0:
        if low < math.log(SIGMA_RANGE[0]):
            raise ValueError(f"too large to calibrate, σ would fall below {SIGMA_RANGE[0]:g}")
        high, f_high = low, f_low
        low, f_low = low - step, f(low - step)
    return (low, f_low), (high, f_high)


def _illinois(f, low: float, f_low: float, high: float, f_high: float, floor: float) -> float:
    """Regula falsi (Illinois variant) on a decreasing f until floor ≤ f(high) ≤ 0.

    In (log σ, log ε) the curve is nearly straight, so a few evaluations suffice, which
    matters because one PRV evaluation takes up to seconds.
    """
    w_low, w_high, kept = f_low, f_high, 0
    for _ in range(100):
        if f_high >= floor:
            break
        x = (low * w_high - high * w_low) / (w_high - w_low)
        fx = f(x)
        if fx <= 0:
            high, f_high, w_high = x, fx, fx
            w_low, kept = (w_low / 2 if kept == -1 else w_low), -1
        else:
            low, w_low = x, fx
            w_high, kept = (w_high / 2 if kept == 1 else w_high), 1
    return high


# --- per-hospital record -----------------------------------------------------------------


@dataclass(frozen=True)
class PrivacyRecord:
    """What a hospital's training spent. A hospital is private only if it trains under DP-SGD
    in the cell; the others (``trained`` False: it only evaluates) have NaN/None fields."""

    hospital: str
    private: bool
    trained: bool = True
    sigma: float = math.nan
    max_grad_norm: float = math.nan
    q: float = math.nan
    steps: int | None = None
    epsilon_target: float = math.nan
    epsilon_spent: float = math.nan
    delta: float = math.nan
    accountant: str | None = None
    level: str | None = None  # "record" (DP-SGD at the hospital) or "client" (the server's DP-FedAvg)


# The neighbouring relation each level's ε refers to, and what it takes as public.
NEIGHBOURING = {
    "record": "add/remove one record of the hospital; its record count n is public",
    "client": "add/remove one hospital's update (absent: contributes nothing); K, C, rounds public",
}


def privacy_table(records: list[PrivacyRecord]) -> pd.DataFrame:
    """One row per hospital, with stable column types even when no hospital is private, and
    the neighbouring relation its ε refers to (``relation``; empty where not private)."""
    df = pd.DataFrame([asdict(r) for r in records], columns=[f.name for f in fields(PrivacyRecord)])
    df["relation"] = df["level"].map(NEIGHBOURING)
    return df.astype(
        {
            "private": bool,
            "trained": bool,
            "steps": "Int64",
            "accountant": "string",
            "level": "string",
            "relation": "string",
        }
    )
