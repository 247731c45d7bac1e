"""Per-example gradient clipping by book-keeping: Σᵢ min(1, C/‖gᵢ‖) gᵢ in one backward pass.

Owns the arithmetic of DP-SGD's clipped sum for ``Conv2d`` and ``Linear`` layers, in the spirit
of Bu et al. (ICML 2023, "Differentially private optimization on large model at small cost").
A forward pass records each layer's input Aᵢ; one backward pass gives the gradient Bᵢ of the
summed loss with respect to each layer's output, and never forms the parameters' own gradient.
Per layer, an example's weight gradient is gᵢ = Bᵢᵀ Aᵢ (Aᵢ: T positions × d inputs, Bᵢ:
T × p outputs), and its squared norm comes from whichever is cheaper:

- instantiation: form gᵢ (p × d) and sum its squares: about T·p·d per example, and the clipped
  sum is then a weighted sum of the gᵢ;
- ghost norm: ‖gᵢ‖² = ⟨AᵢAᵢᵀ, BᵢBᵢᵀ⟩ without forming gᵢ: about T²·(p + d); the clipped sum is
  one contraction Σᵢ cᵢ Bᵢᵀ Aᵢ over the whole batch.

The rule is Bu et al.'s: ghost norm where 2T² < p·d. For fedhet's CNN both convolutions
instantiate (T = 784 and 196 positions) and the linear layer takes the ghost norm (T = 1).
Clip factors are Opacus' exactly, cᵢ = min(1, C / (‖gᵢ‖ + 1e-6)), with ‖gᵢ‖ the norm over all
parameters of the model. Noise, sampling and accounting are not here (``fedhet.privacy.dpsgd``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def conv2d_patches(layer: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The input patches of a convolution as (n, positions, kH·kW·C), cut from an NHWC copy
    (free for channels_last input), so any memory format gives the same patches."""
    n, (k_h, k_w) = len(x), layer.kernel_size
    (p_h, p_w), (s_h, s_w), (d_h, d_w) = layer.padding, layer.stride, layer.dilation
    x = F.pad(x, (p_w, p_w, p_h, p_h)).permute(0, 2, 3, 1).contiguous()  # (n, H, W, C)
    _, height, width, channels = x.shape
    out_h = (height - d_h * (k_h - 1) - 1) // s_h + 1
    out_w = (width - d_w * (k_w - 1) - 1) // s_w + 1
    row = width * channels
    return x.as_strided(
        (n, out_h, out_w, k_h, k_w, channels),
        (height * row, s_h * row, s_w * channels, d_h * row, d_w * channels, 1),
    ).reshape(n, out_h * out_w, k_h * k_w * channels)


def supports_conv(layer: nn.Conv2d) -> bool:
    return layer.groups == 1 and not isinstance(layer.padding, str) and layer.padding_mode == "zeros"


def conv_weight(layer: nn.Conv2d, flat: torch.Tensor) -> torch.Tensor:
    """(…, out, kH·kW·C) in patch order → (…, out, C, kH, kW), the weight's own layout."""
    k_h, k_w = layer.kernel_size
    lead = flat.shape[:-2]
    return flat.reshape(*lead, layer.out_channels, k_h, k_w, layer.in_channels).movedim(-1, -3).contiguous()


@dataclass
class _Layer:
    """One layer's saved input (as A: n × T × d) and output gradient (as B: n × T × p)."""

    module: nn.Module
    a: torch.Tensor
    b: torch.Tensor
    ghost: bool | None = None  # None: Bu et al.'s rule decides
    per_example: torch.Tensor | None = None  # gᵢ, where instantiated

    def __post_init__(self):
        if self.ghost is None:
            positions, inputs, outputs = self.a.shape[1], self.a.shape[2], self.b.shape[2]
            self.ghost = 2 * positions * positions < outputs * inputs
        bias = self.module.bias
        self.bias_grads = self.b.sum(1) if bias is not None and bias.requires_grad else None  # (n, p)

    def squared_norms(self) -> torch.Tensor:
        """‖gᵢ‖² of this layer's trainable weight and bias for each example i."""
        norms = torch.zeros(len(self.a), dtype=self.a.dtype, device=self.a.device)
        if self.module.weight.requires_grad:
            if not self.ghost:
                self.per_example = torch.bmm(self.b.mT, self.a)  # (n, p, d), kept for the sum
                norms = self.per_example.flatten(1).square().sum(1)
            elif self.a.shape[1] == 1:
                norms = self.a.square().sum((1, 2)) * self.b.square().sum((1, 2))
            else:
                norms = (torch.bmm(self.a, self.a.mT) * torch.bmm(self.b, self.b.mT)).sum((1, 2))
        if self.bias_grads is not None:
            norms = norms + self.bias_grads.square().sum(1)
        return norms

    def clipped_sums(self, factors: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
        """Σᵢ cᵢ gᵢ for the trainable weight and bias of this layer."""
        sums = {}
        if self.module.weight.requires_grad:
            if self.ghost:
                flat = torch.einsum("ntp,ntd->pd", self.b * factors[:, None, None], self.a)
            else:
                flat = torch.einsum("n,npd->pd", factors, self.per_example)
            sums[self.module.weight] = conv_weight(self.module, flat) if isinstance(self.module, nn.Conv2d) else flat
        if self.bias_grads is not None:
            sums[self.module.bias] = factors @ self.bias_grads
        return sums


class BookKeeping:
    """Clipped per-example gradient sums for a model made of Conv2d and Linear layers (plus
    parameter-free layers). Hooks record layer inputs only inside ``clipped_sum``. ``ghost``
    forces one way of taking norms in every layer (for tests); None applies the rule."""

    def __init__(self, module: nn.Module, ghost: bool | None = None):
        self.module, self.ghost = module, ghost
        self.layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        covered = {id(p) for m in self.layers for p in m.parameters(recurse=False)}
        for name, param in module.named_parameters():
            if param.requires_grad and id(param) not in covered:
                raise ValueError(
                    f"book-keeping clipping covers Conv2d and Linear layers; parameter {name!r} is in another "
                    "layer (use privacy.grad_sample_mode: hooks)"
                )
        for layer in self.layers:
            if isinstance(layer, nn.Conv2d) and not supports_conv(layer):
                raise ValueError(f"book-keeping clipping: {layer} (grouped, string or non-zero padding) is not covered")
        self._recording: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] | None = None
        for layer in self.layers:
            layer.register_forward_hook(self._record)

    def _record(self, layer: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if self._recording is not None:
            self._recording.append((layer, args[0].detach(), output))

    def clipped_sum(
        self, x: torch.Tensor, y: torch.Tensor, max_grad_norm: float
    ) -> tuple[dict[nn.Parameter, torch.Tensor], torch.Tensor]:
        """(Σᵢ min(1, C/(‖gᵢ‖ + 1e-6)) gᵢ per parameter, ‖gᵢ‖ per example) for the cross-entropy
        of each example (x, y). An empty batch gives zero sums."""
        if len(y) == 0:
            zeros = {p: torch.zeros_like(p) for p in self.module.parameters() if p.requires_grad}
            return zeros, torch.zeros(0, device=x.device)
        self._recording = []
        try:
            loss = F.cross_entropy(self.module(x), y, reduction="sum")
            recorded, self._recording = self._recording, None
        finally:
            self._recording = None
        if len({id(module) for module, _, _ in recorded}) < len(recorded):
            # gᵢ would be the sum over the uses: its norm is not the sum of per-use norms
            raise ValueError("book-keeping clipping: a layer is used twice in one forward pass")
        grads = torch.autograd.grad(loss, [output for _, _, output in recorded])
        layers = [self._layer(module, a, b, self.ghost) for (module, a, _), b in zip(recorded, grads, strict=True)]
        norms = torch.stack([layer.squared_norms() for layer in layers]).sum(0).sqrt()
        factors = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        return {param: total for layer in layers for param, total in layer.clipped_sums(factors).items()}, norms

    @staticmethod
    def _layer(module: nn.Module, a: torch.Tensor, b: torch.Tensor, ghost: bool | None) -> _Layer:
        n = len(a)
        if isinstance(module, nn.Conv2d):
            return _Layer(module, conv2d_patches(module, a), b.permute(0, 2, 3, 1).reshape(n, -1, b.shape[1]), ghost)
        return _Layer(module, a.reshape(n, -1, a.shape[-1]), b.reshape(n, -1, b.shape[-1]), ghost)
