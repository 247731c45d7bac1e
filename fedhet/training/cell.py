"""One grid cell end to end: load its partitions, train per mode, write tidy outputs.

Both the Snakemake training rule and ``fedhet cell`` call ``run_cell``. The cell's
``algorithm`` key (``fedhet.workflow.algorithms.AlgorithmSpec.key``) says how the federation trains;
its ``dp`` key (``fedhet.workflow.specs.DPSpec.key``) says which hospitals train with DP-SGD: those of
the placement's type that train in the cell's mode. A hospital that only evaluates (a small
hospital in ``large_only``) is not private, whatever the placement.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from fedhet.analysis.provenance import beside
from fedhet.analysis.provenance import write as write_provenance
from fedhet.data.partition import Scenario, read_hospital
from fedhet.device import resolve_device
from fedhet.io import write_parquet_atomic
from fedhet.privacy.accounting import privacy_table, private_hospitals, validate_dp
from fedhet.training.canary import CanaryAudit
from fedhet.training.client import Client
from fedhet.training.federated import Site, run_mode, trainers
from fedhet.training.model import to_tensor
from fedhet.workflow.algorithms import AlgorithmSpec
from fedhet.workflow.config import Cell, model_spec, train_spec
from fedhet.workflow.settings import check_setting
from fedhet.workflow.specs import DPSpec

log = logging.getLogger("fedhet")


def run_cell(
    config: dict,
    cell: Cell,
    partition_dir: Path,
    external_path: Path | None,
    metrics_out: Path,
    rounds_out: Path,
    threads: int = 1,
    privacy_out: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    shared_path: Path | None = None,
    audit: tuple[CanaryAudit, Path] | None = None,
) -> pd.DataFrame:
    """Train ``cell`` on the partitions in ``partition_dir`` and write its metrics and
    per-round log as Parquet, and with ``privacy_out`` what each hospital's training spent
    (``fedhet.privacy.accounting.PrivacyRecord`` rows). ``shared_path`` is the shared public set G, for
    algorithms that use one. ``progress`` is called after every round. With ``audit`` (canaries,
    scores path), the canaries are planted at their hospital before training and each one's
    score under that hospital's final model is written after. Beside the metrics goes
    ``provenance.json`` (``fedhet.analysis.provenance``): the machine and library build that computed
    them. Returns the metrics table."""
    torch.set_num_threads(threads)
    device = resolve_device(config.get("device", "cpu"))
    scenario = Scenario.parse(cell.scenario)
    types = {name: group.type for name, group in scenario.hospitals()}
    mspec, tspec = model_spec(config), train_spec(config, cell.optim)
    manifest = json.loads((Path(partition_dir) / "manifest.json").read_text())
    drawn = (manifest["scenario"], manifest["seed"], manifest.get("holdout", "test"))
    if drawn != (cell.scenario, cell.seed, cell.holdout):
        # e.g. a validation cell must never be handed the partitions that hold the test splits
        raise ValueError(f"{partition_dir}: partitions are for {drawn}, not {cell}")
    hospital_data = {name: read_hospital(Path(partition_dir) / f"{name}.parquet", name) for name in types}
    dp = DPSpec.parse(cell.dp, **config.get("privacy", {}))
    algorithm = AlgorithmSpec.parse(cell.algorithm)
    if algorithm.key() != cell.algorithm:  # one cell, one path
        raise ValueError(f"algorithm key {cell.algorithm!r}: write it as {algorithm.key()!r}")
    training = trainers(cell.mode, list(types.items()))
    training_types = {name: kind for name, kind in types.items() if name in training}
    # Every DP and algorithm check runs here, before any client is built or trained.
    if audit is not None:
        hospital_data = audit[0].plant(hospital_data, training)
    validate_dp(dp, {name: len(d.train_labels) for name, d in hospital_data.items()}, training_types)
    private = private_hospitals(dp, training_types)
    check_setting(cell.mode, algorithm, dp)
    public = None
    if algorithm.info.needs_shared_data:
        if shared_path is None:
            raise ValueError(f"algorithm {algorithm.key()}: needs the shared set G (shared_path)")
        shared = read_hospital(Path(shared_path), "shared")
        public = (
            to_tensor(shared.train_images, device).contiguous(memory_format=torch.channels_last),
            torch.from_numpy(shared.train_labels).to(device),
        )
    sites = [
        Site(
            Client(hospital_data[name], mspec, tspec, cell.seed, i, dp if name in private else None, device),
            types[name],
        )
        for i, name in enumerate(types)
    ]
    external = None
    if external_path is not None:
        data = read_hospital(external_path, "external")
        external = Site(Client(data, mspec, tspec, cell.seed, len(sites), device=device), "external")
    start = time.perf_counter()
    n_images = sum(s.client.n_samples for s in sites)
    log.info(f"cell {cell}: {len(sites)} hospitals, {n_images} training images, on {device}")
    result = run_mode(
        cell.mode,
        sites,
        external,
        mspec,
        tspec,
        cell.seed,
        algorithm=algorithm,
        public=public,
        threshold=config["evaluation"]["threshold"],
        eval_every_round=config["evaluation"]["every_round"],
        progress=progress,
        device=device,
        server_dp=dp if dp.client_level else None,
    )
    log.info(f"cell {cell}: trained in {time.perf_counter() - start:.1f}s")
    labels = cell.labels()
    if audit is not None:  # a planted cell's tables say so: they never pass for its twin's
        labels["canaries"] = audit[0].spec.key()
    metrics = result.metrics.assign(**labels)
    write_parquet_atomic(result.rounds.assign(**labels), rounds_out)
    write_parquet_atomic(metrics, metrics_out)
    write_provenance(beside(metrics_out))  # after training: torch's thread count as it ran
    if privacy_out is not None:
        records = [
            result.server_privacy.get(site.name) or site.client.privacy_record(trained=site.name in training)
            for site in sites
        ]
        write_parquet_atomic(privacy_table(records).assign(**labels), privacy_out)
    if audit is not None:
        canaries, scores_out = audit
        scores = canaries.scores(mspec, result.final_states[canaries.spec.hospital], device)
        write_parquet_atomic(scores.assign(**labels), scores_out)
    return metrics
