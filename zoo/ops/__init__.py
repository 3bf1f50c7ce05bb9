"""Shared building blocks for the zoo's networks -- pure PyTorch, first and second derivatives.

* :mod:`zoo.ops.fir` -- FIR resampling (``upfirdn2d`` and its ``upsample2d``/``downsample2d``/
  ``filter2d`` helpers, ``setup_filter``), fast polyphase implementation plus a literal reference.
* :mod:`zoo.ops.activations` -- ``bias_act`` (bias + activation + gain + clamp), the fused
  epilogue used by the layers, ``normalize_2nd_moment``.
* :mod:`zoo.ops.convolution` -- ``conv2d``/``conv_transpose2d`` whose second derivatives use the
  fast kernels (R1, path length).
* :mod:`zoo.ops.conv` -- ``conv2d_resample`` and the StyleGAN2 ``modulated_conv2d`` (fused and
  non-fused paths, automatic choice).
* :mod:`zoo.ops.layers` -- equalized-lr ``FullyConnectedLayer``/``Conv2dLayer`` and the minibatch
  standard deviation layer.
* :mod:`zoo.ops.mapping` -- the mapping network z -> w (with ``w_avg`` and truncation) of the
  style-based generators.
* :mod:`zoo.ops.filtered_lrelu` -- StyleGAN3's upsample -> leaky ReLU -> downsample nonlinearity
  (fast path and the straightforward reference).
* :mod:`zoo.ops.winograd` -- 3x3 convolutions by Winograd F(4x4, 3x3) (the faster CPU path for
  wide layers), with first and second derivatives.
* :mod:`zoo.ops.reference` -- slow literal implementations for tests.
* ``python -m zoo.ops.benchmark`` -- re-measures the speed choices made here (modulated-conv path
  per layer shape, 2-D vs separable FIR); whole networks are timed by ``python -m zoo.bench``.

CPU speed note: glibc hands large freed blocks (> 32 MB) back to the OS, and on small VMs the page
faults of touching fresh memory cost up to a quarter of a 256-px generator forward. Starting Python
with ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184``
keeps that memory in the heap (measured 6.8-6.9 -> 8.2-8.6 img/s for the 256-px benchmark; training
at 32 px gains ~2 %). ``THP_MEM_ALLOC_ENABLE=1`` helped less and inconsistently (6.5-7.8 img/s). The
library itself never changes process-wide allocator settings.
"""
from .activations import activation_funcs, apply_epilogue, bias_act, normalize_2nd_moment
from .conv import choose_fused, conv2d_resample, demodulation_coefficients, modulated_conv2d
from .fir import (downsample2d, filter2d, filter_size, parse_padding, parse_scaling, setup_filter, upfirdn2d,
                  upfirdn2d_reference, upsample2d)
from .layers import Conv2dLayer, FullyConnectedLayer, MinibatchStdLayer, check_img_resolution, minibatch_stddev

__all__ = [
    "activation_funcs", "apply_epilogue", "bias_act", "normalize_2nd_moment",
    "choose_fused", "conv2d_resample", "demodulation_coefficients", "modulated_conv2d",
    "downsample2d", "filter2d", "filter_size", "parse_padding", "parse_scaling", "setup_filter", "upfirdn2d",
    "upfirdn2d_reference", "upsample2d",
    "Conv2dLayer", "FullyConnectedLayer", "MinibatchStdLayer", "check_img_resolution", "minibatch_stddev",
]
