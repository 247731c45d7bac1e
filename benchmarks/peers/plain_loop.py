"""The peer baseline: FedAvg as a plain PyTorch loop, hospitals trained one after another."""

from __future__ import annotations

import time

import torch
from common import Setup, arguments, fedavg_loop, report, small_mean_auroc


def main() -> None:
    args = arguments(__doc__)
    torch.set_num_threads(args.cpus)
    setup = Setup(args)
    hospitals = [setup.read(name) for name, _ in setup.hospitals]
    model = setup.initial_model()
    start = time.perf_counter()
    fedavg_loop(model, hospitals, setup.train_spec, setup.seed)
    loop = time.perf_counter() - start
    report(args, "plain PyTorch loop", loop, small_mean_auroc(setup, model))


if __name__ == "__main__":
    main()
