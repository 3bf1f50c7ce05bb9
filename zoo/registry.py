"""Generation registry: one name per GAN generation, mapped to how to build and train it.

A spec names the module that holds the generation's networks (``zoo.models.<name>``), the loss the
shared training loop uses, and the hyperparameter rules that depend on the run (resolution, batch).
Checkpoints store only the generation *name* and plain init kwargs; everything is rebuilt from here,
so no import path from a file is ever trusted.

    >>> from zoo import registry
    >>> registry.names()
    ['stylegan2']
    >>> G = registry.get('stylegan2').build_generator(img_resolution=64, channel_base=4096)
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Dict, List, Tuple

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
    """

    name: str
    module: str
    loss: str
    auto_hparams: Callable[[int, int], Dict[str, Any]]
    network_kwargs: Callable[..., Tuple[Dict[str, Any], Dict[str, Any]]]
    description: str = ""
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


def _stylegan2_kwargs(m: Dict[str, Any], resolution: int, img_channels: int, c_dim: int):
    common = dict(c_dim=c_dim, img_resolution=resolution, img_channels=img_channels,
                  channel_base=m["channel_base"], channel_max=m["channel_max"], conv_clamp=m["conv_clamp"])
    G_kwargs = dict(common, z_dim=m["z_dim"], w_dim=m["w_dim"], mapping_layers=m["mapping_layers"],
                    mapping_lr_multiplier=m["mapping_lr_multiplier"], w_avg_beta=m["w_avg_beta"],
                    use_noise=m["use_noise"])
    D_kwargs = dict(common, mbstd_group_size=m["mbstd_group"], mbstd_num_channels=m["mbstd_channels"])
    return G_kwargs, D_kwargs


register(GenerationSpec(
    name="stylegan2",
    module="zoo.models.stylegan2",
    loss="stylegan2",
    auto_hparams=_stylegan2_auto,
    network_kwargs=_stylegan2_kwargs,
    description="StyleGAN2 (Karras et al. 2020): modulated convs, skip G, resnet D, lazy R1 + path length",
))
