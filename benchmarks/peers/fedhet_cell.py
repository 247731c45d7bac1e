"""fedhet's runner: the federated cell as the training rule runs it (``fedhet.training.federated.run_mode``
with fedhet's clients), on the driver's partitions."""

from __future__ import annotations

import time

import torch
from bench_cell import train_federation
from common import Setup, arguments, report

from fedhet.training.client import Client
from fedhet.training.federated import Site


def main() -> None:
    args = arguments(__doc__)
    torch.set_num_threads(args.cpus)
    setup = Setup(args)
    mspec, tspec = setup.model_spec, setup.train_spec
    sites = [
        Site(Client(setup.read(name), mspec, tspec, setup.seed, i), kind)
        for i, (name, kind) in enumerate(setup.hospitals)
    ]
    rounds_done = []
    start = time.perf_counter()
    result = train_federation(
        sites, mspec, tspec, setup.seed, False, progress=lambda *_: rounds_done.append(time.perf_counter())
    )
    loop = rounds_done[-1] - start  # to the last aggregation; the final evaluation is not training
    small = result.metrics[(result.metrics.hospital_type == "small") & (result.metrics.metric == "auroc")]
    report(args, "fedhet", loop, float(small["value"].mean()))


if __name__ == "__main__":
    main()
