"""fedhet: how data heterogeneity between hospitals changes what federated learning gives
each of them, with and without differential privacy.

The package reads as the pipeline, in layers; a module imports only from its own layer and
those below it (``tests/test_layers.py`` keeps it so):

====  =================  =====================================================================
layer subpackage         owns
====  =================  =====================================================================
0     ``fedhet``         logging (here), atomic writes (``io``), the torch device (``device``)
1     ``data``           datasets, scanner shifts, the hospitals' draw, records beyond the
                         hospitals, public proxies, the prepare step per holdout (torch-free)
2     ``workflow``       specs, output keys and paths, the config and a cell's identity, the
                         algorithm registry, experiments, the figure registry (torch-free)
3     ``privacy``        the accountant, clipping and DP-SGD engines, the cost of tuning, the
                         audit's grid and bounds (torch only in the engines)
4     ``analysis``       metrics, tables, trend tests, selection, figures, the job plan and its
                         cost, provenance and reproduction checks (torch-free)
5     ``training``       model, local loop, strategy layer and algorithms, hospitals, server,
                         DP-FedAvg, federated runs, the audit's training runs, one cell
6     ``cli``            the ``fedhet`` command
====  =================  =====================================================================

Snakemake's side (rules, ``scripts/``) imports layers 0-4 without torch, and a training job
layer 5.
"""

from __future__ import annotations

import logging
from pathlib import Path

__version__ = "0.7.2"


def setup_logging(path: str | Path | None = None, console: bool = True) -> logging.Logger:
    """Log fedhet's messages to ``path`` (a rule's log file) and, with ``console``, to stderr."""
    logger = logging.getLogger("fedhet")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    logger.propagate = False  # opacus configures the root logger at import; avoid doubled lines
    handlers: list[logging.Handler] = [logging.StreamHandler()] if console else []
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger


LAYERS = (
    ("root", ("fedhet", "fedhet.io", "fedhet.device")),
    ("data", ("fedhet.data",)),
    ("workflow", ("fedhet.workflow",)),
    ("privacy", ("fedhet.privacy",)),
    ("analysis", ("fedhet.analysis",)),
    ("training", ("fedhet.training",)),
    ("cli", ("fedhet.cli",)),
)


def layer_of(module: str) -> int | None:
    """The layer of a fedhet module (``LAYERS`` index), or None for a name outside them."""
    for index, (_, prefixes) in reversed(list(enumerate(LAYERS))):
        if any(module == p or (p != "fedhet" and module.startswith(p + ".")) for p in prefixes):
            return index
    return None
