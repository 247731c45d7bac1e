"""fedhet's runner: the federated cell as the training rule runs it (``fedhet.federated.run_mode``
with fedhet's clients), on the driver's partitions."""

from __future__ import annotations

import time

import torch
from common import Setup, arguments, report

from fedhet.client import Client
from fedhet.federated import Site, run_mode


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
    result = run_mode(
        "federated",
        sites,
        None,
        mspec,
        tspec,
        setup.seed,
        eval_every_round=False,
        progress=lambda _label, _round, _rounds: rounds_done.append(time.perf_counter()),
    )
    loop = rounds_done[-1] - start  # to the last aggregation; the final evaluation is not training
    small = result.metrics[(result.metrics.hospital_type == "small") & (result.metrics.metric == "auroc")]
    report(args, "fedhet", loop, float(small["value"].mean()))


if __name__ == "__main__":
    main()
