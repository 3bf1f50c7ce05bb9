"""Self-describing training checkpoints.

One file holds everything needed to sample from, or continue, a run: the generation name and the
plain init kwargs of G and D (so the networks are rebuilt through ``zoo.generations``, never from an
import path stored in the file), the resolved config, the G / D / G_ema state dicts, optimizer
states, progress counters, the loss's running statistics (path-length mean) and RNG states.

Only tensors and plain containers are stored, so ``torch.load(path, weights_only=True)`` reads it.
Writes are atomic: the file is written under a temporary name in the same directory, flushed to
disk, then renamed over the final name, so an interrupted write never leaves a truncated checkpoint.
"""
from __future__ import annotations

import glob
import os
import re
from typing import Any, Dict, Optional

import torch

from zoo.core.errors import CheckpointError
from zoo.core.files import atomic_torch_save

FORMAT = "zoo-checkpoint"
FORMAT_VERSION = 1
SNAPSHOT_PATTERN = "network-snapshot-{kimg:06d}.pt"
_SNAPSHOT_RE = re.compile(r"network-snapshot-(\d+)\.pt$")

__all__ = ["save_checkpoint", "load_checkpoint", "find_latest_checkpoint", "snapshot_kimg", "CheckpointError",
           "FORMAT", "FORMAT_VERSION", "SNAPSHOT_PATTERN"]


def save_checkpoint(path: str, state: Dict[str, Any]) -> str:
    """Atomically write ``state`` (plain containers and tensors) to ``path``."""
    state = dict(state)
    state.setdefault("format", FORMAT)
    state.setdefault("format_version", FORMAT_VERSION)
    return atomic_torch_save(path, state)


def load_checkpoint(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a zoo checkpoint safely (``weights_only=True``: no code in the file is executed)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path!r}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle of arbitrary objects, truncated file, not a torch file...
        raise CheckpointError(
            f"{path!r} is not a loadable zoo checkpoint ({type(e).__name__}: {str(e).splitlines()[0]}). "
            "Only files written by zoo (tensors and plain containers) are accepted; "
            "NVIDIA .pkl files are read by zoo.load / sample.py directly or converted with "
            "`python -m zoo.interop.convert SRC.pkl DST.pt`."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a zoo checkpoint (no '{FORMAT}' header)")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path!r} was written by a newer zoo (format {state['format_version']})")
    return state


def snapshot_kimg(path: str) -> Optional[int]:
    m = _SNAPSHOT_RE.search(os.path.basename(path))
    return int(m.group(1)) if m else None


def find_latest_checkpoint(root: str) -> Optional[str]:
    """The most recently written snapshot anywhere below ``root`` (the newest run, its last snapshot)."""
    paths = glob.glob(os.path.join(glob.escape(root), "**", "network-snapshot-*.pt"), recursive=True)
    paths = [p for p in paths if snapshot_kimg(p) is not None]
    if not paths:
        return None
    return max(paths, key=lambda p: (os.path.getmtime(p), snapshot_kimg(p)))
