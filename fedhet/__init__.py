"""fedhet: how data heterogeneity between hospitals changes what federated learning gives
each of them, with and without differential privacy."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

__version__ = "0.3.0"


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


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write to; rename it into place only if the
    block succeeds, so a failed job never leaves a half-written output behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
