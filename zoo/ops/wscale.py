"""Equalized-learning-rate layers in the ProGAN / StyleGAN (v1) convention, and the resampling
helpers of those two generations.

Karras et al. store every weight at unit scale (``N(0, 1)``, or ``N(0, 1/lr_multiplier)``) and
multiply it at run time by ``gain / sqrt(fan_in) * lr_multiplier`` ("wscale"). Unlike StyleGAN2's
PyTorch code, where the ``sqrt(2)`` activation gain is applied *after* the bias, the TensorFlow
releases of ProGAN and StyleGAN put the gain **inside the weight scale** and add the bias
afterwards (scaled only by ``lr_multiplier``); the leaky ReLU itself has no gain. The two
conventions differ by ``sqrt(2)`` on every bias, so these layers are separate from
:mod:`zoo.ops.layers`.

* :class:`WScaleLinear` -- ``act(x @ (w * gain / sqrt(in) * lrmul).T + b * lrmul)``.
* :class:`WScaleConv2d` -- the same for a ``k x k`` convolution (``fan_in = in * k * k``), with the
  two resampling variants of the originals:
  ``up=True``: nearest-neighbour x2 upsampling followed by the convolution (``upscale2d_conv2d``),
  then an optional blur (StyleGAN's ``Conv0_up``);
  ``down=True``: an optional blur, then the convolution followed by 2x2 average pooling
  (``conv2d_downscale2d``), computed as the equivalent stride-2 convolution with the 4x4 kernel
  ``0.25 * (sum of the four shifted copies of the padded 3x3 kernel)``, as the originals' fused path.
* :func:`box_downsample` / :func:`nearest_upsample` -- the ``downscale2d`` (average pooling) and
  ``upscale2d`` (pixel replication) of the originals, used for the fade-in of images.
* :func:`instance_norm` -- per-sample, per-channel normalization (mean 0, variance 1, eps 1e-8).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .convolution import conv2d
from .fir import filter2d, setup_filter

__all__ = ["WScaleLinear", "WScaleConv2d", "box_downsample", "nearest_upsample", "instance_norm", "lrelu",
           "LRELU_SLOPE"]

LRELU_SLOPE = 0.2
SQRT2 = math.sqrt(2)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU with slope 0.2 and no gain (the gain lives in the weight scale)."""
    return F.leaky_relu(x, LRELU_SLOPE)


def box_downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``downscale2d``: average over ``factor x factor`` boxes (identity for ``factor == 1``)."""
    factor = int(factor)
    return x if factor == 1 else F.avg_pool2d(x, factor)


def nearest_upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``upscale2d``: repeat every pixel ``factor x factor`` times (identity for ``factor == 1``)."""
    factor = int(factor)
    if factor == 1:
        return x
    n, c, h, w = x.shape
    return x.reshape(n, c, h, 1, w, 1).expand(n, c, h, factor, w, factor).reshape(n, c, h * factor, w * factor)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x - mean`` over each feature map, divided by ``sqrt(mean((x - mean)^2) + eps)``."""
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


class WScaleLinear(nn.Module):
    """Dense layer with run-time weight scale ``gain / sqrt(in_features) * lr_multiplier``."""

    def __init__(self, in_features: int, out_features: int, *, gain: float = SQRT2, lr_multiplier: float = 1.0,
                 bias: bool = True, activation: str = "linear"):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"activation must be 'linear' or 'lrelu', got {activation!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.gain = float(gain)
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros([out_features])) if bias else None
        self.weight_gain = gain / math.sqrt(in_features) * lr_multiplier
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype)
        if self.bias is not None:
            y = torch.addmm(self.bias.to(x.dtype) * self.bias_gain, x, w.t(), alpha=self.weight_gain)
        else:
            y = torch.mm(x, w.t()) * self.weight_gain
        return lrelu(y) if self.activation == "lrelu" else y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, gain={self.gain:.4g}, "
                f"activation={self.activation}")


class WScaleConv2d(nn.Module):
    """``k x k`` convolution with run-time weight scale ``gain / sqrt(in * k * k)``, optional
    bias + leaky ReLU, optional x2 up/downsampling and blur (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, gain: float = SQRT2,
                 bias: bool = True, activation: str = "linear", up: bool = False, down: bool = False,
                 blur_filter: Optional[Sequence[float]] = None):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"activation must be 'linear' or 'lrelu', got {activation!r}")
        if up and down:
            raise ValueError("a layer cannot both upsample and downsample")
        if (up or down) and kernel_size != 3:
            raise ValueError("resampling convolutions are 3x3 in ProGAN/StyleGAN")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.gain = float(gain)
        self.up, self.down = bool(up), bool(down)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size ** 2)
        if blur_filter is not None:
            self.register_buffer("blur_filter", setup_filter(list(blur_filter)))
        else:
            self.blur_filter = None

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        """The (resampling) convolution alone, without bias and activation."""
        w = self.weight.to(x.dtype) * self.weight_gain
        if self.up:
            x = conv2d(nearest_upsample(x, 2), w, padding=self.kernel_size // 2)
            if self.blur_filter is not None:
                x = filter2d(x, self.blur_filter)
        elif self.down:
            if self.blur_filter is not None:
                x = filter2d(x, self.blur_filter)
            # conv 3x3 then 2x2 average pooling == stride-2 conv with the 4x4 "fused" kernel.
            w = F.pad(w, [1, 1, 1, 1])
            w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) * 0.25
            x = conv2d(x, w, stride=2, padding=1)
        else:
            x = conv2d(x, w, padding=self.kernel_size // 2)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convolve(x)
        if self.bias is not None:
            x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        return lrelu(x) if self.activation == "lrelu" else x

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, kernel_size={self.kernel_size}, "
                f"gain={self.gain:.4g}, activation={self.activation}, up={self.up}, down={self.down}, "
                f"blur={self.blur_filter is not None}")
