"""Convert an NVIDIA PyTorch pickle into a zoo checkpoint:

    python -m zoo.interop.convert stylegan3-t-ffhqu-256x256.pkl ffhqu-t-256.pt

The output is an ordinary zoo checkpoint (``zoo.load``, ``sample.py ckpt=...``) holding only tensors
and plain containers, written atomically; the source file's name and sha256 are recorded in it.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from zoo.interop import import_checkpoint, import_torch_file, is_foreign
from zoo.training.checkpoint import CheckpointError, save_checkpoint

__all__ = ["convert", "main"]


def _import(src: str):
    """NVIDIA pickles through :func:`import_checkpoint`; ``.pt`` files (rosinality checkpoints,
    ``zoo.interop.export format=nvidia`` files) through :func:`import_torch_file`."""
    if is_foreign(src):
        return import_checkpoint(src)
    state = import_torch_file(src)
    if state is None:
        raise CheckpointError(f"{src!r}: not a format the importers recognise (NVIDIA .pkl, rosinality .pt "
                              "with g_ema/latent_avg, or an `export format=nvidia` .pt); zoo checkpoints need "
                              "no conversion")
    return state


def convert(src: str, dst: str) -> str:
    state = _import(src)
    return save_checkpoint(dst, state)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.interop.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="NVIDIA network pickle (.pkl) from stylegan2-ada-pytorch or stylegan3, or a "
                               "rosinality .pt (g_ema/g/d/latent_avg)")
    p.add_argument("dst", help="zoo checkpoint to write (.pt)")
    args = p.parse_args(argv)
    try:
        state = _import(args.src)
        state_path = save_checkpoint(args.dst, state)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    src = state["source"]
    print(f"[zoo] {src['file']} ({src['flavour']}, sha256 {(src.get('sha256') or '')[:16]}...) -> {state_path}: "
          f"{state['generation']}{' config ' + src['config'].upper() if src.get('config') else ''}, "
          f"{state['G_kwargs']['img_resolution']} px, c_dim {state['G_kwargs']['c_dim']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
