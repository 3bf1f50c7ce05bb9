"""Equivariance metrics of the StyleGAN3 paper (Karras et al. 2021, appendix E): EQ-T (integer
translation), EQ-T_frac (fractional translation) and EQ-R (rotation), as PSNR in dB, with the
definitions of NVIDIA's stylegan3 ``metrics/equivariance.py`` (``eqt50k_int``, ``eqt50k_frac``,
``eqr50k``).

Per batch: latents ``z`` and labels give ``ws``; the generator renders a reference with the
identity input transform, then again with one random transform (shared by the batch) applied
through the Fourier input's ``transform`` buffer. The reference is transformed by the same amount
with an image operator, and the squared difference is accumulated over the pixels where that
operator is valid (a mask), over all samples and channels. The metric is
``PSNR = 20 log10(2) - 10 log10(MSE)`` (images span [-1, 1], a peak-to-peak range of 2).

* ``kind='int'``: a translation uniform in ``+-translate_max`` of the image per axis, rounded to
  whole pixels; the reference is shifted by those pixels (the operator T_x of appendix E.1), and
  the mask is where the shifted image has content.
* ``kind='frac'``: the same without rounding; the reference is shifted with a separable Lanczos
  (``a = 3``) windowed-sinc interpolator, six taps per axis normalised to unit gain (E.2), valid
  where every tap falls inside the image.
* ``kind='rot'``: a rotation uniform in ``+-rotate_max * pi``. The reference is resampled by an
  oriented band-limiting filter: the convolution of a sinc low-pass (at Nyquist) aligned with the
  input pixel grid and one aligned with the rotated grid, windowed by the convolution of the two
  matching separable Lanczos windows, built on a 4x finer grid (evaluated through FFTs on a
  generous support, then cut to +-6 input pixels and normalised so that every one of the 16
  sub-pixel phases has unit gain); the image is upsampled 4x with it and read at the rotated pixel
  centres by bilinear interpolation (E.3, R_alpha). The generated image is not resampled but goes
  through the same kind of filter built at the input resolution for the opposite rotation, so that
  both carry the same band limits (R*_alpha); the mask is the product of the two operators'
  valid regions.

Transform direction: :func:`zoo.core.contract.set_input_transform` ``(G, translate, rotate)``
writes the *inverse* of ``make_transform(translate, rotate)`` into the buffer, and the generator then
renders its identity image warped by ``make_transform(translate, rotate)`` (a point ``p`` of the new
image shows what the identity image had at ``make_transform(...)^-1 p``): a translation ``t``
moves the content by ``+t`` (x to the right, y down), which is what NVIDIA's metric gets by writing
``-t`` into the buffer; the same holds for the rotation matrix. The reference operators below warp
by that same matrix, so a perfectly equivariant generator scores an infinite (very high) PSNR.

Random numbers (latents, label indices, noise maps, transforms) come from one CPU generator seeded
by ``seed``, drawn in the order (and precision) NVIDIA's metric draws them from torch's global
generator. The generator's own transform buffer and noise maps are restored afterwards, errors
included. The final batch is shortened so that exactly ``num_samples`` samples count.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from zoo.core.contract import generation_name, input_transform, make_transform, set_input_transform
from zoo.core.errors import NotApplicable
from zoo.metrics.ppl import _check_counts, label_sampler, on_device, preserved_state

__all__ = ["compute_equivariance", "translate_integer", "translate_fractional", "rotate_fractional",
           "pseudo_rotate", "bandlimit_filter"]

KINDS = ("int", "frac", "rot")


# ------------------------------------------------------------------------------------------------
# Image operators. Each returns (image, mask [1 or N, 1, H, W]); the mask is 1 where the result is
# valid. Translations are in pixels, positive x to the right, positive y down.
# ------------------------------------------------------------------------------------------------

def _spans(d: int, n: int) -> Tuple[slice, slice]:
    """For a shift by ``d`` samples along an axis of length ``n``: (destination, source) slices with
    ``out[dst] = in[src]``, i.e. ``out[i] = in[i - d]``."""
    if d >= 0:
        return slice(d, n), slice(0, n - d)
    return slice(0, n + d), slice(-d, n)


def _shift(x: torch.Tensor, dx: int, dy: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``out[..., i, j] = x[..., i - dy, j - dx]``, zero where that pixel does not exist."""
    H, W = x.shape[-2:]
    out = torch.zeros_like(x)
    mask = torch.zeros([1, 1, H, W], dtype=x.dtype, device=x.device)
    if abs(dx) < W and abs(dy) < H:
        (ydst, ysrc), (xdst, xsrc) = _spans(dy, H), _spans(dx, W)
        out[..., ydst, xdst] = x[..., ysrc, xsrc]
        mask[..., ydst, xdst] = 1
    return out, mask


def translate_integer(x: torch.Tensor, dx: int, dy: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """EQ-T's reference operator: shift ``x [N, C, H, W]`` by whole pixels."""
    return _shift(x, int(dx), int(dy))


def _lanczos(v: torch.Tensor, a: int) -> torch.Tensor:
    """The Lanczos window ``sinc(v / a)`` on ``|v| < a``, zero outside."""
    return torch.where(v.abs() < a, torch.sinc(v / a), torch.zeros_like(v))


def translate_fractional(x: torch.Tensor, dx: float, dy: float, a: int = 3) -> Tuple[torch.Tensor, torch.Tensor]:
    """EQ-T_frac's reference operator: shift ``x`` by ``(dx, dy)`` pixels, ``out(p) = x(p - d)``,
    interpolating with a separable Lanczos-``a`` kernel. Per axis, with ``d = i + f`` (``i`` whole,
    ``0 <= f < 1``), ``out[j] = sum_k w_k x[j - i - k]`` over the ``2a`` taps ``k = -(a-1) .. a``,
    ``w_k = sinc(k - f) sinc((k - f) / a)`` normalised to sum 1; valid where all taps exist."""
    out, mask = x, None
    for axis, d in ((-1, float(dx)), (-2, float(dy))):
        i = math.floor(d)
        f = d - i
        k = torch.arange(-(a - 1), a + 1, dtype=torch.float64)
        w = torch.sinc(k - f) * _lanczos(k - f, a)
        w = (w / w.sum()).tolist()
        acc = torch.zeros_like(out)
        for kk, wk in zip(k.long().tolist(), w):
            s = i + kk
            shifted, m = _shift(out, s, 0) if axis == -1 else _shift(out, 0, s)
            acc += wk * shifted
            mask = m if mask is None else mask * m
        out = acc
    return out, mask


def bandlimit_filter(mat, *, a: int = 3, amax: int = 6, up: int = 1, aflt: int = 64, cutoff_in: float = 1.0,
                     cutoff_out: float = 1.0) -> torch.Tensor:
    """The oriented low-pass of EQ-R, ``[2K + 1, 2K + 1]`` float64 with ``K = amax * up - 1``, on a
    grid of ``1 / up`` input pixels (rows = y, columns = x).

    Its ideal part is the convolution of two separable sincs: ``sinc(cutoff_in x) sinc(cutoff_in y)``
    in input pixel coordinates and the same in the output coordinates ``(x', y') = mat[:2, :2] (x, y)``
    (cutoff 1 = Nyquist). It is windowed by the convolution of the two matching separable
    Lanczos-``a`` windows. Both convolutions are taken circularly through FFTs on a periodic grid of
    ``2 * aflt * up - 1`` samples per axis (``aflt`` pixels either side, far beyond the support that
    is kept), the product is cut to ``+-K`` samples, and each of the ``up x up`` polyphase components
    (taps whose offsets agree modulo ``up`` on both axes; with ``up = 1`` the whole filter) is scaled
    to sum 1, so that resampling preserves a constant image."""
    if not a <= amax < aflt:
        raise ValueError(f"need a <= amax < aflt, got {a}, {amax}, {aflt}")
    A = torch.as_tensor(np.asarray(mat, dtype=np.float64)[:2, :2])
    n = 2 * aflt * up - 1
    i = torch.arange(n, dtype=torch.float64)
    pos = torch.where(i < aflt * up, i, i - n) / up      # tap positions in FFT order: 0, 1/up, ..., -1/up
    yi, xi = torch.meshgrid(pos, pos, indexing="ij")
    xo = A[0, 0] * xi + A[0, 1] * yi
    yo = A[1, 0] * xi + A[1, 1] * yi

    def circular_conv(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(p) * torch.fft.fft2(q)).real

    ideal = circular_conv(torch.sinc(xi * cutoff_in) * torch.sinc(yi * cutoff_in),
                          torch.sinc(xo * cutoff_out) * torch.sinc(yo * cutoff_out))
    window = circular_conv(_lanczos(xi, a) * _lanczos(yi, a), _lanczos(xo, a) * _lanczos(yo, a))
    K = amax * up - 1
    keep = torch.arange(-K, K + 1) % n
    f = (ideal * window)[keep][:, keep]
    phase = torch.arange(-K, K + 1) % up
    group = (phase[:, None] * up + phase[None, :]).reshape(-1)
    sums = torch.zeros(up * up, dtype=f.dtype).index_add_(0, group, f.reshape(-1))
    return f / sums[group].reshape(f.shape)


def _rotation(angle: float) -> np.ndarray:
    """The 3x3 matrix that rotates an image by ``angle`` radians, in :func:`make_transform`'s convention."""
    return make_transform(angle=math.degrees(angle))


def rotate_fractional(x: torch.Tensor, angle: float, a: int = 3, up: int = 4) -> Tuple[torch.Tensor, torch.Tensor]:
    """EQ-R's reference operator: ``x`` warped by ``make_transform(angle=degrees(angle))`` (what the
    generator renders after ``set_input_transform(rotate=degrees(angle))``).

    ``x`` is upsampled ``up`` times with :func:`bandlimit_filter` (``amax = 2a``), as a transposed
    convolution: upsampled sample ``j`` sits at ``(j - K) / up`` input pixels from the first pixel
    centre. Output pixel centres are mapped through the inverse matrix (normalised image
    coordinates, the image spanning [-1, 1]) into the upsampled image and read bilinearly. Valid
    where that point, rounded to the upsampled grid, lies at least ``K + 1`` fine samples inside
    the input image's ``[0, W]`` extent (``K`` = the filter's half-width)."""
    return _affine_resample(x, _rotation(angle), a=a, amax=2 * a, up=up)


def _affine_resample(x: torch.Tensor, mat: np.ndarray, *, a: int, amax: int, up: int) -> Tuple[torch.Tensor, torch.Tensor]:
    N, C, H, W = x.shape
    f = bandlimit_filter(mat, a=a, amax=amax, up=up)
    K = f.shape[0] // 2
    weight = f.to(x.device, x.dtype).expand(C, 1, -1, -1).contiguous()
    y = F.conv_transpose2d(x, weight, stride=up, groups=C)           # [N, C, up (H - 1) + 2K + 1, ...]
    Ly, Lx = y.shape[-2:]

    # Output pixel centres in normalised coordinates -> source points (inverse transform; a
    # translation in image units is doubled in normalised units).
    inv = np.linalg.inv(np.asarray(mat, dtype=np.float64))
    gy, gx = torch.meshgrid((torch.arange(H, dtype=torch.float64) * 2 + 1) / H - 1,
                            (torch.arange(W, dtype=torch.float64) * 2 + 1) / W - 1, indexing="ij")
    sx = inv[0, 0] * gx + inv[0, 1] * gy + 2 * inv[0, 2]
    sy = inv[1, 0] * gx + inv[1, 1] * gy + 2 * inv[1, 2]
    # Source points in input pixels (pixel edges at 0 .. W), then in upsampled samples: sample j of y
    # is at (j - K) / up + 0.5 pixels.
    px, py = (sx + 1) * (W / 2), (sy + 1) * (H / 2)
    jx, jy = up * (px - 0.5) + K, up * (py - 0.5) + K
    grid = torch.stack([(2 * jx + 1) / Lx - 1, (2 * jy + 1) / Ly - 1], dim=-1)
    grid = grid.to(x.device, x.dtype).unsqueeze(0).expand(N, -1, -1, -1)
    out = F.grid_sample(y, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    kx, ky = torch.round(up * px), torch.round(up * py)
    valid = (kx >= K + 1) & (kx <= up * W - K - 2) & (ky >= K + 1) & (ky <= up * H - K - 2)
    return out, valid.to(x.device, x.dtype)[None, None]


def pseudo_rotate(x: torch.Tensor, angle: float, a: int = 3) -> Tuple[torch.Tensor, torch.Tensor]:
    """EQ-R's operator on the generated image: filter ``x`` (not resampled) with
    :func:`bandlimit_filter` at the input resolution for the inverse rotation, ``amax = 2a``,
    zero-padded 'same' convolution; valid where the filter lies inside the image."""
    N, C, H, W = x.shape
    f = bandlimit_filter(_rotation(-angle), a=a, amax=2 * a, up=1)
    K = f.shape[0] // 2
    weight = f.flip([0, 1]).to(x.device, x.dtype).expand(C, 1, -1, -1).contiguous()
    out = F.conv2d(x, weight, padding=K, groups=C)
    mask = torch.zeros([1, 1, H, W], dtype=x.dtype, device=x.device)
    mask[..., K:H - K, K:W - K] = 1
    return out, mask


# ------------------------------------------------------------------------------------------------
# Metric
# ------------------------------------------------------------------------------------------------

def compute_equivariance(G, *, num_samples: int, kind: str = "int", translate_max: float = 0.125,
                         rotate_max: float = 1.0, batch_size: int = 4, device="cpu", seed: int = 0,
                         labels: Optional[torch.Tensor] = None) -> float:
    """EQ-T (``kind='int'``), EQ-T_frac (``'frac'``) or EQ-R (``'rot'``) of generator ``G`` over
    ``num_samples`` samples, as PSNR in dB (``inf`` for a perfect match); see the module docstring.
    ``translate_max``: the largest translation, a fraction of the image; ``rotate_max``: the
    largest rotation in units of pi. ``labels``: ``[N, c_dim]`` dataset labels, required for a
    conditional G. Raises :class:`zoo.sampling.NotApplicable` for generators without a StyleGAN3
    input transform (ProGAN, StyleGAN, StyleGAN2)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    _check_counts(num_samples, batch_size)
    if input_transform(G) is None:
        raise NotApplicable(f"equivariance metrics need a StyleGAN3 generator, whose Fourier input takes a "
                            f"user transform (synthesis.input.transform); a {generation_name(G)} generator has none")
    dev = torch.device(device)
    G = on_device(G, dev)
    draw_c = label_sampler(G, labels, dev)
    gen = torch.Generator().manual_seed(int(seed))
    R = int(G.img_resolution)
    sq_err = 0.0
    count = 0.0
    with preserved_state(G) as randomize_noise, torch.no_grad():
        for start in range(0, int(num_samples), int(batch_size)):
            n = min(int(batch_size), int(num_samples) - start)
            randomize_noise(gen)
            z = torch.randn([n, G.z_dim], generator=gen)
            c = draw_c(n, gen)
            ws = G.mapping(z.to(dev), c)
            set_input_transform(G)                                           # identity
            orig = G.synthesis(ws, noise_mode="const").float()

            if kind in ("int", "frac"):
                t = ((torch.rand([2], generator=gen).double() * 2 - 1) * translate_max).tolist()
                if kind == "int":
                    d = [round(v * R) for v in t]
                    t = [v / R for v in d]
                set_input_transform(G, translate=t)
                img = G.synthesis(ws, noise_mode="const").float()
                H, W = orig.shape[-2:]
                if kind == "int":
                    ref, mask = translate_integer(orig, round(t[0] * W), round(t[1] * H))
                else:
                    ref, mask = translate_fractional(orig, t[0] * W, t[1] * H)
                diff = ref - img
            else:
                angle = (float(torch.rand([], generator=gen)) * 2 - 1) * (rotate_max * math.pi)
                set_input_transform(G, rotate=math.degrees(angle))
                img = G.synthesis(ws, noise_mode="const").float()
                ref, ref_mask = rotate_fractional(orig, angle)
                pseudo, pseudo_mask = pseudo_rotate(img, angle)
                diff, mask = ref - pseudo, ref_mask * pseudo_mask
            sq_err += float((diff.double().square() * mask).sum())
            count += float(mask.double().sum()) * diff.shape[0] * diff.shape[1]
    if count == 0:
        raise ValueError(f"no pixel is valid for the {kind!r} equivariance comparison at {R} px; "
                         "use a smaller translate_max or a larger generator")
    mse = sq_err / count
    if mse == 0:
        return float("inf")
    return 20 * math.log10(2) - 10 * math.log10(mse)
