"""ProGAN generator and discriminator (Karras et al., "Progressive Growing of GANs for Improved
Quality, Stability, and Variation", ICLR 2018), in the paper's vocabulary.

Generator (``G_paper``)
    z (concatenated with the label, if any) is pixel-normalised. The 4x4 block is a dense layer to
    ``nf x 4 x 4`` (gain ``sqrt(2)/4``, bias per channel after the reshape) and a 3x3 conv; every
    later block doubles the resolution with a nearest-neighbour upsampling 3x3 conv followed by a
    3x3 conv. Every conv is followed by bias, leaky ReLU (0.2) and pixel norm. Each resolution
    has its own 1x1 ``torgb`` (gain 1, linear).
Discriminator (``D_paper``)
    Each resolution has a 1x1 ``fromrgb`` (+ lrelu); blocks are a 3x3 conv and a 3x3 conv followed
    by 2x2 average pooling; the 4x4 head is minibatch standard deviation (group 4, one feature), a
    3x3 conv, a dense layer and the output layer (1 score, plus ``c_dim`` label logits: AC-GAN).
Equalized learning rate
    Weights are ``N(0, 1)`` scaled at run time by ``gain / sqrt(fan_in)``, gain ``sqrt(2)`` inside
    the weight scale, bias added afterwards (:mod:`zoo.ops.wscale`).
Channels
    ``nf(res) = min(channel_base // res, channel_max)``: ``channel_base = 2 * fmap_base`` of the
    original (16384 for its 8192), so 512 up to 32 px, then 256, 128, 64, 32, 16 at 1024 px.

Progressive growing
    Both networks always take / produce images at ``img_resolution``. Their ``lod`` buffer (level
    of detail, as in the original: 0 = fully grown, ``log2(img_resolution) - 2`` = 4x4 only) says how
    much is active. For ``lod = k + t`` (``0 <= t < 1``) G runs the blocks up to ``R = img_resolution
    / 2^k`` and outputs ``(1 - t) * torgb_R(x_R) + t * upsample(torgb_R/2(x_R/2))`` -- the fade-in
    weight of the new block is ``alpha = 1 - t`` -- nearest-upsampled to ``img_resolution``. D
    box-downsamples its input to ``R`` and blends ``block_R(fromrgb_R(img_R))`` with
    ``fromrgb_R/2(downsample(img_R))`` the same way. Only the active blocks are computed (the
    original's ``recursive`` structure; its ``linear`` structure computes the same function). The
    lod lives in the state dict, so a checkpoint knows its stage.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from zoo.ops import minibatch_stddev, normalize_2nd_moment
from zoo.ops.layers import channels, check_img_resolution as check_resolution, split_lod
from zoo.ops.wscale import SQRT2, WScaleConv2d, WScaleLinear, box_downsample, lrelu, nearest_upsample

__all__ = ["Generator", "Discriminator", "GeneratorBlock", "DiscriminatorBlock", "DiscriminatorEpilogue"]

CONDITIONING = ("acgan", "switch")


# =============================================================================================
# Generator.
# =============================================================================================

class GeneratorBlock(nn.Module):
    """4x4: dense (latent -> nf x 4 x 4, bias per channel) + conv. Later: upsampling conv0 + conv1.
    Each conv: bias, lrelu, pixel norm. Plus this resolution's ``torgb``."""

    def __init__(self, in_features: int, out_channels: int, resolution: int, img_channels: int,
                 use_pixelnorm: bool = True):
        super().__init__()
        self.resolution = resolution
        self.use_pixelnorm = use_pixelnorm
        if resolution == 4:
            self.dense = WScaleLinear(in_features, out_channels * 16, gain=SQRT2 / 4, bias=False)
            self.dense_bias = nn.Parameter(torch.zeros([out_channels]))
            self.conv = WScaleConv2d(out_channels, out_channels, 3, activation="lrelu")
        else:
            self.conv0_up = WScaleConv2d(in_features, out_channels, 3, activation="lrelu", up=True)
            self.conv1 = WScaleConv2d(out_channels, out_channels, 3, activation="lrelu")
        self.torgb = WScaleConv2d(out_channels, img_channels, 1, gain=1)

    def _pn(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_2nd_moment(x, dim=1) if self.use_pixelnorm else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resolution == 4:
            x = self.dense(x).reshape(x.shape[0], -1, 4, 4)
            x = self._pn(lrelu(x + self.dense_bias.to(x.dtype).reshape(1, -1, 1, 1)))
            return self._pn(self.conv(x))
        x = self._pn(self.conv0_up(x))
        return self._pn(self.conv1(x))

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class Generator(nn.Module):
    """ProGAN generator: ``G(z, c) -> images [N, img_channels, R, R]`` (at the current lod,
    nearest-upsampled to ``R = img_resolution``)."""

    def __init__(self, z_dim: int = 512, c_dim: int = 0, img_resolution: Optional[int] = None, img_channels: int = 3,
                 *, channel_base: int = 16384, channel_max: int = 512, use_pixelnorm: bool = True,
                 normalize_latents: bool = True):
        super().__init__()
        img_resolution = check_resolution(img_resolution)
        self.init_kwargs = dict(z_dim=int(z_dim), c_dim=int(c_dim), img_resolution=img_resolution,
                                img_channels=int(img_channels), channel_base=int(channel_base),
                                channel_max=int(channel_max), use_pixelnorm=bool(use_pixelnorm),
                                normalize_latents=bool(normalize_latents))
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.normalize_latents = normalize_latents
        self.block_resolutions = [2 ** i for i in range(2, int(np.log2(img_resolution)) + 1)]
        for res in self.block_resolutions:
            in_features = z_dim + c_dim if res == 4 else channels(res // 2, channel_base, channel_max)
            block = GeneratorBlock(in_features, channels(res, channel_base, channel_max), res, img_channels,
                                   use_pixelnorm=use_pixelnorm)
            setattr(self, f"b{res}", block)
        self.register_buffer("lod", torch.zeros([]))

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, noise_mode: str = "const", lod: Optional[float] = None,
                update_emas: bool = False, force_fp32: bool = True) -> torch.Tensor:
        """``truncation_psi`` must be 1 (ProGAN has no W space); ``noise_mode``, ``update_emas`` and
        ``force_fp32`` are accepted for API compatibility (no noise inputs, no running statistics,
        float32 only). ``lod`` overrides the ``lod`` buffer."""
        if truncation_psi != 1:
            raise ValueError("ProGAN has no intermediate latent space: truncation needs a StyleGAN (use trunc=1)")
        if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}")
        x = z.to(torch.float32)
        if self.c_dim > 0:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                raise ValueError(f"this network is conditional: c must have shape [{z.shape[0]}, {self.c_dim}], "
                                 f"got {None if c is None else tuple(c.shape)}")
            x = torch.cat([x, c.to(torch.float32)], dim=1)
        if self.normalize_latents:
            x = normalize_2nd_moment(x, dim=1)
        top, t = split_lod(float(self.lod) if lod is None else lod, self.img_resolution)
        img = prev = None
        for res in self.block_resolutions:
            if res > top:
                break
            block = getattr(self, f"b{res}")
            x = block(x)
            if res == top // 2 and t > 0:
                prev = block.torgb(x)
        img = getattr(self, f"b{top}").torgb(x)
        if prev is not None:  # fade-in: (1 - t) * new + t * upsampled previous
            img = torch.lerp(img, nearest_upsample(prev, 2), t)
        return nearest_upsample(img, self.img_resolution // top)

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}")


# =============================================================================================
# Discriminator.
# =============================================================================================

class DiscriminatorBlock(nn.Module):
    """``fromrgb`` (1x1 + lrelu), conv0 (3x3 + lrelu), conv1_down (3x3, 2x2 average pool, lrelu;
    with an optional blur before it, as StyleGAN's ``D_basic``)."""

    def __init__(self, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 blur_filter: Optional[Sequence[float]] = None):
        super().__init__()
        self.resolution = resolution
        self.fromrgb = WScaleConv2d(img_channels, tmp_channels, 1, activation="lrelu")
        self.conv0 = WScaleConv2d(tmp_channels, tmp_channels, 3, activation="lrelu")
        self.conv1_down = WScaleConv2d(tmp_channels, out_channels, 3, activation="lrelu", down=True,
                                       blur_filter=blur_filter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1_down(self.conv0(x))

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: ``fromrgb``, minibatch stddev, 3x3 conv, dense, output layer (gain 1)."""

    def __init__(self, in_channels: int, dense_channels: int, out_features: int, img_channels: int,
                 mbstd_group_size: Optional[int] = 4, mbstd_num_channels: int = 1):
        super().__init__()
        self.mbstd_group_size = mbstd_group_size
        self.mbstd_num_channels = mbstd_num_channels
        self.fromrgb = WScaleConv2d(img_channels, in_channels, 1, activation="lrelu")
        self.conv = WScaleConv2d(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu")
        self.dense0 = WScaleLinear(in_channels * 16, dense_channels, activation="lrelu")
        self.dense1 = WScaleLinear(dense_channels, out_features, gain=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd_num_channels > 0:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.conv(x)
        return self.dense1(self.dense0(x.flatten(1)))

    def extra_repr(self) -> str:
        return f"mbstd_group_size={self.mbstd_group_size}, mbstd_num_channels={self.mbstd_num_channels}"


class Discriminator(nn.Module):
    """ProGAN discriminator: ``D(img, c) -> scores [N, 1]``.

    Conditioning (``c_dim > 0``): ``'acgan'`` (ProGAN) outputs ``1 + c_dim`` values, the score and
    label logits (``D(img, c, return_labels=True)`` returns both, for the AC-GAN loss terms);
    ``'switch'`` (StyleGAN's ``D_basic``) outputs ``c_dim`` scores and returns the one of the label.
    """

    def __init__(self, c_dim: int = 0, img_resolution: Optional[int] = None, img_channels: int = 3, *,
                 channel_base: int = 16384, channel_max: int = 512, mbstd_group_size: Optional[int] = 4,
                 mbstd_num_channels: int = 1, blur_filter: Optional[Sequence[float]] = None,
                 conditioning: str = "acgan"):
        super().__init__()
        img_resolution = check_resolution(img_resolution)
        if conditioning not in CONDITIONING:
            raise ValueError(f"conditioning must be one of {list(CONDITIONING)}, got {conditioning!r}")
        self.init_kwargs = dict(
            c_dim=int(c_dim), img_resolution=img_resolution, img_channels=int(img_channels),
            channel_base=int(channel_base), channel_max=int(channel_max),
            mbstd_group_size=None if mbstd_group_size is None else int(mbstd_group_size),
            mbstd_num_channels=int(mbstd_num_channels),
            blur_filter=None if blur_filter is None else [float(v) for v in blur_filter],
            conditioning=str(conditioning))
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.conditioning = conditioning
        self.block_resolutions = [2 ** i for i in range(int(np.log2(img_resolution)), 2, -1)]
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels(res, channel_base, channel_max), channels(res // 2, channel_base, channel_max),
                                       res, img_channels, blur_filter=blur_filter)
            setattr(self, f"b{res}", block)
        out_features = (1 + c_dim) if conditioning == "acgan" else max(c_dim, 1)
        self.b4 = DiscriminatorEpilogue(channels(4, channel_base, channel_max), channels(2, channel_base, channel_max),
                                        out_features, img_channels, mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels)
        self.register_buffer("lod", torch.zeros([]))

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor] = None, lod: Optional[float] = None,
                return_labels: bool = False, update_emas: bool = False):
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"img must have shape [N, {', '.join(map(str, expected))}], got {tuple(img.shape)}")
        if self.c_dim > 0 and (c is None or c.shape != (img.shape[0], self.c_dim)):
            raise ValueError(f"this discriminator is conditional: c must have shape [{img.shape[0]}, {self.c_dim}], "
                             f"got {None if c is None else tuple(c.shape)}")
        top, t = split_lod(float(self.lod) if lod is None else lod, self.img_resolution)
        img = box_downsample(img.to(torch.float32), self.img_resolution // top)
        head = self.b4 if top == 4 else getattr(self, f"b{top}")
        x = head.fromrgb(img)
        if top > 4:
            x = head(x)
            if t > 0:  # fade-in: (1 - t) * new path + t * fromrgb of the downsampled image
                lower = self.b4 if top == 8 else getattr(self, f"b{top // 2}")
                x = torch.lerp(x, lower.fromrgb(box_downsample(img, 2)), t)
            for res in self.block_resolutions:
                if res < top:
                    x = getattr(self, f"b{res}")(x)
        out = self.b4(x)
        if self.c_dim == 0:
            return (out, out[:, :0]) if return_labels else out
        if self.conditioning == "switch":
            scores = (out * c.to(out.dtype)).sum(dim=1, keepdim=True)
            return (scores, out[:, :0]) if return_labels else scores
        scores, labels = out[:, :1], out[:, 1:]
        return (scores, labels) if return_labels else scores

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}"
