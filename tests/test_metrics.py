import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from fedhet.analysis.metrics import binary_metrics, mean_ci, summarise


@pytest.mark.parametrize("seed", range(5))
def test_metrics_agree_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=300)
    p = np.round(rng.random(300) * 0.6 + y * 0.3, 2)  # rounded: many ties
    ours = binary_metrics(y, p, threshold=0.5)
    pred = (p >= 0.5).astype(int)
    assert ours["recall"][0] == pytest.approx(skm.recall_score(y, pred))
    assert ours["precision"][0] == pytest.approx(skm.precision_score(y, pred))
    assert ours["specificity"][0] == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert ours["auroc"][0] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert ours["auprc"][0] == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)


def test_single_class_split_is_missing_with_a_reason():
    out = binary_metrics(np.zeros(10, dtype=int), np.linspace(0, 1, 10))
    assert math.isnan(out["auroc"][0]) and out["auroc"][1] == "test split has a single class"
    assert math.isnan(out["recall"][0]) and "no abnormal" in out["recall"][1]
    assert out["specificity"][0] == pytest.approx(0.5)


def test_true_class_probability_per_class():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.5, 0.2, 0.4, 0.0])
    out = binary_metrics(y, p)
    assert out["p_true_abnormal"][0] == pytest.approx((0.9 + 0.5) / 2)
    assert out["p_true_normal"][0] == pytest.approx((0.8 + 0.6 + 1.0) / 3)
    assert math.isnan(binary_metrics(np.zeros(3, dtype=int), np.zeros(3))["p_true_abnormal"][0])


def test_precision_undefined_when_nothing_predicted_abnormal():
    value, reason = binary_metrics(np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3]))["precision"]
    assert math.isnan(value) and reason == "no case predicted abnormal"


def test_mean_ci_known_answer():
    # mean 2, sd 1, n 3: half-width = t(0.975, 2) · 1/√3 = 4.302653 / 1.732051
    mean, lo, hi, n = mean_ci([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3)
    assert hi - mean == pytest.approx(4.302652729749464 / math.sqrt(3))
    assert mean - lo == pytest.approx(hi - mean)
    mean, lo, _, n = mean_ci([float("nan"), 5.0])  # NaNs (undefined metrics) are left out
    assert (mean, n) == (5.0, 1) and math.isnan(lo)


def test_summarise_groups():
    df = pd.DataFrame({"mode": ["a", "a", "b", "b"], "value": [1.0, 3.0, 5.0, 5.0]})
    s = summarise(df, ["mode"]).set_index("mode")
    assert s.loc["a", "mean"] == 2.0 and s.loc["b", "ci_low"] == 5.0 and s.loc["a", "n"] == 2


def test_a_diverged_model_gets_no_metric():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.2, np.nan, np.nan, 0.9])  # NaN outputs once the loss is NaN
    metrics = binary_metrics(y, p)
    assert all(math.isnan(value) for value, _ in metrics.values())
    assert {reason for _, reason in metrics.values()} == {"model outputs are not finite (training diverged)"}
