"""Where a DP-SGD step's time goes: one batch of the study's CNN, plain SGD against DP-SGD
under fedhet's book-keeping engine and Opacus' hooks, and book-keeping's parts per layer.

Times each variant on the same Poisson batch (B = 64 expected, 3,000 records, the study's
model), interleaved, best of ``--repeats`` rounds of ``--steps`` steps each:

- ``plain``: forward, backward (weight gradients included), optimizer step;
- ``bookkeeping`` / ``hooks``: the whole private step (clipped sum, noise, accountant, step);
- book-keeping's parts: forward with layer inputs recorded; backward to the layer outputs only;
  per layer, the input patches, the per-example norms and the clipped sum.

    python benchmarks/bench_dp_step.py --threads 1 --out benchmarks/results/dp_step_1thread.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from fedhet.data.partition import HospitalData
from fedhet.privacy.clipping import BookKeeping
from fedhet.training.client import Client
from fedhet.workflow.specs import DPSpec, ModelSpec, TrainSpec


def best_ms(step: Callable[[], object], steps: int, repeats: int) -> list[float]:
    """Milliseconds per call of ``step`` in each of ``repeats`` rounds of ``steps`` calls."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        out.append((time.perf_counter() - start) / steps * 1e3)
    return out


def hospital(n: int = 3000) -> HospitalData:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return HospitalData("h", images, rng.integers(0, 2, n), images[:10], np.arange(10) % 2)


def parts(clipper: BookKeeping, x: torch.Tensor, y: torch.Tensor) -> dict[str, Callable[[], object]]:
    """Book-keeping's stages as separately timed calls, each on the same recorded batch."""

    def forward():
        clipper._recording = []
        loss = F.cross_entropy(clipper.module(x), y, reduction="sum")
        recorded, clipper._recording = clipper._recording, None
        return loss, recorded

    def backward():
        loss, recorded = forward()
        return recorded, torch.autograd.grad(loss, [out for _, _, out in recorded])

    recorded, grads = backward()
    factors = torch.ones(len(y))
    stages: dict[str, Callable[[], object]] = {"forward": forward, "forward + backward to layer outputs": backward}
    for (module, a, _), b in zip(recorded, grads, strict=True):
        name = f"{type(module).__name__} {tuple(module.weight.shape)}"
        layer = clipper._layer(module, a, b, None)
        stages[f"{name}: patches{' (ghost norm)' if layer.ghost else ''}"] = lambda m=module, a=a, b=b: clipper._layer(
            m, a, b, None
        )
        stages[f"{name}: per-example norms"] = layer.squared_norms
        stages[f"{name}: clipped sum"] = lambda layer=layer: layer.clipped_sums(factors)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, train = ModelSpec(16, 32, 5), TrainSpec(rounds=10, batch_size=64)
    clients = {
        "plain": Client(hospital(), model, train, 0, 0),
        "bookkeeping": Client(hospital(), model, train, 0, 0, dp=DPSpec("all", 1.0)),
        "hooks": Client(hospital(), model, train, 0, 0, dp=DPSpec("all", 1.0, grad_sample_mode="hooks")),
    }
    x, y = next(iter(clients["bookkeeping"].batches.loader))

    def step(c: Client) -> Callable[[], None]:
        def run():
            c.batches.gradient(x, y)
            c.batches.optimizer.step()

        return run

    calls = {name: step(c) for name, c in clients.items()}
    calls.update(parts(clients["bookkeeping"].batches.engine.clipper, x, y))
    for call in calls.values():  # warm-up
        for _ in range(5):
            call()
    rounds = {name: [] for name in calls}
    for _ in range(args.repeats):  # interleaved, so drift hits every variant alike
        for name, call in calls.items():
            rounds[name] += best_ms(call, args.steps, 1)
    ms = {name: min(times) for name, times in rounds.items()}
    report = {
        "threads": args.threads,
        "batch": len(y),
        "torch": torch.__version__,
        "ms_per_step": ms,
        "bookkeeping_over_plain": ms["bookkeeping"] / ms["plain"],
        "hooks_over_plain": ms["hooks"] / ms["plain"],
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
