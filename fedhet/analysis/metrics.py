"""Diagnostic metrics for a binary classifier, and their summaries across seeds.

Recall, precision, specificity (at a probability threshold), AUROC and AUPRC
(threshold-free), and the mean probability given to the true class within each class (what a
private tuning score is built from: each record's share is bounded, ``fedhet.analysis.tuning``). An
undefined metric (e.g. AUROC on a single-class test split) is returned as NaN with a reason
instead of raising, so one odd hospital never sinks a run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def _ratio(num: float, den: float, reason: str) -> tuple[float, str]:
    return (num / den, "") if den > 0 else (math.nan, reason)


def _ranked_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct threshold, highest first."""
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return tps.astype(np.float64), fps.astype(np.float64)


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    tps, fps = _ranked_curve(y, p)
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return float(np.trapezoid(tpr, fpr))


def auprc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision: Σ (R_k − R_{k−1}) P_k, as scikit-learn defines it."""
    tps, fps = _ranked_curve(y, p)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


METRICS = ("recall", "precision", "specificity", "auroc", "auprc", "p_true_abnormal", "p_true_normal")
DIVERGED = "model outputs are not finite (training diverged)"  # a metric's missing_reason


def binary_metrics(y_true: np.ndarray, p_abnormal: np.ndarray, threshold: float = 0.5) -> dict[str, tuple[float, str]]:
    """metric name → (value, reason it is missing or "")."""
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(p_abnormal, dtype=np.float64)
    if not np.isfinite(p).all():
        # A diverged model (e.g. too large a learning rate) ranks nothing: its scores must not
        # pass for a ranking, or a hyperparameter search could choose it.
        return {name: (math.nan, DIVERGED) for name in METRICS}
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    n_pos = float(np.sum(y == 1))
    n_neg = float(len(y) - n_pos)
    out = {
        "recall": _ratio(tp, n_pos, "no abnormal cases in test split"),
        "precision": _ratio(tp, tp + fp, "no case predicted abnormal"),
        "specificity": _ratio(n_neg - fp, n_neg, "no normal cases in test split"),
    }
    out["p_true_abnormal"] = _ratio(float(np.sum(p[y == 1])), n_pos, "no abnormal cases in test split")
    out["p_true_normal"] = _ratio(float(np.sum(1 - p[y == 0])), n_neg, "no normal cases in test split")
    if n_pos > 0 and n_neg > 0:
        out["auroc"] = (auroc(y, p), "")
        out["auprc"] = (auprc(y, p), "")
    else:
        reason = "test split has a single class"
        out["auroc"] = (math.nan, reason)
        out["auprc"] = (math.nan, reason) if n_pos == 0 else (1.0, "")
    return out


def mean_ci(values: pd.Series | np.ndarray, level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, lower, upper, n) with a Student-t interval over the finite values."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    # scipy.stats is imported here: it takes a second to import, and training cells, which
    # import this module for their metrics, never summarise.
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def summarise(df: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Mean and 95% CI of ``value`` over the rows of each ``by`` group (usually seeds)."""
    rows = []
    for keys, group in df.groupby(by, sort=True, dropna=False):
        mean, lo, hi, n = mean_ci(group[value])
        rows.append((*(keys if isinstance(keys, tuple) else (keys,)), mean, lo, hi, n))
    return pd.DataFrame(rows, columns=[*by, "mean", "ci_low", "ci_high", "n"])
