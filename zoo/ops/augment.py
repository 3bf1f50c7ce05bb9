"""Differentiable augmentation of discriminator inputs: NVIDIA's ADA pipeline and DiffAugment.

:class:`AugmentPipe` follows the semantics of the pipeline of Karras et al. 2020 ("Training
Generative Adversarial Networks with Limited Data", app. B; NVIDIA's ``AugmentPipe``): every
transform of a preset is applied to each image independently with probability
``p * multiplier``, in this order, with these parameter distributions:

* pixel blitting (``xflip``, ``rotate90``, ``xint``): x-flip with probability 1/2; a rotation by
  ``k * 90`` degrees, ``k ~ U{0..3}``; an integer translation ``round(t * size)``,
  ``t ~ U(-xint_max, xint_max)`` per axis (``xint_max`` 0.125);
* general geometry (``scale``, ``rotate``, ``aniso``, ``xfrac``): isotropic scale
  ``2^N(0, scale_std)`` (0.2); a rotation ``U(-pi, pi) * rotate_max`` before and another after an
  anisotropic scale ``2^N(0, aniso_std)`` (0.2) along x and its inverse along y, each rotation with
  probability ``1 - sqrt(1 - rotate * p)`` (so "either" has probability ``rotate * p``); a
  fractional translation ``N(0, xfrac_std)`` (0.125) of the image size per axis;
* colour (``brightness``, ``contrast``, ``lumaflip``, ``hue``, ``saturation``): add
  ``N(0, brightness_std)`` (0.2); multiply by ``2^N(0, contrast_std)`` (0.5); reflect the colour
  around the luma axis ``(1, 1, 1) / sqrt(3)`` with probability 1/2; rotate around that axis by
  ``U(-pi, pi) * hue_max``; scale the chroma by ``2^N(0, saturation_std)`` (1);
* image-space filtering (``imgfilter``): each of four frequency bands (a sym2 wavelet bank) gets a
  gain ``2^N(0, imgfilter_std)`` (1) with probability ``p * imgfilter * band_strength``, the gains
  renormalised to keep the expected power of a 1/f spectrum (``[10, 1, 1, 1] / 13``);
* corruptions (``noise``, ``cutout``): Gaussian noise of std ``|N(0, noise_std)|`` (0.1); a
  zeroed square of ``cutout_size`` (0.5) of the image at a uniform centre.

The geometric transforms compose into one matrix per image and run as one resampling: reflect
padding wide enough for the transformed corners, 2x upsampling with the sym6 wavelet low-pass,
bilinear sampling, sym6 downsampling (the pair is orthogonal, so an identity or integer-pixel
transform reproduces the pixels up to float rounding). Padding + upsampling and downsampling are
separable linear maps, computed as one small matrix product per axis (the same sums as
``upfirdn2d``, ~10x faster than depthwise convolutions on these few-channel images on CPU). Colour transforms compose into one 4x4
matrix per image. As in NVIDIA's pipeline, once ``p > 0`` every image of the batch goes through the
resampling of its preset, whether or not its own draws were identities; ``p == 0`` returns the
input unchanged (bit for bit, and no random numbers are drawn).

Everything is made of differentiable torch operations (padding, FIR filtering, ``grid_sample``,
matrix products, masks), so the gradient w.r.t. the input image and the gradient of that gradient
(R1 differentiates ``D(augment(x))`` w.r.t. ``x``) exist; the random parameters are constants.
Draws come from torch's global generator on the images' device: seeded per batch chunk by the
trainer, they are reproducible.

:class:`DiffAugment` is Zhao et al. 2020 ("Differentiable Augmentation for Data-Efficient GAN
Training"), applied to every image at every step: ``color`` (brightness ``U(-0.5, 0.5)``,
saturation ``x U(0, 2)``, contrast ``x U(0.5, 1.5)``), ``translation`` (integer shift up to 1/8 of
the size, zero fill) and ``cutout`` (a zeroed square of half the size at a random offset).
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from zoo.ops.fir import setup_filter

__all__ = ["AugmentPipe", "DiffAugment", "PRESETS", "DIFFAUGMENT_POLICIES", "SYM2", "SYM6", "filter_bank", "fir_matrix",
           "reflect_matrix"]

# Decomposition low-pass filters of the least-asymmetric Daubechies wavelets (PyWavelets' ``sym2``
# and ``sym6``; orthonormal: unit energy, orthogonal to their even shifts, sum sqrt(2)).
SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
#: NVIDIA's ``--augpipe`` presets: the probability multiplier of each transform.
PRESETS: Dict[str, Dict[str, float]] = {
    "blit": _BLIT,
    "geom": _GEOM,
    "color": _COLOR,
    "filter": dict(imgfilter=1),
    "noise": dict(noise=1),
    "cutout": dict(cutout=1),
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}

_GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
_COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
_TRANSFORMS = _GEOMETRIC + _COLOUR + ("imgfilter", "noise", "cutout")


def filter_bank(lowpass: Sequence[float] = SYM2, bands: int = 4) -> np.ndarray:
    """``[bands, taps]`` zero-phase filters splitting a signal into octave bands, lowest first;
    they sum to the identity. Built from the half-band pair ``L = H(z) H(1/z) / 2`` and
    ``Hi = H(-z) H(-1/z) / 2`` of an orthonormal low-pass ``H`` (``L + Hi = 1``): band ``b`` (``b >= 1``)
    is ``Hi(z^(2^(bands-1-b))) * prod L(z^(2^j))`` over the finer octaves ``j < bands-1-b``, band 0
    the product of all ``L``."""
    h = np.asarray(lowpass, dtype=np.float64)
    g = h * (-1.0) ** np.arange(h.size)
    lo, hi = np.convolve(h, h[::-1]) / 2, np.convolve(g, g[::-1]) / 2

    def dilate(f: np.ndarray, k: int) -> np.ndarray:  # f(z) -> f(z^k)
        out = np.zeros((f.size - 1) * k + 1)
        out[::k] = f
        return out

    taps = [None] * bands
    acc = np.ones(1)  # product of the finer low-pass stages so far
    for b in range(bands - 1, 0, -1):
        k = 2 ** (bands - 1 - b)
        taps[b] = np.convolve(acc, dilate(hi, k))
        acc = np.convolve(acc, dilate(lo, k))
    taps[0] = acc
    width = max(t.size for t in taps)
    bank = np.zeros([bands, width])
    for b, t in enumerate(taps):  # centred
        start = (width - t.size) // 2
        bank[b, start:start + t.size] = t
    return bank


# ------------------------------------------------------------------------------------------------
# Batched homogeneous matrices ([N, 3, 3] in 2-D, [N, 4, 4] for colours); entries are floats or [N] tensors.
# ------------------------------------------------------------------------------------------------

def _matrix(rows, n: int, device) -> torch.Tensor:
    cells = [[torch.as_tensor(v, dtype=torch.float32, device=device).reshape(-1).expand(n) for v in row] for row in rows]
    return torch.stack([torch.stack(row, dim=-1) for row in cells], dim=-2)


def _translate2d(tx, ty, n, device):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n, device)


def _scale2d(sx, sy, n, device):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n, device)


def _rotate2d(theta, n, device):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], n, device)


def _translate3d(t, n, device):
    return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], n, device)


def _scale3d(s, n, device):
    return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], n, device)


def _rotate3d(axis: Sequence[float], theta: torch.Tensor, n, device):
    """Rotation by ``theta`` around the unit vector ``axis`` (Rodrigues' formula)."""
    x, y, z = (float(v) for v in axis)
    c, s = torch.cos(theta), torch.sin(theta)
    d = 1 - c
    return _matrix([[x * x * d + c, x * y * d - z * s, x * z * d + y * s, 0],
                    [y * x * d + z * s, y * y * d + c, y * z * d - x * s, 0],
                    [z * x * d - y * s, z * y * d + x * s, z * z * d + c, 0],
                    [0, 0, 0, 1]], n, device)


def fir_matrix(n_in: int, f: np.ndarray, up: int = 1, down: int = 1, pad0: int = 0, pad1: int = 0,
               flip_filter: bool = False, gain: float = 1.0) -> np.ndarray:
    """``upfirdn`` along one axis as a matrix ``[n_out, n_in]`` (the semantics of
    :func:`zoo.ops.fir.upfirdn2d`: zero insertion, padding or cropping, convolution, decimation)."""
    g = np.asarray(f, dtype=np.float64) * gain
    if not flip_filter:
        g = g[::-1]  # convolution = correlation with the flipped filter
    n_out = (n_in * up + pad0 + pad1 - g.size) // down + 1
    o, t = np.meshgrid(np.arange(n_out), np.arange(g.size), indexing="ij")
    k = o * down + t - pad0  # position in the zero-inserted input
    valid = (k >= 0) & (k < n_in * up) & (k % up == 0)
    m = np.zeros([n_out, n_in])
    np.add.at(m, (o[valid], k[valid] // up), np.broadcast_to(g, o.shape)[valid])
    return m


def reflect_matrix(n: int, before: int, after: int) -> np.ndarray:
    """Reflect padding (``F.pad(mode='reflect')``) of a length-``n`` axis as a matrix ``[n + before + after, n]``."""
    j = np.arange(-before, n + after)
    j = np.where(j < 0, -j, np.where(j >= n, 2 * (n - 1) - j, j))
    m = np.zeros([j.size, n])
    m[np.arange(j.size), j] = 1
    return m


_AXIS_CACHE: Dict[tuple, torch.Tensor] = {}


def _separable(x: torch.Tensor, my: torch.Tensor, mx: torch.Tensor) -> torch.Tensor:
    """``my @ x @ mx^T`` over the last two axes of ``[N, C, H, W]`` (two GEMMs, width first)."""
    return (torch.matmul(x, mx.t()).transpose(2, 3) @ my.t()).transpose(2, 3)


def _axis_matrix(n: int, f: np.ndarray, before: int, after: int, kind: str, like: torch.Tensor) -> torch.Tensor:
    """The geometric pipeline's per-axis linear maps, cached: ``'up'`` = reflect-pad by
    ``before``/``after`` then 2x upsample with ``f`` (gain 2 per axis, NVIDIA's ``upsample2d``
    padding); ``'down'`` = 2x downsample with ``f`` as a correlation and crop ``before = after``
    filter-quarter widths on each side back to ``n`` samples (``downsample2d(padding=-2 * pad)``)."""
    key = (n, before, after, kind, f.tobytes(), like.dtype, like.device)
    m = _AXIS_CACHE.get(key)
    if m is None:
        taps = f.size
        if kind == "up":
            mat = fir_matrix(n + before + after, f, up=2, pad0=(taps + 1) // 2, pad1=(taps - 2) // 2, gain=2.0) \
                @ reflect_matrix(n, before, after)
        else:
            mat = fir_matrix((n + 2 * before) * 2, f, down=2, pad0=-2 * before + (taps - 1) // 2,
                             pad1=-2 * after + (taps - 2) // 2, flip_filter=True)
        if len(_AXIS_CACHE) > 256:
            _AXIS_CACHE.clear()
        m = _AXIS_CACHE[key] = torch.as_tensor(mat, dtype=like.dtype, device=like.device)
    return m


class AugmentPipe(torch.nn.Module):
    """NVIDIA's augmentation pipeline (ADA). ``AugmentPipe(**PRESETS['bgc'])`` or
    ``AugmentPipe.from_preset('bgc', p=0.2)``; ``pipe(images)`` augments ``[N, C, H, W]`` images
    (C = 1 or 3 for the colour transforms) with the current probability :attr:`probability`.

    Buffers, as NVIDIA's (so state dicts line up): ``p`` (the probability, a scalar),
    ``Hz_geom`` (the normalised sym6 filter) and ``Hz_fbank`` (the 4-band filter bank). The
    probability also lives as a Python float (:meth:`set_probability`), so choosing the identity at
    ``p == 0`` needs no device synchronisation."""

    def __init__(self, xflip=0, rotate90=0, xint=0, xint_max=0.125,
                 scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
                 brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0,
                 brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1,
                 imgfilter=0, imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1,
                 noise=0, cutout=0, noise_std=0.1, cutout_size=0.5, p: float = 0.0):
        super().__init__()
        self.strengths = {k: float(v) for k, v in dict(
            xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate, aniso=aniso, xfrac=xfrac,
            brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue, saturation=saturation,
            imgfilter=imgfilter, noise=noise, cutout=cutout).items()}
        self.xint_max, self.scale_std, self.rotate_max = float(xint_max), float(scale_std), float(rotate_max)
        self.aniso_std, self.xfrac_std = float(aniso_std), float(xfrac_std)
        self.brightness_std, self.contrast_std = float(brightness_std), float(contrast_std)
        self.hue_max, self.saturation_std = float(hue_max), float(saturation_std)
        self.imgfilter_bands, self.imgfilter_std = [float(b) for b in imgfilter_bands], float(imgfilter_std)
        if len(self.imgfilter_bands) != 4:
            raise ValueError(f"imgfilter_bands needs one strength per band (4), got {len(self.imgfilter_bands)}")
        self.noise_std, self.cutout_size = float(noise_std), float(cutout_size)
        self.register_buffer("p", torch.zeros([]))
        self.register_buffer("Hz_geom", setup_filter(SYM6))
        self._geom_taps = self.Hz_geom.double().numpy()  # host copy for the resampling matrices
        self.register_buffer("Hz_fbank", torch.as_tensor(filter_bank(SYM2, 4), dtype=torch.float32))
        self._p = 0.0
        self.set_probability(p)

    @classmethod
    def from_preset(cls, preset: str, p: float = 0.0, **overrides) -> "AugmentPipe":
        if preset not in PRESETS:
            raise ValueError(f"unknown augmentation preset {preset!r}; presets: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides}, p=p)

    @property
    def probability(self) -> float:
        return self._p

    def set_probability(self, p: float) -> None:
        self._p = float(p)
        with torch.no_grad():
            self.p.fill_(self._p)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._p = float(self.p)  # the Python copies follow loaded buffers
        self._geom_taps = self.Hz_geom.detach().cpu().double().numpy()

    def extra_repr(self) -> str:
        on = ", ".join(f"{k}={v:g}" for k, v in self.strengths.items() if v)
        return f"{on}, p={self._p:g}"

    # ---- the pipeline ----------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"augment expects [N, C, H, W] images, got shape {tuple(images.shape)}")
        p = self._p
        if p == 0:
            return images
        s = self.strengths
        n, channels, height, width = images.shape
        dev = images.device
        rand = lambda *shape: torch.rand(list(shape) or [n], device=dev)
        randn = lambda *shape: torch.randn(list(shape) or [n], device=dev)
        zeros, ones = torch.zeros(n, device=dev), torch.ones(n, device=dev)

        # -- geometry: G_inv maps output pixel positions (centred, in pixels) to input positions --
        G_inv = None

        def compose(m):
            nonlocal G_inv
            G_inv = m if G_inv is None else G_inv @ m

        if s["xflip"] > 0:
            i = torch.where(rand() < s["xflip"] * p, torch.floor(rand() * 2), zeros)
            compose(_scale2d(1 - 2 * i, 1, n, dev))
        if s["rotate90"] > 0:
            i = torch.where(rand() < s["rotate90"] * p, torch.floor(rand() * 4), zeros)
            compose(_rotate2d(math.pi / 2 * i, n, dev))  # the inverse of a rotation by -90 * i degrees
        if s["xint"] > 0:
            t = (rand(n, 2) * 2 - 1) * self.xint_max
            t = torch.where(rand(n, 1) < s["xint"] * p, t, torch.zeros_like(t))
            compose(_translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height), n, dev))
        if s["scale"] > 0:
            k = torch.where(rand() < s["scale"] * p, torch.exp2(randn() * self.scale_std), ones)
            compose(_scale2d(1 / k, 1 / k, n, dev))
        p_rot = 1 - math.sqrt(min(max(1 - s["rotate"] * p, 0.0), 1.0))  # P(pre or post) = rotate * p
        if s["rotate"] > 0:
            theta = (rand() * 2 - 1) * math.pi * self.rotate_max
            compose(_rotate2d(torch.where(rand() < p_rot, theta, zeros), n, dev))  # inverse of a rotation by -theta
        if s["aniso"] > 0:
            k = torch.where(rand() < s["aniso"] * p, torch.exp2(randn() * self.aniso_std), ones)
            compose(_scale2d(1 / k, k, n, dev))
        if s["rotate"] > 0:
            theta = (rand() * 2 - 1) * math.pi * self.rotate_max
            compose(_rotate2d(torch.where(rand() < p_rot, theta, zeros), n, dev))
        if s["xfrac"] > 0:
            t = randn(n, 2) * self.xfrac_std
            t = torch.where(rand(n, 1) < s["xfrac"] * p, t, torch.zeros_like(t))
            compose(_translate2d(-t[:, 0] * width, -t[:, 1] * height, n, dev))
        if G_inv is not None:
            images = self._resample(images, G_inv)

        # -- colour: C maps input colours (homogeneous RGB) to output colours --
        C = None

        def colour(m):
            nonlocal C
            C = m if C is None else m @ C

        luma = np.array([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)
        vv = torch.as_tensor(np.outer(luma, luma), dtype=torch.float32, device=dev)
        eye = torch.eye(4, device=dev)
        if s["brightness"] > 0:
            b = torch.where(rand() < s["brightness"] * p, randn() * self.brightness_std, zeros)
            colour(_translate3d(b, n, dev))
        if s["contrast"] > 0:
            c = torch.where(rand() < s["contrast"] * p, torch.exp2(randn() * self.contrast_std), ones)
            colour(_scale3d(c, n, dev))
        if s["lumaflip"] > 0:
            i = torch.where(rand(n, 1, 1) < s["lumaflip"] * p, torch.floor(rand(n, 1, 1) * 2), torch.zeros(n, 1, 1, device=dev))
            colour(eye - 2 * vv * i)  # Householder reflection across the plane orthogonal to the luma axis
        if s["hue"] > 0 and channels > 1:
            theta = (rand() * 2 - 1) * math.pi * self.hue_max
            colour(_rotate3d(luma[:3], torch.where(rand() < s["hue"] * p, theta, zeros), n, dev))
        if s["saturation"] > 0 and channels > 1:
            k = torch.where(rand(n, 1, 1) < s["saturation"] * p, torch.exp2(randn(n, 1, 1) * self.saturation_std),
                            torch.ones(n, 1, 1, device=dev))
            colour(vv + (eye - vv) * k)
        if C is not None:
            images = self._recolour(images, C.to(images.dtype))

        if s["imgfilter"] > 0:
            images = self._filter(images, p)
        if s["noise"] > 0:
            sigma = randn(n, 1, 1, 1).abs() * self.noise_std
            sigma = torch.where(rand(n, 1, 1, 1) < s["noise"] * p, sigma, torch.zeros_like(sigma))
            images = images + randn(n, channels, height, width).to(images.dtype) * sigma.to(images.dtype)
        if s["cutout"] > 0:
            size = torch.where(rand(n, 1, 1, 1) < s["cutout"] * p, torch.full([n, 1, 1, 1], self.cutout_size, device=dev),
                               torch.zeros(n, 1, 1, 1, device=dev))
            centre = rand(n, 2, 1, 1)
            xs = (torch.arange(width, device=dev).reshape(1, 1, 1, -1) + 0.5) / width
            ys = (torch.arange(height, device=dev).reshape(1, 1, -1, 1) + 0.5) / height
            keep = ((xs - centre[:, :1]).abs() >= size / 2) | ((ys - centre[:, 1:]).abs() >= size / 2)
            images = images * keep.to(images.dtype)
        return images

    def _resample(self, images: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
        """Apply the per-image inverse transforms ``G_inv`` ``[N, 3, 3]`` (centred pixel coordinates)."""
        n, channels, height, width = images.shape
        dev = images.device
        cx, cy = (width - 1) / 2, (height - 1) / 2
        # Reflect-pad so that every output pixel samples inside the padded image, plus the filter's reach.
        corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=dev).t()
        reach = (G_inv @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, N * 4]
        taps = self.Hz_geom.shape[0]
        fpad = taps // 4
        margin = torch.cat([-reach, reach]).amax(dim=1) + torch.tensor([2 * fpad - cx, 2 * fpad - cy] * 2, device=dev)
        margin = torch.minimum(margin.clamp(min=0), torch.tensor([width - 1, height - 1] * 2, device=dev, dtype=margin.dtype))
        mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())
        # Reflect padding and 2x upsampling are linear maps along each axis: one matrix per axis.
        f = self._geom_taps
        up_x = _axis_matrix(width, f, mx0, mx1, "up", images)
        up_y = _axis_matrix(height, f, my0, my1, "up", images)
        images = _separable(images, up_y, up_x)
        G_inv = _translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, n, dev) @ G_inv
        # In centred coordinates the upsampling is a scale by 2, re-centred by half an upsampled
        # pixel for the group delay of the (nearly linear-phase) sym6 filter.
        G_inv = _scale2d(2, 2, n, dev) @ G_inv @ _scale2d(0.5, 0.5, n, dev)
        G_inv = _translate2d(-0.5, -0.5, n, dev) @ G_inv @ _translate2d(0.5, 0.5, n, dev)
        out_h, out_w = (height + 2 * fpad) * 2, (width + 2 * fpad) * 2
        # To grid_sample's normalised coordinates (align_corners=False: x_n = 2 * x_centred / size).
        G_inv = (_scale2d(2 / images.shape[3], 2 / images.shape[2], n, dev) @ G_inv
                 @ _scale2d(out_w / 2, out_h / 2, n, dev))
        grid = F.affine_grid(G_inv[:, :2, :].to(images.dtype), [n, channels, out_h, out_w], align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        down_x = _axis_matrix(width, f, fpad, fpad, "down", images)
        down_y = _axis_matrix(height, f, fpad, fpad, "down", images)
        return _separable(images, down_y, down_x)

    @staticmethod
    def _recolour(images: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = images.shape
        flat = images.reshape(n, channels, height * width)
        if channels == 3:
            flat = C[:, :3, :3] @ flat + C[:, :3, 3:]
        elif channels == 1:
            C = C[:, :3, :].mean(dim=1, keepdim=True)  # the mean of the RGB outputs of a grey input
            flat = flat * C[:, :, :3].sum(dim=2, keepdim=True) + C[:, :, 3:]
        else:
            raise ValueError(f"colour augmentations need RGB (3) or L (1) images, got {channels} channels")
        return flat.reshape(n, channels, height, width)

    def _filter(self, images: torch.Tensor, p: float) -> torch.Tensor:
        n, channels, height, width = images.shape
        dev = images.device
        bands = self.Hz_fbank.shape[0]
        expected_power = torch.tensor([10.0, 1, 1, 1], device=dev) / 13  # of a 1/f spectrum, per band
        gains = torch.ones([n, bands], device=dev)
        for b, band_strength in enumerate(self.imgfilter_bands):
            t_b = torch.exp2(torch.randn([n], device=dev) * self.imgfilter_std)
            t_b = torch.where(torch.rand([n], device=dev) < self.strengths["imgfilter"] * p * band_strength, t_b,
                              torch.ones_like(t_b))
            t = torch.ones([n, bands], device=dev)
            t[:, b] = t_b
            gains = gains * t / (expected_power * t.square()).sum(dim=-1, keepdim=True).sqrt()  # keep the power
        taps = (gains @ self.Hz_fbank).to(images.dtype)  # [N, taps]: one zero-phase filter per image
        k = taps.shape[1]
        pad = k // 2
        w = taps.repeat_interleave(channels, dim=0)  # [N * C, taps]
        x = F.pad(images.reshape(1, n * channels, height, width), [pad, pad, pad, pad], mode="reflect")
        x = F.conv2d(x, w.reshape(n * channels, 1, 1, k), groups=n * channels)
        x = F.conv2d(x, w.reshape(n * channels, 1, k, 1), groups=n * channels)
        return x.reshape(n, channels, height, width)


# ------------------------------------------------------------------------------------------------
# DiffAugment (Zhao et al. 2020)
# ------------------------------------------------------------------------------------------------

DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")


class DiffAugment(torch.nn.Module):
    """DiffAugment with the policy ``'color,translation,cutout'`` (or a subset), applied to every
    image. ``translation_ratio`` 1/8 and ``cutout_ratio`` 1/2 of the image size, as the paper."""

    def __init__(self, policy: Union[str, Sequence[str]] = "color,translation,cutout", translation_ratio: float = 0.125,
                 cutout_ratio: float = 0.5):
        super().__init__()
        if isinstance(policy, str):
            policy = policy.replace(" ", "").split(",")
        self.policy = [str(t) for t in policy if t]
        unknown = [t for t in self.policy if t not in DIFFAUGMENT_POLICIES]
        if unknown:
            raise ValueError(f"unknown DiffAugment transform(s) {unknown}; known: {', '.join(DIFFAUGMENT_POLICIES)}")
        self.translation_ratio, self.cutout_ratio = float(translation_ratio), float(cutout_ratio)

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.policy:
            x = getattr(self, f"_{t}")(x)
        return x

    @staticmethod
    def _color(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        r = lambda: torch.rand([n, 1, 1, 1], device=x.device).to(x.dtype)
        x = x + (r() - 0.5)  # brightness
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (r() * 2) + mean  # saturation
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - mean) * (r() + 0.5) + mean  # contrast

    def _translation(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        sh, sw = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        ty = torch.randint(-sh, sh + 1, [n, 1, 1], device=x.device)
        tx = torch.randint(-sw, sw + 1, [n, 1, 1], device=x.device)
        # out[y, x] = in[y + ty, x + tx], zero outside: gather from the image padded by one zero row/column.
        padded = F.pad(x, [1, 1, 1, 1])
        rows = (torch.arange(h, device=x.device).reshape(1, -1, 1) + ty + 1).clamp(0, h + 1)  # [N, H, 1]
        cols = (torch.arange(w, device=x.device).reshape(1, 1, -1) + tx + 1).clamp(0, w + 1)  # [N, 1, W]
        idx = (rows * (w + 2) + cols).reshape(n, 1, h * w).expand(n, c, h * w)
        return padded.reshape(n, c, -1).gather(2, idx).reshape(n, c, h, w)

    def _cutout(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        oy = torch.randint(0, h + (1 - ch % 2), [n, 1, 1], device=x.device)
        ox = torch.randint(0, w + (1 - cw % 2), [n, 1, 1], device=x.device)
        ys = torch.arange(h, device=x.device).reshape(1, -1, 1) - (oy - ch // 2)
        xs = torch.arange(w, device=x.device).reshape(1, 1, -1) - (ox - cw // 2)
        inside = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)
        return x * (~inside).unsqueeze(1).to(x.dtype)
