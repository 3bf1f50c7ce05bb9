"""Augmentation of every discriminator input during training (``aug=`` config group): the config
schema and its checks, and :class:`Augmentation`, which owns the pipeline of a run and, for ADA, its
adaptive probability.

Modes (``conf/aug/``): ``ada`` (NVIDIA's default for StyleGAN2/3: :class:`zoo.ops.augment.AugmentPipe`
with adaptive ``p``), ``fixed`` (the same pipeline at a constant ``p``), ``noaug`` and
``diffaugment`` (Zhao et al. 2020, every image, ``policy`` color,translation,cutout). ``auto`` (the
default of ``train.yaml``) takes the generation's default (``GenerationSpec.augment``: ada for
StyleGAN2 and StyleGAN3, noaug for ProGAN and StyleGAN, as the originals).

The ADA heuristic (Karras et al. 2020, §3; NVIDIA's training loop): the losses report
``sign(D(real))`` of every real image D scores (main and R1 passes); every ``interval`` (4)
iterations the mean over those images of all processes, ``r_t``, moves
``p += sign(r_t - target) * batch * interval / (ada_kimg * 1000)``, clamped at ``p >= 0``
(``target`` 0.6, ``ada_kimg`` 500: p can go from 0 to 1 in 500 kimg). The sums are all-reduced
before the update, so every process keeps the same ``p``; the pending sums and ``p`` are part of
the checkpoint, so a resumed run continues exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

import torch

from zoo.core.errors import ConfigError
from zoo.ops.augment import DIFFAUGMENT_POLICIES, PRESETS, AugmentPipe, DiffAugment

__all__ = ["AugConfig", "MODES", "Augmentation", "check_aug_config", "resolve_mode", "build_augmentation",
           "ADA_KIMG", "ADA_KIMG_FINETUNE"]

MODES = ("auto", "ada", "fixed", "noaug", "diffaugment")
ADA_KIMG = 500.0            # NVIDIA's ada_kimg
ADA_KIMG_FINETUNE = 100.0   # ... when starting from a trained network (NVIDIA's --resume)


@dataclass
class AugConfig:
    """``conf/aug/*.yaml``; the train config's ``aug`` node."""

    mode: str = "auto"  # auto (the generation's default) | ada | fixed | noaug | diffaugment
    # ada: the starting probability (null: 0, or the init= file's augment_pipe.p); fixed: the probability.
    # Typed Any so that a non-number fails with the key and the fix (check_aug_config), not a Hydra trace.
    p: Any = None
    pipe: str = "bgc"  # ada / fixed: NVIDIA's --augpipe preset (blit, geom, color, filter, noise, cutout, bg, bgc, bgcf, bgcfn, bgcfnc)
    target: float = 0.6  # ada: target of E[sign(D(real))]
    interval: int = 4  # ada: iterations between adjustments
    ada_kimg: Optional[float] = None  # ada: kimg for p to move by 1 (null: 500, 100 with init=)
    policy: List[str] = field(default_factory=lambda: list(DIFFAUGMENT_POLICIES))  # diffaugment: its transforms


def resolve_mode(aug: Mapping[str, Any], default: str) -> str:
    mode = str(aug.get("mode") or "auto")
    return default if mode == "auto" else mode


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_aug_config(aug: Optional[Mapping[str, Any]]) -> None:
    """Raise :class:`ConfigError` (key and fix) for a bad ``aug.*`` value."""
    if aug is None:
        return
    mode = aug.get("mode")
    if mode not in MODES:
        raise ConfigError("aug", f"unknown augmentation mode {mode!r}", "use aug=ada, fixed, noaug, diffaugment (or auto)")
    p = aug.get("p")
    if p is not None:
        if not _is_number(p) or not math.isfinite(float(p)):
            raise ConfigError("aug.p", f"{p!r} is not a number", "use a probability in [0, 1], e.g. aug.p=0.2")
        if not 0 <= float(p) <= 1:
            raise ConfigError("aug.p", f"{p} is outside [0, 1]", "use a probability in [0, 1], e.g. aug.p=0.2")
    if mode == "fixed" and p is None:
        raise ConfigError("aug.p", "aug=fixed needs a probability", "pass e.g. aug.p=0.2")
    if aug.get("pipe") not in PRESETS:
        raise ConfigError("aug.pipe", f"unknown augmentation preset {aug.get('pipe')!r}",
                          f"use one of {', '.join(PRESETS)} (bgc is NVIDIA's default)")
    if mode in ("auto", "ada"):
        if not 0 <= float(aug.get("target", 0.6)) <= 1:
            raise ConfigError("aug.target", f"{aug.get('target')} is outside [0, 1]", "use e.g. aug.target=0.6")
        if int(aug.get("interval", 4)) < 1:
            raise ConfigError("aug.interval", f"must be >= 1, got {aug.get('interval')}", "use e.g. aug.interval=4")
        if aug.get("ada_kimg") is not None and float(aug["ada_kimg"]) <= 0:
            raise ConfigError("aug.ada_kimg", f"must be > 0, got {aug['ada_kimg']}", "use e.g. aug.ada_kimg=500")
    if mode == "diffaugment":
        policy = [str(t) for t in aug.get("policy") or []]
        unknown = [t for t in policy if t not in DIFFAUGMENT_POLICIES]
        if not policy or unknown:
            raise ConfigError("aug.policy", f"unknown DiffAugment transform(s) {unknown or policy!r}",
                              f"use a comma-separated subset of {','.join(DIFFAUGMENT_POLICIES)}")


class Augmentation:
    """The augmentation of one run: ``aug(images)`` augments a batch of D inputs; for ADA,
    :meth:`observe` collects the sign statistic and :meth:`end_iteration` adapts ``p``."""

    def __init__(self, mode: str, pipe: torch.nn.Module, *, target: float = 0.6, interval: int = 4,
                 ada_kimg: float = ADA_KIMG):
        self.mode = mode
        self.pipe = pipe
        self.adaptive = mode == "ada"
        self.target, self.interval, self.ada_kimg = float(target), int(interval), float(ada_kimg)
        self._signs: Optional[torch.Tensor] = None  # [sum of sign(D(real)), count] since the last adjustment

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.pipe(images)

    @property
    def p(self) -> Optional[float]:
        """The current probability (``None`` for DiffAugment, which has none)."""
        return self.pipe.probability if isinstance(self.pipe, AugmentPipe) else None

    def set_p(self, p: float) -> None:
        if isinstance(self.pipe, AugmentPipe):
            self.pipe.set_probability(p)

    def observe(self, real_logits: torch.Tensor) -> None:
        """Add ``sign(D(real))`` of a batch of real images to the heuristic (ADA only; no sync)."""
        if not self.adaptive:
            return
        s = real_logits.detach().sign().sum().double()
        pair = torch.stack([s, s.new_tensor(float(real_logits.numel()))])
        self._signs = pair if self._signs is None else self._signs + pair

    def end_iteration(self, batch_idx: int, batch: int,
                      all_reduce_sum: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> None:
        """After iteration ``batch_idx`` (counted from 1) of ``batch`` images: every ``interval``
        iterations, adjust ``p`` from the signs of all processes (one device sync)."""
        if not self.adaptive or batch_idx % self.interval != 0:
            return
        signs = self._signs if self._signs is not None else torch.zeros(2, dtype=torch.float64, device=self.pipe.p.device)
        total, count = (float(v) for v in all_reduce_sum(signs.to(self.pipe.p.device)))
        self._signs = None
        if count == 0:
            return
        rt = total / count
        adjust = math.copysign(1.0, rt - self.target) if rt != self.target else 0.0
        adjust *= batch * self.interval / (self.ada_kimg * 1000)
        # float32 arithmetic, as NVIDIA's buffer: the value survives a float32 checkpoint exactly.
        p = torch.tensor(self.p, dtype=torch.float32) + adjust
        self.set_p(max(float(p), 0.0))

    def state_dict(self) -> Dict[str, Any]:
        """Plain values for the checkpoint: the mode, ``p`` and the pending sign sums."""
        signs = [0.0, 0.0] if self._signs is None else [float(v) for v in self._signs]
        return {"mode": self.mode, "p": self.p, "signs": signs}

    def load_state_dict(self, state: Optional[Dict[str, Any]]) -> None:
        """Continue a checkpoint's ADA state (``p`` and pending signs) when it ran the same mode; a
        fixed ``p`` or another mode keeps this run's configuration."""
        if not state or not self.adaptive or state.get("mode") != self.mode:
            return
        self.set_p(float(state["p"]))
        total, count = (float(v) for v in state.get("signs", [0.0, 0.0]))
        self._signs = None if count == 0 else torch.tensor([total, count], dtype=torch.float64, device=self.pipe.p.device)

    def pipe_state(self) -> Optional[Dict[str, torch.Tensor]]:
        """NVIDIA's ``augment_pipe`` buffers (``p``, ``Hz_geom``, ``Hz_fbank``), for checkpoints and
        export; ``None`` for DiffAugment."""
        if not isinstance(self.pipe, AugmentPipe):
            return None
        return {k: v.detach().cpu().clone() for k, v in self.pipe.state_dict().items()}


def build_augmentation(aug: Optional[Mapping[str, Any]], default_mode: str, device: torch.device, *,
                       finetuning: bool = False) -> Optional[Augmentation]:
    """The run's :class:`Augmentation` from its ``aug`` config node (``None``: ``auto``), or ``None``
    for ``noaug``. ``default_mode`` is the generation's; ``finetuning`` (``init=``) makes a null
    ``ada_kimg`` 100 instead of 500, as NVIDIA's ``--resume``."""
    aug = dict(aug or {})
    mode = resolve_mode(aug, default_mode)
    if mode == "noaug":
        return None
    if mode == "diffaugment":
        return Augmentation(mode, DiffAugment(list(aug.get("policy") or DIFFAUGMENT_POLICIES)).to(device))
    pipe = AugmentPipe.from_preset(str(aug.get("pipe") or "bgc"), p=float(aug.get("p") or 0.0)).to(device)
    ada_kimg = aug.get("ada_kimg")
    if ada_kimg is None:
        ada_kimg = ADA_KIMG_FINETUNE if finetuning else ADA_KIMG
    return Augmentation(mode, pipe, target=float(aug.get("target", 0.6)), interval=int(aug.get("interval", 4)),
                        ada_kimg=float(ada_kimg))
