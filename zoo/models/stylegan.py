"""StyleGAN (v1) generator and discriminator (Karras et al., "A Style-Based Generator Architecture
for Generative Adversarial Networks", CVPR 2019), in the paper's vocabulary.

Generator (``G_style`` = ``G_mapping`` + ``G_synthesis``)
    Mapping: z (concatenated with a label embedding, if any) is pixel-normalised and mapped by 8
    dense layers (512 wide, leaky ReLU, learning-rate multiplier 0.01 on weights and biases) to w,
    broadcast to one style per synthesis layer (``num_ws = 2 * log2(R) - 2``, 18 at 1024 px). The
    generator tracks the average w (``w_avg``, beta 0.995) for the truncation trick, which is only
    applied when asked for at sampling time (the original's defaults there: psi 0.7, cutoff 8).
    Synthesis: a learned 4x4 constant (initialised to ones), then per layer a 3x3 conv (the first of
    each block upsamples: nearest x2 + conv, then a ``[1, 2, 1]`` blur) followed by the epilogue
    *noise* (per-pixel, per-layer, one learned strength per channel) -> *bias* -> *leaky ReLU*
    -> *instance norm* -> *style modulation* (AdaIN: ``x * (1 + ys) + yb`` from an affine map of
    the layer's w). Each resolution has its own 1x1 ``torgb`` (gain 1, linear).
Discriminator (``D_basic``)
    ProGAN's discriminator (:mod:`zoo.models.progan`) with a ``[1, 2, 1]`` blur before every
    downsampling conv and label-switch conditioning.
Equalized learning rate, channels, progressive growing
    As in :mod:`zoo.models.progan` (gain ``sqrt(2)`` inside the weight scale, ``nf(res) =
    min(channel_base // res, channel_max)``, an ``lod`` buffer in ``synthesis`` and in D).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from zoo.models.progan import Discriminator as ProGANDiscriminator
from zoo.ops import normalize_2nd_moment
from zoo.ops.layers import channels, check_img_resolution as _check_resolution, split_lod
from zoo.ops.wscale import WScaleConv2d, WScaleLinear, instance_norm, lrelu, nearest_upsample

__all__ = ["MappingNetwork", "StyleEpilogue", "ConstLayer", "SynthesisLayer", "SynthesisBlock",
           "SynthesisNetwork", "Generator", "Discriminator"]

NOISE_MODES = ("random", "const", "none")
BLUR = (1.0, 2.0, 1.0)


# =============================================================================================
# Mapping network.
# =============================================================================================

class MappingNetwork(nn.Module):
    """z (+ label) -> w ``[N, num_ws, w_dim]``, with the running average ``w_avg``."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 layer_features: int = 512, lr_multiplier: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if c_dim > 0:
            # LabelConcat: a plain (not equalized) [c_dim, z_dim] embedding concatenated to z.
            self.embed = nn.Parameter(torch.randn([c_dim, z_dim]))
        features = [z_dim * (2 if c_dim > 0 else 1)] + [layer_features] * (num_layers - 1) + [w_dim]
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", WScaleLinear(features[idx], features[idx + 1], lr_multiplier=lr_multiplier,
                                                   activation="lrelu"))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, update_emas: bool = False) -> torch.Tensor:
        if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}")
        x = z.to(torch.float32)
        if self.c_dim > 0:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                raise ValueError(f"this network is conditional: c must have shape [{z.shape[0]}, {self.c_dim}], "
                                 f"got {None if c is None else tuple(c.shape)}")
            x = torch.cat([x, c.to(torch.float32) @ self.embed], dim=1)
        x = normalize_2nd_moment(x, dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:  # the truncation trick: only when asked for (sampling), never in training
            cutoff = self.num_ws if truncation_cutoff is None else min(int(truncation_cutoff), self.num_ws)
            head = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([head, ws[:, cutoff:]], dim=1)
        return ws

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


# =============================================================================================
# Synthesis network.
# =============================================================================================

class StyleEpilogue(nn.Module):
    """noise -> bias -> leaky ReLU -> instance norm -> style modulation (AdaIN)."""

    def __init__(self, channels: int, w_dim: int, resolution: int, use_noise: bool = True):
        super().__init__()
        self.channels, self.resolution, self.use_noise = channels, resolution, use_noise
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([channels]))
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.bias = nn.Parameter(torch.zeros([channels]))
        self.style = WScaleLinear(w_dim, 2 * channels, gain=1)

    def epilogue(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":  # a fresh map per sample and per layer
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device, dtype=x.dtype)
            else:
                noise = self.noise_const.to(x.dtype).reshape(1, 1, self.resolution, self.resolution)
            x = x + noise * self.noise_strength.to(x.dtype).reshape(1, -1, 1, 1)
        x = lrelu(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1))
        x = instance_norm(x)
        style = self.style(w).reshape(w.shape[0], 2, self.channels, 1, 1)
        return torch.addcmul(style[:, 1], x, style[:, 0] + 1)


class ConstLayer(StyleEpilogue):
    """The learned 4x4 constant input (initialised to ones) and its epilogue."""

    def __init__(self, channels: int, w_dim: int, use_noise: bool = True):
        super().__init__(channels, w_dim, 4, use_noise)
        self.const = nn.Parameter(torch.ones([channels, 4, 4]))

    def forward(self, n: int, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        return self.epilogue(self.const.unsqueeze(0).expand(n, -1, -1, -1), w, noise_mode)


class SynthesisLayer(StyleEpilogue):
    """3x3 conv (optionally nearest-upsampling x2, then the ``[1, 2, 1]`` blur) and its epilogue."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False,
                 use_noise: bool = True, blur_filter: Optional[Sequence[float]] = BLUR):
        super().__init__(out_channels, w_dim, resolution, use_noise)
        self.conv = WScaleConv2d(in_channels, out_channels, 3, bias=False, up=up,
                                 blur_filter=blur_filter if up else None)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        return self.epilogue(self.conv.convolve(x), w, noise_mode)


class SynthesisBlock(nn.Module):
    """4x4: const + conv. Later: conv0_up + conv1. Plus this resolution's ``torgb``."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 use_noise: bool = True, blur_filter: Optional[Sequence[float]] = BLUR):
        super().__init__()
        self.resolution = resolution
        if resolution == 4:
            self.const = ConstLayer(out_channels, w_dim, use_noise=use_noise)
            self.conv = SynthesisLayer(out_channels, out_channels, w_dim, 4, use_noise=use_noise)
        else:
            self.conv0_up = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True,
                                           use_noise=use_noise, blur_filter=blur_filter)
            self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, use_noise=use_noise)
        self.torgb = WScaleConv2d(out_channels, img_channels, 1, gain=1)

    def forward(self, x: Optional[torch.Tensor], ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """``ws``: the block's two styles ``[N, 2, w_dim]``."""
        if self.resolution == 4:
            x = self.const(ws.shape[0], ws[:, 0], noise_mode)
            return self.conv(x, ws[:, 1], noise_mode)
        x = self.conv0_up(x, ws[:, 0], noise_mode)
        return self.conv1(x, ws[:, 1], noise_mode)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class SynthesisNetwork(nn.Module):
    """ws ``[N, num_ws, w_dim]`` -> image ``[N, img_channels, R, R]`` at the current lod."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 16384,
                 channel_max: int = 512, use_noise: bool = True, blur_filter: Optional[Sequence[float]] = BLUR):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = _check_resolution(img_resolution)
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, int(np.log2(self.img_resolution)) + 1)]
        self.num_ws = 2 * len(self.block_resolutions)
        for res in self.block_resolutions:
            in_channels = channels(res // 2, channel_base, channel_max) if res > 4 else 0
            block = SynthesisBlock(in_channels, channels(res, channel_base, channel_max), w_dim, res, img_channels,
                                   use_noise=use_noise, blur_filter=blur_filter)
            setattr(self, f"b{res}", block)
        self.register_buffer("lod", torch.zeros([]))

    def num_active_ws(self, lod: Optional[float] = None) -> int:
        """Styles read at this lod (``num_ws - 2 * floor(lod)``): the fading-in block's included."""
        top, _ = split_lod(float(self.lod) if lod is None else lod, self.img_resolution)
        return 2 * (int(np.log2(top)) - 1)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", lod: Optional[float] = None,
                update_emas: bool = False, force_fp32: bool = True) -> torch.Tensor:
        """``update_emas`` / ``force_fp32``: accepted for API compatibility (no effect)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {list(NOISE_MODES)}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        top, t = split_lod(float(self.lod) if lod is None else lod, self.img_resolution)
        x = prev = None
        for i, res in enumerate(self.block_resolutions):
            if res > top:
                break
            block = getattr(self, f"b{res}")
            x = block(x, ws[:, 2 * i:2 * i + 2], noise_mode)
            if res == top // 2 and t > 0:
                prev = block.torgb(x)
        img = getattr(self, f"b{top}").torgb(x)
        if prev is not None:  # fade-in: (1 - t) * new + t * upsampled previous
            img = torch.lerp(img, nearest_upsample(prev, 2), t)
        return nearest_upsample(img, self.img_resolution // top)

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}"


class Generator(nn.Module):
    """StyleGAN generator: ``G(z, c) -> images [N, img_channels, R, R]`` in about ``[-1, 1]``."""

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, img_resolution: Optional[int] = None,
                 img_channels: int = 3, *, mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995, channel_base: int = 16384, channel_max: int = 512,
                 use_noise: bool = True, blur_filter: Optional[Sequence[float]] = BLUR):
        super().__init__()
        img_resolution = _check_resolution(img_resolution)
        self.init_kwargs = dict(
            z_dim=int(z_dim), c_dim=int(c_dim), w_dim=int(w_dim), img_resolution=img_resolution,
            img_channels=int(img_channels), mapping_layers=int(mapping_layers),
            mapping_lr_multiplier=float(mapping_lr_multiplier), w_avg_beta=float(w_avg_beta),
            channel_base=int(channel_base), channel_max=int(channel_max), use_noise=bool(use_noise),
            blur_filter=None if blur_filter is None else [float(v) for v in blur_filter])
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base=channel_base,
                                          channel_max=channel_max, use_noise=use_noise, blur_filter=blur_filter)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, num_layers=mapping_layers,
                                      layer_features=w_dim, lr_multiplier=mapping_lr_multiplier,
                                      w_avg_beta=w_avg_beta)

    @property
    def lod(self) -> torch.Tensor:
        return self.synthesis.lod

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, noise_mode: str = "random", update_emas: bool = False,
                lod: Optional[float] = None, force_fp32: bool = True) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, lod=lod)

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_ws={self.num_ws}")


# =============================================================================================
# Discriminator.
# =============================================================================================

class Discriminator(ProGANDiscriminator):
    """StyleGAN's ``D_basic``: ProGAN's discriminator with a ``[1, 2, 1]`` blur before each
    downsampling conv and label-switch conditioning (``sum(scores * c)``)."""

    def __init__(self, c_dim: int = 0, img_resolution: Optional[int] = None, img_channels: int = 3, *,
                 channel_base: int = 16384, channel_max: int = 512, mbstd_group_size: Optional[int] = 4,
                 mbstd_num_channels: int = 1, blur_filter: Optional[Sequence[float]] = BLUR,
                 conditioning: str = "switch"):
        super().__init__(c_dim, img_resolution, img_channels, channel_base=channel_base, channel_max=channel_max,
                         mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
                         blur_filter=blur_filter, conditioning=conditioning)
