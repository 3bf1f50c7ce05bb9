"""Convert an NVIDIA PyTorch pickle into a zoo checkpoint:

    python -m zoo.interop.convert stylegan3-t-ffhqu-256x256.pkl ffhqu-t-256.pt

The output is an ordinary zoo checkpoint (``zoo.load``, ``sample.py ckpt=...``) holding only tensors
and plain containers, written atomically; the source file's name and sha256 are recorded in it.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from zoo.interop import import_checkpoint
from zoo.training.checkpoint import CheckpointError, save_checkpoint

__all__ = ["convert", "main"]


def convert(src: str, dst: str) -> str:
    state = import_checkpoint(src)
    return save_checkpoint(dst, state)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.interop.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="NVIDIA network pickle (.pkl) from stylegan2-ada-pytorch or stylegan3")
    p.add_argument("dst", help="zoo checkpoint to write (.pt)")
    args = p.parse_args(argv)
    try:
        state = import_checkpoint(args.src)
        state_path = save_checkpoint(args.dst, state)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    src = state["source"]
    print(f"[zoo] {src['file']} ({src['flavour']}, sha256 {src['sha256'][:16]}...) -> {state_path}: "
          f"{state['generation']}{' config ' + src['config'].upper() if src.get('config') else ''}, "
          f"{state['G_kwargs']['img_resolution']} px, c_dim {state['G_kwargs']['c_dim']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
