"""White-box audit of the DP-SGD engine with Dirac gradient canaries (Steinke, Nasr and
Jagielski, NeurIPS 2023, "Privacy auditing with one (1) training run", white-box setting).

Owns the training side of the engine audit. m canaries are gradients, not images: canary i is
C·e_{j_i}, the clip norm C on one coordinate j_i of the model's trainable parameters (m distinct
coordinates, drawn at random), and each is included with probability ½, independently. To
the accountant an included canary is one more record of the hospital: at every step it joins
the Poisson batch with the records' sampling rate q and adds its gradient, whose norm is
exactly C, to the clipped sum. It is added after the engine has formed its noised gradient,
which is the same as before the noise, since the noise does not depend on the sum.

The auditor sees every released noised gradient (white-box: every iterate of the model) and
scores canary i by Σ_t (g̃_t[j_i] − the mean of g̃_t over j_i's parameter tensor): its inner
product with the model's change under plain SGD, less the common drift of the records' own
gradients on that tensor, which is the same whether or not the canary is in. The statistics are
``fedhet.privacy.audit``'s. What this audits: the noise's scale σC, the 1/B scaling of the noised sum,
q and the number of steps the accountant counts, and the accountant itself. What it does not:
the clipping of real records (canaries arrive at norm C; ``fedhet.privacy.clipping`` is checked against
per-example gradients from ``torch.func`` and Opacus in tests/test_clipping.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from fedhet.device import stream_generator
from fedhet.privacy.accounting import PrivacyRecord
from fedhet.privacy.dpsgd import PrivateBatches
from fedhet.training.local import Batch, train_local
from fedhet.training.model import build_model, to_tensor
from fedhet.training.optimizer import make_optimizer
from fedhet.workflow.specs import DPSpec, ModelSpec, TrainSpec

INCLUSION_STREAM, SAMPLING_STREAM = 11, 12  # fedhet.device.stream_generator purposes


class GradientCanaries:
    """m Dirac gradient canaries on distinct coordinates of ``params``, each in with probability ½."""

    def __init__(self, params: list[nn.Parameter], count: int, seed: int):
        sizes = [p.numel() for p in params]
        if not 2 <= count <= sum(sizes):
            raise ValueError(f"engine audit: {count} canaries for a model of {sum(sizes)} coordinates (need 2 to that)")
        rng = np.random.default_rng(np.random.SeedSequence([seed, INCLUSION_STREAM]))
        self.coordinates = np.sort(rng.choice(sum(sizes), size=count, replace=False))
        self.included = rng.random(count) < 0.5
        bounds = np.cumsum([0, *sizes])
        self.params = params
        self.tensor = np.searchsorted(bounds, self.coordinates, side="right") - 1  # which parameter
        self.offset = self.coordinates - bounds[self.tensor]
        self.sums = np.zeros(count)  # Σ_t (g̃_t[j] − mean of g̃_t over j's tensor)
        self.sampler = stream_generator(seed, SAMPLING_STREAM)

    def add(self, q: float, max_grad_norm: float, batch_size: int) -> None:
        """Put each included canary into this step's batch with probability q (its gradient
        C·e_j joins p.grad as the records' do: divided by the expected batch size), then read
        the released gradient at every canary's coordinate."""
        drawn = torch.rand(len(self.included), generator=self.sampler).numpy() < q
        present = self.included & drawn
        for t, param in enumerate(self.params):
            mine = self.tensor == t
            flat = param.grad.view(-1)
            hits = self.offset[mine & present]
            if len(hits):
                flat[torch.as_tensor(hits)] += max_grad_norm / batch_size
            if mine.any():
                values = flat[torch.as_tensor(self.offset[mine])].double().numpy()
                self.sums[mine] += values - float(flat.double().mean())

    def scores(self) -> pd.DataFrame:
        """One row per canary: its coordinate, whether it was in, and its summed released
        gradient (an included canary pushes it up by C/B each time it is sampled)."""
        return pd.DataFrame(
            {
                "canary": np.arange(len(self.included)),
                "coordinate": self.coordinates,
                "included": self.included,
                "score": self.sums.copy(),
            }
        )


class _AuditedBatches:
    """A private hospital's batches with the canaries added to every released gradient."""

    def __init__(self, batches: PrivateBatches, canaries: GradientCanaries):
        self.batches, self.canaries = batches, canaries
        self.optimizer = batches.optimizer

    def epoch(self) -> Iterator[Batch]:
        return self.batches.epoch()

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.batches.gradient(x, y)
        engine = self.batches.engine
        self.canaries.add(self.batches.q, self.batches.spec.max_grad_norm, engine.expected_batch_size)


def run_engine_audit(
    images: np.ndarray,
    labels: np.ndarray,
    model_spec: ModelSpec,
    train_spec: TrainSpec,
    dp: DPSpec,
    count: int,
    seed: int,
    model: nn.Module | None = None,
) -> tuple[pd.DataFrame, PrivacyRecord]:
    """Train one hospital alone with DP-SGD (``train_spec.rounds × local_epochs`` epochs, the
    book-keeping engine, one accountant) with ``count`` gradient canaries; return the canaries'
    scores and what the accountant says was spent. ``model`` replaces the study's CNN (tests)."""
    if not dp.enabled or dp.client_level:
        raise ValueError(f"engine audit: dp {dp.key()} is not DP-SGD at a hospital (use ε = inf for the control)")
    model = model if model is not None else build_model(model_spec, seed)
    x, y = to_tensor(images), torch.from_numpy(labels)
    optimizer = make_optimizer(model.parameters(), train_spec)
    epochs = train_spec.rounds * train_spec.local_epochs
    batches = PrivateBatches("audited", model, optimizer, x, y, train_spec.batch_size, dp, epochs, seed)
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    canaries = GradientCanaries(params, count, seed)
    audited = _AuditedBatches(batches, canaries)
    for _ in range(train_spec.rounds):
        train_local(audited, train_spec.local_epochs)
    return canaries.scores(), batches.record()
