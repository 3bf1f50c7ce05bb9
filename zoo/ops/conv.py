"""Convolutions with FIR up/downsampling, and the StyleGAN2 modulated convolution.

``conv2d_resample`` has the semantics of NVIDIA's op of the same name (the resampling filter and
its padding rules are those of :func:`zoo.ops.fir.upsample2d` / ``downsample2d``):

* ``up > 1``: upsample ``x`` by zero insertion, filter with ``f`` (gain ``up**2``), then convolve
  with ``w``. Implemented as a transposed convolution with stride ``up`` (polyphase: ``9/4``
  multiply-adds per output for a 3x3 kernel instead of 9) followed by the FIR filter.
* ``down > 1``: filter with ``f`` then convolve with stride ``down`` (only kept outputs computed).
* 1x1 kernels: the cheap side first (conv then upsample, or downsample then conv).

``flip_weight=True`` means correlation (``F.conv2d`` semantics), ``False`` a true convolution;
StyleGAN2's upsampling layers use ``False``.

``modulated_conv2d`` (StyleGAN2, Karras et al. 2020, Sec. 2.2): per-sample styles scale the
input channels of the weight, and demodulation rescales every output channel to unit expected
norm. Two equivalent paths:

* **fused** -- build per-sample weights ``w[n] = weight * styles[n] * dcoefs[n]`` and run one
  grouped convolution with ``groups=N`` (1x1 kernels use a batched matmul instead);
* **non-fused** -- shared weights: ``conv(x * styles) * dcoefs`` (the demodulation scale is fused
  into the bias/activation epilogue, so it costs no extra pass).

``fused=None`` picks the faster path with :func:`choose_fused` (rule and measurements there).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from . import convolution
from .activations import apply_epilogue
from .fir import resample_padding, upfirdn2d

__all__ = ["conv2d_resample", "modulated_conv2d", "demodulation_coefficients", "choose_fused"]


def _conv(x, w, bias=None, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    """``F.conv2d``/``conv_transpose2d`` with correlation (``flip_weight=True``) or convolution
    semantics. For the transposed case ``w`` is given in the ``[O, I/groups, kh, kw]`` layout of a
    forward conv and rearranged here."""
    if transpose:
        # conv_transpose2d computes a true convolution of the zero-inserted input with its kernel.
        if flip_weight:
            w = w.flip([2, 3])
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            o_total, i_per_group, kh, kw = w.shape
            w = w.reshape(groups, o_total // groups, i_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * i_per_group, o_total // groups, kh, kw)
        return convolution.conv_transpose2d(x, w, bias=bias, stride=stride, padding=padding, groups=groups)
    if not flip_weight:
        w = w.flip([2, 3])
    return convolution.conv2d(x, w, bias=bias, stride=stride, padding=padding, groups=groups)


def _add_bias(x: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    return x if bias is None else x + bias.reshape(1, -1, 1, 1).to(x.dtype)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor] = None, up: int = 1,
                    down: int = 1, padding=0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """2-D convolution with optional FIR upsampling/downsampling.

    Args:
        x:      ``[N, groups * I, H, W]``.
        w:      ``[groups * O, I, kh, kw]``.
        f:      resampling filter from ``setup_filter`` (ignored when ``up == down == 1``).
        up, down: integer resampling factors.
        padding: ``p``, ``[px, py]`` or ``[x0, x1, y0, y1]``; applied at the upsampled resolution.
        bias:   optional ``[groups * O]`` bias added to the result.
    """
    if not (isinstance(up, int) and isinstance(down, int) and up >= 1 and down >= 1):
        raise ValueError(f"up and down must be integers >= 1, got up={up}, down={down}")
    kh, kw = w.shape[2], w.shape[3]
    pads = resample_padding(f, padding, up, down)
    px0, px1, py0, py1 = pads

    # 1x1 kernels commute with the filter: resample on the side with fewer samples.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pads, flip_filter=flip_filter)
        return _conv(x, w, bias=bias, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        x = upfirdn2d(x, f, up=up, padding=pads, gain=up ** 2, flip_filter=flip_filter)
        return _add_bias(x, bias)

    # Downsampling only: filter at full resolution, then a strided convolution.
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pads, flip_filter=flip_filter)
        return _conv(x, w, bias=bias, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling: transposed convolution (polyphase) then the FIR filter on its full output.
    if up > 1:
        # The transposed conv yields the *full* convolution (length (H-1)*up + k); the filter's
        # padding is shifted by the k - 1 (resp. k - up) samples that this adds at each end.
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        # Symmetric crops are free inside conv_transpose2d's own padding.
        ptx = max(min(-px0, -px1), 0)
        pty = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=(pty, ptx), groups=groups, transpose=True, flip_weight=flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + ptx, px1 + ptx, py0 + pty, py1 + pty], gain=up ** 2,
                      flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return _add_bias(x, bias)

    # No resampling.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, bias=bias, padding=(py0, px0), groups=groups, flip_weight=flip_weight)
    x = F.pad(x, pads)
    return _conv(x, w, bias=bias, groups=groups, flip_weight=flip_weight)


# ---------------------------------------------------------------------------------------------
# Modulated convolution.
# ---------------------------------------------------------------------------------------------

def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``dcoefs[n, o] = 1 / sqrt(sum_{i,ky,kx} (weight[o, i, ky, kx] * styles[n, i]) ** 2 + eps)``.

    Computed as ``styles**2 @ sum_k(weight**2).T`` -- a tiny matmul instead of materialising the
    ``[N, O, I, kh, kw]`` modulated weights (same value, different rounding order).
    """
    w_sq = weight.square().sum(dim=[2, 3])                # [O, I]
    return (styles.square() @ w_sq.t() + eps).rsqrt()   # [N, O]


def choose_fused(x: torch.Tensor, weight: torch.Tensor, up: int = 1, down: int = 1,
                 requires_grad: Optional[bool] = None) -> bool:
    """Which modulated-conv path is faster for this call (``True`` = fused per-sample weights).

    The rule, with the measurements it rests on:

    * 1x1 kernels without resampling (ToRGB): always fused. The per-sample weights are tiny
      (``O x I``) and a batched matmul replaces the ``x * styles`` pass over the activations.
    * CUDA: fused for inference, shared weights while autograd records. This is NVIDIA's own
      measured default for StyleGAN2 (``fused_modconv_default='inference_only'``).
    * CPU: shared weights (non-fused). One batched convolution beats a grouped one everywhere in
      oneDNN. Measured on the 2-core reference Xeon (torch 2.15, fp32, channels-last, inference,
      the layers of a 256-px StyleGAN2, non-fused vs fused ms): batch 8 -- plain vs grouped conv
      512ch 4x4 3.3 vs 25, 512ch up 4->8 13 vs 57, 512->256 up 32->64 80 vs 179, 128->64 up
      128->256 104 vs 137, 64ch 256x256 157 vs 165; batch 2 -- 3.5 vs 11 (512ch 4x4), 30.6 vs
      39.7 (256ch 64x64), 54 vs 100 (64ch 256x256). Even at batch 1, where the "grouped" conv is a
      plain conv, modulating the weight costs more than it saves at low resolution (512ch 4x4:
      2.5 vs 9.7; 16x16: 6.1 vs 11.7) and is within 8 % at high resolution (64ch 256x256: 16.9 vs
      15.5); the whole 256-px generator at batch 1 runs in 152 ms non-fused vs 209 ms fused.
    """
    kh, kw = weight.shape[2], weight.shape[3]
    if kh == 1 and kw == 1 and up == 1 and down == 1:
        return True
    if requires_grad is None:
        requires_grad = torch.is_grad_enabled()
    if x.device.type == "cuda":
        return not requires_grad
    return False


def _flatten_batch_channels(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W] -> [1, N*C, H, W]`` (a view for NCHW; N == 1 is returned untouched, since
    reshaping would rewrite the batch stride and make a channels-last tensor look ambiguous to the
    convolution's layout heuristics -- measured 2.8x slower)."""
    n, c, h, w = x.shape
    if n == 1:
        return x
    return x.reshape(1, n * c, h, w)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: Optional[torch.Tensor] = None, demodulate: bool = True, up: int = 1, down: int = 1,
                     padding=0, resample_filter: Optional[torch.Tensor] = None, flip_weight: bool = True,
                     fused: Optional[bool] = None, bias: Optional[torch.Tensor] = None,
                     activation: str = "linear", gain: float = 1.0, clamp: Optional[float] = None,
                     flip_filter: bool = False, inplace_input: bool = False) -> torch.Tensor:
    """StyleGAN2 modulated convolution with an optional fused bias/activation epilogue.

    Computes ``y = conv2d_resample(x, weight * styles[n]) * dcoefs[n] + noise`` (``dcoefs`` only
    with ``demodulate``), then, if ``bias``/``activation``/``gain``/``clamp`` are given,
    ``clamp(act(y + bias) * gain)``. Doing the epilogue here lets the demodulation scale, noise,
    bias and gain share one pass.

    Args:
        x:       ``[N, I, H, W]`` input.
        weight:  ``[O, I, kh, kw]`` shared weight (no equalised-lr gain: demodulation normalises).
        styles:  ``[N, I]`` per-sample input-channel scales.
        noise:   optional tensor broadcastable to the output (``[N, 1, H', W']`` or ``[H', W']``).
        fused:   ``True`` per-sample weights + grouped conv, ``False`` shared weights with
                 activation scaling, ``None`` = :func:`choose_fused`.
        inplace_input: the caller will not use ``x`` again, so when autograd is not recording the
                 non-fused path may scale it in place (saves a large allocation on CPU).
    """
    n, in_ch, h, w = x.shape
    out_ch = weight.shape[0]
    if weight.shape[1] != in_ch or styles.shape != (n, in_ch):
        raise ValueError(f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and styles "
                         f"{tuple(styles.shape)} do not match ([N, I, H, W], [O, I, k, k], [N, I])")
    # Low precision (NVIDIA's policy): the weight, the styles and the demodulation coefficients stay
    # float32 and are cast for the convolution and the activations only.
    low = x.dtype in (torch.float16, torch.bfloat16)
    if not low:
        weight = weight.to(x.dtype)
        styles = styles.to(x.dtype)
    elif x.dtype == torch.float16 and demodulate:
        # float16: pre-normalise the weight and the styles so their products cannot overflow
        # (demodulation makes the result invariant to these scales). bfloat16 has float32's range.
        weight = weight * (1 / (in_ch * weight.shape[2] * weight.shape[3]) ** 0.5
                           / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None  # [N, O]
    if low:
        weight, styles = weight.to(x.dtype), styles.to(x.dtype)
        dcoefs = None if dcoefs is None else dcoefs.to(x.dtype)
        noise = None if noise is None else noise.to(x.dtype)
    if fused is None:
        fused = choose_fused(x, weight, up, down,
                             requires_grad=torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                                                        or styles.requires_grad))
    kh, kw = weight.shape[2], weight.shape[3]

    if not fused:
        # Shared weights: scale activations, convolve once for the whole batch, rescale outputs.
        s = styles.reshape(n, in_ch, 1, 1)
        if inplace_input and not (torch.is_grad_enabled() and (x.requires_grad or s.requires_grad)):
            xs = x.mul_(s)
        else:
            xs = x * s
        y = conv2d_resample(xs, weight, f=resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight, flip_filter=flip_filter)
        scale = None if dcoefs is None else dcoefs.reshape(n, out_ch, 1, 1)
        return apply_epilogue(y, scale=scale, noise=noise, bias=bias, act=activation, gain=gain,
                              clamp=clamp, owned=True)

    # Fused: per-sample weights w[n, o, i] = weight[o, i] * styles[n, i] * dcoefs[n, o].
    mod = styles[:, None, :]                                    # [N, 1, I]
    if dcoefs is not None:
        mod = mod * dcoefs[:, :, None]                          # [N, O, I]
    if kh == 1 and kw == 1 and up == 1 and down == 1 and padding in (0, [0, 0], (0, 0), [0, 0, 0, 0]):
        # 1x1: a batched matmul over pixels, in whichever memory layout x already has.
        wn = weight[None, :, :, 0, 0] * mod                     # [N, O, I]
        if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            xv = x.permute(0, 2, 3, 1).reshape(n, h * w, in_ch)              # [N, HW, I] view
            y = torch.bmm(xv, wn.transpose(1, 2))                             # [N, HW, O]
            y = y.reshape(n, h, w, out_ch).permute(0, 3, 1, 2)               # channels-last NCHW
        else:
            y = torch.bmm(wn, x.reshape(n, in_ch, h * w)).reshape(n, out_ch, h, w)
    else:
        wn = weight[None] * mod[:, :, :, None, None]            # [N, O, I, kh, kw]
        xg = _flatten_batch_channels(x)
        y = conv2d_resample(xg, wn.reshape(n * out_ch, in_ch, kh, kw), f=resample_filter, up=up, down=down,
                            padding=padding, groups=n, flip_weight=flip_weight, flip_filter=flip_filter)
        y = y.reshape(n, out_ch, y.shape[2], y.shape[3])
    return apply_epilogue(y, noise=noise, bias=bias, act=activation, gain=gain, clamp=clamp, owned=True)
