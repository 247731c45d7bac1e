"""Flower's runner: the same FedAvg cell in Flower's Simulation Engine (Ray backend), one
``ClientApp`` per hospital, the server's ``FedAvg`` strategy weighting updates by examples.
With ``--cpus N`` Ray gets N CPUs and each client 1, so N clients train at once."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import numpy as np
import torch
from common import Setup, arguments, cached_records, local_epoch, report, small_mean_auroc
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, ndarrays_to_parameters
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation


def get_weights(model: torch.nn.Module) -> list[np.ndarray]:
    return [v.detach().cpu().numpy() for v in model.state_dict().values()]


def set_weights(model: torch.nn.Module, weights: list[np.ndarray]) -> None:
    keys = model.state_dict().keys()
    model.load_state_dict(OrderedDict((k, torch.from_numpy(np.copy(w))) for k, w in zip(keys, weights, strict=True)))


class Hospital(NumPyClient):
    def __init__(self, setup: Setup, index: int):
        self.setup, self.index = setup, index
        self.name = setup.hospitals[index][0]

    def fit(self, parameters, config):
        torch.set_num_threads(1)  # one CPU per client, as reserved
        model = self.setup.initial_model()
        set_weights(model, parameters)
        records = cached_records(self.setup.partitions, self.name)
        stream = self.setup.seed * 1_000_003 + self.index
        generator = torch.Generator().manual_seed(stream * 1_000 + int(config["round"]))
        for _ in range(self.setup.train_spec.local_epochs):
            local_epoch(model, records, self.setup.train_spec, generator)
        return get_weights(model), len(records[1]), {}


def main() -> None:
    args = arguments(__doc__)
    setup = Setup(args)
    rounds = setup.train_spec.rounds
    marks: dict[int, float] = {}
    final: list[list[np.ndarray]] = []

    def evaluate(server_round, weights, _config):
        # Called before round 1 and after every round: the loop runs between these marks.
        marks[server_round] = time.perf_counter()
        if server_round == rounds:
            final.append(weights)
        return None

    def client_fn(context: Context):
        return Hospital(setup, int(context.node_config["partition-id"])).to_client()

    def server_fn(_context: Context):
        n = len(setup.hospitals)
        strategy = FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=n,
            min_available_clients=n,
            initial_parameters=ndarrays_to_parameters(get_weights(setup.initial_model())),
            evaluate_fn=evaluate,
            on_fit_config_fn=lambda r: {"round": r},
        )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": args.cpus, "num_gpus": 0, "include_dashboard": False, "logging_level": logging.ERROR},
    }
    run_simulation(
        ServerApp(server_fn=server_fn), ClientApp(client_fn=client_fn), len(setup.hospitals), backend_config=backend
    )
    model = setup.initial_model()
    set_weights(model, final[0])
    report(args, "Flower simulation (Ray)", marks[rounds] - marks[0], small_mean_auroc(setup, model))


if __name__ == "__main__":
    main()
