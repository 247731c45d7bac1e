"""The one-run audit's statistics (Steinke, Nasr and Jagielski 2023)."""

import math

import numpy as np
import pytest
from scipy import stats

from fedhet.audit import epsilon_lower_bound, guesses, p_value


def test_without_privacy_loss_the_p_value_is_a_fair_coins_tail():
    assert p_value(1000, 100, 60, 0.0, 0.0) == pytest.approx(stats.binom.sf(59, 100, 0.5))
    values = [p_value(1000, 100, 70, eps, 1e-5) for eps in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < 0.001 < values[-1]  # rises with ε
    assert p_value(1000, 100, 70, 0.5, 1e-3) > p_value(1000, 100, 70, 0.5, 0.0)  # δ adds to it


def test_lower_bound_is_zero_for_chance_guessing_and_large_for_perfect_guessing():
    assert epsilon_lower_bound(1000, 200, 100, 1e-5) == 0.0
    perfect = epsilon_lower_bound(1000, 200, 200, 1e-5)
    assert 2.5 < perfect < 10
    assert epsilon_lower_bound(1000, 200, 200, 1e-5, confidence=0.99) < perfect


def test_the_bound_is_sound_for_a_mechanism_of_known_epsilon():
    """Randomized response with ε = 1: each guess is right with probability e/(1+e). The 95%
    lower bound must stay at or below 1 in about 95% of runs, and not be vacuous."""
    rng = np.random.default_rng(0)
    p, r = math.e / (1 + math.e), 500
    bounds = np.array([epsilon_lower_bound(1000, r, int(rng.binomial(r, p)), 1e-5) for _ in range(300)])
    assert (bounds <= 1.0).mean() >= 0.92
    assert np.median(bounds) > 0.6


def test_guesses_take_the_highest_scores_as_in_and_the_lowest_as_out():
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.5, 0.7])
    included = np.array([True, False, False, False, True, True])
    # in: 0.9 (right), 0.8 (wrong); out: 0.1 (right), 0.2 (right)
    assert guesses(scores, included, 2, 2) == (4, 3)
    assert guesses(scores, included, 1, 0) == (1, 1)
    with pytest.raises(ValueError, match="4 \\+ 3 guesses for 6 canaries"):
        guesses(scores, included, 4, 3)
