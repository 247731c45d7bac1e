"""Choosing the learning rate and clipping norm per DP setting, publicly or privately, and what
the choice costs.

Owns the tuning score, what a small hospital releases of it, the choice per setting
(``dp_selection_table``) and the charge of a private choice (``tuning_charges``). The two
ways to tune (``fedhet.data.holdout``):

* **public**: every candidate trains and is scored on public proxies of the hospitals
  (``fedhet.data.public_proxy``). No private record is read, so the scores are released exactly and
  the choice costs no ε; the final run with the chosen setting spends what it reports.
* **private** (holdout ``validation``): every candidate trains on the hospitals' training
  records less a validation split and is scored on that split. Each small hospital releases
  its score through a Gaussian mechanism, and the choice, the argmax of the released scores,
  is post-processing of them. Each hospital is charged for every candidate's training and
  score and for the final run (``fedhet.privacy.tuning_charge.charge_composition``).

The score is the class-balanced mean probability the model gives the true class on a small
hospital's split. A record moves one class's sum by at most 1, so the pair of sums has L2
sensitivity 1 under add/remove-one, the neighbouring relation of DP-SGD's ε; the class counts
divided by are public, as the scenario fixes each hospital's size and abnormal ratio.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from fedhet.analysis.metrics import summarise
from fedhet.analysis.tables import CELL_KEYS, with_settings
from fedhet.data.partition import Scenario
from fedhet.privacy.tuning_charge import COMPOSITION, Candidate, charge_composition
from fedhet.workflow.specs import FOCUS_TYPE

SCORE = "balanced_p_true"  # the class-balanced mean probability of the true class
SCORED = FOCUS_TYPE  # the hospitals whose scores choose: the study asks what the small ones get
SETTING = ["scenario", "mode", "algorithm", "placement", "epsilon", "delta"]


def score_noise(holdout: str, multiplier: float) -> float:
    """The noise multiplier σ_s a small hospital's score is released with: none for public
    proxies, ``multiplier`` (the config's ``tuning.score_noise``) for private records."""
    return 0.0 if holdout == "public" else multiplier


def _release_rng(cell: tuple, hospital: str) -> np.random.Generator:
    # The hospital's own noise, fixed by its cell and name so that a table rebuild releases the
    # same score (same config and seed → same choice).
    digest = hashlib.sha256("/".join(map(str, (*cell, hospital))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def release_score(
    p_true_abnormal: float, p_true_normal: float, n_abnormal: int, n_normal: int, sigma: float, rng: np.random.Generator
) -> float:
    """Hospital side: the score a hospital releases from its split. The per-class sums of the
    true class's probability (a diverged model's NaN counts as 0: each record's share stays in
    [0, 1]) plus Gaussian noise of std ``sigma`` each, divided by the public class counts."""
    terms = []
    for mean, n in ((p_true_abnormal, n_abnormal), (p_true_normal, n_normal)):
        if n > 0:
            total = 0.0 if math.isnan(mean) else mean * n
            terms.append((total + sigma * rng.standard_normal()) / n)
    return float(np.mean(terms)) if terms else math.nan


def released_scores(metrics: pd.DataFrame, multiplier: float) -> pd.DataFrame:
    """Per tuning cell: the mean over its small hospitals of the score each released
    (``value``, metric ``SCORE``), from the cells' metric rows."""
    rows = metrics[(metrics["hospital_type"] == SCORED) & metrics["metric"].isin(["p_true_abnormal", "p_true_normal"])]
    index = [*CELL_KEYS, "hospital", "n_test", "n_test_abnormal"]
    wide = rows.set_index([*index, "metric"])["value"].unstack("metric").reset_index()
    values = []
    for row in wide.itertuples(index=False):
        cell = tuple(getattr(row, key) for key in CELL_KEYS)
        sigma = score_noise(row.holdout, multiplier)
        n_abnormal = int(row.n_test_abnormal)
        values.append(
            release_score(
                row.p_true_abnormal,
                row.p_true_normal,
                n_abnormal,
                int(row.n_test) - n_abnormal,
                sigma,
                _release_rng(cell, row.hospital),
            )
        )
    per_hospital = wide[CELL_KEYS].assign(value=values)
    out = per_hospital.groupby(CELL_KEYS, as_index=False).agg(value=("value", "mean"))
    return out.assign(metric=SCORE)


def dp_selection_table(metrics: pd.DataFrame, multiplier: float) -> pd.DataFrame:
    """Learning rate and clip norm chosen per setting on tuning cells (holdout ``validation`` or
    ``public``; test cells are never read): per (holdout, mode, DP placement, ε, δ), each
    candidate (C, lr) with the mean over seeds of its released score (95% CI); the highest
    mean is ``chosen`` (ties: the smaller C, then the smaller lr). The cell without DP is a
    setting of its own, its candidates the learning rates. ``candidates`` counts the training
    runs behind the choice (settings × seeds): what a private choice is charged for."""
    tuning = metrics[metrics["holdout"].isin(["validation", "public"])]
    scores = released_scores(tuning, multiplier)
    summary = with_settings(summarise(scores, [*[k for k in CELL_KEYS if k != "seed"], "metric"]))
    summary = summary.sort_values(["holdout", *SETTING, "max_grad_norm", "lr"], kind="stable").reset_index(drop=True)
    groups = summary.groupby(["holdout", *SETTING], dropna=False, sort=False)
    summary["chosen"] = summary.index.isin(groups["mean"].idxmax().dropna())
    summary["candidates"] = groups["n"].transform("sum")
    summary["score_noise"] = [score_noise(h, multiplier) for h in summary["holdout"]]
    columns = ["holdout", *SETTING, "max_grad_norm", "lr", "dp", "optim", "metric", "mean", "ci_low", "ci_high", "n"]
    return summary[[*columns, "candidates", "score_noise", "chosen"]]


def choices_yaml(table: pd.DataFrame, holdout: str) -> str:
    """The rows of ``dp_selection_table`` chosen on ``holdout`` as a tuned experiment's entry
    (config YAML): ``chosen_on`` and the ``choices`` list."""
    lines = []
    for row in table[table["chosen"] & (table["holdout"] == holdout)].itertuples():
        fields = {"mode": row.mode, "placement": row.placement}
        if row.placement != "none":
            fields |= {"epsilon": row.epsilon, "max_grad_norm": row.max_grad_norm}
        fields["lr"] = row.lr
        body = ", ".join(f"{k}: {_yaml_value(v)}" for k, v in fields.items())
        lines.append(f"  - {{{body}}}")
    return "\n".join([f"chosen_on: {holdout}", "choices:", *lines])


def _yaml_value(value) -> str:
    if isinstance(value, str):
        return value
    return ".inf" if math.isinf(value) else f"{value:g}"


def _candidate(row, score_sigma: float, delta: float) -> Candidate:
    """A hospital's part in one run, as the accountant sees it, from its privacy row."""
    if not row.trained:
        return Candidate(0.0, 1.0, 0, score_sigma, delta)  # it only scores
    if not row.private:
        return Candidate(0.0, 1.0, 1, score_sigma, delta)  # trained without noise: unbounded
    return Candidate(float(row.sigma), float(row.q), int(row.steps), score_sigma, delta)


def tuning_charges(candidates: pd.DataFrame, finals: pd.DataFrame, multiplier: float) -> pd.DataFrame:
    """Per final cell of a DP setting chosen on validation cells, and per hospital that is
    private or releases a score: ε of the final run alone (``epsilon_training``), of choosing it
    (``epsilon_tuning``) and of both (``epsilon_total``), at the setting's δ, by composition over
    every candidate run of its setting (``candidates``: all C, lr and seeds tuned), each with its
    score release (small hospitals only, whether or not they train in the mode), and the final
    run. ``candidates`` and ``finals`` are privacy rows (``fedhet.privacy.accounting``) with their cells'
    keys. A hospital that trains without noise anywhere in this is unbounded (ε = ∞)."""
    candidates = with_settings(candidates[candidates["holdout"] == "validation"])
    finals = with_settings(finals)
    finals = finals[finals["placement"] != "none"]
    rows = []
    for final in finals.itertuples(index=False):
        scored = dict(Scenario.parse(final.scenario).hospitals())[final.hospital].type == SCORED
        if not (final.private or scored):
            continue
        setting = (candidates["mode"] == final.mode) & (candidates["placement"] == final.placement)
        setting &= (candidates["epsilon"] == final.epsilon) & (candidates["delta"] == final.delta)
        runs = candidates[setting & (candidates["hospital"] == final.hospital)]
        if runs.empty:
            raise ValueError(
                f"tuning charge: no validation cell of mode {final.mode}, placement {final.placement},"
                f" ε = {final.epsilon:g} for {final.hospital}: was this setting chosen on validation cells?"
            )
        # σ depends on ε, δ, q and steps only, never on C or lr: every candidate of a setting is
        # the same mechanism, and the accountant composes it len(runs) times.
        score_sigma = multiplier if scored else math.inf
        mechanisms = {_candidate(r, score_sigma, final.delta) for r in runs.itertuples(index=False)}
        if len(mechanisms) != 1:
            raise ValueError(f"tuning charge: candidates of {final.hospital} differ in σ, q or steps: {mechanisms}")
        (base,) = mechanisms
        charge = charge_composition(base, len(runs), final=_candidate(final, math.inf, final.delta))
        rows.append(
            {
                **{key: getattr(final, key) for key in CELL_KEYS},
                "hospital": final.hospital,
                "candidates": len(runs),
                "score_noise": score_sigma,
                "epsilon_training": charge.epsilon_training,
                "epsilon_tuning": charge.epsilon_tuning,
                "epsilon_total": charge.epsilon_total,
                "delta": charge.delta,
                "method": COMPOSITION,
            }
        )
    return pd.DataFrame(rows)


def with_tuning(privacy: pd.DataFrame, variants: pd.DataFrame, charges: pd.DataFrame | None) -> pd.DataFrame:
    """A figure's privacy rows, one per way its cell was tuned (``variants``: tuning, mode, dp,
    optim), with ``epsilon_training`` (the run's own ε), ``epsilon_tuning`` (the choice's price:
    0 for fixed or publicly chosen settings) and ``epsilon_total``; a privately chosen setting's
    from ``charges``, where a hospital that only scored also has a row."""
    rows = privacy.merge(variants[["tuning", "mode", "dp", "optim"]].drop_duplicates(), on=["mode", "dp", "optim"])
    rows = rows.assign(epsilon_training=rows["epsilon_spent"], epsilon_tuning=0.0, epsilon_total=rows["epsilon_spent"])
    charged = (rows["tuning"] == "validation") & (rows["dp"] != "nodp")
    if not charged.any():
        return rows
    if charges is None:
        raise ValueError("privately tuned rows need their tuning charges")
    keys = [*CELL_KEYS, "hospital"]
    found = rows.loc[charged, keys].merge(charges, on=keys, how="left")
    missing = found["epsilon_total"].isna().to_numpy() & rows.loc[charged, "private"].to_numpy()
    if missing.any():
        raise ValueError(f"no tuning charge for {found.loc[missing, keys].iloc[0].to_dict()}")
    for column in ("epsilon_training", "epsilon_tuning", "epsilon_total"):
        values = found[column].to_numpy()
        old = rows.loc[charged, column].to_numpy()
        rows.loc[charged, column] = np.where(pd.isna(values), old, values)
    return rows
