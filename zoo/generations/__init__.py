"""The generation registry: one name per GAN generation, mapped to how to configure, build and train it.

Checkpoints store only the generation *name* and plain init kwargs; everything is rebuilt from here,
so no import path from a file is ever trusted.

    >>> from zoo import registry          # the same functions, under the name the README uses
    >>> registry.names()
    ['progan', 'stylegan', 'stylegan2', 'stylegan3']
    >>> G = registry.get('stylegan2').build_generator(img_resolution=64, channel_base=4096)

Adding a generation: its network in ``zoo/models/<name>.py``, its spec in
``zoo/generations/<name>.py`` (schema, auto rules, init kwargs, checks, bench presets), one line in
:data:`BUILTIN` below and a ``conf/model/<name>.yaml`` that names the schema (Hydra's ``model=<name>``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

from zoo.core.errors import UnknownGenerationError
from zoo.generations import progan, stylegan, stylegan2, stylegan3
from zoo.generations.spec import GenerationSpec, GrowingConfig, ModelConfig, RunShape

__all__ = ["GenerationSpec", "ModelConfig", "GrowingConfig", "RunShape", "register", "get", "names", "specs",
           "resolve_hparams", "UnknownGenerationError", "BUILTIN"]

BUILTIN = (progan.SPEC, stylegan.SPEC, stylegan2.SPEC, stylegan3.SPEC)

_REGISTRY: Dict[str, GenerationSpec] = {}


def register(spec: GenerationSpec, *, replace: bool = False) -> GenerationSpec:
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"generation {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> List[str]:
    return sorted(_REGISTRY)


def specs() -> List[GenerationSpec]:
    return [_REGISTRY[n] for n in names()]


def get(name: str) -> GenerationSpec:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownGenerationError(f"unknown generation {name!r}; known generations: {', '.join(names())}") from None


def resolve_hparams(model_cfg: Mapping[str, Any], resolution: int, batch: int, precision: str = "fp32") -> Dict[str, Any]:
    """The model config (``model_cfg['name']`` names the generation) with every ``null`` auto
    hyperparameter filled in from the resolution, the total batch and the resolved precision."""
    return get(model_cfg["name"]).resolve_hparams(model_cfg, resolution, batch, precision)


for _spec in BUILTIN:
    register(_spec)
