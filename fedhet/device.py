"""Where a cell's tensors live: the ``device`` setting (``auto``, ``cpu``, ``cuda``).

Owns turning the setting into a ``torch.device`` and the determinism switches that go with it.
The data, models, optimizer state, DP noise generator and inference of a cell all live on that
device; data-order and Poisson-sampling generators stay on the CPU, so a cell draws the same
batches on either device.

Reproducibility: on the CPU a cell is bit-identical run to run. On CUDA, cuDNN's autotuner is
off and torch's deterministic algorithms are on, which makes a rerun on the same GPU model and
software identical too; a GPU and the CPU differ in floating-point summation order, so their
results agree statistically, not bit for bit.
"""

from __future__ import annotations

import os

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda")
CPU = torch.device("cpu")


def resolve_device(setting: str) -> torch.device:
    """The device a cell trains on; ``auto`` takes CUDA where a GPU is visible. Asking for
    ``cuda`` where there is none is an error (naming the setting), not a silent CPU run."""
    if setting not in DEVICES:
        raise ValueError(f"device {setting!r} is not one of {DEVICES}")
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device 'cuda': no CUDA GPU is visible to this process (use 'cpu' or 'auto')")
    make_deterministic()
    return torch.device("cuda")


def make_deterministic() -> None:
    """Deterministic CUDA kernels. cuBLAS needs its workspace fixed before the first GEMM;
    an op with no deterministic kernel warns instead of failing the cell."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def stream_generator(seed: int, *stream: int, device: torch.device | str = CPU) -> torch.Generator:
    """An explicitly seeded generator per (seed, purpose…) on ``device``: reproducible and
    independent of the global RNG and of the other streams. CUDA noise needs a CUDA generator."""
    state = int(np.random.SeedSequence([seed, *stream]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(state)
