"""What the three peer runners share, so that they differ only in who runs the rounds.

Each runner is a separate process started by ``run.py``: it reads the same partitions (drawn
once by the driver), builds the same CNN from the same seed, trains 10 rounds of FedAvg (one
local epoch, SGD with momentum restarted each round, batch 64) and evaluates the final global
model on the small hospitals' test splits. It writes one JSON line: the training loop's
seconds and the small hospitals' mean AUROC. The plain loop and Flower's client train with
``local_epoch`` below, a textbook PyTorch epoch; fedhet trains with its own client.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fedhet.analysis.metrics import auroc
from fedhet.data.partition import HospitalData, Scenario, read_hospital
from fedhet.training.model import build_model, predict_proba, to_tensor
from fedhet.workflow.config import load_config, model_spec, train_spec

STARTED = time.perf_counter()  # as early as the runner's imports allow: start-up is measured outside


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--partitions", type=Path, required=True, help="the cell's partition directory")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args()


class Setup:
    """The cell as every runner sees it: specs, hospitals (name, type) and their records."""

    def __init__(self, args: argparse.Namespace):
        config = load_config(args.config)
        self.config = config
        self.model_spec, self.train_spec = model_spec(config), train_spec(config)
        self.seed = args.seed
        self.hospitals = Scenario.parse(args.scenario).hospitals_by_type()
        self.partitions = args.partitions

    def read(self, name: str) -> HospitalData:
        return read_hospital(self.partitions / f"{name}.parquet", name)

    def initial_model(self) -> nn.Module:
        return build_model(self.model_spec, self.seed)


def training_tensors(data: HospitalData) -> tuple[torch.Tensor, torch.Tensor]:
    """A hospital's training records as the model takes them, made once per run: float images
    in ``channels_last`` and labels."""
    x = to_tensor(data.train_images).contiguous(memory_format=torch.channels_last)
    return x, torch.from_numpy(data.train_labels)


def local_epoch(model: nn.Module, records: tuple[torch.Tensor, torch.Tensor], spec, generator: torch.Generator) -> None:
    """One epoch of minibatch SGD with momentum, the optimizer new (momentum restarted) as in
    fedhet, written as a competent PyTorch user would for a small CNN on CPU: ``channels_last``
    tensors and model, records converted once per run (``training_tensors``), and the epoch's
    records shuffled with one gather, so that each batch is a contiguous slice."""
    model.to(memory_format=torch.channels_last)
    x, y = records
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    order = torch.randperm(len(y), generator=generator)
    x, y = x[order].contiguous(memory_format=torch.channels_last), y[order]
    for start in range(0, len(y), spec.batch_size):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[start : start + spec.batch_size]), y[start : start + spec.batch_size]).backward()
        optimizer.step()


def fedavg_loop(model: nn.Module, hospitals: list[HospitalData], spec, seed: int) -> nn.Module:
    """FedAvg the textbook way: every round each hospital trains a copy of the global model,
    which becomes the example-weighted mean of the copies. Batch order: one generator per
    hospital seeded as fedhet seeds its clients, so both draw the same batches."""
    generators = [torch.Generator().manual_seed(seed * 1_000_003 + i) for i in range(len(hospitals))]
    records = [training_tensors(data) for data in hospitals]
    for _ in range(spec.rounds):
        states, sizes = [], []
        for (x, y), generator in zip(records, generators, strict=True):
            local = copy.deepcopy(model)
            for _ in range(spec.local_epochs):
                local_epoch(local, (x, y), spec, generator)
            states.append({k: v.detach() for k, v in local.state_dict().items()})
            sizes.append(len(y))
        model.load_state_dict(weighted_average(states, sizes))
    return model


def weighted_average(states: list[dict[str, torch.Tensor]], weights: list[int]) -> dict[str, torch.Tensor]:
    total = float(sum(weights))
    return {k: sum(s[k] * (w / total) for s, w in zip(states, weights, strict=True)) for k in states[0]}


def small_mean_auroc(setup: Setup, model: nn.Module) -> float:
    """The small hospitals' mean AUROC of ``model`` on their own test splits."""
    values = []
    for name, kind in setup.hospitals:
        if kind == "small":
            data = setup.read(name)
            values.append(auroc(data.test_labels, predict_proba(model, to_tensor(data.test_images))))
    return float(np.mean(values))


def report(args: argparse.Namespace, runner: str, loop_seconds: float, small_auroc: float, **extra) -> None:
    """The runner's one result line; the driver adds the process's wall time."""
    result = {
        "runner": runner,
        "cpus": args.cpus,
        "loop_seconds": loop_seconds,
        "in_process_seconds": time.perf_counter() - STARTED,
        "small_mean_auroc": small_auroc,
        **extra,
    }
    args.out.write_text(json.dumps(result) + "\n")


@functools.cache
def cached_records(partitions: Path, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A hospital's training tensors, read and converted once per process: Flower's clients
    are rebuilt every round, and a Flower user keeps the data in the worker between rounds the
    same way."""
    return training_tensors(read_hospital(partitions / f"{name}.parquet", name))
