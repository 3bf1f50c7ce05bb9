"""Interop with official checkpoint formats.

- :mod:`zoo.interop.load`: :func:`load_any` / :func:`load_network` (``zoo.load``) for every format below.
- :mod:`zoo.interop.safe_pickle`: a restricted unpickler for NVIDIA's pickles (no code from the file runs).
- :mod:`zoo.interop.nvidia`: NVIDIA PyTorch pickles (stylegan2-ada-pytorch, stylegan3) -> zoo checkpoints,
  and the files ``export format=nvidia`` writes.
- :mod:`zoo.interop.tf`: NVIDIA TensorFlow ``(G, D, Gs)`` pickles (StyleGAN2-TF/-ADA-TF, StyleGAN, ProGAN)
  -> zoo checkpoints, without TensorFlow (``nvidia.import_nvidia_pickle`` routes such tuples there).
- :mod:`zoo.interop.rosinality`: rosinality/stylegan2-pytorch ``{g_ema, g, d, latent_avg}`` in and out.
- :mod:`zoo.interop.export`: zoo checkpoints out to NVIDIA's and rosinality's layouts.
- ``python -m zoo.interop.convert SRC DST`` and ``python -m zoo.interop.export ckpt=... format=... out=...``
  (the apps ``zoo.apps.convert`` / ``zoo.apps.export``).
"""
from zoo.interop.load import convert, import_checkpoint, import_torch_file, is_foreign, load_any, load_network

__all__ = ["load_any", "load_network", "is_foreign", "import_checkpoint", "import_torch_file", "convert"]
