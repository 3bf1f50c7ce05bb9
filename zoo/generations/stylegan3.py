"""StyleGAN3 (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"): configs T and R,
as NVIDIA's ``--cfg stylegan3-t`` / ``stylegan3-r``.

Network: :mod:`zoo.models.stylegan3` (Fourier input, filtered leaky ReLU), trained against
StyleGAN2's discriminator with StyleGAN2's loss (no path length, no style mixing, no lazy G
regularization). Everything config R changes is in the ``Config R`` block below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from zoo.core.errors import ConfigError
from zoo.generations.spec import (GenerationSpec, RunShape, StyleConfig, check_mbstd, common_kwargs, mapping_kwargs,
                                  mbstd_kwargs)
from zoo.models.stylegan3 import CONFIGS, config_kwargs

__all__ = ["StyleGAN3Config", "SPEC", "auto_hparams", "network_kwargs", "check"]


@dataclass
class StyleGAN3Config(StyleConfig):
    """``config``: ``t`` (translation equivariant, 3x3 convs) or ``r`` (rotation equivariant).
    ``channel_base``/``channel_max`` are the values *before* R's doubling, as NVIDIA's ``--cbase``/
    ``--cmax``; D always uses them undoubled."""

    name: str = "stylegan3"
    config: str = "t"
    mapping_layers: int = 2
    conv_clamp: Optional[int] = 256
    magnitude_ema_beta: Optional[float] = None  # null: 0.5 ** (batch / 20000) (NVIDIA train.py)
    style_mixing_prob: float = 0.0
    pl_weight: float = 0.0
    blur_init_sigma: Optional[float] = None  # null: 10 for config r, 0 for t
    blur_fade_kimg: Optional[float] = None  # null: batch * 200 / 32
    G_reg_interval: Optional[int] = None


# ---- Config R: everything it changes relative to T -------------------------------------------
# The network: 1x1 convolutions, radial (jinc) down-filters, G's channel_base and channel_max doubled
# (zoo.models.stylegan3.config_kwargs; D keeps them). Training: D's inputs, real and fake, blurred by
# 2^-(x/sigma)^2 whose sigma fades from 10 to 0 over blur_fade_kimg (T: no blur).
BLUR_INIT_SIGMA = {"t": 0.0, "r": 10.0}


def _config(m: Mapping[str, Any]) -> str:
    return str(m.get("config", "t")).lower()


def auto_hparams(m: Mapping[str, Any], resolution: int, batch: int, precision: str = "fp32") -> Dict[str, Any]:
    """StyleGAN3 defaults (stylegan3 train.py and docs/configs.md).

    NVIDIA requires ``--gamma``; the default here is the recommended value of ``docs/configs.md``
    (T and R alike, batch 32): 0.5 at 128 px, 2 at 256, 8 at 512, 32 at 1024, i.e. res^2 / 32768."""
    return dict(
        glr=0.0025,
        dlr=0.002,
        r1_gamma=resolution ** 2 / 32768,
        ema_kimg=batch * 10 / 32,
        magnitude_ema_beta=0.5 ** (batch / 20000),
        blur_init_sigma=BLUR_INIT_SIGMA.get(_config(m), 0.0),
        blur_fade_kimg=batch * 200 / 32,
    )


def check(m: Mapping[str, Any], run: RunShape) -> None:
    if _config(m) not in CONFIGS:
        raise ConfigError("model.config", f"{m.get('config')!r} is not a StyleGAN3 config",
                          "use model.config=t (translation equivariant) or model.config=r (rotation)")
    check_mbstd(m, run)


def network_kwargs(m: Mapping[str, Any], resolution: int, img_channels: int, c_dim: int):
    if _config(m) not in CONFIGS:
        raise ValueError(f"model.config must be 't' or 'r', got {m['config']!r}")
    common = dict(common_kwargs(m, resolution, img_channels, c_dim), conv_clamp=m["conv_clamp"])
    G_kwargs = dict(common, **mapping_kwargs(m), magnitude_ema_beta=m["magnitude_ema_beta"],
                    **config_kwargs(_config(m), m["channel_base"], m["channel_max"]))
    return G_kwargs, dict(common, **mbstd_kwargs(m))


SPEC = GenerationSpec(
    name="stylegan3",
    module="zoo.models.stylegan3",
    schema=StyleGAN3Config,
    loss="stylegan2",
    auto_hparams=auto_hparams,
    network_kwargs=network_kwargs,
    check=check,
    bench={
        "inference": dict(resolution=256, batch=4, channel_base=16384, channel_max=512, mapping_layers=2,
                          noise_mode="const"),
        "train": dict(resolution=32, batch=32, channel_base=4096, channel_max=128, mapping_layers=2),
    },
    augment="ada",  # NVIDIA's --aug default
    description="StyleGAN3 (Karras et al. 2021): alias-free G (Fourier input, filtered lrelu), configs T and R",
)
