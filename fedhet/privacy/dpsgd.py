"""DP-SGD batches for one private hospital: Poisson sampling, clipped and noised gradients,
and the accountant.

Owns ``PrivateBatches``: the hospital's Poisson sampler (Opacus' ``DPDataLoader``), one
accountant for the whole federated run, σ calibrated once (``fedhet.privacy.accounting.calibrate_sigma``)
for the epochs planned over all rounds, and the engine that forms each batch's clipped, noised
gradient: fedhet's book-keeping (``fedhet.privacy.clipping``, the default) or Opacus' PrivacyEngine
(hooks, with a conv rule that is correct in channels_last; ew; functorch) as the reference.
Both add the same Gaussian noise σC from the same generator, so they agree to float rounding.
It plugs into ``fedhet.training.local.train_local``, the loop every hospital trains with: a batch's
gradient is formed differently, the loop is the same.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator
from typing import Protocol

import torch
from opacus import PrivacyEngine
from opacus.accountants.utils import create_accountant
from opacus.data_loader import DPDataLoader
from opacus.grad_sample.conv import compute_conv_grad_sample
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from fedhet.device import stream_generator
from fedhet.privacy.accounting import PrivacyRecord, calibrate_sigma, epsilon_of_history, sampling_rate, steps_per_epoch
from fedhet.privacy.clipping import BookKeeping, conv2d_patches, conv_weight, supports_conv
from fedhet.workflow.specs import OPACUS_MODES, DPSpec, check_spec


class ParameterGroups(Protocol):
    """The local optimizer (``fedhet.training.optimizer``) as DP-SGD takes it: the book-keeping
    engine reads its parameters; Opacus' engines wrap it whole (they use ``state``,
    ``defaults``, ``zero_grad`` and ``step`` too, which fedhet's optimizers have)."""

    param_groups: list[dict]


log = logging.getLogger("fedhet")


class _Records(Dataset):
    """A hospital's training records. ``__getitems__`` (which DataLoader prefers) gathers a
    whole Poisson batch at once: faster than stacking it record by record."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if not indices:
            return []  # Opacus' collate wrapper turns this into an empty batch
        index = torch.as_tensor(indices)
        return [(self.images[index], self.labels[index])]


def _conv2d_grad_sample(
    layer: nn.Conv2d, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Per-example Conv2d gradients for Opacus' "hooks" mode, in any memory format.

    Opacus' own rule unfolds the input with strides that assume NCHW, so on channels_last
    tensors (the client's fast layout) it returns wrong gradients without an error. Here the
    patches come from ``fedhet.privacy.clipping.conv2d_patches`` and meet the output gradients in one
    batched GEMM: g_n = B_nᵀ U_n, U_n = (positions × kH·kW·C).
    """
    x = activations[0]
    if len(x) == 0 or not supports_conv(layer):
        return compute_conv_grad_sample(layer, [x.contiguous()], backprops.contiguous())
    grads = backprops.permute(0, 2, 3, 1).reshape(len(x), -1, backprops.shape[1])  # (n, positions, out)
    result = {}
    if layer.weight.requires_grad:
        result[layer.weight] = conv_weight(layer, torch.bmm(grads.mT, conv2d_patches(layer, x)))
    if layer.bias is not None and layer.bias.requires_grad:
        result[layer.bias] = grads.sum(dim=1)
    return result


def _gathered(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch[0]


class _OpacusGradients:
    """Opacus' PrivacyEngine forms the noised gradient (modes hooks, ew, functorch): the
    reference. It wraps the model for per-example gradients, clips, noises and steps its
    accountant in ``DPOptimizer.pre_step``."""

    def __init__(self, module, optimizer, loader, sigma, spec, noise_generator):
        if spec.grad_sample_mode == "ew":
            # torch's expanded-weights conv rule fails on channels_last. In place: the optimizer
            # keeps its parameters.
            module.to(memory_format=torch.contiguous_format)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # secure_mode is off on purpose: reproducibility
            engine = PrivacyEngine(accountant=spec.accountant, secure_mode=False)
            self.wrapped, self.dp_optimizer, self.loader = engine.make_private(
                module=module,
                optimizer=optimizer,
                data_loader=loader,  # replaced by a Poisson-sampling DPDataLoader on the same generator
                noise_multiplier=sigma,
                max_grad_norm=spec.max_grad_norm,
                poisson_sampling=True,
                noise_generator=noise_generator,
                grad_sample_mode=spec.grad_sample_mode,
            )
        self.accountant = engine.accountant
        self.expected_batch_size = self.dp_optimizer.expected_batch_size
        if spec.grad_sample_mode == "hooks":
            # Our conv rule instead of Opacus' for this model only (an instance attribute
            # shadows the class-wide registry): see _conv2d_grad_sample.
            self.wrapped.GRAD_SAMPLERS = {**self.wrapped.GRAD_SAMPLERS, nn.Conv2d: _conv2d_grad_sample}
        self.loss_fn = nn.CrossEntropyLoss()

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.dp_optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.wrapped(x), y)
        with warnings.catch_warnings():
            # Opacus' per-sample hooks warn that the images need no gradient: true and harmless.
            warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
            loss.backward()
        # Clip, accumulate, noise, scale, and the accountant's step; the update itself is the
        # loop's (so an algorithm can add a record-free term to the noised gradient first).
        self.dp_optimizer.pre_step()

    @contextlib.contextmanager
    def plain(self) -> Iterator[None]:
        """Plain gradients inside the block (public records need no per-example ones)."""
        self.wrapped.disable_hooks()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
                yield
        finally:
            self.wrapped.enable_hooks()


class _BookKeepingGradients:
    """fedhet's engine (``bookkeeping``, the default): the clipped sum in one backward pass
    (``fedhet.privacy.clipping.BookKeeping``), then Opacus' noise semantics (the same draws, in the same
    parameter order, from the same generator), its Poisson sampler and its accountant."""

    def __init__(self, module, optimizer, loader, sigma, spec, noise_generator):
        self.loader = DPDataLoader.from_data_loader(loader)  # Poisson sampling on loader's generator
        sample_rate = 1 / len(self.loader)
        self.expected_batch_size = int(len(loader.dataset) * sample_rate)  # as Opacus computes it
        self.accountant = create_accountant(mechanism=spec.accountant)
        self.clipper = BookKeeping(module)
        self.params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        self.sigma, self.max_grad_norm, self.sample_rate = sigma, spec.max_grad_norm, sample_rate
        self.noise_generator = noise_generator

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> None:
        sums, _ = self.clipper.clipped_sum(x, y, self.max_grad_norm)
        std = self.sigma * self.max_grad_norm
        for p in self.params:
            noisy = sums[p]
            if std > 0:  # Opacus draws nothing when there is no noise
                noisy = noisy + torch.normal(
                    mean=0, std=std, size=p.shape, device=p.device, generator=self.noise_generator, dtype=p.dtype
                )
            p.grad = noisy.view_as(p) / self.expected_batch_size
        self.accountant.step(noise_multiplier=self.sigma, sample_rate=self.sample_rate)

    def plain(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()  # layer inputs are recorded only inside clipped_sum


ENGINES = {"bookkeeping": _BookKeepingGradients, **dict.fromkeys(OPACUS_MODES, _OpacusGradients)}


class PrivateBatches:
    """DP-SGD batches of one hospital over the whole federated run (a ``fedhet.training.local`` batch
    source). Built once per client, before training. One accountant for the whole run, so
    rounds compose instead of resetting the budget, and σ is fixed for the whole run:
    calibrated for ``planned_epochs`` epochs, and an epoch beyond them is refused. How a
    batch's clipped, noised gradient is formed is the engine's (``ENGINES``, chosen by
    ``grad_sample_mode``); sampling, noise and accounting mean the same in every engine."""

    def __init__(
        self,
        name: str,
        module: nn.Module,
        optimizer: ParameterGroups,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        spec: DPSpec,
        planned_epochs: int,
        seed: int,
    ):
        check_spec(spec)
        if not spec.enabled:
            raise ValueError(f"hospital {name}: private batches need a dp placement other than 'none'")
        self.name, self.spec, self.planned_epochs = name, spec, planned_epochs
        self.module = module
        self.epochs_done = 0
        self.public: tuple[torch.Tensor, torch.Tensor] | None = None
        self._public_chunks: Iterator[torch.Tensor] = iter(())
        self._public_generator = stream_generator(seed, 2)
        n = len(labels)
        self.q = sampling_rate(n, batch_size)
        self.planned_steps = planned_epochs * steps_per_epoch(n, batch_size)
        self.sigma = calibrate_sigma(spec.epsilon, spec.delta, self.q, self.planned_steps, spec.accountant)
        loader = DataLoader(
            _Records(images, labels), batch_size=batch_size, collate_fn=_gathered, generator=stream_generator(seed, 0)
        )
        noise = stream_generator(seed, 1, device=images.device)
        self.engine = ENGINES[spec.grad_sample_mode](module, optimizer, loader, self.sigma, spec, noise)
        self.loader = self.engine.loader
        # The loop steps the plain optimizer; ``gradient`` has already clipped and noised.
        self.optimizer = optimizer
        if not math.isclose(1 / len(self.loader), self.q):
            raise RuntimeError(f"hospital {name}: Opacus samples at q=1/{len(self.loader)}, σ is for q={self.q}")
        log.info(
            f"hospital {name}: DP-SGD ε={spec.epsilon:g} δ={spec.delta:g} C={spec.max_grad_norm:g}"
            f" q={self.q:.5f} steps={self.planned_steps} σ={self.sigma:.4f} ({spec.accountant},"
            f" {spec.grad_sample_mode})"
        )

    def add_public(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Public records (shared by consent) to train on beside the private ones. They never
        enter the Poisson sampler, so q, the steps and ε stay those of the private records."""
        if len(labels):
            self.public = (images.contiguous(memory_format=torch.channels_last), labels)

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.epochs_done >= self.planned_epochs:
            raise RuntimeError(
                f"hospital {self.name}: epoch {self.epochs_done + 1} exceeds the {self.planned_epochs} "
                f"that σ was calibrated for; training on would overspend ε={self.spec.epsilon:g}"
            )
        self.epochs_done += 1
        self.module.train()
        if self.public is not None:  # each public record once per epoch, spread over its steps
            order = torch.randperm(len(self.public[1]), generator=self._public_generator)
            self._public_chunks = iter(torch.tensor_split(order, len(self.loader)))
        yield from self.loader

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """p.grad ← (Σ clip_C(g_i) + N(0, σ²C²)) / expected batch size. An empty Poisson
        batch still adds noise and counts as a step. The loss stays unseen: ε does not cover it."""
        self.engine.gradient(x, y)
        chunk = next(self._public_chunks, None)
        if chunk is not None and len(chunk):
            self._add_public_gradient(self.public[0][chunk], self.public[1][chunk])
        return None

    def _add_public_gradient(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """p.grad ← (B·p.grad + Σ_public ∇loss) / (B + b): the public records' gradients join
        the batch mean unclipped and noise-free (they need no protection), B the expected
        private batch size, b the public records in this step."""
        params = [p for p in self.module.parameters() if p.requires_grad]
        with self.engine.plain():
            loss = F.cross_entropy(self.module(x), y, reduction="sum")
            grads = torch.autograd.grad(loss, params)
        batch, extra = self.engine.expected_batch_size, len(y)
        with torch.no_grad():
            for param, grad in zip(params, grads, strict=True):
                param.grad.mul_(batch / (batch + extra)).add_(grad, alpha=1 / (batch + extra))

    @property
    def steps(self) -> int:
        return sum(steps for _, _, steps in self.engine.accountant.history)

    def record(self) -> PrivacyRecord:
        return PrivacyRecord(
            hospital=self.name,
            private=True,
            sigma=self.sigma,
            max_grad_norm=self.spec.max_grad_norm,
            q=self.q,
            steps=self.steps,
            epsilon_target=self.spec.epsilon,
            epsilon_spent=float(
                epsilon_of_history(self.engine.accountant.history, self.spec.delta, self.spec.accountant)
            ),
            delta=self.spec.delta,
            accountant=self.spec.accountant,
            level="record",
        )
