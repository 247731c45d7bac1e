"""DP-SGD batches for one private hospital, with Opacus.

Owns ``PrivateBatches``: the hospital's Poisson sampler, per-example gradients (with a conv
rule that is correct in channels_last), clipping to C and Gaussian noise σC, through one
PrivacyEngine, hence one accountant, for the whole federated run. σ is calibrated once
(``fedhet.privacy.calibrate_sigma``) for the epochs planned over all rounds. It plugs into
``fedhet.local.train_local``, the loop every hospital trains with: a batch's gradient is
formed differently, the loop is the same.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator

import torch
from opacus import PrivacyEngine
from opacus.grad_sample.conv import compute_conv_grad_sample
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from fedhet.device import stream_generator
from fedhet.privacy import PrivacyRecord, calibrate_sigma, epsilon_of_history, sampling_rate, steps_per_epoch
from fedhet.specs import DPSpec, check_spec

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
    patches are cut from an NHWC copy (free for channels_last) and multiplied with the
    output gradients in one batched GEMM: g_n = B_nᵀ U_n, U_n = (positions × kH·kW·C).
    """
    x = activations[0]
    n, (k_h, k_w) = len(x), layer.kernel_size
    if n == 0 or layer.groups != 1 or isinstance(layer.padding, str) or layer.padding_mode != "zeros":
        return compute_conv_grad_sample(layer, [x.contiguous()], backprops.contiguous())
    (p_h, p_w), (s_h, s_w), (d_h, d_w) = layer.padding, layer.stride, layer.dilation
    x = F.pad(x, (p_w, p_w, p_h, p_h)).permute(0, 2, 3, 1).contiguous()  # (n, H, W, C)
    _, height, width, channels = x.shape
    out_h, out_w = backprops.shape[2:]
    row = width * channels
    patches = x.as_strided(
        (n, out_h, out_w, k_h, k_w, channels),
        (height * row, s_h * row, s_w * channels, d_h * row, d_w * channels, 1),
    ).reshape(n, out_h * out_w, k_h * k_w * channels)
    grads = backprops.permute(0, 2, 3, 1).reshape(n, out_h * out_w, -1)  # (n, positions, out)
    result = {}
    if layer.weight.requires_grad:
        weight = torch.bmm(grads.transpose(1, 2), patches).view(n, -1, k_h, k_w, channels)
        result[layer.weight] = weight.permute(0, 1, 4, 2, 3).contiguous()
    if layer.bias is not None and layer.bias.requires_grad:
        result[layer.bias] = grads.sum(dim=1)
    return result


def _gathered(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch[0]


class PrivateBatches:
    """DP-SGD batches of one hospital over the whole federated run (a ``fedhet.local`` batch
    source). Built once per client, before training. One PrivacyEngine keeps one accountant,
    so rounds compose instead of resetting the budget, and σ is fixed for the whole run:
    calibrated for ``planned_epochs`` epochs, and an epoch beyond them is refused."""

    def __init__(
        self,
        name: str,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
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
        if spec.grad_sample_mode == "ew":
            # torch's expanded-weights conv rule fails on channels_last. In place: the optimizer
            # keeps its parameters.
            module.to(memory_format=torch.contiguous_format)
        loader = DataLoader(
            _Records(images, labels), batch_size=batch_size, collate_fn=_gathered, generator=stream_generator(seed, 0)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # secure_mode is off on purpose: reproducibility
            self.engine = PrivacyEngine(accountant=spec.accountant, secure_mode=False)
            self.wrapped, self.dp_optimizer, self.loader = self.engine.make_private(
                module=module,
                optimizer=optimizer,
                data_loader=loader,  # replaced by a Poisson-sampling DPDataLoader on the same generator
                noise_multiplier=self.sigma,
                max_grad_norm=spec.max_grad_norm,
                poisson_sampling=True,
                noise_generator=stream_generator(seed, 1, device=images.device),
                grad_sample_mode=spec.grad_sample_mode,
            )
        # The loop steps the plain optimizer; ``gradient`` has already clipped and noised.
        self.optimizer = self.dp_optimizer.original_optimizer
        self.loss_fn = nn.CrossEntropyLoss()
        if spec.grad_sample_mode == "hooks":
            # Our conv rule instead of Opacus' for this model only (an instance attribute
            # shadows the class-wide registry): see _conv2d_grad_sample.
            self.wrapped.GRAD_SAMPLERS = {**self.wrapped.GRAD_SAMPLERS, nn.Conv2d: _conv2d_grad_sample}
        if not math.isclose(1 / len(self.loader), self.q):
            raise RuntimeError(f"hospital {name}: Opacus samples at q=1/{len(self.loader)}, σ is for q={self.q}")
        log.info(
            f"hospital {name}: DP-SGD ε={spec.epsilon:g} δ={spec.delta:g} C={spec.max_grad_norm:g}"
            f" q={self.q:.5f} steps={self.planned_steps} σ={self.sigma:.4f} ({spec.accountant})"
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
        self.wrapped.train()
        if self.public is not None:  # each public record once per epoch, spread over its steps
            order = torch.randperm(len(self.public[1]), generator=self._public_generator)
            self._public_chunks = iter(torch.tensor_split(order, len(self.loader)))
        yield from self.loader

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """p.grad ← (Σ clip_C(g_i) + N(0, σ²C²)) / expected batch size. An empty Poisson
        batch still adds noise and counts as a step. The loss stays unseen: ε does not cover it."""
        self.dp_optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.wrapped(x), y)
        with warnings.catch_warnings():
            # Opacus' per-sample hooks warn that the images need no gradient: true and harmless.
            warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
            loss.backward()
        # Clip, accumulate, noise, scale, and the accountant's step; the update itself is the
        # loop's (so an algorithm can add a record-free term to the noised gradient first).
        self.dp_optimizer.pre_step()
        chunk = next(self._public_chunks, None)
        if chunk is not None and len(chunk):
            self._add_public_gradient(self.public[0][chunk], self.public[1][chunk])
        return None

    def _add_public_gradient(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """p.grad ← (B·p.grad + Σ_public ∇loss) / (B + b): the public records' gradients join
        the batch mean unclipped and noise-free (they need no protection), B the expected
        private batch size, b the public records in this step."""
        params = [p for p in self.module.parameters() if p.requires_grad]
        self.wrapped.disable_hooks()  # no per-example gradients for public records
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
                loss = F.cross_entropy(self.module(x), y, reduction="sum")
                grads = torch.autograd.grad(loss, params)
        finally:
            self.wrapped.enable_hooks()
        batch, extra = self.dp_optimizer.expected_batch_size, len(y)
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
        )
