"""StyleGAN2 generator and discriminator (Karras et al., "Analyzing and Improving the Image Quality
of StyleGAN", CVPR 2020) -- config F, in the paper's vocabulary.

Generator
    z --(mapping network: pixel norm, 8 FC layers)--> w, broadcast to ``num_ws`` style vectors.
    A learned 4x4 constant is refined by synthesis blocks at 4, 8, ..., R pixels. Every
    convolution is *modulated* by an affine transform of its w (style) and *demodulated*; per-pixel
    noise with a learned strength is added before the bias and leaky ReLU. In the default
    ``skip`` architecture every block adds its ToRGB output to the upsampled running image.
Discriminator
    ``resnet`` blocks from R down to 8 pixels (two 3x3 convs and a 1x1 skip, both downsampling
    with the ``[1, 3, 3, 1]`` filter, summed with gain ``sqrt(1/2)``), then an epilogue at 4x4:
    minibatch standard deviation, 3x3 conv, FC, and the output layer (projection-conditioned when
    ``c_dim > 0``).

Parameter names, shapes and storage (equalized learning rate, affine bias init 1, ...) match
NVIDIA's ``networks_stylegan2.py``, so an official ``state_dict`` loads with ``load_state_dict``
and renders the same images. Numerics: float32 unless :meth:`Generator.set_precision` /
:meth:`Discriminator.set_precision` select NVIDIA's mixed precision (the blocks of the
``num_fp16_res`` highest resolutions in float16 on CUDA, bfloat16 on CPU; :mod:`zoo.ops.precision`);
``conv_clamp`` optional (256 with mixed precision, as NVIDIA). The speed-relevant choices
(modulated-conv path, channels-last on CPU, polyphase resampling) live in :mod:`zoo.ops` and do not
change the maths.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from zoo.ops import (Conv2dLayer, FullyConnectedLayer, MinibatchStdLayer, downsample2d, modulated_conv2d,
                     setup_filter, upsample2d)
from zoo.ops.activations import activation_funcs
from zoo.ops.layers import channels, check_img_resolution as _check_resolution
from zoo.ops.mapping import MappingNetwork
from zoo.ops.precision import FP32, Precision, fp16_resolution

__all__ = [
    "MappingNetwork", "SynthesisLayer", "ToRGBLayer", "SynthesisBlock", "SynthesisNetwork", "Generator",
    "DiscriminatorBlock", "DiscriminatorEpilogue", "Discriminator",
]

NOISE_MODES = ("random", "const", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _memory_format(device: torch.device, channels_last: Optional[bool]) -> torch.memory_format:
    """Channels-last on CPU (oneDNN runs these convolutions 10-60 % faster, transposed ones up to
    3x; see zoo/ops/benchmark.py), contiguous NCHW elsewhere unless asked otherwise."""
    if channels_last is None:
        channels_last = device.type == "cpu"
    return torch.channels_last if channels_last else torch.contiguous_format


def _forward_hooks_present(module: nn.Module) -> bool:
    """True if a forward hook (global or on any submodule) might keep references to outputs."""
    if nn.modules.module._global_forward_hooks:
        return True
    return any(m._forward_hooks for m in module.modules())


# =============================================================================================
# Generator.
# =============================================================================================

class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling x2) + noise + bias + leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: Optional[float] = None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = activation_funcs[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)   # w -> style
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                fused_modconv: Optional[bool] = None, gain: float = 1, inplace_input: bool = False) -> torch.Tensor:
        """``inplace_input=True``: ``x`` is scratch the caller will not read again (see
        :func:`zoo.ops.modulated_conv2d`); only honoured when autograd is not recording."""
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device,
                                dtype=x.dtype) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const.to(x.dtype) * self.noise_strength
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                                resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                                fused=fused_modconv, bias=self.bias, activation=self.activation,
                                gain=self.act_gain * gain, clamp=clamp, inplace_input=inplace_input)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}, "
                f"resolution={self.resolution}, up={self.up}, activation={self.activation}")


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels (no demodulation, linear output)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: Optional[float] = None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: Optional[bool] = None) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        return modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused_modconv, bias=self.bias,
                                clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}"


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: [upsampling conv0], conv1, [ToRGB]."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: Optional[float] = None, use_noise: bool = True):
        super().__init__()
        _check_choice("architecture", architecture, ARCHITECTURES)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.num_conv = 0
        self.num_torgb = 0
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, use_noise=use_noise)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    resample_filter=resample_filter, conv_clamp=conv_clamp, use_noise=use_noise)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x: Optional[torch.Tensor], img: Optional[torch.Tensor], ws: torch.Tensor,
                noise_mode: str = "random", fused_modconv: Optional[bool] = None,
                memory_format: torch.memory_format = torch.contiguous_format, reuse_buffers: bool = False,
                dtype: torch.dtype = torch.float32):
        """``reuse_buffers=True`` (inference without forward hooks, set by SynthesisNetwork) lets
        the layers overwrite activations that nothing reads afterwards, including the input ``x``.
        ``dtype``: the block's compute dtype (its convolutions and activations; the image stays float32)."""
        w_iter = iter(ws.unbind(dim=1))
        layer_kwargs = dict(noise_mode=noise_mode, fused_modconv=fused_modconv, inplace_input=reuse_buffers)
        if self.in_channels == 0:
            # Learned constant input, one (fresh) copy per sample.
            x = self.const.to(dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1).clone(memory_format=memory_format)
            x = self.conv1(x, next(w_iter), **layer_kwargs)
        elif self.architecture == "resnet":
            x = x.to(dtype)
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), gain=np.sqrt(0.5), **layer_kwargs)
            x = y.add_(x)
        else:
            x = self.conv0(x.to(dtype), next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), **layer_kwargs)

        # Skip architecture: the running RGB image is upsampled and this block's ToRGB added.
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
            img = img.add_(y) if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return (f"resolution={self.resolution}, in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"architecture={self.architecture}")


class SynthesisNetwork(nn.Module):
    """ws ``[N, num_ws, w_dim]`` -> image ``[N, img_channels, R, R]``."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, architecture: str = "skip",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: Optional[float] = None,
                 use_noise: bool = True):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = _check_resolution(img_resolution)
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, int(np.log2(self.img_resolution)) + 1)]
        self.channels_last: Optional[bool] = None   # None: channels-last on CPU (a speed setting, not state)
        self.precision: Precision = FP32            # a run-time setting too (set_precision)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels(res // 2, channel_base, channel_max) if res > 4 else 0
            out_channels = channels(res, channel_base, channel_max)
            is_last = res == self.img_resolution
            block = SynthesisBlock(in_channels, out_channels, w_dim=w_dim, resolution=res, img_channels=img_channels,
                                   is_last=is_last, architecture=architecture, resample_filter=resample_filter,
                                   conv_clamp=conv_clamp, use_noise=use_noise)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def set_precision(self, precision: Precision) -> "SynthesisNetwork":
        """Run the blocks of the ``precision.num_fp16_res`` highest resolutions (NVIDIA's rule) in low
        precision when ``precision`` is mixed; the others, the images and the weights stay float32."""
        self.precision = precision
        return self

    def _block_dtype(self, res: int, device: torch.device, force_fp32: bool) -> torch.dtype:
        low = res >= fp16_resolution(self.img_resolution, self.precision.num_fp16_res)
        return self.precision.compute_dtype(device, low, force_fp32)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", fused_modconv: Optional[bool] = None,
                update_emas: bool = False, force_fp32: bool = False) -> torch.Tensor:
        """``force_fp32=True`` runs every block in float32 whatever the precision (NVIDIA's argument).
        ``update_emas`` has no effect (StyleGAN2's synthesis tracks no statistics)."""
        _check_choice("noise_mode", noise_mode, NOISE_MODES)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        memory_format = _memory_format(ws.device, self.channels_last)
        # Without autograd, blocks may overwrite activations nobody reads again -- unless a forward
        # hook could be holding on to a layer output.
        reuse_buffers = not torch.is_grad_enabled() and not _forward_hooks_present(self)
        ws = ws.to(torch.float32)
        # Each block reads num_conv + num_torgb consecutive ws; ToRGB shares its w with the next conv0.
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused_modconv=fused_modconv,
                           memory_format=memory_format, reuse_buffers=reuse_buffers,
                           dtype=self._block_dtype(res, ws.device, force_fp32))
        return img.contiguous()

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}"


class Generator(nn.Module):
    """StyleGAN2 generator: ``G(z, c) -> images [N, img_channels, R, R]`` in about ``[-1, 1]``."""

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, img_resolution: Optional[int] = None,
                 img_channels: int = 3, *, mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.998, channel_base: int = 32768, channel_max: int = 512,
                 use_noise: bool = True, conv_clamp: Optional[float] = None, architecture: str = "skip",
                 resample_filter: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        img_resolution = _check_resolution(img_resolution)
        _check_choice("architecture", architecture, ARCHITECTURES)
        self.init_kwargs = dict(
            z_dim=int(z_dim), c_dim=int(c_dim), w_dim=int(w_dim), img_resolution=img_resolution,
            img_channels=int(img_channels), mapping_layers=int(mapping_layers),
            mapping_lr_multiplier=float(mapping_lr_multiplier), w_avg_beta=float(w_avg_beta),
            channel_base=int(channel_base), channel_max=int(channel_max), use_noise=bool(use_noise),
            conv_clamp=None if conv_clamp is None else float(conv_clamp), architecture=str(architecture),
            resample_filter=[float(v) for v in resample_filter],
        )
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          channel_base=channel_base, channel_max=channel_max,
                                          architecture=architecture, resample_filter=resample_filter,
                                          conv_clamp=conv_clamp, use_noise=use_noise)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier,
                                      w_avg_beta=w_avg_beta)

    def set_precision(self, mode: str = "fp32", dtype: Optional[str] = None, num_fp16_res: int = 4) -> "Generator":
        """``'mixed'``: NVIDIA's mixed precision in the synthesis network (:mod:`zoo.ops.precision`;
        ``dtype`` None = float16 on CUDA, bfloat16 on CPU); ``'fp32'``: float32 everywhere. The
        mapping network is always float32."""
        self.synthesis.set_precision(Precision(mode, dtype, num_fp16_res))
        return self

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, noise_mode: str = "random", update_emas: bool = False,
                fused_modconv: Optional[bool] = None, force_fp32: bool = False) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv, update_emas=update_emas,
                              force_fp32=force_fp32)

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, "
                f"img_resolution={self.img_resolution}, img_channels={self.img_channels}, num_ws={self.num_ws}")


# =============================================================================================
# Discriminator.
# =============================================================================================

class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator: [fromRGB], conv0, downsampling conv1, [1x1 skip]."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: Optional[float] = None):
        super().__init__()
        _check_choice("architecture", architecture, ARCHITECTURES)
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))

        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                       conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 resample_filter=resample_filter, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter)

    def forward(self, x: Optional[torch.Tensor], img: Optional[torch.Tensor], dtype: torch.dtype = torch.float32):
        """``dtype``: the block's compute dtype (low precision for the highest resolutions)."""
        if x is not None:
            x = x.to(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev, 3x3 conv, FC, output (projection onto the label embedding)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: Optional[int] = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: Optional[float] = None):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: Optional[torch.Tensor], cmap: Optional[torch.Tensor]) -> torch.Tensor:
        x = x.to(torch.float32)  # the 4x4 head always runs in float32 (NVIDIA)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))       # NCHW order, whatever the memory layout
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}, cmap_dim={self.cmap_dim}"


class Discriminator(nn.Module):
    """StyleGAN2 discriminator: ``D(img, c) -> logits [N, 1]``."""

    def __init__(self, c_dim: int = 0, img_resolution: Optional[int] = None, img_channels: int = 3, *,
                 channel_base: int = 32768, channel_max: int = 512, architecture: str = "resnet",
                 mbstd_group_size: Optional[int] = 4, mbstd_num_channels: int = 1, cmap_dim: Optional[int] = None,
                 conv_clamp: Optional[float] = None, mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
                 resample_filter: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        img_resolution = _check_resolution(img_resolution)
        _check_choice("architecture", architecture, ARCHITECTURES)
        self.init_kwargs = dict(
            c_dim=int(c_dim), img_resolution=img_resolution, img_channels=int(img_channels),
            channel_base=int(channel_base), channel_max=int(channel_max), architecture=str(architecture),
            mbstd_group_size=None if mbstd_group_size is None else int(mbstd_group_size),
            mbstd_num_channels=int(mbstd_num_channels), cmap_dim=None if cmap_dim is None else int(cmap_dim),
            conv_clamp=None if conv_clamp is None else float(conv_clamp), mapping_layers=int(mapping_layers),
            mapping_lr_multiplier=float(mapping_lr_multiplier), resample_filter=[float(v) for v in resample_filter],
        )
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.channels_last: Optional[bool] = None   # None: channels-last on CPU (a speed setting, not state)
        self.precision: Precision = FP32            # a run-time setting too (set_precision)
        self.block_resolutions = [2 ** i for i in range(int(np.log2(img_resolution)), 2, -1)]
        ch = {res: channels(res, channel_base, channel_max) for res in self.block_resolutions + [4]}
        if cmap_dim is None:
            cmap_dim = ch[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim

        for res in self.block_resolutions:
            in_channels = ch[res] if res < img_resolution else 0
            block = DiscriminatorBlock(in_channels, ch[res], ch[res // 2], resolution=res,
                                       img_channels=img_channels, architecture=architecture,
                                       resample_filter=resample_filter, conv_clamp=conv_clamp)
            setattr(self, f"b{res}", block)
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim=cmap_dim, resolution=4, img_channels=img_channels,
                                        architecture=architecture, mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels, conv_clamp=conv_clamp)

    def set_precision(self, mode: str = "fp32", dtype: Optional[str] = None, num_fp16_res: int = 4) -> "Discriminator":
        """``'mixed'``: the blocks of the ``num_fp16_res`` highest resolutions in low precision
        (NVIDIA's rule; the 4x4 head, the label mapping and the logits stay float32)."""
        self.precision = Precision(mode, dtype, num_fp16_res)
        return self

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor] = None, update_emas: bool = False,
                force_fp32: bool = False) -> torch.Tensor:
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"img must have shape [N, {', '.join(map(str, expected))}], got {tuple(img.shape)}")
        if self.c_dim > 0 and (c is None or c.ndim != 2 or c.shape != (img.shape[0], self.c_dim)):
            raise ValueError(f"this discriminator is conditional: c must have shape [{img.shape[0]}, {self.c_dim}], "
                             f"got {None if c is None else tuple(c.shape)}")
        img = img.to(torch.float32).contiguous(memory_format=_memory_format(img.device, self.channels_last))
        x = None
        device = img.device
        low_from = fp16_resolution(self.img_resolution, self.precision.num_fp16_res)
        for res in self.block_resolutions:
            dtype = self.precision.compute_dtype(device, res >= low_from, force_fp32)
            x, img = getattr(self, f"b{res}")(x, img, dtype)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}"
