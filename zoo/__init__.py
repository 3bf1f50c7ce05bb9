"""zoo: ProGAN → StyleGAN3 in one PyTorch package, behind one registry.

    import zoo
    G = zoo.load("outputs/.../network-snapshot-000100.pt")        # EMA generator, eval mode, CPU
    img = G(z, c=None, truncation_psi=0.7, noise_mode="const")    # NCHW float in [-1, 1]
"""
from __future__ import annotations

from typing import Any

from zoo.core import __version__

__all__ = ["load", "__version__"]


def load(path: Any, which: str = "G_ema", device: Any = "cpu", precision: str = "fp32"):
    """Load a network from a zoo checkpoint, rebuilt through the registry from the generation name
    and init kwargs stored in the file (``torch.load(weights_only=True)``: no code is executed).
    ``path`` may also be an NVIDIA ``.pkl`` (PyTorch or TensorFlow), a rosinality ``.pt``, an
    ``export format=nvidia`` file, or an already loaded checkpoint dict.

    ``which``: ``'G_ema'`` (default, the generator to sample from), ``'G'`` or ``'D'``;
    ``precision``: ``'fp32'`` (default), ``'mixed'`` (NVIDIA's policy; fp16 on CUDA, bf16 on CPU) or
    ``'auto'``; ``G.set_precision(...)`` changes it later. Returns the module in eval mode with
    gradients off, on ``device``.
    """
    from zoo.interop.load import load_network

    return load_network(path, which=which, device=device, precision=precision)
