"""The white-box engine audit: Dirac gradient canaries through the real DP-SGD engine; it must
pass the engine as built and catch one whose noise is smaller than its accountant believes."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import fedhet.privacy.dpsgd as dpsgd
from fedhet.privacy.accounting import privacy_table
from fedhet.privacy.audit import AuditError, engine_audit_table, max_bound, with_power
from fedhet.training.gradient_audit import GradientCanaries, run_engine_audit
from fedhet.workflow.specs import DPSpec, ModelSpec, TrainSpec

# Full-batch training (n = B, so q = 1) of a small MLP for 10 steps: each canary then meets
# the Gaussian mechanism 10 times, and 2,000 canaries fit among its 4,290 coordinates.
N, STEPS, CANARIES, GUESSES = 64, 10, 2000, 0.1


def tiny_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))


def audit(epsilon: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    images = rng.random((N, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 2, N).astype(np.int64)
    spec = TrainSpec(rounds=STEPS, local_epochs=1, batch_size=N, lr=0.1, momentum=0.0)
    dp = DPSpec("all", epsilon, 1e-5, 1.0)
    scores, record = run_engine_audit(images, labels, ModelSpec(), spec, dp, CANARIES, seed, model=tiny_model(seed))
    return scores, privacy_table([record])


def table(epsilon: float, seed: int = 0) -> pd.DataFrame:
    scores, privacy = audit(epsilon, seed)
    return engine_audit_table([({"seed": seed}, scores, privacy)], GUESSES, 0.95)


def test_canaries_sit_on_distinct_coordinates_about_half_of_them_in_and_reproducibly():
    params = list(tiny_model(0).parameters())
    canaries = GradientCanaries(params, 1000, seed=3)
    assert len(set(canaries.coordinates)) == 1000 and canaries.coordinates.max() < 4290
    assert 400 < canaries.included.sum() < 600
    again = GradientCanaries(params, 1000, seed=3)
    assert np.array_equal(again.coordinates, canaries.coordinates)
    assert np.array_equal(again.included, canaries.included)
    assert not np.array_equal(GradientCanaries(params, 1000, seed=4).included, canaries.included)
    with pytest.raises(ValueError, match="5000 canaries for a model of 4290 coordinates"):
        GradientCanaries(params, 5000, seed=3)


def test_without_noise_the_audit_sees_the_canaries():
    row = table(math.inf).iloc[0]
    assert row["correct"] == row["guesses"]  # every guess right: nothing hides the canaries
    assert row["epsilon_lower_bound"] >= 2 and not row["conclusive"]  # no ε to check


def test_the_engine_as_built_passes_its_audit():
    row = table(1.0).iloc[0]
    assert 0.99 <= row["epsilon_accounted"] <= 1.0
    assert row["conclusive"]  # the design could have shown a bound above ε = 1 ...
    assert row["epsilon_lower_bound"] <= row["epsilon_accounted"]  # ... and did not


class _QuietEngine(dpsgd._BookKeepingGradients):
    """A mis-calibrated engine: noise at σ/4 while the accountant is told σ."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        told, step = self.sigma, self.accountant.step
        self.sigma = told / 4
        self.accountant.step = lambda noise_multiplier, sample_rate: step(
            noise_multiplier=told, sample_rate=sample_rate
        )


def test_an_engine_with_too_little_noise_fails_its_audit(monkeypatch):
    monkeypatch.setitem(dpsgd.ENGINES, "bookkeeping", _QuietEngine)
    scores, privacy = audit(1.0)
    assert privacy["epsilon_spent"].iloc[0] <= 1.0  # the accountant is fooled
    with pytest.raises(AuditError, match="ε lower bound above the accounted ε"):
        engine_audit_table([({"seed": 0}, scores, privacy)], GUESSES, 0.95)


def test_a_design_that_cannot_reach_its_epsilon_is_not_conclusive():
    # the black-box audit's design: about 4.17, above ε = 4 only when every guess is right
    reach = max_bound(1000, 200, 1e-5)
    rows = pd.DataFrame(
        {
            "epsilon_accounted": [4.0, 4.5, 10.0, math.inf],
            "epsilon_lower_bound": [0.0, 0.0, 0.0, 0.0],
            "max_bound": [reach] * 4,
        }
    )
    assert 4.1 < reach < 4.2
    assert with_power(rows)["conclusive"].tolist() == [True, False, False, False]
