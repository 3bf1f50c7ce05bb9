"""Generation registry: one name per GAN generation, mapped to how to build and train it.

A spec names the module that holds the generation's networks (``zoo.models.<name>``), the loss the
shared training loop uses, and the hyperparameter rules that depend on the run (resolution, batch).
Checkpoints store only the generation *name* and plain init kwargs; everything is rebuilt from here,
so no import path from a file is ever trusted.

    >>> from zoo import registry
    >>> registry.names()
    ['progan', 'stylegan', 'stylegan2', 'stylegan3']
    >>> G = registry.get('stylegan2').build_generator(img_resolution=64, channel_base=4096)
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

__all__ = ["GenerationSpec", "register", "get", "names", "UnknownGenerationError"]


class UnknownGenerationError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class GenerationSpec:
    """Everything the zoo needs to know about one generation.

    name:         registry key, also the Hydra ``model=`` choice and the checkpoint's ``generation``.
    module:       python module holding ``Generator`` and ``Discriminator`` classes.
    loss:         name of the loss in ``zoo.training.losses`` the training loop uses.
    auto_hparams: ``f(resolution, batch) -> dict`` of defaults for hyperparameters left ``null``
                  in the model config (NVIDIA's ``auto`` rules); see the README for the formulas.
    network_kwargs: ``f(model_cfg, resolution, img_channels, c_dim) -> (G_kwargs, D_kwargs)``:
                  the plain init kwargs of the two networks for a (resolved) model config.
    description:  one line for ``--help`` style listings.
    config_hparams: optional ``f(model_cfg) -> dict`` of defaults for ``null`` keys that depend on
                  other model keys rather than on the run (e.g. StyleGAN3-R's discriminator blur).
    """

    name: str
    module: str
    loss: str
    auto_hparams: Callable[[int, int], Dict[str, Any]]
    network_kwargs: Callable[..., Tuple[Dict[str, Any], Dict[str, Any]]]
    description: str = ""
    config_hparams: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None
    generator_class: str = "Generator"
    discriminator_class: str = "Discriminator"

    def _module(self):
        return importlib.import_module(self.module)

    def generator_cls(self) -> type:
        return getattr(self._module(), self.generator_class)

    def discriminator_cls(self) -> type:
        return getattr(self._module(), self.discriminator_class)

    def build_generator(self, **kwargs) -> torch.nn.Module:
        """Build the generator from plain init kwargs (``img_resolution=..., channel_base=...``)."""
        return self.generator_cls()(**kwargs)

    def build_discriminator(self, **kwargs) -> torch.nn.Module:
        return self.discriminator_cls()(**kwargs)


_REGISTRY: Dict[str, GenerationSpec] = {}


def register(spec: GenerationSpec, *, replace: bool = False) -> GenerationSpec:
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"generation {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> List[str]:
    return sorted(_REGISTRY)


def get(name: str) -> GenerationSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownGenerationError(
            f"unknown generation {name!r}; known generations: {', '.join(names())}"
        ) from None


# ---------------------------------------------------------------------------------------------
# Built-in generations.
# ---------------------------------------------------------------------------------------------

def _stylegan2_auto(resolution: int, batch: int) -> Dict[str, Any]:
    """NVIDIA's ``--cfg auto`` rules (stylegan2-ada-pytorch train.py), expressed per total batch.

    Only the *total* batch enters, never the GPU count, so ``gpus=`` changes speed, not dynamics.
    """
    lr = 0.002 if resolution >= 1024 else 0.0025
    return dict(
        glr=lr,
        dlr=lr,
        r1_gamma=0.0002 * resolution ** 2 / batch,
        ema_kimg=batch * 10 / 32,
    )


def _common(m: Dict[str, Any], resolution: int, img_channels: int, c_dim: int) -> Dict[str, Any]:
    """Init kwargs every generation's G and D share."""
    return dict(c_dim=c_dim, img_resolution=resolution, img_channels=img_channels,
                channel_base=m["channel_base"], channel_max=m["channel_max"])


def _mapping(m: Dict[str, Any]) -> Dict[str, Any]:
    """Init kwargs of a style-based generator's mapping network."""
    return dict(z_dim=m["z_dim"], w_dim=m["w_dim"], mapping_layers=m["mapping_layers"],
                mapping_lr_multiplier=m["mapping_lr_multiplier"], w_avg_beta=m["w_avg_beta"])


def _mbstd(m: Dict[str, Any]) -> Dict[str, Any]:
    return dict(mbstd_group_size=m["mbstd_group"], mbstd_num_channels=m["mbstd_channels"])


def _stylegan2_kwargs(m: Dict[str, Any], resolution: int, img_channels: int, c_dim: int):
    common = dict(_common(m, resolution, img_channels, c_dim), conv_clamp=m["conv_clamp"])
    return dict(common, **_mapping(m), use_noise=m["use_noise"]), dict(common, **_mbstd(m))


register(GenerationSpec(
    name="stylegan2",
    module="zoo.models.stylegan2",
    loss="stylegan2",
    auto_hparams=_stylegan2_auto,
    network_kwargs=_stylegan2_kwargs,
    description="StyleGAN2 (Karras et al. 2020): modulated convs, skip G, resnet D, lazy R1 + path length",
))


def _progressive_auto(resolution: int, batch: int) -> Dict[str, Any]:
    """ProGAN / StyleGAN (v1): base learning rate 0.001 (per-resolution values in ``growing.lr``)."""
    return dict(glr=0.001, dlr=0.001)


def _progan_kwargs(m: Dict[str, Any], resolution: int, img_channels: int, c_dim: int):
    common = _common(m, resolution, img_channels, c_dim)
    return dict(common, z_dim=m["z_dim"], use_pixelnorm=m["use_pixelnorm"]), dict(common, **_mbstd(m))


def _stylegan_kwargs(m: Dict[str, Any], resolution: int, img_channels: int, c_dim: int):
    common = _common(m, resolution, img_channels, c_dim)
    return dict(common, **_mapping(m), use_noise=m["use_noise"]), dict(common, **_mbstd(m))


register(GenerationSpec(
    name="progan",
    module="zoo.models.progan",
    loss="progan",
    auto_hparams=_progressive_auto,
    network_kwargs=_progan_kwargs,
    description="ProGAN (Karras et al. 2018): progressive growing, pixel norm, WGAN-GP + drift",
))

register(GenerationSpec(
    name="stylegan",
    module="zoo.models.stylegan",
    loss="stylegan",
    auto_hparams=_progressive_auto,
    network_kwargs=_stylegan_kwargs,
    description="StyleGAN (Karras et al. 2019): mapping network, AdaIN, noise, progressive growing, R1",
))


def _stylegan3_auto(resolution: int, batch: int) -> Dict[str, Any]:
    """StyleGAN3 defaults (stylegan3 train.py and docs/configs.md).

    NVIDIA requires ``--gamma``; the default here is the recommended value of ``docs/configs.md``
    (T and R alike, batch 32): 0.5 at 128 px, 2 at 256, 8 at 512, 32 at 1024, i.e. res^2 / 32768.
    """
    return dict(
        glr=0.0025,
        dlr=0.002,
        r1_gamma=resolution ** 2 / 32768,
        ema_kimg=batch * 10 / 32,
        magnitude_ema_beta=0.5 ** (batch / 20000),
        blur_fade_kimg=batch * 200 / 32,
    )


def _stylegan3_kwargs(m: Dict[str, Any], resolution: int, img_channels: int, c_dim: int):
    config = str(m["config"]).lower()
    if config not in ("t", "r"):
        raise ValueError(f"model.config must be 't' or 'r', got {m['config']!r}")
    r = config == "r"
    common = dict(_common(m, resolution, img_channels, c_dim), conv_clamp=m["conv_clamp"])
    G_kwargs = dict(common, **_mapping(m), conv_kernel=1 if r else 3, use_radial_filters=r,
                    magnitude_ema_beta=m["magnitude_ema_beta"])
    if r:  # config R doubles the generator's channels only
        G_kwargs.update(channel_base=2 * m["channel_base"], channel_max=2 * m["channel_max"])
    return G_kwargs, dict(common, **_mbstd(m))


register(GenerationSpec(
    name="stylegan3",
    module="zoo.models.stylegan3",
    loss="stylegan2",
    auto_hparams=_stylegan3_auto,
    network_kwargs=_stylegan3_kwargs,
    config_hparams=lambda m: dict(blur_init_sigma=10.0 if str(m.get("config", "t")).lower() == "r" else 0.0),
    description="StyleGAN3 (Karras et al. 2021): alias-free G (Fourier input, filtered lrelu), configs T and R",
))
