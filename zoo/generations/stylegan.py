"""StyleGAN (Karras et al. 2019), the official NVlabs/stylegan semantics.

Network: :mod:`zoo.models.stylegan` (mapping, AdaIN, noise; ProGAN's D with blur). Loss:
non-saturating logistic with R1 (γ 10) every D step, style mixing 0.9 over the active layers, G EMA
half-life 10 kimg, Adam (0, 0.99, 1e-8), the D step before the G step, progressive growing from 8 px.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from zoo.generations.progan import auto_hparams, check_progressive
from zoo.generations.spec import (GenerationSpec, GrowingConfig, StyleConfig, common_kwargs, mapping_kwargs,
                                  mbstd_kwargs)

__all__ = ["StyleGANConfig", "SPEC", "network_kwargs"]


@dataclass
class StyleGANConfig(StyleConfig):
    name: str = "stylegan"
    channel_base: int = 16384          # fmap_base 8192
    w_avg_beta: float = 0.995          # dlatent_avg_beta
    use_noise: bool = True
    r1_gamma: Optional[float] = 10.0
    ema_kimg: Optional[float] = 10.0   # G_smoothing_kimg: beta = 0.5 ** (batch / 10000)
    ema_rampup: Optional[float] = None
    D_reg_interval: Optional[int] = None  # R1 every step (not lazy)
    growing: GrowingConfig = field(default_factory=lambda: GrowingConfig(start_resolution=8))


def network_kwargs(m: Mapping[str, Any], resolution: int, img_channels: int, c_dim: int):
    common = common_kwargs(m, resolution, img_channels, c_dim)
    return dict(common, **mapping_kwargs(m), use_noise=m["use_noise"]), dict(common, **mbstd_kwargs(m))


SPEC = GenerationSpec(
    name="stylegan",
    module="zoo.models.stylegan",
    schema=StyleGANConfig,
    loss="stylegan",
    auto_hparams=auto_hparams,          # ProGAN's: base learning rate 0.001, per resolution in growing.lr
    network_kwargs=network_kwargs,
    check=check_progressive,
    bench={
        "inference": dict(resolution=256, batch=8, channel_base=16384, channel_max=512, mapping_layers=8,
                          noise_mode="none"),
        "train": dict(resolution=32, batch=32, channel_base=4096, channel_max=128, mapping_layers=2),
    },
    description="StyleGAN (Karras et al. 2019): mapping network, AdaIN, noise, progressive growing, R1",
)
