"""Filtered leaky ReLU (StyleGAN3): bias -> upsample + low-pass FIR -> lrelu -> low-pass FIR + downsample.

``filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, scale)`` computes::

    y = upfirdn2d(x * scale + b, fu, up=up, padding=padding, gain=up**2)
    y = clamp(lrelu(y, slope) * gain, -clamp, clamp)
    y = upfirdn2d(y, fd, down=down)

with the semantics of NVIDIA's ``filtered_lrelu`` op (filters are true convolutions unless
``flip_filter``; ``fu``/``fd`` are 1-D separable or 2-D taps, ``None`` = identity). ``scale`` is an
optional per-sample, per-channel factor ``[N, C]`` (the demodulation coefficients of the modulated
convolution before it), ``b`` a per-channel bias ``[C]``.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .fir import parse_padding, upfirdn2d, upfirdn2d_reference

__all__ = ["filtered_lrelu", "filtered_lrelu_reference"]


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


def filtered_lrelu(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                   b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding=0,
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: Optional[float] = None,
                   flip_filter: bool = False, scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Fast path (same result as :func:`filtered_lrelu_reference`)."""
    if scale is not None:
        x = x * scale.to(x.dtype).reshape(x.shape[0], -1, 1, 1)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d(x, fu, up=up, padding=parse_padding(padding), flip_filter=flip_filter, gain=up ** 2)
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)
