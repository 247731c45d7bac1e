"""Training modes of one grid cell, and what each evaluates.

A mode says which hospitals train together and on whose test splits the result is evaluated:
``federated`` (all hospitals in one federation, under the cell's algorithm), ``local`` (each
hospital alone: the study's "small hospital only") and ``large_only`` (the large hospitals
alone, evaluated everywhere). Inside a run, ``fedhet.training.server.fit`` plays the rounds between the
clients and the strategy. This module passes messages, ``Update``s and metrics around; it never
reads client records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from fedhet.device import CPU
from fedhet.privacy.accounting import PrivacyRecord
from fedhet.training.client import Client
from fedhet.training.client_dp import ClientLevelDP
from fedhet.training.model import build_model
from fedhet.training.server import fit
from fedhet.training.strategy import Parameters, PublicRecords, Strategy, Update
from fedhet.workflow.algorithms import FEDAVG, AlgorithmSpec, load_strategy
from fedhet.workflow.specs import MODE_TAKES_ALGORITHM, REFERENCE_TYPE, DPSpec, ModelSpec, TrainSpec

log = logging.getLogger("fedhet")


@dataclass
class Site:
    """A participant: the client plus what the orchestrator may know about it."""

    client: Client
    type: str

    @property
    def name(self) -> str:
        return self.client.name


@dataclass(frozen=True)
class Run:
    """One training run of a mode: who trains together, who is evaluated with the result.
    ``model`` names the resulting model in the tables; None lets the strategy name each
    hospital's model ("global", a cluster, or the hospital's own)."""

    label: str
    trainers: tuple[int, ...]
    evaluated: tuple[int, ...]
    model: str | None = None
    model_type: str = "global"


@dataclass(frozen=True)
class Mode:
    runs: Callable[[list[tuple[str, str]]], list[Run]]  # (name, type) per hospital → runs
    # Whether the cell's algorithm applies (``fedhet.workflow.specs.MODE_TAKES_ALGORITHM``); where it
    # does not, the run is FedAvg: a single client, or the reference hospitals alone.
    takes_algorithm: bool


def _federated(hospitals: list[tuple[str, str]]) -> list[Run]:
    everyone = tuple(range(len(hospitals)))
    return [Run("federated", everyone, everyone)]


def _local(hospitals: list[tuple[str, str]]) -> list[Run]:
    return [Run(f"local {name}", (i,), (i,), name, kind) for i, (name, kind) in enumerate(hospitals)]


def _large_only(hospitals: list[tuple[str, str]]) -> list[Run]:
    reference = tuple(i for i, (_, kind) in enumerate(hospitals) if kind == REFERENCE_TYPE)
    if not reference:
        raise ValueError(f"mode large_only needs a hospital of type {REFERENCE_TYPE!r}")
    everyone = tuple(range(len(hospitals)))
    return [Run("large_only", reference, everyone, REFERENCE_TYPE, REFERENCE_TYPE)]


_RUNS = {"federated": _federated, "local": _local, "large_only": _large_only}
MODES = {name: Mode(runs, MODE_TAKES_ALGORITHM[name]) for name, runs in _RUNS.items()}


def mode(name: str) -> Mode:
    if name not in MODES:
        raise ValueError(f"mode {name!r} is not one of {tuple(MODES)}")
    return MODES[name]


def trainers(mode_name: str, hospitals: list[tuple[str, str]]) -> set[str]:
    """Names of the hospitals that train in ``mode_name`` (the others only evaluate)."""
    return {hospitals[i][0] for run in mode(mode_name).runs(hospitals) for i in run.trainers}


@dataclass
class CellResult:
    metrics: pd.DataFrame  # one row per (model, evaluated hospital, metric)
    rounds: pd.DataFrame  # per-round training loss, picks and metrics of each hospital's model
    # what the server's client-level DP spent on each hospital's participation (else empty)
    server_privacy: dict[str, PrivacyRecord] = field(default_factory=dict)
    # the parameters of the model each evaluated hospital ends with (what a release would publish)
    final_states: dict[str, Parameters] = field(default_factory=dict)


def _metric_rows(model: str, model_type: str, site: Site, state: Parameters, threshold: float) -> list[dict]:
    values = site.client.evaluate(state, threshold)
    return [
        {
            "model": model,
            "model_type": model_type,
            "hospital": site.name,
            "hospital_type": site.type,
            "n_test": site.client.n_test,
            "n_test_abnormal": site.client.n_test_abnormal,
            "metric": name,
            "value": value,
            "missing_reason": reason,
        }
        for name, (value, reason) in values.items()
    ]


def _models(run: Run, strategy: Strategy, sites: list[Site]) -> list[tuple[Site, str, Parameters]]:
    """(evaluated site, model name, full parameters) of each hospital's model after ``run``:
    the hospital picks from the server's messages as it would to train, with its own personal
    parameters."""
    out = []
    for i in run.evaluated:
        choice = sites[i].client.start_from(strategy.message(), strategy)
        name = run.model or strategy.model_name(choice, sites[i].name)
        out.append((sites[i], name, sites[i].client.evaluated_state(strategy)))
    return out


def run_mode(
    mode_name: str,
    sites: list[Site],
    external: Site | None,
    model_spec: ModelSpec,
    spec: TrainSpec,
    seed: int,
    algorithm: AlgorithmSpec = FEDAVG,
    public: PublicRecords | None = None,
    threshold: float = 0.5,
    eval_every_round: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    device: torch.device = CPU,
    server_dp: DPSpec | None = None,
) -> CellResult:
    """Train per mode under ``algorithm`` and evaluate on every relevant hospital's own test
    split (and the external set). ``public`` is the shared public set G, for algorithms that use
    one. ``progress(label, round, rounds)`` is called after every round. The global models live
    on ``device``, beside the clients' (the server of a simulation shares their device).
    ``server_dp`` (client-level DP, federated mode only) makes the aggregation DP-FedAvg's."""
    if server_dp is not None and mode_name != "federated":
        raise ValueError(
            f"dp {server_dp.key()}: client-level DP protects hospitals inside a federation, not mode {mode_name}"
        )
    runs = mode(mode_name).runs([(s.name, s.type) for s in sites])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def initial(j: int) -> Parameters:
        # Model 0 is the cell's initialisation; further models (IFCA) get their own seeds.
        derived = seed if j == 0 else int(np.random.SeedSequence([seed, j]).generate_state(1)[0])
        return build_model(model_spec, derived).to(device).state_dict()

    metric_rows: list[dict] = []
    round_rows: list[dict] = []
    server_privacy: dict[str, PrivacyRecord] = {}
    final_states: dict[str, Parameters] = {}
    for run in runs:
        trainers = [sites[i] for i in run.trainers]
        strategy = load_strategy(
            algorithm if mode(mode_name).takes_algorithm else FEDAVG,
            initial=initial,
            public=public,
            model_spec=model_spec,
            train_spec=spec,
            seed=seed,
            clients=len(trainers),
        )
        if server_dp is not None:
            strategy = ClientLevelDP(
                strategy,
                server_dp,
                spec.rounds,
                seed,
                len(trainers),
                spec.client_fraction,
                device,
                spec.client_sampling,
            )
        for i, site in enumerate(trainers):
            site.client.add_public(strategy.public_share(i))

        def on_round(r: int, updates: list[tuple[int, Update]], run=run, strategy=strategy, trainers=trainers):
            for i, update in updates:
                model = run.model or strategy.model_name(update.choice, trainers[i].name)
                round_rows.append(_round_row(model, r, trainers[i].name, "train_loss", update.loss))
                if spec.client_fraction < 1:  # the round's sample, recorded
                    round_rows.append(_round_row(model, r, trainers[i].name, "selected", 1.0))
                if len(strategy.message().models) > 1:
                    round_rows.append(_round_row(model, r, trainers[i].name, "pick", update.choice))
            if eval_every_round:
                for site, model, state in _models(run, strategy, sites):
                    for row in _metric_rows(model, "", site, state, threshold):
                        round_rows.append(_round_row(model, r, site.name, row["metric"], row["value"]))

        fit(strategy, [s.client for s in trainers], spec, rng, run.label, on_round, progress)
        if server_dp is not None:
            server_privacy.update({site.name: strategy.record(site.name) for site in trainers})
        evaluated = _models(run, strategy, sites)
        for site, model, state in evaluated:
            metric_rows += _metric_rows(model, run.model_type, site, state, threshold)
            final_states[site.name] = state
        if external is not None:
            for model, state in {model: state for _, model, state in evaluated}.items():
                metric_rows += _metric_rows(model, run.model_type, external, state, threshold)
    return CellResult(pd.DataFrame(metric_rows), pd.DataFrame(round_rows), server_privacy, final_states)


def _round_row(model: str, r: int, hospital: str, quantity: str, value: float) -> dict:
    return {"model": model, "round": r, "hospital": hospital, "quantity": quantity, "value": value}
