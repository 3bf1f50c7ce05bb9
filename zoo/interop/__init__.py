"""Interop with official checkpoint formats.

- :mod:`zoo.interop.safe_pickle`: a restricted unpickler for NVIDIA's pickles (no code from the file runs).
- :mod:`zoo.interop.nvidia`: NVIDIA PyTorch pickles (stylegan2-ada-pytorch, stylegan3) -> zoo checkpoints.
- ``python -m zoo.interop.convert SRC.pkl DST.pt``: write the converted checkpoint.

:func:`load_any` is what ``zoo.load`` and ``sample.py`` call: ``.pkl`` files go through the importer,
everything else through :func:`zoo.training.checkpoint.load_checkpoint`.
"""
from __future__ import annotations

import os
from typing import Any, Dict

__all__ = ["load_any", "is_foreign", "import_checkpoint"]

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
    from zoo.training.checkpoint import load_checkpoint

    return load_checkpoint(path)
