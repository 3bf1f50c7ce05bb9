"""Loading any checkpoint the zoo understands, and networks from it.

:func:`load_any` is what ``zoo.load``, ``sample.py`` and the metrics call: ``.pkl`` files go through
the NVIDIA importers (PyTorch pickles, TensorFlow ``(G, D, Gs)`` tuples), everything else through
:func:`zoo.core.checkpoint.load_checkpoint`, and a ``.pt`` that is no zoo checkpoint through
:func:`import_torch_file` (rosinality checkpoints, ``export format=nvidia`` files). No code from a
file ever runs.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import torch

from zoo import generations
from zoo.core.checkpoint import load_checkpoint, save_checkpoint
from zoo.core.errors import CheckpointError, InteropError
from zoo.interop.nvidia import import_nvidia_export, import_nvidia_pickle, is_nvidia_export
from zoo.interop.rosinality import import_rosinality, is_rosinality
from zoo.interop.safe_pickle import read_torch_file
from zoo.ops.precision import resolve_mode

__all__ = ["load_any", "load_network", "is_foreign", "import_checkpoint", "import_torch_file", "convert",
           "PICKLE_SUFFIXES"]

PICKLE_SUFFIXES = (".pkl", ".pickle")


def is_foreign(path: str) -> bool:
    """True for files handled by an importer rather than the zoo checkpoint reader."""
    return isinstance(path, (str, os.PathLike)) and str(path).lower().endswith(PICKLE_SUFFIXES)


def import_checkpoint(path: str) -> Dict[str, Any]:
    """A zoo checkpoint dict from an NVIDIA pickle (PyTorch or TensorFlow)."""
    return import_nvidia_pickle(str(path))


def import_torch_file(path: str):
    """A zoo checkpoint dict from a non-zoo ``torch.save`` file that an importer recognises
    (rosinality ``{g_ema, g, d, latent_avg}``, or ``zoo.interop.export format=nvidia``), else ``None``.
    Read with ``torch.load(weights_only=True)`` (plus ``argparse.Namespace`` for rosinality's ``args``)."""
    if not os.path.isfile(str(path)):
        return None
    try:
        data = read_torch_file(str(path))
    except InteropError:
        return None
    if is_rosinality(data):
        return import_rosinality(str(path), data)
    if is_nvidia_export(data):
        return import_nvidia_export(str(path), data)
    return None


def load_any(path: str) -> Dict[str, Any]:
    """A zoo checkpoint dict from a zoo ``.pt`` file, an NVIDIA ``.pkl`` or a rosinality / exported ``.pt``."""
    if is_foreign(path):
        return import_checkpoint(path)
    try:
        return load_checkpoint(path)
    except CheckpointError as err:   # not a zoo checkpoint: a rosinality .pt or an nvidia export?
        state = import_torch_file(path)
        if state is None:
            raise err
        return state


def load_network(path: Any, which: str = "G_ema", device: Any = "cpu", precision: str = "fp32",
                 precision_dtype: Optional[str] = None):
    """A network from a checkpoint (``zoo.load``): rebuilt through the registry from the generation
    name and init kwargs stored in the file, in eval mode with gradients off, on ``device``.
    ``path``: anything :func:`load_any` reads, or an already loaded checkpoint dict; ``which``:
    ``'G_ema'`` (default), ``'G'`` or ``'D'``; ``precision``: ``'fp32'`` (default, exact),
    ``'mixed'`` (NVIDIA's policy: fp16 on CUDA, bf16 on CPU) or ``'auto'`` (mixed where it is faster;
    :mod:`zoo.ops.precision`). Weights are float32 in every case."""
    if which not in ("G_ema", "G", "D"):
        raise ValueError(f"which must be 'G_ema', 'G' or 'D', got {which!r}")
    state = path if isinstance(path, dict) else load_any(path)
    if isinstance(path, dict):
        path = "<checkpoint dict>"
    try:
        spec = generations.get(state["generation"])
    except KeyError as e:
        raise CheckpointError(f"{path!r}: {e}") from None
    if state.get(which) is None:
        raise CheckpointError(f"{path!r} holds no {which} network")
    if which == "D":
        net = spec.build_discriminator(**state["D_kwargs"])
    else:
        net = spec.build_generator(**state["G_kwargs"])
    net.load_state_dict(state[which])
    mode = resolve_mode(precision, torch.device(device), precision_dtype)
    if hasattr(net, "set_precision"):
        net.set_precision(mode, precision_dtype)
    net.eval().requires_grad_(False)
    net.generation = state["generation"]
    return net.to(device)


def convert(src: str, dst: str) -> Dict[str, Any]:
    """Import ``src`` (an NVIDIA ``.pkl``, a rosinality ``.pt`` or an ``export format=nvidia`` ``.pt``)
    and write it to ``dst`` as a zoo checkpoint (atomically). Returns the checkpoint dict."""
    if is_foreign(src):
        state = import_checkpoint(src)
    else:
        state = import_torch_file(src)
        if state is None:
            raise CheckpointError(f"{src!r}: not a format the importers recognise (NVIDIA .pkl, rosinality .pt "
                                  "with g_ema/latent_avg, or an `export format=nvidia` .pt); zoo checkpoints need "
                                  "no conversion")
    save_checkpoint(dst, state)
    return state
