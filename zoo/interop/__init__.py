"""Interop with official checkpoint formats.

- :mod:`zoo.interop.safe_pickle`: a restricted unpickler for NVIDIA's pickles (no code from the file runs).
- :mod:`zoo.interop.nvidia`: NVIDIA PyTorch pickles (stylegan2-ada-pytorch, stylegan3) -> zoo checkpoints.
- :mod:`zoo.interop.tf`: NVIDIA TensorFlow ``(G, D, Gs)`` pickles (StyleGAN2-TF/-ADA-TF, StyleGAN, ProGAN)
  -> zoo checkpoints, without TensorFlow (``nvidia.import_nvidia_pickle`` routes such tuples there).
- ``python -m zoo.interop.convert SRC.pkl DST.pt``: write the converted checkpoint.
- :mod:`zoo.interop.rosinality`: rosinality/stylegan2-pytorch ``{g_ema, g, d, latent_avg}`` in and out.
- ``python -m zoo.interop.export ckpt=... format=nvidia|rosinality out=...`` (:mod:`zoo.interop.export`).

:func:`load_any` is what ``zoo.load`` and ``sample.py`` call: ``.pkl`` files go through the importer,
everything else through :func:`zoo.training.checkpoint.load_checkpoint`, and a ``.pt`` that is no zoo
checkpoint through :func:`import_torch_file` (rosinality checkpoints, ``export format=nvidia`` files).
"""
from __future__ import annotations

import os
from typing import Any, Dict

__all__ = ["load_any", "is_foreign", "import_checkpoint", "import_torch_file"]

PICKLE_SUFFIXES = (".pkl", ".pickle")


def is_foreign(path: str) -> bool:
    """True for files handled by an importer rather than the zoo checkpoint reader."""
    return isinstance(path, (str, os.PathLike)) and str(path).lower().endswith(PICKLE_SUFFIXES)


def import_checkpoint(path: str) -> Dict[str, Any]:
    from zoo.interop.nvidia import import_nvidia_pickle

    return import_nvidia_pickle(str(path))


def load_any(path: str) -> Dict[str, Any]:
    """A zoo checkpoint dict from a zoo ``.pt`` file or an NVIDIA ``.pkl`` (imported on the fly)."""
    if is_foreign(path):
        return import_checkpoint(path)
    from zoo.training.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)
    except CheckpointError as err:   # not a zoo checkpoint: a rosinality .pt or an nvidia export?
        state = import_torch_file(path)
        if state is None:
            raise err
        return state


def import_torch_file(path: str):
    """A zoo checkpoint dict from a non-zoo ``torch.save`` file that an importer recognises
    (rosinality ``{g_ema, g, d, latent_avg}``, or ``zoo.interop.export format=nvidia``), else ``None``.
    Read with ``torch.load(weights_only=True)`` (plus ``argparse.Namespace`` for rosinality's ``args``)."""
    from zoo.interop.export import import_nvidia_export, is_nvidia_export
    from zoo.interop.rosinality import import_rosinality, is_rosinality, read_torch_file
    from zoo.interop.safe_pickle import InteropError

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
