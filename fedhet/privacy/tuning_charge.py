"""The privacy cost of choosing DP hyperparameters (lr × clipping norm C) on private data.

Owns the charge for tuning: a hospital's records enter every candidate's DP-SGD training and
every candidate's validation score, and picking the best candidate by a private score leaks
(Liu & Talwar 2019; Papernot & Steinke 2022). Each candidate is the *base mechanism*: DP-SGD
(Poisson sampling rate q, noise multiplier σ, T steps, add/remove-one neighbours, as Opacus)
followed by one release of its validation score, a sum of per-record losses bounded by L plus
Gaussian noise of std σ_s·L (the validation count is public). The chosen setting is the argmax
of the noised scores, post-processing of what the candidates released.

Two valid upper bounds on the whole tuning's ε:

* ``charge_composition``: a fixed grid of K candidates, all K base mechanisms composed with a
  PLD accountant; valid whatever the selection rule.
* ``charge_random_search``: Papernot & Steinke's random search, K ~ Poisson(μ) candidates drawn
  uniformly from the grid (``random_search_candidates``), releasing only the best one.

``epsilon_training`` is one candidate's training alone, the ε that ``fedhet.privacy.accounting`` reports
for a cell; the per-run accounting itself (σ calibration, PRV/RDP) stays in ``fedhet.privacy.accounting``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import dp_accounting
import numpy as np
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant
from dp_accounting.rdp.rdp_privacy_accountant import compute_delta, compute_epsilon
from scipy.stats import norm

from fedhet.privacy.accounting import RDP_ORDERS, SIGMA_RANGE, epsilon_spent

COMPOSITION = "composition_pld"
RANDOM_SEARCH = "random_search_poisson"


@dataclass(frozen=True)
class TuningCharge:
    """ε of a hospital's tuning at ``delta``: ``epsilon_total`` = training + tuning overhead."""

    epsilon_training: float  # one candidate's training alone (what fedhet already reports)
    epsilon_tuning: float  # epsilon_total - epsilon_training: the price of choosing
    epsilon_total: float  # all candidates' training and scores, and the choice
    delta: float
    candidates: float  # K of a fixed grid, or the mean μ of K ~ Poisson(μ)
    method: str  # COMPOSITION or RANDOM_SEARCH


# --- the score release: one Gaussian mechanism -------------------------------------------


def gaussian_delta(epsilon: float, sigma: float) -> float:
    """Exact δ(ε) of the Gaussian mechanism of sensitivity 1 and noise std ``sigma``
    (Balle & Wang 2018, Theorem 8): Φ(1/(2σ) − εσ) − e^ε·Φ(−1/(2σ) − εσ)."""
    a, b = 1 / (2 * sigma) - epsilon * sigma, -1 / (2 * sigma) - epsilon * sigma
    return max(0.0, math.exp(norm.logcdf(a)) - math.exp(epsilon + norm.logcdf(b)))


def score_noise_multiplier(epsilon: float, delta: float) -> float:
    """σ_s of the analytic Gaussian mechanism (Balle & Wang 2018) that is exactly (ε, δ)-DP,
    up to a relative 1e-9, never below: the noise std is σ_s·L for per-record losses in [0, L]."""
    if epsilon <= 0 or not 0 < delta < 1:
        raise ValueError(f"score_noise_multiplier: needs epsilon > 0 and 0 < delta < 1, got {epsilon}, {delta}")
    if math.isinf(epsilon):
        return 0.0
    # δ(ε) decreases in σ: bisect on log σ, keeping the side that satisfies the target.
    low, high = math.log(1e-6), math.log(SIGMA_RANGE[1])
    if gaussian_delta(epsilon, math.exp(low)) <= delta:
        return math.exp(low)
    while high - low > 1e-9:
        mid = (low + high) / 2
        low, high = (low, mid) if gaussian_delta(epsilon, math.exp(mid)) <= delta else (mid, high)
    return math.exp(high)


# --- the base mechanism: one candidate ---------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One candidate setting as the accountant sees it: DP-SGD with noise multiplier ``sigma``,
    sampling rate ``q`` and ``steps`` steps (0: the hospital does not train in this mode, it
    only scores), then one Gaussian release of its validation score with noise multiplier
    ``score_sigma`` (inf: no release from private data, e.g. a hospital whose score is not
    read, or a score on public records). ``delta`` is the δ every ε is read at; ``accountant`` the one that reports
    the training's own ε (``fedhet.privacy.accounting.epsilon_spent``)."""

    sigma: float
    q: float
    steps: int
    score_sigma: float
    delta: float
    accountant: str = "prv"

    def __post_init__(self):
        if not 0 < self.q <= 1 or self.steps < 0 or not 0 < self.delta < 1 or self.sigma < 0 or self.score_sigma < 0:
            raise ValueError(
                f"tuning charge: bad σ={self.sigma}, q={self.q}, steps={self.steps}, σ_s={self.score_sigma},"
                f" δ={self.delta}"
            )

    @property
    def unbounded(self) -> bool:
        """No noise on the training or on the score: no finite ε."""
        return (self.steps > 0 and self.sigma == 0) or self.score_sigma == 0

    def epsilon_training(self) -> float:
        if self.steps == 0:
            return 0.0
        return float(epsilon_spent(self.sigma, self.q, self.steps, self.delta, self.accountant))

    def training_event(self) -> dp_accounting.DpEvent:
        if self.steps == 0:
            return dp_accounting.NoOpDpEvent()
        step = dp_accounting.PoissonSampledDpEvent(self.q, dp_accounting.GaussianDpEvent(self.sigma))
        return dp_accounting.SelfComposedDpEvent(step, self.steps)

    def event(self) -> dp_accounting.DpEvent:
        """Its DP-SGD training, then its score's release (none when σ_s = inf)."""
        events = [self.training_event()]
        if not math.isinf(self.score_sigma):
            events.append(dp_accounting.GaussianDpEvent(self.score_sigma))
        return dp_accounting.ComposedDpEvent(events)

    def charge(self, epsilon_total: float, candidates: float, method: str, final: Candidate | None) -> TuningCharge:
        training = (final or self).epsilon_training()
        return TuningCharge(training, epsilon_total - training, epsilon_total, self.delta, candidates, method)


# --- (a) a fixed grid: composition ---------------------------------------------------------


def charge_composition(candidate: Candidate, candidates: int, final: Candidate | None = None) -> TuningCharge:
    """ε of training and scoring all ``candidates`` settings of a grid, by a tight PLD
    accountant (dp_accounting, add/remove-one, pessimistic discretisation).

    Composition holds whatever the selection rule (argmax, or anything else computed from
    the released scores and models). It charges training and score to every record
    regardless of the split: conservative, since a record sits either in the training or in
    the validation split. ``final``: the chosen setting is trained once more afresh on all
    of the hospital's training records (as fedhet's tuned cells are), one more DP-SGD run to
    compose; ``epsilon_training`` is then that run's.
    """
    if candidates < 1:
        raise ValueError(f"charge_composition: candidates {candidates} must be ≥ 1")
    if candidate.unbounded or (final is not None and final.unbounded):
        return candidate.charge(math.inf, candidates, COMPOSITION, final)
    pld = PLDAccountant()
    pld.compose(candidate.event(), candidates)
    if final is not None:
        pld.compose(final.training_event())
    return candidate.charge(float(pld.get_epsilon(candidate.delta)), candidates, COMPOSITION, final)


# --- (b) random search: Papernot & Steinke 2022, Theorem 6 --------------------------------


def rdp_curve(event: dp_accounting.DpEvent, orders: Sequence[float] = RDP_ORDERS) -> np.ndarray:
    """RDP ε(λ) of ``event`` at ``orders`` (dp_accounting's RDP accountant, add/remove-one)."""
    rdp = RdpAccountant(list(orders))
    rdp.compose(event)
    return np.asarray(rdp.rdp, dtype=float)


def random_search_rdp(orders: Sequence[float], rdp: np.ndarray, delta_hat, mu: float) -> np.ndarray:
    """RDP of running the base mechanism K ~ Poisson(μ) times and releasing only the best run.

    Papernot & Steinke 2022 (ICLR), Theorem 6: if Q is (λ, ε)-RDP and (ε̂, δ̂)-DP with
    e^ε̂ ≤ 1 + 1/(λ − 1), and Y is totally ordered, then A (K ~ Poisson(μ) runs of Q, output
    the best) is (λ, ε')-RDP with ε' = ε + μ·δ̂ + log(μ)/(λ − 1). δ̂(ε̂) decreases in ε̂, so the
    best admissible choice is the largest, ε̂ = log(1 + 1/(λ − 1)) (as dp_accounting's
    ``RepeatAndSelectDpEvent`` does). ``delta_hat``: ε̂ ↦ a valid δ̂ of the base mechanism.
    """
    if mu < 1:
        # dp_accounting requires mean ≥ 1 too; fewer than one expected candidate does not tune.
        raise ValueError(f"random search: mean number of candidates μ = {mu} must be ≥ 1")
    out = np.full(len(orders), math.inf)
    for i, order in enumerate(orders):
        if order > 1:
            eps_hat = math.log1p(1 / (order - 1))
            out[i] = rdp[i] + mu * delta_hat(eps_hat) + math.log(mu) / (order - 1)
    return out


def charge_random_search(
    candidate: Candidate, mu: float, final: Candidate | None = None, orders: Sequence[float] = RDP_ORDERS
) -> TuningCharge:
    """ε of random search with K ~ Poisson(μ) candidates (``random_search_candidates``) that
    releases only the best candidate (its setting, model and noised score).

    The base mechanism's RDP curve is dp_accounting's RDP of T Poisson-subsampled Gaussian
    steps plus one Gaussian score; its δ̂(ε̂) is the tighter of its PLD and RDP bounds.
    ``random_search_rdp`` gives the tuned RDP, converted to ε at ``delta`` by dp_accounting's
    conversion (Canonne, Kamath & Steinke 2020), minimised over ``orders``. ``final``: one
    more DP-SGD run of the chosen setting, its RDP added. Only valid if K really is drawn
    from Poisson(μ) and the candidates independently; with K = 0 the result must not depend
    on the data (fall back to a fixed default setting).
    """
    if candidate.unbounded or (final is not None and final.unbounded):
        return candidate.charge(math.inf, mu, RANDOM_SEARCH, final)
    base = candidate.event()
    orders = list(orders)
    rdp = rdp_curve(base, orders)
    pld = PLDAccountant()
    pld.compose(base)

    def delta_hat(eps_hat: float) -> float:
        by_rdp, _ = compute_delta(orders, rdp, eps_hat)
        return min(pld.get_delta(eps_hat), by_rdp)

    tuned = random_search_rdp(orders, rdp, delta_hat, mu)
    if final is not None:
        tuned = tuned + rdp_curve(final.training_event(), orders)
    epsilon_total, _ = compute_epsilon(orders, tuned, candidate.delta)
    return candidate.charge(float(epsilon_total), mu, RANDOM_SEARCH, final)


def random_search_candidates(grid: Sequence, mu: float, seed: int) -> list:
    """The sampling ``charge_random_search`` assumes: K ~ Poisson(μ), then K settings drawn
    uniformly with replacement from ``grid``, reproducibly from ``seed``. May be empty."""
    if not grid:
        raise ValueError("random_search_candidates: empty grid")
    rng = np.random.default_rng(seed)
    k = int(rng.poisson(mu))
    return [grid[i] for i in rng.integers(len(grid), size=k)]
