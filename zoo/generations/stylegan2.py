"""StyleGAN2 (config F), as NVIDIA's stylegan2-ada-pytorch / stylegan3 ``--cfg stylegan2``.

Network: :mod:`zoo.models.stylegan2` (modulated convolutions, skip G, resnet D). Loss: non-saturating
logistic with lazy R1 (every 16 D steps) and path length (every 4 G steps), style mixing 0.9.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from zoo.generations.spec import GenerationSpec, StyleConfig, check_mbstd, common_kwargs, mapping_kwargs, mbstd_kwargs

__all__ = ["StyleGAN2Config", "SPEC", "auto_hparams", "network_kwargs"]


@dataclass
class StyleGAN2Config(StyleConfig):
    name: str = "stylegan2"
    use_noise: bool = True
    conv_clamp: Optional[int] = None  # null: 256 with mixed precision, none in fp32 (NVIDIA)
    pl_weight: float = 2.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    G_reg_interval: Optional[int] = 4


def auto_hparams(m: Mapping[str, Any], resolution: int, batch: int, precision: str = "fp32") -> Dict[str, Any]:
    """NVIDIA's ``--cfg auto`` rules (stylegan2-ada-pytorch train.py), expressed per total batch, and
    its precision rule (stylegan3 train.py): ``conv_clamp`` 256 with mixed precision, none in fp32.

    Only the *total* batch enters, never the GPU count, so ``gpus=`` changes speed, not dynamics."""
    lr = 0.002 if resolution >= 1024 else 0.0025
    return dict(glr=lr, dlr=lr, r1_gamma=0.0002 * resolution ** 2 / batch, ema_kimg=batch * 10 / 32,
                conv_clamp=256 if precision == "mixed" else None)


def network_kwargs(m: Mapping[str, Any], resolution: int, img_channels: int, c_dim: int):
    common = dict(common_kwargs(m, resolution, img_channels, c_dim), conv_clamp=m["conv_clamp"])
    return dict(common, **mapping_kwargs(m), use_noise=m["use_noise"]), dict(common, **mbstd_kwargs(m))


SPEC = GenerationSpec(
    name="stylegan2",
    module="zoo.models.stylegan2",
    schema=StyleGAN2Config,
    loss="stylegan2",
    auto_hparams=auto_hparams,
    network_kwargs=network_kwargs,
    check=check_mbstd,
    bench={
        "inference": dict(resolution=256, batch=8, channel_base=16384, channel_max=512, mapping_layers=8,
                          noise_mode="none"),
        "train": dict(resolution=32, batch=32, channel_base=4096, channel_max=128, mapping_layers=2),
    },
    augment="ada",  # NVIDIA's --aug default
    description="StyleGAN2 (Karras et al. 2020): modulated convs, skip G, resnet D, lazy R1 + path length",
)
