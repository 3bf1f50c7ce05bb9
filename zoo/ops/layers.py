"""Equalized-learning-rate layers and the minibatch standard deviation layer.

Equalized learning rate (Karras et al. 2018): parameters are stored at unit scale (``randn``,
divided by ``lr_multiplier``) and the He-init constant is applied at run time, so Adam's
per-parameter step sizes are comparable across layers. The storage matches NVIDIA's StyleGAN2
networks exactly (parameter names, shapes, init), so official state dicts load unchanged:

* ``FullyConnectedLayer``: ``weight [out, in] ~ N(0, 1) / lr_multiplier``, ``bias [out] =
  bias_init``; at run time ``weight * lr_multiplier / sqrt(in)`` and ``bias * lr_multiplier``.
* ``Conv2dLayer``: ``weight [O, I, k, k] ~ N(0, 1)``, ``bias [O] = 0``, run-time gain
  ``1 / sqrt(I * k * k)``, buffer ``resample_filter`` (the 4x4 ``[1, 3, 3, 1]`` filter).

Activation gains (``sqrt(2)`` for lrelu) are applied after the bias; since lrelu is positively
homogeneous they are folded into the weight/bias scalars instead of costing a pass.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from .activations import activation_funcs, apply_epilogue
from .conv import conv2d_resample
from .fir import setup_filter

__all__ = ["FullyConnectedLayer", "Conv2dLayer", "MinibatchStdLayer", "minibatch_stddev", "check_img_resolution",
           "channels", "max_lod", "split_lod"]


def check_img_resolution(img_resolution) -> int:
    """A network's output resolution: a power of two >= 4 (raises ``ValueError`` otherwise)."""
    if img_resolution is None:
        raise ValueError("img_resolution is required (a power of two >= 4, e.g. 256)")
    res = int(img_resolution)
    if res != img_resolution or res < 4 or res & (res - 1) != 0:
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution!r}")
    return res


def channels(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps of the block at resolution ``res``: ``min(channel_base // res, channel_max)``, the
    rule of ProGAN (``nf``, with ``channel_base = 2 * fmap_base``), StyleGAN and StyleGAN2."""
    return min(channel_base // res, channel_max)


def max_lod(img_resolution: int) -> int:
    """Progressive growing: the level of detail at which only the 4x4 block is active."""
    return int(math.log2(img_resolution)) - 2


def split_lod(lod: float, img_resolution: int):
    """``lod`` -> (highest active resolution ``R``, fade weight ``t`` of the upsampled ``R/2`` path).

    ``t == 0`` means the ``R`` block is fully faded in (``alpha = 1 - t``)."""
    lod = min(max(float(lod), 0.0), float(max_lod(img_resolution)))
    k = math.floor(lod)
    return img_resolution >> k, lod - k

class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: ``act(x @ (w * wg).T + b * bg) * act_gain``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, activation: str = "linear"):
        super().__init__()
        if activation not in activation_funcs:
            raise ValueError(f"unknown activation {activation!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = activation_funcs[self.activation]
        # Fold the activation gain into the matmul's alpha/bias when the activation allows it.
        act_gain = spec.def_gain if spec.homogeneous else 1.0
        post_gain = 1.0 if spec.homogeneous else spec.def_gain
        w = self.weight.to(x.dtype)
        alpha = self.weight_gain * act_gain
        if self.bias is not None:
            b = self.bias.to(x.dtype) * (self.bias_gain * act_gain)
            y = torch.addmm(b.unsqueeze(0), x, w.t(), alpha=alpha)
        else:
            y = torch.mm(x, w.t()) * alpha
        if self.activation == "linear":
            return y
        return apply_epilogue(y, act=self.activation, gain=post_gain, owned=True)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Convolution with equalized learning rate, optional FIR up/downsampling, bias, activation
    and output clamping."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: Optional[float] = None):
        super().__init__()
        if activation not in activation_funcs:
            raise ValueError(f"unknown activation {activation!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = activation_funcs[activation].def_gain
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        spec = activation_funcs[self.activation]
        act_gain = self.act_gain * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        # Homogeneous activations: the gain rides on the (small) weight and bias.
        fold = act_gain if spec.homogeneous else 1.0
        w = self.weight.to(x.dtype) * (self.weight_gain * fold)
        b = None if self.bias is None else self.bias.to(x.dtype) * fold
        y = conv2d_resample(x, w, f=self.resample_filter, up=self.up, down=self.down, padding=self.padding,
                            flip_weight=(self.up == 1), bias=b)
        if self.activation == "linear" and clamp is None:
            return y
        return apply_epilogue(y, act=self.activation, gain=act_gain / fold, clamp=clamp, owned=True)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, activation={self.activation}, up={self.up}, down={self.down}")


def minibatch_stddev(x: torch.Tensor, group_size: Optional[int] = 4, num_channels: int = 1) -> torch.Tensor:
    """Append ``num_channels`` feature maps holding the minibatch standard deviation.

    The batch is split into groups of ``G = min(group_size, N)`` samples -- sample ``i`` belongs to
    group ``i % (N / G)``, as in NVIDIA's implementation -- and the channels into ``num_channels``
    slices. For every group and slice the standard deviation over the group (``eps = 1e-8``) is
    averaged over channels and pixels, then broadcast back to the group's samples as an extra
    feature map.
    """
    n, c, h, w = x.shape
    g = min(group_size, n) if group_size is not None else n
    if n % g != 0:
        raise ValueError(f"minibatch-stddev: the batch size {n} is not divisible by the group size {g} "
                         f"(mbstd_group_size={group_size}); use a batch that is a multiple of {g}")
    f = num_channels
    if c % f != 0:
        raise ValueError(f"minibatch-stddev: {c} channels cannot be split into {f} groups (mbstd_num_channels)")
    groups = n // g
    y = x.reshape(g, groups, f, (c // f) * h * w)
    # Biased variance over the group. (Explicit ops: torch.var over a short leading dim is ~30x slower.)
    var = (y - y.mean(dim=0)).square().mean(dim=0)       # [groups, F, c/F*H*W]
    std = (var + 1e-8).sqrt().mean(dim=2)                # [groups, F]
    std = std.reshape(1, groups, f, 1, 1).expand(g, groups, f, h, w).reshape(n, f, h, w)
    return torch.cat([x, std.to(x.dtype)], dim=1)


class MinibatchStdLayer(nn.Module):
    """Module wrapper of :func:`minibatch_stddev` (no parameters)."""

    def __init__(self, group_size: Optional[int] = 4, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, self.group_size, self.num_channels)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
