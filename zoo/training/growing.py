"""Progressive growing (ProGAN, StyleGAN v1): the schedule and the fade-in of the real images.

The level of detail ``lod`` follows the originals' ``TrainingSchedule`` as a function of the
number of real images shown so far (``nimg``), never of epochs or step counters, so a resumed run
lands on exactly the same lod, resolution, batch and learning rate:

    phase      = floor(kimg / (stable_kimg + fade_kimg))
    phase_kimg = kimg - phase * (stable_kimg + fade_kimg)
    lod        = log2(R) - log2(start_resolution) - phase - max(phase_kimg - stable_kimg, 0) / fade_kimg
    lod        = max(lod, 0)

Each resolution is first trained for ``stable_kimg`` at full opacity, then the next one fades in
over ``fade_kimg``. The *current resolution* is ``R / 2^floor(lod)`` (the fading-in one during a
fade); the minibatch and learning rates are looked up for it in ``minibatch`` / ``lr`` (defaults
``batch`` / ``glr``, ``dlr`` for resolutions not listed). With ``reset_optimizer`` the Adam state is
reset whenever ``floor(lod)`` or ``ceil(lod)`` changes, i.e. when a fade starts and when it ends,
as ``reset_opt_for_new_lod`` does.

Real images are shown at the current resolution and faded like the originals' ``process_reals``:
box-downsampled to ``R / 2^floor(lod)`` (and rounded to 8 bits, as the multi-resolution TFRecords
store them), blended with their own 2x box-down/up-sampled copy by ``lod - floor(lod)``, then
nearest-upsampled to ``R``, the size the networks take.

Short runs (``auto_scale``): the default 600 + 600 kimg per resolution does not fit a CPU run of a
few dozen kimg, so when growing would take more than half of ``kimg``, ``stable_kimg`` and
``fade_kimg`` are scaled down together so that the final resolution is reached at ``kimg / 2``.
The scaled schedule is stored in the checkpoint and kept when resuming.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Iterable, Optional

import torch
import torch.nn.functional as F

__all__ = ["GrowingSchedule", "GrowingState", "set_lod", "stage_changed", "process_reals"]


@dataclasses.dataclass(frozen=True)
class GrowingState:
    lod: float
    resolution: int   # the current (highest active) resolution
    alpha: float      # fade-in weight of the current resolution's block (1 when stable)
    batch: int
    glr: float
    dlr: float


@dataclasses.dataclass(frozen=True)
class GrowingSchedule:
    final_resolution: int
    start_resolution: int
    stable_kimg: float
    fade_kimg: float
    batch: int                      # total batch at resolutions missing from ``minibatch``
    glr: float
    dlr: float
    minibatch: Dict[int, int] = dataclasses.field(default_factory=dict)
    lr: Dict[int, float] = dataclasses.field(default_factory=dict)
    reset_optimizer: bool = True

    @classmethod
    def from_hparams(cls, hp: Dict[str, Any], resolution: int, batch: int, total_kimg: float) -> "GrowingSchedule":
        g = hp["growing"]
        start = min(int(g["start_resolution"]), int(resolution))
        stable, fade = float(g["stable_kimg"]), float(g["fade_kimg"])
        steps = int(math.log2(resolution)) - int(math.log2(start))
        growth_kimg = steps * (stable + fade)
        if g.get("auto_scale", True) and total_kimg > 0 and growth_kimg > total_kimg / 2:
            scale = total_kimg / 2 / growth_kimg
            stable, fade = stable * scale, fade * scale
        return cls(final_resolution=int(resolution), start_resolution=start, stable_kimg=stable, fade_kimg=fade,
                   batch=int(batch), glr=float(hp["glr"]), dlr=float(hp["dlr"]),
                   minibatch={int(k): int(v) for k, v in (g.get("minibatch") or {}).items()},
                   lr={int(k): float(v) for k, v in (g.get("lr") or {}).items()},
                   reset_optimizer=bool(g.get("reset_optimizer", True)))

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "GrowingSchedule":
        d = dict(d)
        d["minibatch"] = {int(k): int(v) for k, v in d.get("minibatch", {}).items()}
        d["lr"] = {int(k): float(v) for k, v in d.get("lr", {}).items()}
        return cls(**d)

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def max_lod(self) -> int:
        return int(math.log2(self.final_resolution)) - 2

    def lod(self, nimg: int) -> float:
        kimg = nimg / 1000.0
        phase_dur = self.stable_kimg + self.fade_kimg
        phase = math.floor(kimg / phase_dur) if phase_dur > 0 else 0
        phase_kimg = kimg - phase * phase_dur
        lod = float(int(math.log2(self.final_resolution)) - int(math.log2(self.start_resolution)))
        lod -= phase
        if self.fade_kimg > 0:
            lod -= max(phase_kimg - self.stable_kimg, 0.0) / self.fade_kimg
        return max(lod, 0.0)

    def at(self, nimg: int) -> GrowingState:
        lod = self.lod(nimg)
        k = math.floor(lod)
        res = self.final_resolution >> k
        return GrowingState(lod=lod, resolution=res, alpha=1.0 - (lod - k), batch=self.minibatch.get(res, self.batch),
                            glr=self.lr.get(res, self.glr), dlr=self.lr.get(res, self.dlr))


def stage_changed(prev_lod: Optional[float], lod: float) -> bool:
    """True when a fade starts or ends between two iterations (``floor`` or ``ceil`` of lod moves)."""
    if prev_lod is None:
        return False
    return math.floor(prev_lod) != math.floor(lod) or math.ceil(prev_lod) != math.ceil(lod)


def set_lod(modules: Iterable[torch.nn.Module], lod: float) -> None:
    """Write ``lod`` into every ``lod`` buffer of the given networks (G, D, G_ema)."""
    for module in modules:
        for name, buf in module.named_buffers():
            if name == "lod" or name.endswith(".lod"):
                buf.fill_(lod)


def process_reals(x: torch.Tensor, lod: float) -> torch.Tensor:
    """Fade the real images ``x`` (``[N, C, R, R]`` in [-1, 1], from 8-bit data) to ``lod``."""
    k = math.floor(lod)
    t = lod - k
    factor = 2 ** k
    if factor > 1:  # the lower-resolution copy of the dataset, as stored (8 bits per channel)
        u = F.avg_pool2d((x + 1) * 127.5, factor)
        x = torch.round(u) / 127.5 - 1
    if t > 0:  # blend with the 2x box-down/up-sampled copy
        n, c, h, w = x.shape
        y = F.avg_pool2d(x, 2).reshape(n, c, h // 2, 1, w // 2, 1).expand(n, c, h // 2, 2, w // 2, 2)
        x = torch.lerp(x, y.reshape(n, c, h, w), t)
    if factor > 1:
        n, c, h, w = x.shape
        x = x.reshape(n, c, h, 1, w, 1).expand(n, c, h, factor, w, factor).reshape(n, c, h * factor, w * factor)
    return x
