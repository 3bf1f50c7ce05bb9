"""Starting a run from a trained network (``init=PATH``) and Freeze-D (``freeze_d=N``).

``init=`` is NVIDIA's ``--resume`` of a pickle, a *new* run: G, D and G_ema (with their buffers:
``w_avg``, noise constants, filters...) are copied from any file :func:`zoo.interop.load_any`
reads (zoo ``.pt``, NVIDIA PyTorch/TF pickles, rosinality ``.pt``; no code from the file runs), the
optimizers start fresh and the image count starts at 0. As in NVIDIA's resume, the G EMA ramp-up is
off, StyleGAN3-R's discriminator blur starts at 0 (when left to its auto rule) and ADA adapts 5x
faster (``aug.ada_kimg`` 100 when left null); ADA starts from the file's ``augment_pipe.p`` unless
``aug.p`` is given. ``resume=`` instead continues a run exactly.

Tensors are matched by name and shape. ``init_strict=true`` (default) refuses any difference and
names each differing tensor; ``init_strict=false`` copies the tensors whose names and shapes match
and lists the others (NVIDIA's ``copy_params_and_buffers(..., require_all=False)``).

Freeze-D (Mo et al. 2020; NVIDIA's ``--freezed``): the first ``N`` layers of D counted from its
input, in creation order within the blocks ``b{R}``, ``b{R/2}``, ... (StyleGAN2: ``fromrgb``,
``conv0``, ``conv1``, ``skip`` of the first block, then ``conv0``, ``conv1``, ``skip`` of each
next one; ProGAN/StyleGAN: ``fromrgb``, ``conv0``, ``conv1_down`` per block; the 4x4 epilogue never)
get no gradient, so the optimizer never moves them.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import torch

from zoo.core.distributed import is_torchrun
from zoo.core.errors import CheckpointError, ConfigError, ZooError
from zoo.core.files import file_sha256
from zoo.interop import load_any

__all__ = ["load_init", "apply_init", "finetune_hparams", "frozen_layers", "check_init"]

NETWORKS = ("G", "D", "G_ema")
_FIX = "pass init=PATH to a zoo checkpoint (.pt), an NVIDIA pickle (.pkl) or a rosinality .pt"
_CACHE: Dict[Tuple[str, int, int], Dict[str, Any]] = {}


def _key(path: str) -> Tuple[str, int, int]:
    st = os.stat(path)
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


def load_init(path: str, *, keep: bool = False) -> Dict[str, Any]:
    """The checkpoint dict of an ``init=`` file, or :class:`ConfigError` on key ``init`` if it is
    missing, unreadable or unsafe. ``keep=True`` keeps it for the next call (the start-up check
    loads it once, the training process takes it over)."""
    if not path or not os.path.isfile(str(path)):
        raise ConfigError("init", f"file {path!r} does not exist", _FIX)
    key = _key(str(path))
    state = _CACHE.pop(key, None)
    if state is None:
        try:
            state = load_any(str(path))
        except ZooError as e:
            raise ConfigError("init", f"cannot start from {path!r}: {e.problem}", _FIX) from None
        if not isinstance(state, dict) or state.get("G_ema") is None and state.get("G") is None:
            raise ConfigError("init", f"{path!r} holds no generator", _FIX)
        state.setdefault("source", {})
        state["source"].setdefault("sha256", file_sha256(str(path)))
    if keep:
        _CACHE.clear()
        _CACHE[key] = state
    return state


def check_init(cfg: Any) -> None:
    """The start-up checks of ``init=`` / ``freeze_d=`` (before anything is written): not together
    with ``resume=``, and the file is there and loads safely."""
    if cfg.get("freeze_d") is not None and int(cfg.get("freeze_d")) < 0:
        raise ConfigError("freeze_d", f"must be >= 0, got {cfg.get('freeze_d')}", "use freeze_d=0 (off) or e.g. freeze_d=10")
    if not cfg.get("init"):
        return
    if cfg.get("resume"):
        raise ConfigError("init", "init= and resume= cannot be used together",
                          "use resume= to continue a run exactly, or init= to start a new run from its weights")
    # Kept for the training process when it is this one (one process, or each torchrun rank); spawned
    # workers (gpus > 1) read the file themselves.
    load_init(str(cfg.get("init")), keep=int(cfg.get("gpus") or 1) == 1 or is_torchrun())


def finetune_hparams(hp: Dict[str, Any], model_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """NVIDIA's ``--resume`` settings for a run that starts from trained weights: no EMA ramp-up, and
    StyleGAN3-R's discriminator blur off when left to its auto rule."""
    hp = dict(hp, ema_rampup=None)
    if "blur_init_sigma" in hp and model_cfg.get("blur_init_sigma") is None:
        hp["blur_init_sigma"] = 0.0
    return hp


def _compare(ours: Dict[str, torch.Tensor], theirs: Optional[Dict[str, torch.Tensor]]) -> List[str]:
    """Descriptions of the tensors that differ in name or shape (theirs ``None``: all missing)."""
    if theirs is None:
        return ["every tensor (the file holds no such network)"]
    out = [f"{k} (not in the file)" for k in ours if k not in theirs]
    out += [f"{k} (only in the file)" for k in theirs if k not in ours]
    out += [f"{k} {list(theirs[k].shape)} in the file vs {list(v.shape)}" for k, v in ours.items()
            if k in theirs and tuple(theirs[k].shape) != tuple(v.shape)]
    return out


def apply_init(trainer, path: str, *, strict: bool = True, log: bool = True) -> Dict[str, Any]:
    """Copy G, D and G_ema of ``path`` into ``trainer``'s networks (matching names and shapes) and
    set ADA's starting ``p`` from the file's ``augment_pipe`` when ``aug.p`` is not given. Returns the
    record kept in ``job.json`` and in every checkpoint (``init``)."""
    state = load_init(path)
    source = state.get("source") or {}
    if state.get("generation") not in (None, trainer.spec.name) and strict:
        raise CheckpointError(f"{path!r} holds a {state['generation']!r} model but the config trains "
                              f"{trainer.spec.name!r}", key="init",
                              fix=f"use model={state['generation']}, or init_strict=false to copy what matches")
    theirs = {k: state.get(k) for k in NETWORKS}
    if theirs["G"] is None:
        theirs["G"] = theirs["G_ema"]
    if theirs["G_ema"] is None:
        theirs["G_ema"] = theirs["G"]
    nets = {k: getattr(trainer, k) for k in NETWORKS}
    diffs = {k: _compare(net.state_dict(), theirs[k]) for k, net in nets.items()}
    if strict and any(diffs.values()):
        parts = []
        for k in NETWORKS:
            if diffs[k]:
                parts.append(f"{k}: same as G" if k == "G_ema" and diffs[k] == diffs["G"] else f"{k}: " + ", ".join(diffs[k]))
        raise CheckpointError(f"{path!r} does not match the configured architecture ({'; '.join(parts)})", key="init",
                              fix="match the model keys, resolution and labels to the file, or pass init_strict=false "
                                  "to copy only the tensors whose names and shapes match")
    copied, skipped = 0, {}
    with torch.no_grad():
        for k, net in nets.items():
            src = theirs[k] or {}
            for name, t in net.state_dict().items():  # parameters and buffers (views of the live tensors)
                if name in src and tuple(src[name].shape) == tuple(t.shape):
                    t.copy_(src[name].to(t.dtype))
                    copied += 1
            if diffs[k]:
                skipped[k] = diffs[k]
    p = None
    aug = trainer.augment
    pipe_state = state.get("augment_pipe") or {}
    if aug is not None and aug.adaptive and (trainer.cfg.get("aug") or {}).get("p") is None and "p" in pipe_state:
        p = max(float(pipe_state["p"]), 0.0)
        aug.set_p(p)
    record = {"path": os.path.abspath(path), "sha256": source.get("sha256"), "format": source.get("format", "zoo"),
              "generation": state.get("generation"), "strict": bool(strict), "tensors_copied": copied,
              "not_copied": skipped, "augment_p": p}
    if log:
        print(f"[zoo] init: {copied} tensors from {path}" + (f" (ADA starts at p={p:.4g})" if p is not None else ""),
              flush=True)
        for k, items in skipped.items():
            print(f"[zoo] init: {k}: not copied: {', '.join(items)}", flush=True)
    trainer.init_source = record
    return record


def frozen_layers(D: torch.nn.Module, n: int) -> List[Tuple[str, torch.nn.Module]]:
    """The first ``n`` layers of ``D`` from the input side (see the module docstring), as
    ``(name, module)``; :class:`ConfigError` on ``freeze_d`` if D has fewer."""
    layers: List[Tuple[str, torch.nn.Module]] = []
    for res in getattr(D, "block_resolutions", []):
        block = getattr(D, f"b{res}")
        for name, child in block.named_children():
            if any(True for _ in child.parameters()):
                layers.append((f"b{res}.{name}", child))
    if n > len(layers):
        raise ConfigError("freeze_d", f"D has {len(layers)} layers in its blocks, cannot freeze {n}",
                          f"use freeze_d <= {len(layers)}")
    return layers[:n]
