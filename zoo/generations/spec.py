"""What a generation is, besides its networks: :class:`GenerationSpec`, and the config schema every
generation's model node extends (:class:`ModelConfig`).

A generation file (``zoo/generations/<name>.py``) holds, for one generation, everything that is not
the network: its model config schema (the defaults of ``model=<name>``), its ``auto`` rules (the
hyperparameters left ``null`` that follow from the resolution and the total batch), the plain init
kwargs of G and D for a resolved config, the cross-key checks of its config and its benchmark
presets. The network itself lives in ``zoo/models/<name>.py``; the loss in ``zoo.training.losses``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch
from omegaconf import MISSING, OmegaConf

from zoo.core.errors import ConfigError
from zoo.core.parse import check_resolution

__all__ = ["GenerationSpec", "ModelConfig", "StyleConfig", "GrowingConfig", "RunShape", "check_mbstd", "check_growing",
           "common_kwargs", "mapping_kwargs", "mbstd_kwargs"]


@dataclass
class ModelConfig:
    """Keys shared by every generation. ``null`` hyperparameters are filled by the generation's
    ``auto`` rules from the resolution and the total batch (see the generation's file)."""

    name: str = MISSING
    z_dim: int = 512
    w_dim: int = 512
    channel_base: int = 32768
    channel_max: int = 512
    mbstd_group: int = 4
    mbstd_channels: int = 1
    glr: Optional[float] = None
    dlr: Optional[float] = None
    adam_betas: List[float] = field(default_factory=lambda: [0.0, 0.99])
    adam_eps: float = 1e-8
    r1_gamma: Optional[float] = None
    ema_kimg: Optional[float] = None
    ema_rampup: Optional[float] = 0.05
    G_reg_interval: Optional[int] = None
    D_reg_interval: Optional[int] = 16


@dataclass
class StyleConfig(ModelConfig):
    """Keys of the style-based generators (StyleGAN, StyleGAN2, StyleGAN3): the mapping network."""

    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.998
    style_mixing_prob: float = 0.9


def _official_minibatch() -> Dict[int, int]:
    # ProGAN 'v2-8gpus' / StyleGAN 8-GPU minibatch_dict (total batch); other resolutions: `batch` (32).
    return {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}


def _official_lr() -> Dict[int, float]:
    # ProGAN 'v2-8gpus' / StyleGAN G_lrate_dict = D_lrate_dict; other resolutions: glr / dlr (0.001).
    return {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}


@dataclass
class GrowingConfig:
    """Progressive growing (ProGAN / StyleGAN v1): see zoo/training/growing.py."""

    start_resolution: int = 4          # lod_initial_resolution
    stable_kimg: float = 600.0         # lod_training_kimg: images per resolution at full opacity
    fade_kimg: float = 600.0           # lod_transition_kimg: images while the next resolution fades in
    # Per-resolution dicts are merged by command-line overrides; null drops a whole dict.
    minibatch: Optional[Dict[int, int]] = field(default_factory=_official_minibatch)  # total batch per resolution
    lr: Optional[Dict[int, float]] = field(default_factory=_official_lr)              # G and D lr per resolution
    reset_optimizer: bool = True       # reset_opt_for_new_lod: Adam state reset when a fade starts or ends
    auto_scale: bool = True            # runs too short for the schedule: scale stable/fade to fit kimg / 2


@dataclass(frozen=True)
class RunShape:
    """The run-level values a generation's checks need: processes (``nodes × gpus``), total batch,
    per-process batch per pass."""

    gpus: int
    batch: int
    batch_gpu: int


def check_mbstd(m: Mapping[str, Any], run: RunShape) -> None:
    """The minibatch-stddev group must divide the per-GPU batch (every generation's D has one)."""
    group = m.get("mbstd_group")
    if group and run.batch_gpu % min(group, run.batch_gpu) != 0:
        raise ConfigError("model.mbstd_group", f"minibatch-stddev group {group} does not divide the per-GPU batch {run.batch_gpu}",
                          f"use a batch_gpu that is a multiple of {group}, or set model.mbstd_group to a divisor of {run.batch_gpu}")


def check_growing(m: Mapping[str, Any], run: RunShape) -> None:
    """Progressive growing: the schedule's values, and every per-resolution batch against gpus,
    batch_gpu and the minibatch-stddev group (as the run checks do for ``batch``)."""
    g = m["growing"]
    check_resolution(g["start_resolution"], "model.growing.start_resolution")
    for key in ("stable_kimg", "fade_kimg"):
        if g[key] < 0:
            raise ConfigError(f"model.growing.{key}", f"must be >= 0, got {g[key]}", f"use e.g. model.growing.{key}=600")
    for res, lr in (g.get("lr") or {}).items():
        check_resolution(res, f"model.growing.lr.{res}")
        if lr <= 0:
            raise ConfigError(f"model.growing.lr.{res}", f"must be > 0, got {lr}", "use a positive learning rate")
    group = m.get("mbstd_group")
    for res, batch in (g.get("minibatch") or {}).items():
        key = f"model.growing.minibatch.{res}"
        check_resolution(res, key)
        if batch < 1 or batch % run.gpus != 0:
            raise ConfigError(key, f"batch {batch} at {res} px is not a positive multiple of gpus={run.gpus}",
                              f"use a multiple of {run.gpus}")
        per_gpu = batch // run.gpus
        batch_gpu = min(run.batch_gpu, per_gpu)
        if per_gpu % batch_gpu != 0:
            raise ConfigError(key, f"batch {batch} at {res} px is not divisible by gpus×batch_gpu = {run.gpus}×{batch_gpu}",
                              "choose per-resolution batches that are multiples of gpus×batch_gpu, or leave batch_gpu=null")
        if group and batch_gpu % min(group, batch_gpu) != 0:
            raise ConfigError(key, f"minibatch-stddev group {group} does not divide the per-GPU batch {batch_gpu} at {res} px",
                              f"use a multiple of {group}, or set model.mbstd_group to a divisor of {batch_gpu}")


# ------------------------------------------------------------------------------------------------
# Init-kwargs helpers shared by the generation files
# ------------------------------------------------------------------------------------------------

def common_kwargs(m: Mapping[str, Any], resolution: int, img_channels: int, c_dim: int) -> Dict[str, Any]:
    """Init kwargs every generation's G and D share."""
    return dict(c_dim=c_dim, img_resolution=resolution, img_channels=img_channels,
                channel_base=m["channel_base"], channel_max=m["channel_max"])


def mapping_kwargs(m: Mapping[str, Any]) -> Dict[str, Any]:
    """Init kwargs of a style-based generator's mapping network."""
    return dict(z_dim=m["z_dim"], w_dim=m["w_dim"], mapping_layers=m["mapping_layers"],
                mapping_lr_multiplier=m["mapping_lr_multiplier"], w_avg_beta=m["w_avg_beta"])


def mbstd_kwargs(m: Mapping[str, Any]) -> Dict[str, Any]:
    """Init kwargs of the discriminators' minibatch standard deviation layer."""
    return dict(mbstd_group_size=m["mbstd_group"], mbstd_num_channels=m["mbstd_channels"])


# ------------------------------------------------------------------------------------------------
# The spec
# ------------------------------------------------------------------------------------------------

NetworkKwargs = Callable[[Mapping[str, Any], int, int, int], Tuple[Dict[str, Any], Dict[str, Any]]]


@dataclass(frozen=True)
class GenerationSpec:
    """Everything the zoo needs to know about one generation.

    name:           registry key, the Hydra ``model=`` choice and the checkpoint's ``generation``.
    module:         the module holding the ``Generator`` and ``Discriminator`` classes.
    schema:         the model config dataclass (``conf/model/<name>.yaml`` extends it).
    loss:           the name of the loss in ``zoo.training.losses``.
    auto_hparams:   ``f(model_cfg, resolution, batch, precision) -> dict`` of defaults for the keys left
                    ``null`` (NVIDIA's ``auto`` rules, written in terms of the *total* batch; ``precision``
                    is the run's resolved ``'fp32'`` or ``'mixed'``).
    network_kwargs: ``f(model_cfg, resolution, img_channels, c_dim) -> (G_kwargs, D_kwargs)`` for a
                    resolved model config.
    check:          optional ``f(model_cfg, RunShape)`` raising ConfigError for bad combinations.
    bench:          benchmark presets ``{'inference': {...}, 'train': {...}}`` (``python -m zoo.bench``).
    description:    one line for listings.
    augment:        the default of ``aug=auto``: ``'ada'`` or ``'noaug'`` (as the generation's original code).
    """

    name: str
    module: str
    schema: type
    loss: str
    auto_hparams: Callable[..., Dict[str, Any]]
    network_kwargs: NetworkKwargs
    check: Optional[Callable[[Mapping[str, Any], RunShape], None]] = None
    bench: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    augment: str = "noaug"
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

    def defaults(self) -> Dict[str, Any]:
        """The schema's defaults as a plain dict (what ``model=<name>`` composes to)."""
        return OmegaConf.to_container(OmegaConf.structured(self.schema), resolve=True)  # type: ignore[return-value]

    def resolve_hparams(self, model_cfg: Mapping[str, Any], resolution: int, batch: int,
                        precision: str = "fp32") -> Dict[str, Any]:
        """A copy of the model config with every ``null`` auto hyperparameter filled in."""
        out = dict(model_cfg)
        for key, value in self.auto_hparams(out, resolution, batch, precision=precision).items():
            if out.get(key) is None:
                out[key] = value
        return out
