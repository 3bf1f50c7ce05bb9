"""Slow, literal reference implementations used by the tests to pin down the fast ops.

Each function spells out the definition (zero insertion, full-size padding, explicit per-sample
weights) with no shortcuts, so the fast implementations can be checked against it.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .fir import resample_padding, upfirdn2d_reference

__all__ = ["upfirdn2d_reference", "conv2d_resample_reference", "modulated_conv2d_reference"]


def conv2d_resample_reference(x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor] = None, up: int = 1,
                              down: int = 1, padding=0, groups: int = 1, flip_weight: bool = True,
                              flip_filter: bool = False) -> torch.Tensor:
    """Upsample (zero insertion + pad + filter, gain up**2), valid conv, then filter + decimate."""
    px0, px1, py0, py1 = resample_padding(f, padding, up, down)
    x = upfirdn2d_reference(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up ** 2,
                            flip_filter=flip_filter)
    if not flip_weight:
        w = w.flip([2, 3])
    x = F.conv2d(x, w, groups=groups)
    if down > 1:
        x = upfirdn2d_reference(x, f, down=down, flip_filter=flip_filter)
    return x


def modulated_conv2d_reference(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                               noise: Optional[torch.Tensor] = None, demodulate: bool = True, up: int = 1,
                               down: int = 1, padding=0, resample_filter: Optional[torch.Tensor] = None,
                               flip_weight: bool = True) -> torch.Tensor:
    """One sample at a time: ``w = weight * s``; ``w /= sqrt(sum w**2 + 1e-8)``; convolve."""
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        outs.append(conv2d_resample_reference(x[n:n + 1], w, f=resample_filter, up=up, down=down,
                                              padding=padding, flip_weight=flip_weight))
    y = torch.cat(outs)
    if noise is not None:
        y = y + noise
    return y
