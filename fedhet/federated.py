"""Training modes of one grid cell: ``federated``, ``local`` and ``large_only``.

Orchestrates rounds between ``fedhet.client`` (hospitals: data, local training,
evaluation on their own test split) and ``fedhet.server`` (selection and FedAvg). This
module passes parameters and counts between them; it never reads client data itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from fedhet.client import Client, ClientUpdate, State
from fedhet.model import build_model
from fedhet.server import fedavg, select_clients
from fedhet.specs import ModelSpec, TrainSpec

MODES = ("federated", "local", "large_only")
REFERENCE_TYPE = "large"  # the hospital type that trains alone in ``large_only``

log = logging.getLogger("fedhet")


@dataclass
class Site:
    """A participant: the client plus what the orchestrator may know about it."""

    client: Client
    type: str


@dataclass
class CellResult:
    metrics: pd.DataFrame  # one row per (model, evaluated hospital, metric)
    rounds: pd.DataFrame  # per-round training loss and global-model metrics


def _fit(
    sites: list[Site],
    init: State,
    spec: TrainSpec,
    rng: np.random.Generator,
    label: str,
    on_round: Callable[[int, State, list[tuple[Site, ClientUpdate]]], None],
    progress: Callable[[str, int, int], None] | None = None,
) -> State:
    """FedAvg over ``sites`` (a single site is plain local training, aggregation a no-op)."""
    state = init
    start = time.perf_counter()
    for r in range(1, spec.rounds + 1):
        chosen = [sites[i] for i in select_clients(len(sites), spec.client_fraction, rng)]
        updates = [(site, site.client.train(state, spec.local_epochs)) for site in chosen]
        state = fedavg([u for _, u in updates])
        on_round(r, state, updates)
        elapsed = time.perf_counter() - start
        eta = elapsed / r * (spec.rounds - r)
        # Private hospitals keep their loss (NaN): average what the others report.
        losses = [u.loss for _, u in updates if not np.isnan(u.loss)]
        mean_loss = np.mean(losses) if losses else np.nan
        log.info(f"{label} round {r}/{spec.rounds} loss {mean_loss:.4f} elapsed {elapsed:.1f}s ETA {eta:.1f}s")
        if progress is not None:
            progress(label, r, spec.rounds)
    return state


def _metric_rows(model: str, model_type: str, site: Site, state: State, threshold: float) -> list[dict]:
    values = site.client.evaluate(state, threshold)
    n_test, n_abn = site.client.n_test, site.client.n_test_abnormal
    return [
        {
            "model": model,
            "model_type": model_type,
            "hospital": site.client.name,
            "hospital_type": site.type,
            "n_test": n_test,
            "n_test_abnormal": n_abn,
            "metric": name,
            "value": value,
            "missing_reason": reason,
        }
        for name, (value, reason) in values.items()
    ]


def run_mode(
    mode: str,
    sites: list[Site],
    external: Site | None,
    model_spec: ModelSpec,
    spec: TrainSpec,
    seed: int,
    threshold: float = 0.5,
    eval_every_round: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> CellResult:
    """Train per ``mode`` and evaluate on every relevant hospital's own test split.
    ``progress(label, round, rounds)`` is called after every round (e.g. a progress bar)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    init = build_model(model_spec, seed).state_dict()
    metric_rows: list[dict] = []
    round_rows: list[dict] = []
    extra = [external] if external is not None else []

    def recorder(model_name: str, evaluated: list[Site]):
        def on_round(r: int, state: State, updates: list[tuple[Site, ClientUpdate]]) -> None:
            for site, update in updates:
                round_rows.append(
                    {
                        "model": model_name,
                        "round": r,
                        "hospital": site.client.name,
                        "quantity": "train_loss",
                        "value": update.loss,
                    }
                )
            if eval_every_round:
                for site in evaluated:
                    for row in _metric_rows(model_name, "", site, state, threshold):
                        round_rows.append(
                            {
                                "model": model_name,
                                "round": r,
                                "hospital": row["hospital"],
                                "quantity": row["metric"],
                                "value": row["value"],
                            }
                        )

        return on_round

    if mode == "federated":
        final = _fit(sites, init, spec, rng, "federated", recorder("global", sites), progress)
        for site in sites + extra:
            metric_rows += _metric_rows("global", "global", site, final, threshold)
    elif mode == "local":
        for site in sites:
            final = _fit(
                [site], init, spec, rng, f"local {site.client.name}", recorder(site.client.name, [site]), progress
            )
            for evaluated in [site] + extra:
                metric_rows += _metric_rows(site.client.name, site.type, evaluated, final, threshold)
    else:  # large_only
        reference = [s for s in sites if s.type == REFERENCE_TYPE]
        if not reference:
            raise ValueError(f"mode large_only needs a hospital of type {REFERENCE_TYPE!r}")
        final = _fit(reference, init, spec, rng, "large_only", recorder(REFERENCE_TYPE, sites), progress)
        for site in sites + extra:
            metric_rows += _metric_rows(REFERENCE_TYPE, REFERENCE_TYPE, site, final, threshold)
    return CellResult(metrics=pd.DataFrame(metric_rows), rounds=pd.DataFrame(round_rows))
