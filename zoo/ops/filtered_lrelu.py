"""Filtered leaky ReLU (StyleGAN3): bias -> upsample + low-pass FIR -> lrelu -> low-pass FIR + downsample.

``filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, scale)`` computes::

    y = upfirdn2d(x * scale + b, fu, up=up, padding=padding, gain=up**2)
    y = clamp(lrelu(y, slope) * gain, -clamp, clamp)
    y = upfirdn2d(y, fd, down=down)

with the semantics of NVIDIA's ``filtered_lrelu`` op (filters are true convolutions unless
``flip_filter``; ``fu``/``fd`` are 1-D separable or 2-D taps, ``None`` = identity). ``scale`` is an
optional per-sample, per-channel factor ``[N, C]`` (the demodulation coefficients of the modulated
convolution before it), ``b`` a per-channel bias ``[C]``.

Two implementations:

* :func:`filtered_lrelu_reference` -- the definition, step by step: zero insertion, dense 2-D
  filtering at the upsampled rate, slicing (what NVIDIA's CPU fallback does). Slow, obviously right.
* :func:`filtered_lrelu` -- the fast path. The resampling runs through :func:`zoo.ops.fir.upfirdn2d`,
  which is polyphase and separable (no multiplications by inserted zeros, no samples computed only
  to be dropped by the downsampling, 1-D passes for separable filters). ``lrelu`` is positively
  homogeneous, so ``gain`` is folded into the up-filter's gain, and the activation and clamp run in
  place on the freshly upsampled tensor -- the largest tensor of the op is written once, activated
  in place and read once. Autograd keeps only the activated tensor; the activation's derivative
  (1, ``slope`` or 0 where clamped) is read back from its sign and magnitude, and that backward is
  again made of differentiable ops (linear in the incoming gradient), so second derivatives (R1
  through a StyleGAN3 generator's output, gradient penalties) work and stay on the fast path.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .activations import act_clamp_, flat_view
from .fir import parse_padding, upfirdn2d, upfirdn2d_reference

__all__ = ["filtered_lrelu", "filtered_lrelu_reference"]


def _scale_bias(x: torch.Tensor, b: Optional[torch.Tensor], scale: Optional[torch.Tensor]) -> torch.Tensor:
    if scale is not None:
        scale = scale.to(x.dtype).reshape(x.shape[0], -1, 1, 1)
        if b is not None:
            return torch.addcmul(b.to(x.dtype).reshape(1, -1, 1, 1), x, scale)
        return x * scale
    if b is not None:
        return x + b.to(x.dtype).reshape(1, -1, 1, 1)
    return x


def filtered_lrelu_reference(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                             b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding=0,
                             gain: float = math.sqrt(2), slope: float = 0.2, clamp: Optional[float] = None,
                             flip_filter: bool = False, scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The straightforward formulation, step by step (zero insertion, dense 2-D filtering)."""
    if scale is not None:
        x = x * scale.to(x.dtype).reshape(x.shape[0], -1, 1, 1)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d_reference(x, fu, up=up, padding=parse_padding(padding), flip_filter=flip_filter, gain=up ** 2)
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d_reference(x, fd, down=down, flip_filter=flip_filter)


def _polyphase_l1(f: Optional[torch.Tensor], up: int) -> float:
    """Largest sum of ``|taps|`` over the polyphase components of ``f`` (a bound on the gain of
    upsampling by ``up`` through ``f`` for any input and padding)."""
    if f is None:
        return 1.0
    a = f.detach().abs().to(device="cpu", dtype=torch.float64)
    if a.ndim == 1:
        return max(float(a[p::up].sum()) for p in range(up)) ** 2
    return max(float(a[p::up, q::up].sum()) for p in range(up) for q in range(up))


def _clamp_can_act(z: torch.Tensor, fu: Optional[torch.Tensor], up: int, gain: float, clamp: float) -> bool:
    """False if ``|upfirdn2d(z, fu, up, gain=gain)| < clamp`` is guaranteed (then the clamp is a no-op).
    CPU only: on other devices the check would synchronise, so the clamp always runs there."""
    if z.device.type != "cpu" or z.numel() == 0:
        return True
    lo, hi = torch.aminmax(flat_view(z.detach()))
    bound = max(-float(lo), float(hi)) * gain * _polyphase_l1(fu, up) * (1 + 1e-5)  # margin for rounding
    return not bound < clamp


def filtered_lrelu(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                   b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding=0,
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: Optional[float] = None,
                   flip_filter: bool = False, scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Fast path; equal to :func:`filtered_lrelu_reference` (see the module docstring)."""
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu expects [N, C, H, W], got shape {tuple(x.shape)}")
    if gain <= 0:
        raise ValueError(f"filtered_lrelu: gain must be positive, got {gain}")
    z = _scale_bias(x, b, scale)
    if clamp is not None and not _clamp_can_act(z, fu, up, up ** 2 * gain, float(clamp)):
        clamp = None
    u = upfirdn2d(z, fu, up=up, padding=parse_padding(padding), flip_filter=flip_filter, gain=up ** 2 * gain)
    a = act_clamp_(u, float(slope) if slope != 1 else None, None if clamp is None else float(clamp))
    return upfirdn2d(a, fd, down=down, flip_filter=flip_filter)
