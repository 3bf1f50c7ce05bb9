"""3x3 convolutions by Winograd's minimal filtering algorithm F(4x4, 3x3) -- the CPU fast path.

A stride-1 3x3 convolution computes every 4x4 block of outputs from a 6x6 block of inputs. Winograd's
algorithm (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016) maps the 6x6
input tile and the 3x3 kernel into a 6x6 "transform domain" where the convolution becomes an
elementwise product; summed over input channels, that product is a matrix multiplication per
transform position. A 4x4 output block then costs 36 multiply-adds per (input, output) channel
pair instead of 16 * 9 = 144: **4x fewer** for the dominant term, with the same result up to float
rounding (relative error ~1e-6 in float32, see the tests). GPU libraries (cuDNN) make the same
choice internally; PyTorch's CPU backend (oneDNN) computes 3x3 convolutions directly, which is why
this module exists: StyleGAN3's generator spends ~80 % of its CPU time in 3x3 convolutions.

Layout: everything runs channels-last, as batched GEMMs.

1. gather the 6x6 input tiles (stride 4) into ``[36, P, C]`` (``P`` = number of tiles);
2. input transform ``kron(B^T, B^T) @ tiles`` (one GEMM with K = 36);
3. one batched GEMM ``[36, P, C] @ [36, C, O]`` against the transformed kernel ``G w G^T``;
4. output transform ``kron(A^T, A^T) @ ...`` (K = 36) and scatter of the 4x4 blocks.

The transform matrices are built here from the interpolation points 0, +-1, +-2, infinity by the
Toom-Cook construction (``A^T = V_m^T``, ``G = V_r``, ``B^T = V^-T``), rows balanced as in the
paper so that ``B^T`` has small integer entries; the kernel transform runs in float64.

Derivatives: the input gradient of a 3x3 convolution is again a 3x3 convolution (flipped,
transposed kernel, complementary padding), and the weight gradient is the correlation of the same
6x6 input tiles with 4x4 output-gradient tiles -- Winograd F(3x3, 4x4), which shares the input
transform (the transformed tiles of the forward pass are reused). Both are autograd functions
whose backward passes are again these functions, so second derivatives work too.
"""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .convolution import conv2d

__all__ = ["conv3x3", "winograd_conv3x3", "use_winograd"]

_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0)  # plus the point at infinity
_ALPHA = 6  # transform tile size: m + r - 1 for F(4, 3) and F(3, 4)
_ROW_SCALE = np.array([4.0, -6.0, 6.0, 24.0, 24.0, 1.0])  # makes B^T integral (Lavin & Gray)


def _vandermonde(n: int) -> np.ndarray:
    """Rows: polynomial of degree < n evaluated at the points; last row: leading coefficient."""
    v = np.zeros((_ALPHA, n))
    for i, p in enumerate(_POINTS):
        v[i] = p ** np.arange(n)
    v[_ALPHA - 1, n - 1] = 1.0
    return v


@functools.lru_cache(maxsize=None)
def _matrices(m: int, r: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A^T [m, 6], G [6, r], B^T [6, 6])`` with ``y = A^T ((G g) * (B^T d))`` the correlation
    ``y[k] = sum_j g[j] d[k + j]`` of a length-6 signal ``d`` with an ``r``-tap kernel ``g``."""
    assert m + r - 1 == _ALPHA
    at = _vandermonde(m).T
    g = _vandermonde(r) / _ROW_SCALE[:, None]
    bt = np.linalg.inv(_vandermonde(_ALPHA)).T * _ROW_SCALE[:, None]
    assert np.abs(bt - np.round(bt)).max() < 1e-9  # integral by the choice of row scales
    return at, g, np.round(bt)


@functools.lru_cache(maxsize=None)
def _kron(kind: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    at4, g3, bt = _matrices(4, 3)
    at3, g4, _ = _matrices(3, 4)
    m = {"B": bt, "A": at4, "A3": at3, "G4": g4, "G3": g3}[kind]
    return torch.as_tensor(np.kron(m, m), dtype=dtype, device=device)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` -> contiguous ``[N, H, W, C]`` (free for channels-last tensors)."""
    return x.permute(0, 2, 3, 1).contiguous()


def _tiles(x: torch.Tensor, padding: int, ty: int, tx: int) -> torch.Tensor:
    """Overlapping 6x6 input tiles (stride 4) of the zero-padded input: ``[36, N*ty*tx, C]``."""
    n, c, h, w = x.shape
    xp = F.pad(_nhwc(x), (0, 0, padding, 4 * tx + 2 - w - padding, padding, 4 * ty + 2 - h - padding))
    out = x.new_empty([_ALPHA, _ALPHA, n, ty, tx, c])
    for i in range(_ALPHA):
        for j in range(_ALPHA):
            out[i, j] = xp[:, i:i + 4 * ty:4, j:j + 4 * tx:4]
    return out.view(_ALPHA * _ALPHA, n * ty * tx, c)


def _transform_input(x: torch.Tensor, padding: int, ty: int, tx: int) -> torch.Tensor:
    d = _tiles(x, padding, ty, tx)
    return (_kron("B", x.dtype, x.device) @ d.view(36, -1)).view(d.shape)


def _transform_kernel(w: torch.Tensor) -> torch.Tensor:
    """``G w G^T`` per (out, in) channel pair: ``[O, C, 3, 3]`` -> ``[36, C, O]`` (float64 inside)."""
    kron = _kron("G3", torch.float64, w.device)
    o, c = w.shape[:2]
    u = kron @ w.detach().to(torch.float64).reshape(o * c, 9).t()  # [36, O*C]
    return u.view(36, o, c).transpose(1, 2).to(w.dtype)


def _scatter_output(yt: torch.Tensor, n: int, ty: int, tx: int, ho: int, wo: int, m: int) -> torch.Tensor:
    """``[m*m, N*ty*tx, O]`` blocks -> ``[N, O, ho, wo]`` (channels-last memory)."""
    o = yt.shape[-1]
    y = yt.view(m, m, n, ty, tx, o)
    out = yt.new_empty([n, ho, wo, o])
    for i in range(m):
        rows = len(range(i, ho, m))
        for j in range(m):
            cols = len(range(j, wo, m))
            out[:, i::m, j::m] = y[i, j, :, :rows, :cols]
    return out.permute(0, 3, 1, 2)


def _forward(x: torch.Tensor, w: torch.Tensor, padding: int):
    n, c, h, wd = x.shape
    ho, wo = h + 2 * padding - 2, wd + 2 * padding - 2
    ty, tx = -(-ho // 4), -(-wo // 4)
    v = _transform_input(x, padding, ty, tx)  # [36, P, C]
    mm = torch.bmm(v, _transform_kernel(w))  # [36, P, O]
    yt = _kron("A", x.dtype, x.device) @ mm.view(36, -1)  # [16, P*O]
    return _scatter_output(yt.view(16, -1, w.shape[0]), n, ty, tx, ho, wo, 4), v


def _weight_grad(v: torch.Tensor, dy: torch.Tensor, x_shape, padding: int) -> torch.Tensor:
    """``dW[o, c, u, v] = sum dy[n, o, h, w] xp[n, c, h + u, w + v]`` by Winograd F(3x3, 4x4)."""
    n, c, h, wd = x_shape
    o, ho, wo = dy.shape[1:]
    ty, tx = -(-ho // 4), -(-wo // 4)
    d = F.pad(_nhwc(dy), (0, 0, 0, 4 * tx - wo, 0, 4 * ty - ho))  # [N, 4ty, 4tx, O]
    d = d.view(n, ty, 4, tx, 4, o).permute(2, 4, 0, 1, 3, 5).reshape(16, -1)  # [16, P*O]
    dt = (_kron("G4", dy.dtype, dy.device) @ d).view(36, -1, o)  # [36, P, O]
    mm = torch.bmm(dt.transpose(1, 2), v)  # [36, O, C]
    dw = _kron("A3", dy.dtype, dy.device) @ mm.view(36, -1)  # [9, O*C]
    return dw.view(3, 3, o, c).permute(2, 3, 0, 1).contiguous()


def _flip_t(w: torch.Tensor) -> torch.Tensor:
    return w.transpose(0, 1).flip([2, 3])


class _WinogradConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, padding):
        y, v = _forward(x, w, padding)
        ctx.padding = padding
        # v: the transformed input tiles, reused by the weight gradient (kept only if one is needed)
        ctx.save_for_backward(x, w, v if ctx.needs_input_grad[1] else None)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, w, v = ctx.saved_tensors
        p = ctx.padding
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = winograd_conv3x3(dy, _flip_t(w), 2 - p)
        if ctx.needs_input_grad[1]:
            dw = _WinogradWeightGrad.apply(x, dy, v, p)
        return dx, dw, None


class _WinogradWeightGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dy, v, padding):
        ctx.padding = padding
        ctx.save_for_backward(x, dy)
        return _weight_grad(v, dy, x.shape, padding)

    @staticmethod
    def backward(ctx, gw):
        # dW is bilinear in (x, dy): d/d(dy) is a convolution of x with gw, d/dx the transposed one.
        x, dy = ctx.saved_tensors
        p = ctx.padding
        gx = gdy = None
        if ctx.needs_input_grad[0]:
            gx = winograd_conv3x3(dy, _flip_t(gw), 2 - p)
        if ctx.needs_input_grad[1]:
            gdy = winograd_conv3x3(x, gw, p)
        return gx, gdy, None, None


def winograd_conv3x3(x: torch.Tensor, w: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """``F.conv2d(x, w, padding=padding)`` for ``[O, C, 3, 3]`` kernels, stride 1, ``padding`` in 0..2,
    by Winograd F(4x4, 3x3). Output in channels-last memory format. Any device, float32/float64."""
    if w.ndim != 4 or tuple(w.shape[2:]) != (3, 3) or x.ndim != 4 or x.shape[1] != w.shape[1]:
        raise ValueError(f"winograd_conv3x3: need x [N, C, H, W] and w [O, C, 3, 3], got {tuple(x.shape)}, {tuple(w.shape)}")
    if padding not in (0, 1, 2):
        raise ValueError(f"winograd_conv3x3: padding must be 0, 1 or 2, got {padding}")
    if min(x.shape[2], x.shape[3]) + 2 * padding < 3:
        raise ValueError(f"winograd_conv3x3: input {tuple(x.shape[2:])} too small for a 3x3 kernel")
    w = w.to(x.dtype)
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return _WinogradConv.apply(x, w, int(padding))
    return _forward(x, w, int(padding))[0]


def use_winograd(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether :func:`conv3x3` takes the Winograd path: CPU, float32/64, 3x3 kernels, and enough
    channels for the batched GEMM to outweigh the memory-bound tile transforms. Measured on the
    2-core Xeon (1 thread, batch 4, "full" padding, ms direct -> Winograd): 512x512 at 36 px 148 -> 101,
    512x512 at 84 px 803 -> 383, 512->362 at 84 px 567 -> 300, 362->256 at 148 px 847 -> 570,
    256->181 at 148 px 484 -> 357; ties at 181->128 (148 px, 221 -> 225) and 128->128 (36 px,
    9 -> 9); losses below: 128->91 at 276 px 418 -> 473, 64->64 at 276 px 142 -> 207. Hence the
    threshold in_channels * out_channels > 2**15. When gradients will be taken the backward pass
    (input gradient and Winograd F(3x3, 4x4) weight gradient) gains more than the forward loses:
    forward + backward at batch 32, 128x128 channels, 2 threads: 148 -> 128 ms at 36 px, 348 -> 312 ms
    at 52 px, hence 2**14 then."""
    if not (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and tuple(w.shape[2:]) == (3, 3)):
        return False
    training = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)
    return w.shape[0] * w.shape[1] >= (2 ** 14 if training else 2 ** 15 + 1)


def conv3x3(x: torch.Tensor, w: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """Stride-1 convolution that takes the Winograd path where it is faster (see :func:`use_winograd`)
    and :func:`zoo.ops.convolution.conv2d` otherwise."""
    if use_winograd(x, w) and padding in (0, 1, 2):
        return winograd_conv3x3(x, w, padding)
    return conv2d(x, w, padding=padding)
