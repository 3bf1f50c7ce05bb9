"""ProGAN (Karras et al. 2018), the official progressive_growing_of_gans semantics.

Network: :mod:`zoo.models.progan`. Loss: WGAN-GP (λ 10, target 1) + drift 0.001·D(real)², Adam
(0, 0.99, 1e-8), a constant G EMA β 0.999, the D step before the G step, progressive growing from 4 px.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from zoo.generations.spec import (GenerationSpec, GrowingConfig, ModelConfig, RunShape, check_growing, check_mbstd,
                                  common_kwargs, mbstd_kwargs)

__all__ = ["ProGANConfig", "SPEC", "auto_hparams", "network_kwargs", "check_progressive"]


@dataclass
class ProGANConfig(ModelConfig):
    name: str = "progan"
    channel_base: int = 16384          # = 2 * fmap_base (8192) of the original: nf(res) = min(channel_base / res, channel_max)
    use_pixelnorm: bool = True
    ema_beta: Optional[float] = 0.999  # G_smoothing: a constant EMA beta per iteration
    ema_rampup: Optional[float] = None
    D_reg_interval: Optional[int] = None
    wgan_lambda: float = 10.0
    wgan_target: float = 1.0
    wgan_epsilon: float = 0.001
    cond_weight: float = 1.0           # AC-GAN label terms (conditional training)
    growing: GrowingConfig = field(default_factory=GrowingConfig)


def auto_hparams(m: Mapping[str, Any], resolution: int, batch: int, precision: str = "fp32") -> Dict[str, Any]:
    """ProGAN / StyleGAN (v1): base learning rate 0.001 (per-resolution values in ``growing.lr``)."""
    return dict(glr=0.001, dlr=0.001)


def network_kwargs(m: Mapping[str, Any], resolution: int, img_channels: int, c_dim: int):
    common = common_kwargs(m, resolution, img_channels, c_dim)
    return dict(common, z_dim=m["z_dim"], use_pixelnorm=m["use_pixelnorm"]), dict(common, **mbstd_kwargs(m))


def check_progressive(m: Mapping[str, Any], run: RunShape) -> None:
    """The checks of the growing generations: the mbstd group and the growing schedule."""
    check_mbstd(m, run)
    if m.get("growing") is not None:
        check_growing(m, run)


SPEC = GenerationSpec(
    name="progan",
    module="zoo.models.progan",
    schema=ProGANConfig,
    loss="progan",
    auto_hparams=auto_hparams,
    network_kwargs=network_kwargs,
    check=check_progressive,
    # The fully grown networks (lod 0) at the sizes of StyleGAN2's presets.
    bench={
        "inference": dict(resolution=256, batch=8, channel_base=16384, channel_max=512),
        "train": dict(resolution=32, batch=32, channel_base=4096, channel_max=128),
    },
    description="ProGAN (Karras et al. 2018): progressive growing, pixel norm, WGAN-GP + drift",
)
