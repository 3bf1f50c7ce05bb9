"""FIR resampling: upsample by zero insertion, pad, filter, downsample (``upfirdn2d``).

Semantics follow NVIDIA's documented ``upfirdn2d`` op (StyleGAN2/3), so filters and paddings carry
over unchanged:

1. Upsample each image by inserting ``up - 1`` zeros after every sample (``H -> H * up``).
2. Pad with zeros (or crop, for negative values) by ``padding = [x0, x1, y0, y1]``.
3. Convolve with the FIR filter ``f`` (a true convolution; ``flip_filter=True`` gives correlation),
   keeping only the fully-overlapping ("valid") outputs.
4. Downsample by keeping every ``down``-th sample.

The output size is ``(H * up + y0 + y1 - fh) // down + 1`` (likewise for the width).
``gain`` multiplies the filter (for a 1-D separable filter it is split evenly over the two passes).

Two implementations live here:

* :func:`upfirdn2d_reference` is the definition above, step by step (zero insertion, padding and a
  full 2-D convolution, then slicing). It is slow and exists to be obviously correct; the tests
  prove the fast path equal to it.
* :func:`upfirdn2d` is the fast path. It never multiplies by inserted zeros and never computes
  samples that downsampling would throw away:

  - ``up`` and ``down`` are first reduced by their common factor (``up=2, down=2`` is a plain filter
    with the even or odd taps only);
  - pure downsampling is one strided depthwise convolution (only the kept outputs are computed);
  - pure upsampling is one depthwise *transposed* convolution with stride ``up``, which is the
    polyphase form of "insert zeros, then filter" (each output phase uses its own sub-filter);
  - the rare remaining case (coprime ``up, down > 1``, e.g. 3/2) is split into its output phases,
    each a strided depthwise convolution with a sub-filter, and the phases are interleaved.

  Separable filters: a 1-D filter (``setup_filter`` keeps 1-D filters with >= 8 taps) and large
  rank-1 2-D filters run as two 1-D passes. Small 2-D filters such as the 4x4 outer product of
  ``[1, 3, 3, 1]`` run as a single 2-D pass: measured on a 2-core Xeon (torch 2.15, float32,
  batch 8), one 4x4 depthwise pass takes 42 ms on a 64x257x257 channels-last tensor versus 77 ms for
  two 1-D passes (1.1 ms vs 1.4 ms at 512x33x33). From about 8x8 taps on the 1-D passes win or
  tie (8x8: 2.6 vs 1.5 ms at 512x33x33 but 64 vs 86 ms at 64x257x257; 12x12: 9.2 vs 1.7 ms and
  168 vs 83 ms), hence the threshold of 64 taps. ``python -m zoo.ops.benchmark`` re-measures this.

Derivatives: the gradient of ``upfirdn2d`` is again an ``upfirdn2d`` (the adjoint: flipped filter,
``up`` and ``down`` swapped, matching paddings), implemented as a custom autograd function whose
backward calls itself -- so first, second and higher derivatives all run on the fast path, on any
device. (Letting autograd differentiate the depthwise convolutions instead is correct but slow for
second derivatives: PyTorch's double backward of a grouped convolution loops over the channels.)
The filter is treated as a constant and gets no gradient.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

__all__ = [
    "setup_filter",
    "upfirdn2d",
    "upfirdn2d_reference",
    "filter2d",
    "upsample2d",
    "downsample2d",
    "parse_scaling",
    "parse_padding",
    "filter_size",
]

IntOrPair = Union[int, Sequence[int]]

# Rank-1 2-D filters with at least this many taps run as two 1-D passes (see module docstring).
_SEPARABLE_MIN_TAPS_2D = 64


# ---------------------------------------------------------------------------------------------
# Argument parsing.
# ---------------------------------------------------------------------------------------------

def parse_scaling(scaling: IntOrPair) -> Tuple[int, int]:
    """``2`` or ``[sx, sy]`` -> ``(sx, sy)``; factors must be >= 1."""
    if isinstance(scaling, int):
        scaling = [scaling, scaling]
    sx, sy = (int(s) for s in scaling)
    if sx < 1 or sy < 1:
        raise ValueError(f"resampling factors must be >= 1, got {scaling}")
    return sx, sy


def parse_padding(padding: IntOrPair) -> Tuple[int, int, int, int]:
    """``p``, ``[px, py]`` or ``[x0, x1, y0, y1]`` -> ``(x0, x1, y0, y1)``."""
    if isinstance(padding, int):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        padding = [px, px, py, py]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, [px, py] or [x0, x1, y0, y1], got {padding}")
    x0, x1, y0, y1 = padding
    return x0, x1, y0, y1


def filter_size(f: Optional[torch.Tensor]) -> Tuple[int, int]:
    """``(width, height)`` of a filter; ``None`` means the 1x1 identity filter."""
    if f is None:
        return 1, 1
    if f.ndim not in (1, 2):
        raise ValueError(f"a FIR filter must be 1-D (separable) or 2-D, got shape {tuple(f.shape)}")
    fw = f.shape[-1]
    fh = f.shape[0]
    return int(fw), int(fh)


# ---------------------------------------------------------------------------------------------
# Filters.
# ---------------------------------------------------------------------------------------------


def resample_padding(f: Optional[torch.Tensor], padding: IntOrPair, up: int = 1, down: int = 1) -> List[int]:
    """Padding ``[x0, x1, y0, y1]`` of a convolution that upsamples (before it) or downsamples
    (after it) with FIR filter ``f``, so the filter stays centred (NVIDIA's conv2d_resample rule)."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return [px0, px1, py0, py1]

def setup_filter(f=None, device=torch.device("cpu"), normalize: bool = True, flip_filter: bool = False,
                 gain: float = 1, separable: Optional[bool] = None) -> torch.Tensor:
    """Turn a list of taps into a float32 filter tensor for :func:`upfirdn2d`.

    ``[1, 3, 3, 1]`` becomes the 4x4 outer product normalised to sum 1 -- this 2-D form is what
    StyleGAN checkpoints store as ``resample_filter``. 1-D filters with >= 8 taps stay 1-D
    (separable) unless ``separable`` says otherwise. ``gain`` is folded in as ``gain ** (ndim / 2)``
    so that the total gain of the 2-D filter is ``gain`` either way.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim not in (0, 1, 2) or f.numel() == 0:
        raise ValueError(f"a filter must be a scalar, 1-D or 2-D and non-empty, got shape {tuple(f.shape)}")
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError("a 2-D filter cannot be made separable")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def _separable_factors(g: torch.Tensor) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """``(gy, gx)`` with ``outer(gy, gx) == g`` if the 2-D filter is rank one and large enough to
    be worth two passes, else ``None``. Small filters skip the (host-synchronising) check."""
    if g.numel() < _SEPARABLE_MIN_TAPS_2D:
        return None
    # Factor through the largest entry (no cancellation, unlike row/column sums).
    flat_index = int(g.abs().argmax())
    i, j = divmod(flat_index, g.shape[1])
    pivot = g[i, j]
    if float(pivot) == 0.0:
        return None
    gy = g[:, j]
    gx = g[i, :] / pivot
    # Rank one up to a few ulps of the filter's dtype (so factoring changes results by rounding only).
    tol = 8 * torch.finfo(g.dtype).eps * float(pivot.abs())
    if not torch.allclose(torch.outer(gy, gx), g, rtol=0, atol=tol):
        return None
    return gy, gx


# ---------------------------------------------------------------------------------------------
# Reference implementation: the definition, step by step.
# ---------------------------------------------------------------------------------------------

def upfirdn2d_reference(x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 1, down: IntOrPair = 1,
                        padding: IntOrPair = 0, flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Slow but literal ``upfirdn2d``: zero insertion, pad/crop, full 2-D convolution, slicing."""
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    x0, x1, y0, y1 = parse_padding(padding)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    f = f.to(device=x.device, dtype=x.dtype)
    f2 = f * gain if f.ndim == 2 else torch.outer(f, f) * gain  # 1-D: gain**0.5 per pass, gain total
    n, c, h, w = x.shape

    # 1. Zero insertion: sample i lands at position i * up.
    xu = x.new_zeros([n, c, h * upy, w * upx])
    xu[:, :, ::upy, ::upx] = x
    # 2. Pad (positive) or crop (negative).
    xu = F.pad(xu, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    xu = xu[:, :, max(-y0, 0): xu.shape[2] - max(-y1, 0), max(-x0, 0): xu.shape[3] - max(-x1, 0)]
    # 3. True convolution = correlation with the flipped filter (F.conv2d correlates).
    kernel = f2 if flip_filter else f2.flip([0, 1])
    kernel = kernel[None, None].repeat(c, 1, 1, 1)
    y = F.conv2d(xu, kernel, groups=c)
    # 4. Decimate.
    return y[:, :, ::downy, ::downx]


# ---------------------------------------------------------------------------------------------
# Fast implementation.
# ---------------------------------------------------------------------------------------------

def _reduce_1d(up: int, down: int, pad0: int) -> Tuple[int, int, int, int, int]:
    """Cancel the common factor ``d`` of ``up`` and ``down`` along one axis.

    Output ``o`` reads upsampled position ``o * down + t - pad0`` through correlation tap ``t``;
    that position is a multiple of ``up`` (a real sample) only if ``t = pad0 (mod d)``. Keeping those
    taps (``t0, t0 + d, ...``) turns the problem into one with ``up / d``, ``down / d`` and
    padding ``(pad0 - t0) / d``. Returns ``(up', down', pad0', t0, d)``.
    """
    d = math.gcd(up, down)
    if d == 1:
        return up, down, pad0, 0, 1
    t0 = pad0 % d
    return up // d, down // d, (pad0 - t0) // d, t0, d


def _depthwise_kernel(g: torch.Tensor, channels: int) -> torch.Tensor:
    """``[kh, kw]`` filter -> ``[C, 1, kh, kw]`` weight for a depthwise (grouped) convolution."""
    return g[None, None].expand(channels, 1, g.shape[0], g.shape[1]).contiguous()


def _pad_or_crop(x: torch.Tensor, left_x: int, right_x: int, left_y: int, right_y: int) -> torch.Tensor:
    """Zero-pad (positive) or crop (negative) the last two dimensions."""
    if left_x == right_x == left_y == right_y == 0:
        return x
    if min(left_x, right_x, left_y, right_y) >= 0 or max(left_x, right_x, left_y, right_y) <= 0:
        return F.pad(x, [left_x, right_x, left_y, right_y])  # F.pad crops for negative widths
    x = F.pad(x, [max(left_x, 0), max(right_x, 0), max(left_y, 0), max(right_y, 0)])
    return F.pad(x, [min(left_x, 0), min(right_x, 0), min(left_y, 0), min(right_y, 0)])


def _strided_fir(x: torch.Tensor, g: torch.Tensor, down: Tuple[int, int], start: Tuple[int, int],
                 out_size: Tuple[int, int]) -> torch.Tensor:
    """Correlate every channel with ``g`` ([kh, kw]) at input positions ``start + o * down``.

    ``start`` may be negative (zero padding) and the window may run past the end; only the
    ``out_size`` requested outputs are computed.
    """
    n, c, h, w = x.shape
    (dx, dy), (sx, sy), (ow, oh) = down, start, out_size
    kh, kw = g.shape
    # Input positions needed: [s, s + (o - 1) * d + k - 1]; pads are the parts outside [0, size).
    left_x, left_y = -sx, -sy
    right_x = sx + (ow - 1) * dx + kw - w
    right_y = sy + (oh - 1) * dy + kh - h
    # Symmetric non-negative padding is free inside conv2d; anything else goes through F.pad.
    if left_x == right_x >= 0 and left_y == right_y >= 0:
        conv_pad = (left_y, left_x)
    else:
        x = _pad_or_crop(x, left_x, right_x, left_y, right_y)
        conv_pad = (0, 0)
    return F.conv2d(x, _depthwise_kernel(g, c), stride=(dy, dx), padding=conv_pad, groups=c)


def _upsample_fir(x: torch.Tensor, g: torch.Tensor, up: Tuple[int, int], pad0: Tuple[int, int],
                  out_size: Tuple[int, int]) -> torch.Tensor:
    """Zero insertion by ``up`` followed by correlation with ``g``, as one polyphase op.

    ``conv_transpose2d`` with stride ``up`` scatters every input sample through the kernel, i.e. it
    computes the *full* convolution ``c`` of the zero-inserted signal with the kernel without ever
    touching the inserted zeros. With the kernel ``flip(g)``, output ``o`` of the padded
    correlation is ``c[o + k - 1 - pad0]``; the crop of ``k - 1 - pad0`` samples is done by the
    transposed convolution's own ``padding``/``output_padding`` when possible.
    """
    n, c, h, w = x.shape
    (ux, uy), (px, py), (ow, oh) = up, pad0, out_size
    kh, kw = g.shape
    full_w, full_h = (w - 1) * ux + kw, (h - 1) * uy + kh
    # Samples to drop at the start/end of the full convolution (negative = append zeros).
    crop_x0, crop_y0 = kw - 1 - px, kh - 1 - py
    crop_x1, crop_y1 = full_w - crop_x0 - ow, full_h - crop_y0 - oh
    weight = _depthwise_kernel(g.flip([0, 1]), c)  # [C, 1, kh, kw] == [in, out/groups, kh, kw]
    pad_x = pad_y = 0
    out_pad_x = out_pad_y = 0
    # conv_transpose2d(padding=p, output_padding=q) yields c[p : full - p + q], with 0 <= q < stride.
    if crop_x0 >= 0 and 0 <= crop_x0 - crop_x1 < ux:
        pad_x, out_pad_x = crop_x0, crop_x0 - crop_x1
        crop_x0 = crop_x1 = 0
    if crop_y0 >= 0 and 0 <= crop_y0 - crop_y1 < uy:
        pad_y, out_pad_y = crop_y0, crop_y0 - crop_y1
        crop_y0 = crop_y1 = 0
    y = F.conv_transpose2d(x, weight, stride=(uy, ux), padding=(pad_y, pad_x),
                           output_padding=(out_pad_y, out_pad_x), groups=c)
    return _pad_or_crop(y, -crop_x0, -crop_x1, -crop_y0, -crop_y1)


def _phase_plan(up: int, down: int, pad0: int, out: int) -> List[Tuple[int, int, int]]:
    """Polyphase plan along one axis for coprime ``up``/``down``.

    Output ``o = q * up + r`` (phase ``r``) reads input sample ``q * down + base_r + j`` through
    correlation tap ``t0_r + j * up``. Returns ``[(t0_r, base_r, count_r)]`` for ``r < up``.
    """
    plan = []
    for r in range(up):
        t0 = (pad0 - r * down) % up
        base = (r * down - pad0 + t0) // up
        count = len(range(r, out, up))
        plan.append((t0, base, count))
    return plan


def _fir_pass(x: torch.Tensor, g: torch.Tensor, up: Tuple[int, int], down: Tuple[int, int],
              pad0: Tuple[int, int], out_size: Tuple[int, int]) -> torch.Tensor:
    """One (2-D or 1-D-shaped) FIR pass. ``g`` is the *correlation* kernel ``[kh, kw]``, gain
    included; ``pad0`` the leading paddings; ``out_size`` the ``(width, height)`` to produce."""
    (ux, uy), (dx, dy), (px, py) = up, down, pad0
    kh, kw = g.shape
    ux, dx, px, tx, stepx = _reduce_1d(ux, dx, px)
    uy, dy, py, ty, stepy = _reduce_1d(uy, dy, py)
    g = g[ty::stepy, tx::stepx]
    if g.numel() == 0:  # every tap lands on an inserted zero
        return _zeros(x, out_size)
    if ux == 1 and uy == 1:
        return _strided_fir(x, g, (dx, dy), (-px, -py), out_size)
    if dx == 1 and dy == 1:
        return _upsample_fir(x, g, (ux, uy), (px, py), out_size)

    # Coprime up/down > 1 along some axis: compute each output phase with a strided sub-filter.
    ow, oh = out_size
    plan_x = _phase_plan(ux, dx, px, ow)
    plan_y = _phase_plan(uy, dy, py, oh)
    y = _zeros(x, out_size)
    for ry, (t0y, basey, county) in enumerate(plan_y):
        for rx, (t0x, basex, countx) in enumerate(plan_x):
            sub = g[t0y::uy, t0x::ux]
            if county == 0 or countx == 0 or sub.numel() == 0:
                continue
            y[:, :, ry::uy, rx::ux] = _strided_fir(x, sub, (dx, dy), (basex, basey), (countx, county))
    return y


def _zeros(x: torch.Tensor, out_size: Tuple[int, int]) -> torch.Tensor:
    """All-zero output ``[N, C, oh, ow]`` in x's memory format."""
    n, c = x.shape[:2]
    return x.new_zeros([n, c, out_size[1], out_size[0]]).to(memory_format=_memory_format(x))


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def upfirdn2d(x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 1, down: IntOrPair = 1,
              padding: IntOrPair = 0, flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Upsample, pad, FIR-filter and downsample a batch of images ``[N, C, H, W]``.

    Args:
        x:           images ``[N, C, H, W]`` (any float dtype, any memory format).
        f:           float32 filter from :func:`setup_filter`: 2-D ``[fh, fw]``, 1-D ``[fw]``
                     (separable, applied along both axes) or ``None`` (identity).
        up, down:    integer factors, or ``[x, y]`` pairs.
        padding:     ``p``, ``[px, py]`` or ``[x0, x1, y0, y1]``, applied *after* upsampling;
                     negative values crop.
        flip_filter: ``False`` = convolution (default), ``True`` = correlation.
        gain:        overall signal gain (e.g. ``up ** 2`` to keep the magnitude when upsampling).

    Returns ``[N, C, (H * up + y0 + y1 - fh) // down + 1, (W * up + x0 + x1 - fw) // down + 1]``.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects [N, C, H, W] images, got shape {tuple(x.shape)}")
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    x0, x1, y0, y1 = parse_padding(padding)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    fw, fh = filter_size(f)
    h, w = x.shape[2], x.shape[3]
    if (w * upx + x0 + x1 - fw) // downx + 1 < 1 or (h * upy + y0 + y1 - fh) // downy + 1 < 1:
        raise ValueError(f"upfirdn2d: padding {[x0, x1, y0, y1]} leaves no output for a {h}x{w} input "
                         f"with a {fh}x{fw} filter, up={up}, down={down}")
    args = (f.detach(), (upx, upy), (downx, downy), (x0, x1, y0, y1), bool(flip_filter), float(gain))
    if torch.is_grad_enabled() and x.requires_grad:
        return _UpFirDn2d.apply(x, *args)
    return _upfirdn2d_forward(x, *args)


def _upfirdn2d_forward(x: torch.Tensor, f: torch.Tensor, up: Tuple[int, int], down: Tuple[int, int],
                       padding: Tuple[int, int, int, int], flip_filter: bool, gain: float) -> torch.Tensor:
    """The fast path (see module docstring), arguments already parsed."""
    (upx, upy), (downx, downy), (x0, x1, y0, y1) = up, down, padding
    if (upx > 1 or upy > 1) and x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float16):
        # oneDNN runs the depthwise transposed convolution of upsampling ~30x slower in bf16 than in
        # fp32 on CPU (32x128x16x16 -> 32 px: 68 vs 1.9 ms); in fp32 with the casts it takes 2.2 ms.
        return _upfirdn2d_forward(x.float(), f, up, down, padding, flip_filter, gain).to(x.dtype)
    f = f.to(device=x.device, dtype=x.dtype)
    g = f if flip_filter else f.flip(list(range(f.ndim)))  # correlation kernel
    fw, fh = filter_size(f)
    h, w = x.shape[2], x.shape[3]
    ow = (w * upx + x0 + x1 - fw) // downx + 1
    oh = (h * upy + y0 + y1 - fh) // downy + 1

    if g.ndim == 2:
        factors = _separable_factors(g)
        if factors is None:
            return _fir_pass(x, g * gain, (upx, upy), (downx, downy), (x0, y0), (ow, oh))
        gy, gx = factors
        gy, gx = gy * gain, gx
    else:
        gy = gx = g * (gain ** 0.5)
    # Separable: one pass per axis (each with the matching up/down/padding). Channels-last on CPU,
    # oneDNN's depthwise kernels favour the vertical pass first when upsampling and the horizontal
    # one first otherwise (2 threads, batch 4, ms for both passes, horizontal-first vs
    # vertical-first: x2 up of 362x153x153 -> 306 px 175 vs 97, 512x89x89 54 vs 42; x2 down of
    # 128x562x562 87 vs 107, 512x178x178 30 vs 44).
    if upy > 1 and downy == 1 and downx == 1:
        x = _fir_pass(x, gy[:, None], (1, upy), (1, downy), (0, y0), (w, oh))
        return _fir_pass(x, gx[None, :], (upx, 1), (downx, 1), (x0, 0), (ow, oh))
    x = _fir_pass(x, gx[None, :], (upx, 1), (downx, 1), (x0, 0), (ow, h))
    return _fir_pass(x, gy[:, None], (1, upy), (1, downy), (0, y0), (ow, oh))


def _adjoint_padding(size: int, out: int, up: int, down: int, pad0: int, taps: int) -> Tuple[int, int]:
    """Paddings of the adjoint ``upfirdn`` along one axis (it has ``up``/``down`` swapped).

    Forward: ``y[o] = sum_t g[t] * xu[o * down + t - pad0]`` (``xu``: x upsampled by ``up``). Then
    ``dx[i] = sum_t g[K-1-t] * dyu[i * up + t - (K - 1 - pad0)]`` with ``dyu`` = dy upsampled by
    ``down``: an upfirdn with the flipped filter and leading padding ``K - 1 - pad0``; the trailing
    padding is whatever makes the output ``size`` samples long.
    """
    lead = taps - 1 - pad0
    trail = size * up - out * down + pad0 - up + 1
    return lead, trail


class _UpFirDn2d(torch.autograd.Function):
    """``upfirdn2d`` whose gradient is again an ``upfirdn2d`` (the adjoint: flipped filter, ``up``
    and ``down`` swapped), so derivatives of any order stay on the fast path. Without this,
    autograd would differentiate the depthwise convolutions, and PyTorch's double backward of
    grouped convolutions loops over the groups (one small conv per channel) -- 800+ convolutions
    for one R1 step. The filter is a constant: it receives no gradient."""

    @staticmethod
    def forward(ctx, x, f, up, down, padding, flip_filter, gain):
        y = _upfirdn2d_forward(x, f, up, down, padding, flip_filter, gain)
        ctx.save_for_backward(f)
        ctx.params = (tuple(x.shape[2:]), tuple(y.shape[2:]), up, down, padding, flip_filter, gain)
        return y

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        (h, w), (oh, ow), (upx, upy), (downx, downy), (x0, x1, y0, y1), flip_filter, gain = ctx.params
        fw, fh = filter_size(f)
        ax0, ax1 = _adjoint_padding(w, ow, upx, downx, x0, fw)
        ay0, ay1 = _adjoint_padding(h, oh, upy, downy, y0, fh)
        args = (f, (downx, downy), (upx, upy), (ax0, ax1, ay0, ay1), not flip_filter, gain)
        if torch.is_grad_enabled() and dy.requires_grad:       # create_graph: stay differentiable
            dx = _UpFirDn2d.apply(dy, *args)
        else:
            dx = _upfirdn2d_forward(dy, *args)
        return dx, None, None, None, None, None, None


def filter2d(x: torch.Tensor, f: Optional[torch.Tensor], padding: IntOrPair = 0, flip_filter: bool = False,
             gain: float = 1) -> torch.Tensor:
    """Filter without resampling; by default padded so the output keeps the input size."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain)


def upsample2d(x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 2, padding: IntOrPair = 0,
               flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Upsample by ``up`` with the FIR filter ``f`` (gain ``up**2`` keeps the signal magnitude).

    Padding follows the StyleGAN convention: ``(fw + up - 1) // 2`` before and ``(fw - up) // 2``
    after, so the output is exactly ``up`` times the input size.
    """
    upx, upy = parse_scaling(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=(upx, upy), padding=pad, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x: torch.Tensor, f: Optional[torch.Tensor], down: IntOrPair = 2, padding: IntOrPair = 0,
                 flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Low-pass filter with ``f`` and keep every ``down``-th sample (padding
    ``(fw - down + 1) // 2`` before and ``(fw - down) // 2`` after)."""
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=(downx, downy), padding=pad, flip_filter=flip_filter, gain=gain)
