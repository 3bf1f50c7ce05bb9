"""StyleGAN3 generator (Karras et al., "Alias-Free Generative Adversarial Networks", NeurIPS 2021),
configs T (translation equivariant) and R (rotation equivariant), in the paper's vocabulary.

Generator
    z --(mapping network: pixel norm, 2 FC layers, lr multiplier 0.01)--> w, broadcast to 16 ws.
    The synthesis network treats every feature map as a band-limited *continuous* signal sampled on
    a grid with a margin around the image:

    * the input is a set of Fourier features -- sinusoids with frequencies inside a disc of radius
      ``bandwidth`` (the first cutoff, 2 cycles per image), rotated and translated per sample by an
      affine transform of ``ws[0]`` (identity at initialisation) and by a user-settable ``transform``
      (how translate/rotate is applied at inference), then mixed by a learned 1x1 matrix;
    * 14 layers ``L0 .. L13`` each do: modulated convolution (3x3 for T, 1x1 for R) -> bias ->
      upsample (x2, or x4 where the sampling rate doubles) with a Kaiser-windowed low-pass FIR ->
      leaky ReLU (gain sqrt(2), clamp) -> low-pass FIR -> downsample to the output sampling rate
      ("filtered leaky ReLU"). The cutoff frequency grows geometrically from 2 to ``res / 2``; the
      last two layers are critically sampled (cutoff = Nyquist) and crop the margin away;
    * ``L14`` is ToRGB (modulated 1x1, no demodulation, linear), and the image is scaled by 0.25.

    There are no noise inputs; ``noise_mode`` is accepted for API compatibility and ignored.

Config R uses 1x1 convolutions, twice the channels (channel_base 65536, channel_max 1024; the
doubling is done by the caller, see :func:`config_kwargs`) and radially symmetric (jinc) down-filters
on the non-critical layers.

Discriminator
    The StyleGAN2 discriminator, re-exported from :mod:`zoo.models.stylegan2`.

Parameter and buffer names, shapes and initialisation match NVIDIA's ``networks_stylegan3.py``
(``synthesis.input.{weight, transform, freqs, phases, affine.*}``, ``synthesis.L{i}_{size}_{ch}.
{weight, bias, magnitude_ema, up_filter, down_filter, affine.*}``, ``mapping.{fc0, fc1, w_avg}``), so
an official ``state_dict`` loads with ``load_state_dict``. Numerics: float32 everywhere (the fp16
schedule is kept as the ``use_fp16`` attribute only). The modulated convolution is written in its
non-fused form (modulate the input, shared-weight convolution, demodulate through the ``scale`` of
:func:`zoo.ops.filtered_lrelu.filtered_lrelu`), which is mathematically identical to NVIDIA's
grouped convolution; the speed of the filtering lives in :mod:`zoo.ops`.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoo.core.contract import set_input_transform
from zoo.models.stylegan2 import Discriminator  # StyleGAN3 trains against StyleGAN2's discriminator
from zoo.ops import FullyConnectedLayer
from zoo.ops.activations import mean_square
from zoo.ops.convolution import conv2d
from zoo.ops.mapping import MappingNetwork as _StyleGAN2MappingNetwork
from zoo.ops.precision import FP32, Precision
from zoo.ops.layers import check_img_resolution as _check_resolution
from zoo.ops.winograd import conv3x3
from zoo.ops.filtered_lrelu import filtered_lrelu

__all__ = [
    "kaiser_atten", "kaiser_beta", "lowpass_filter", "radial_lowpass_filter",
    "synthesis_schedule", "config_kwargs",
    "MappingNetwork", "SynthesisInput", "SynthesisLayer", "SynthesisNetwork", "Generator", "Discriminator",
]

NOISE_MODES = ("random", "const", "none")
CONFIGS = ("t", "r")


# =============================================================================================
# Filter design (Kaiser-windowed sinc and jinc low-pass filters).
# =============================================================================================

def kaiser_atten(numtaps: int, width: float) -> float:
    """Stop-band attenuation in dB of a Kaiser-window FIR design with ``numtaps`` taps and transition
    ``width`` (a fraction of the Nyquist frequency): Kaiser's empirical formula."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(atten: float) -> float:
    """Kaiser window shape parameter ``beta`` for a stop-band attenuation ``atten`` in dB."""
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float) -> Optional[torch.Tensor]:
    """1-D low-pass FIR filter (applied separably along x and y): an ideal low-pass with ``cutoff``
    (in the units of the sampling rate ``fs``) times a Kaiser window sized for the transition
    ``width``, scaled to unit gain at DC. Equal to ``scipy.signal.firwin(numtaps, cutoff,
    width=width, fs=fs)``. Returns ``None`` (the identity) for a single tap."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    nyquist = fs / 2
    if not 0 < cutoff < nyquist:
        raise ValueError(f"cutoff must lie strictly between 0 and fs/2 = {nyquist}, got {cutoff}")
    beta = kaiser_beta(kaiser_atten(numtaps, width / nyquist))
    n = np.arange(numtaps) - (numtaps - 1) / 2            # tap positions, centred
    fc = cutoff / nyquist                                  # cutoff as a fraction of Nyquist
    taps = fc * np.sinc(fc * n) * np.kaiser(numtaps, beta)  # windowed ideal low-pass
    taps /= taps.sum()                                     # unit DC gain
    return torch.as_tensor(taps, dtype=torch.float32)


def radial_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float) -> Optional[torch.Tensor]:
    """2-D radially symmetric low-pass filter ``[numtaps, numtaps]`` (config R): the jinc
    ``J1(2 pi fc r) / (pi r)`` -- the impulse response of an ideal *disc* low-pass -- times the outer
    product of two Kaiser windows (beta from :func:`kaiser_atten`), normalised to sum 1."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = torch.as_tensor(np.hypot(*np.meshgrid(x, x)), dtype=torch.float64)
    arg = 2 * math.pi * cutoff * r
    # jinc(r) = J1(2 pi fc r) / (pi r), with its limit fc at r = 0.
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    f = torch.where(r > 0, torch.special.bessel_j1(arg) / (math.pi * safe_r), torch.full_like(r, cutoff))
    beta = kaiser_beta(kaiser_atten(numtaps, width / (fs / 2)))
    window = torch.as_tensor(np.kaiser(numtaps, beta), dtype=torch.float64)
    f = f * torch.outer(window, window)
    f = f / f.sum()
    return f.to(torch.float32)


# =============================================================================================
# Layer schedule.
# =============================================================================================

def synthesis_schedule(img_resolution: int, img_channels: int = 3, channel_base: int = 32768,
                       channel_max: int = 512, num_layers: int = 14, num_critical: int = 2,
                       first_cutoff: float = 2, first_stopband: float = 2 ** 2.1,
                       last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10) -> Dict[str, np.ndarray]:
    """Per-layer cutoffs, stopbands, sampling rates, half-widths, sizes and channels, index 0 ..
    ``num_layers`` (the last entry is ToRGB). Frequencies are in cycles per image (the image spans
    one unit); sampling rates in samples per unit."""
    last_cutoff = img_resolution / 2                       # the final layers reach Nyquist
    last_stopband = last_cutoff * last_stopband_rel
    # Geometric progression from the first to the last cutoff/stopband, flat over the critical layers.
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    # Smallest power-of-two sampling rate that holds the stopband (at most the image resolution).
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(2 * stopbands, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + 2 * margin_size               # a margin on each side ...
    sizes[-2:] = img_resolution                            # ... cropped away by the last two layers
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates.astype(np.int64),
                half_widths=half_widths, sizes=sizes.astype(np.int64), channels=channels.astype(np.int64))


def config_kwargs(config: str, channel_base: int = 32768, channel_max: int = 512) -> Dict[str, object]:
    """Generator keyword arguments of the paper's configurations, from the *undoubled* channel
    settings: ``'t'`` 3x3 convolutions; ``'r'`` 1x1 convolutions, radial down-filters and twice the
    channel base and maximum (NVIDIA's train.py doubles them for ``--cfg=stylegan3-r``)."""
    config = str(config).lower()
    if config == "t":
        return dict(channel_base=int(channel_base), channel_max=int(channel_max), conv_kernel=3,
                    use_radial_filters=False)
    if config == "r":
        return dict(channel_base=2 * int(channel_base), channel_max=2 * int(channel_max), conv_kernel=1,
                    use_radial_filters=True)
    raise ValueError(f"StyleGAN3 config must be one of {list(CONFIGS)}, got {config!r}")


# =============================================================================================
# Mapping network.
# =============================================================================================

class MappingNetwork(_StyleGAN2MappingNetwork):
    """z (and optional c) -> w, as in StyleGAN2 with StyleGAN3's defaults: 2 layers, lr multiplier
    0.01, ``w_avg`` decay 0.998, one w per synthesis layer (16); truncation cutoff ``None`` = all ws."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int = 16, num_layers: int = 2,
                 lr_multiplier: float = 0.01, w_avg_beta: float = 0.998):
        super().__init__(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers,
                         lr_multiplier=lr_multiplier, w_avg_beta=w_avg_beta)


# =============================================================================================
# Synthesis network.
# =============================================================================================

class SynthesisInput(nn.Module):
    """Fourier-feature input: ``channels`` sinusoids sampled on a ``size x size`` grid at
    ``sampling_rate`` samples per unit (the image spans [-0.5, 0.5], the grid extends past it by the
    margin), rotated/translated per sample by ``affine(w)`` and by the user ``transform``."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = int(size)
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)

        # Frequencies uniform in the disc of radius `bandwidth` (radius ~ sqrt(U) for uniform area).
        angle = torch.rand([channels]) * (2 * math.pi)
        radius = torch.rand([channels]).sqrt() * self.bandwidth
        freqs = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
        phases = torch.rand([channels]) - 0.5

        self.weight = nn.Parameter(torch.randn([channels, channels]))   # learned 1x1 mix, no bias
        # w -> (cos, sin, tx, ty) of the per-sample transform; starts at the identity.
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))   # user-specified *inverse* transform
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        # Per-sample rotation (unit-normalised cos/sin) and translation predicted from w.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        cos, sin, tx, ty = t.unbind(dim=1)
        zero, one = torch.zeros_like(cos), torch.ones_like(cos)
        rotate = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], dim=1).reshape(n, 3, 3)
        translate = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], dim=1).reshape(n, 3, 3)
        m = rotate @ translate @ self.transform.unsqueeze(0)   # first rotate, then translate, then the user's

        # Transform the sinusoids: sin(2 pi (f . (A g + b) + phi)) = sin(2 pi ((f A) . g + (f . b + phi))).
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ m[:, :2, 2:]).squeeze(2)   # [N, C]
        freqs = self.freqs.unsqueeze(0) @ m[:, :2, :2]                                           # [N, C, 2]

        # Fade out frequencies the user transform pushed towards the Nyquist limit of the grid.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth))
        amplitudes = amplitudes.clamp(0, 1)                                         # [N, C]

        # Sample positions: pixel centres at (j + 0.5 - size/2) / sampling_rate along x and y.
        theta = torch.zeros([1, 2, 3], device=w.device)
        theta[0, 0, 0] = theta[0, 1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta, [1, 1, self.size, self.size], align_corners=False)   # [1, H, W, 2] (x, y)

        x = torch.einsum("hwd,ncd->nhwc", grid[0], freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()                      # learned mix
        return x.permute(0, 3, 1, 2)                                               # [N, C, H, W]

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


class SynthesisLayer(nn.Module):
    """Modulated convolution + filtered leaky ReLU, between two sampling rates (or ToRGB)."""

    magnitude_ema_beta = 0.999

    def __init__(self, w_dim: int, is_torgb: bool, is_critically_sampled: bool, use_fp16: bool,
                 in_channels: int, out_channels: int, in_size: int, out_size: int,
                 in_sampling_rate: int, out_sampling_rate: int, in_cutoff: float, out_cutoff: float,
                 in_half_width: float, out_half_width: float, conv_kernel: int = 3, filter_size: int = 6,
                 lrelu_upsampling: int = 2, use_radial_filters: bool = False, conv_clamp: Optional[float] = 256,
                 magnitude_ema_beta: Optional[float] = None):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = bool(is_torgb)
        self.is_critically_sampled = bool(is_critically_sampled)
        self.use_fp16 = bool(use_fp16)   # one of NVIDIA's low-precision layers (used when the precision is mixed)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.in_size = int(in_size)
        self.out_size = int(out_size)
        self.in_sampling_rate = int(in_sampling_rate)
        self.out_sampling_rate = int(out_sampling_rate)
        self.in_cutoff = float(in_cutoff)
        self.out_cutoff = float(out_cutoff)
        self.in_half_width = float(in_half_width)
        self.out_half_width = float(out_half_width)
        self.conv_kernel = 1 if self.is_torgb else int(conv_kernel)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        if magnitude_ema_beta is not None:
            self.magnitude_ema_beta = float(magnitude_ema_beta)
        # Nonlinearity: lrelu (gain sqrt 2, slope 0.2) at twice the higher sampling rate; ToRGB is linear.
        self.act_gain = 1.0 if self.is_torgb else math.sqrt(2)
        self.slope = 1.0 if self.is_torgb else 0.2
        self.tmp_sampling_rate = max(self.in_sampling_rate, self.out_sampling_rate) * (
            1 if self.is_torgb else int(lrelu_upsampling))

        self.affine = FullyConnectedLayer(w_dim, self.in_channels, bias_init=1)   # w -> styles
        self.weight = nn.Parameter(torch.randn([self.out_channels, self.in_channels,
                                                self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([self.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))   # running mean of the input's x**2

        # Upsampling filter: keeps the input band (cutoff and half-width of the input signal).
        self.up_factor = self.tmp_sampling_rate // self.in_sampling_rate
        if self.up_factor * self.in_sampling_rate != self.tmp_sampling_rate:
            raise ValueError("the intermediate sampling rate must be a multiple of the input's")
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        self.register_buffer("up_filter", lowpass_filter(self.up_taps, self.in_cutoff, 2 * self.in_half_width,
                                                         self.tmp_sampling_rate))

        # Downsampling filter: band-limits to the output cutoff (radial for config R, non-critical layers).
        self.down_factor = self.tmp_sampling_rate // self.out_sampling_rate
        if self.down_factor * self.out_sampling_rate != self.tmp_sampling_rate:
            raise ValueError("the intermediate sampling rate must be a multiple of the output's")
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not self.is_torgb else 1
        self.down_radial = bool(use_radial_filters) and not self.is_critically_sampled
        design = radial_lowpass_filter if self.down_radial else lowpass_filter
        self.register_buffer("down_filter", design(self.down_taps, self.out_cutoff, 2 * self.out_half_width,
                                                   self.tmp_sampling_rate))

        # Padding so that the output has out_size samples, aligned by the "symmetric interpretation"
        # (pixel centres at half-integers, paper appendix C.3).
        pad_total = (self.out_size - 1) * self.down_factor + 1                 # needed before downsampling
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor    # available after upsampling
        pad_total += self.up_taps + self.down_taps - 2                         # eaten by the two filters
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo), int(pad_hi), int(pad_lo), int(pad_hi)]   # [x0, x1, y0, y1]

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", update_emas: bool = False,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``noise_mode`` is ignored (StyleGAN3 has no noise). ``dtype``: the layer's compute dtype (its
        convolution and filtered lrelu; the styles, demodulation and magnitude EMA stay float32)."""
        expected = (self.in_channels, self.in_size, self.in_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape [N, {', '.join(map(str, expected))}], got {tuple(x.shape)}")
        x = x.to(dtype)

        # Track the input's magnitude; its inverse square root normalises the input.
        if update_emas:
            with torch.no_grad():
                magnitude = mean_square(x.detach().to(torch.float32))
                self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        # Modulated convolution, non-fused: scale the input channels by the styles, convolve with the
        # shared weight ("full" convolution, padding k-1), and hand the demodulation coefficients
        # (one per sample and output channel) to the activation as its input scale.
        styles = self.affine(w)
        weight = self.weight
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel ** 2))
            dcoefs = None
        else:
            # StyleGAN3 pre-normalisation (weight per output channel, styles over the whole batch).
            weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean().rsqrt()
            # Demodulation: 1 / ||w[o] * s|| = rsqrt(sum_i s_i^2 * sum_k w[o, i, k]^2).
            dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()   # [N, O]
        weight = weight.to(dtype)
        if x.device.type == "cpu":  # oneDNN's convolutions are ~2x faster channels-last on CPU
            x = x.contiguous(memory_format=torch.channels_last)
            weight = weight.contiguous(memory_format=torch.channels_last)
        x = x * (styles * input_gain).to(dtype).unsqueeze(2).unsqueeze(3)
        if self.conv_kernel == 3:
            x = conv3x3(x, weight, padding=2)  # Winograd F(4x4, 3x3) on CPU where it is faster
        else:
            x = conv2d(x, weight, padding=self.conv_kernel - 1)

        # Bias, upsample + low-pass, leaky ReLU, clamp, low-pass + downsample.
        return filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias, up=self.up_factor,
                              down=self.down_factor, padding=self.padding, gain=self.act_gain, slope=self.slope,
                              clamp=self.conv_clamp, scale=dcoefs)

    def extra_repr(self) -> str:
        kind = "torgb" if self.is_torgb else ("critical" if self.is_critically_sampled else "layer")
        return (f"{kind}, channels {self.in_channels}->{self.out_channels}, size {self.in_size}->{self.out_size}, "
                f"sampling rate {self.in_sampling_rate}->{self.out_sampling_rate}, "
                f"cutoff {self.in_cutoff:.4g}->{self.out_cutoff:.4g}, up {self.up_factor} ({self.up_taps} taps), "
                f"down {self.down_factor} ({self.down_taps} taps{', radial' if self.down_radial else ''}), "
                f"kernel {self.conv_kernel}")


class SynthesisNetwork(nn.Module):
    """ws ``[N, 16, w_dim]`` -> image ``[N, img_channels, R, R]``: Fourier input, 14 layers, ToRGB."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 4, conv_kernel: int = 3, filter_size: int = 6,
                 lrelu_upsampling: int = 2, use_radial_filters: bool = False, conv_clamp: Optional[float] = 256,
                 magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = _check_resolution(img_resolution)
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_ws = num_layers + 2          # ws[0] -> input, ws[1 + i] -> layer i
        s = synthesis_schedule(self.img_resolution, img_channels, channel_base, channel_max, num_layers,
                               num_critical, first_cutoff, first_stopband, last_stopband_rel, margin_size)
        self.schedule = s

        self.input = SynthesisInput(w_dim, channels=int(s["channels"][0]), size=int(s["sizes"][0]),
                                    sampling_rate=int(s["sampling_rates"][0]), bandwidth=float(s["cutoffs"][0]))
        self.precision: Precision = FP32    # a run-time setting (set_precision), not state
        self.layer_names: List[str] = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim, is_torgb=idx == num_layers, is_critically_sampled=idx >= num_layers - num_critical,
                use_fp16=bool(s["sampling_rates"][idx] * 2 ** num_fp16_res > self.img_resolution),
                in_channels=int(s["channels"][prev]), out_channels=int(s["channels"][idx]),
                in_size=int(s["sizes"][prev]), out_size=int(s["sizes"][idx]),
                in_sampling_rate=int(s["sampling_rates"][prev]), out_sampling_rate=int(s["sampling_rates"][idx]),
                in_cutoff=float(s["cutoffs"][prev]), out_cutoff=float(s["cutoffs"][idx]),
                in_half_width=float(s["half_widths"][prev]), out_half_width=float(s["half_widths"][idx]),
                conv_kernel=conv_kernel, filter_size=filter_size, lrelu_upsampling=lrelu_upsampling,
                use_radial_filters=use_radial_filters, conv_clamp=conv_clamp, magnitude_ema_beta=magnitude_ema_beta)
            name = f"L{idx}_{layer.out_size}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def set_precision(self, precision: Precision) -> "SynthesisNetwork":
        """Mixed precision: the layers whose sampling rate times ``2 ** num_fp16_res`` exceeds the
        output resolution (NVIDIA's rule; all of them at 32 px) compute in low precision."""
        self.precision = precision
        for name in self.layer_names:
            layer = getattr(self, name)
            layer.use_fp16 = layer.out_sampling_rate * 2 ** precision.num_fp16_res > self.img_resolution
        return self

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", update_emas: bool = False,
                force_fp32: bool = False, fused_modconv: Optional[bool] = None) -> torch.Tensor:
        """``noise_mode`` and ``fused_modconv`` are accepted for API compatibility with StyleGAN2 and
        have no effect; ``force_fp32=True`` runs every layer in float32 whatever the precision.
        ``update_emas=True`` updates every layer's ``magnitude_ema``."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {list(NOISE_MODES)}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            layer = getattr(self, name)
            x = layer(x, w, update_emas=update_emas,
                      dtype=self.precision.compute_dtype(x.device, layer.use_fp16, force_fp32))
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32).contiguous()

    def schedule_table(self) -> str:
        """The layer schedule as a text table (one row per layer)."""
        rows = [f"{'layer':<16}{'size':>6}{'ch':>6}{'sr in->out':>14}{'cutoff in->out':>18}{'half-width':>12}"
                f"{'up/down':>9}{'taps':>9}",
                f"{'input':<16}{self.input.size:>6}{self.input.channels:>6}{int(self.input.sampling_rate):>14}"
                f"{'bw ' + format(self.input.bandwidth, '.4g'):>18}"]
        for name in self.layer_names:
            l = getattr(self, name)
            taps = f"{l.up_taps}/{l.down_taps}" + ("r" if l.down_radial else "")
            rows.append(f"{name:<16}{l.out_size:>6}{l.out_channels:>6}"
                        f"{f'{l.in_sampling_rate}->{l.out_sampling_rate}':>14}"
                        f"{f'{l.in_cutoff:.4g}->{l.out_cutoff:.4g}':>18}{l.out_half_width:>12.4g}"
                        f"{f'{l.up_factor}/{l.down_factor}':>9}{taps:>9}")
        return "\n".join(rows)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, layers={' '.join(self.layer_names)}")


# =============================================================================================
# Generator.
# =============================================================================================

class Generator(nn.Module):
    """StyleGAN3 generator: ``G(z, c) -> images [N, img_channels, R, R]`` in about ``[-1, 1]``.

    Config T is the default; config R is ``Generator(..., **config_kwargs('r'))`` (channel_base
    65536, channel_max 1024, conv_kernel 1, use_radial_filters True)."""

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, img_resolution: Optional[int] = None,
                 img_channels: int = 3, *, mapping_layers: int = 2, mapping_lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.998, channel_base: int = 32768, channel_max: int = 512,
                 conv_kernel: int = 3, use_radial_filters: bool = False, magnitude_ema_beta: float = 0.999,
                 conv_clamp: Optional[float] = 256, num_layers: int = 14, num_critical: int = 2,
                 first_cutoff: float = 2, first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                 margin_size: int = 10, output_scale: float = 0.25, num_fp16_res: int = 4, filter_size: int = 6,
                 lrelu_upsampling: int = 2):
        super().__init__()
        img_resolution = _check_resolution(img_resolution)
        self.init_kwargs = dict(
            z_dim=int(z_dim), c_dim=int(c_dim), w_dim=int(w_dim), img_resolution=img_resolution,
            img_channels=int(img_channels), mapping_layers=int(mapping_layers),
            mapping_lr_multiplier=float(mapping_lr_multiplier), w_avg_beta=float(w_avg_beta),
            channel_base=int(channel_base), channel_max=int(channel_max), conv_kernel=int(conv_kernel),
            use_radial_filters=bool(use_radial_filters), magnitude_ema_beta=float(magnitude_ema_beta),
            conv_clamp=None if conv_clamp is None else float(conv_clamp), num_layers=int(num_layers),
            num_critical=int(num_critical), first_cutoff=float(first_cutoff), first_stopband=float(first_stopband),
            last_stopband_rel=float(last_stopband_rel), margin_size=int(margin_size),
            output_scale=float(output_scale), num_fp16_res=int(num_fp16_res), filter_size=int(filter_size),
            lrelu_upsampling=int(lrelu_upsampling),
        )
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
            channel_max=channel_max, num_layers=num_layers, num_critical=num_critical, first_cutoff=first_cutoff,
            first_stopband=first_stopband, last_stopband_rel=last_stopband_rel, margin_size=margin_size,
            output_scale=output_scale, num_fp16_res=num_fp16_res, conv_kernel=conv_kernel, filter_size=filter_size,
            lrelu_upsampling=lrelu_upsampling, use_radial_filters=use_radial_filters, conv_clamp=conv_clamp,
            magnitude_ema_beta=magnitude_ema_beta)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier,
                                      w_avg_beta=w_avg_beta)

    def set_precision(self, mode: str = "fp32", dtype: Optional[str] = None, num_fp16_res: int = 4) -> "Generator":
        """``'mixed'``: NVIDIA's mixed precision in the synthesis layers (:mod:`zoo.ops.precision`;
        ``dtype`` None = float16 on CUDA, bfloat16 on CPU); ``'fp32'``: float32 everywhere."""
        self.synthesis.set_precision(Precision(mode, dtype, num_fp16_res))
        return self

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, update_emas: bool = False, noise_mode: str = "random",
                force_fp32: bool = False, fused_modconv: Optional[bool] = None) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, update_emas=update_emas, force_fp32=force_fp32,
                              fused_modconv=fused_modconv)

    def set_transform(self, translate: Sequence[float] = (0, 0), rotate: float = 0) -> None:
        """Translate (image widths) / rotate (degrees) the output: :func:`zoo.core.contract.set_input_transform`."""
        set_input_transform(self, translate, rotate)

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, "
                f"img_resolution={self.img_resolution}, img_channels={self.img_channels}, num_ws={self.num_ws}")
