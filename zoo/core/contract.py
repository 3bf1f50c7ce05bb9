"""The generator contract: what every zoo generator offers, asked in one place.

Every generator has NVIDIA's calling convention and attributes (``G(z, c, truncation_psi=...,
truncation_cutoff=..., noise_mode=...)``, ``z_dim``, ``c_dim``, ``img_resolution``, ``img_channels``).
Beyond that the generations differ, and code that renders, measures or edits images asks here
instead of guessing:

* **styles** (:func:`has_styles`): a mapping network ``G.mapping(z, c, ...) -> ws [N, num_ws, w_dim]``
  and ``G.synthesis(ws, noise_mode=...)``; every generation except ProGAN.
* **noise inputs** (:func:`noise_inputs`): per-layer ``noise_const`` buffers (StyleGAN, StyleGAN2
  with ``use_noise``), enumerated in ``G.synthesis.named_buffers()`` order, as NVIDIA's projector does.
* **input transform** (:func:`input_transform`, :func:`set_input_transform`): StyleGAN3's 3x3 user
  transform of the Fourier input (``G.synthesis.input.transform``), which translates and rotates
  the image.
* **seeds** (:func:`z_from_seeds`): the latent of a seed, the same on every machine.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = ["generation_name", "has_styles", "noise_inputs", "input_transform", "make_transform",
           "set_input_transform", "z_from_seed", "z_from_seeds"]


def generation_name(G) -> str:
    """The generation of ``G`` (``G.generation`` as set by ``zoo.load``, else its module's name)."""
    return getattr(G, "generation", None) or type(G).__module__.rsplit(".", 1)[-1]


def has_styles(G) -> bool:
    """Whether G has a mapping network and per-layer styles (every generation except ProGAN)."""
    return hasattr(G, "mapping") and hasattr(G, "synthesis") and hasattr(G, "num_ws")


def noise_inputs(G) -> List[Tuple[str, torch.nn.Module, int]]:
    """``(buffer name, module, resolution)`` of every per-layer noise input, in the order of
    ``G.synthesis.named_buffers()``. Empty for ProGAN, StyleGAN3 and ``use_noise=False``."""
    if not hasattr(G, "synthesis"):
        return []
    out = []
    for name, module in G.synthesis.named_modules():
        buf = module._buffers.get("noise_const")
        if buf is not None:
            out.append((f"{name}.noise_const" if name else "noise_const", module, int(buf.shape[-1])))
    return out


def input_transform(G) -> Optional[torch.Tensor]:
    """The StyleGAN3 Fourier input's user transform buffer (``[3, 3]``) of a generator or synthesis
    network, or None for generators without one."""
    synthesis = getattr(G, "synthesis", G)
    m = getattr(getattr(synthesis, "input", None), "transform", None)
    return m if isinstance(m, torch.Tensor) and tuple(m.shape) == (3, 3) else None


def make_transform(translate: Sequence[float] = (0, 0), angle: float = 0) -> np.ndarray:
    """3x3 rotation (``angle`` in degrees) + translation, rows ``[c, s, tx]``, ``[-s, c, ty]``, as in
    NVIDIA's gen_images.py. Translations are in image units (the image spans one unit, so
    ``d / img_resolution`` moves the picture by ``d`` pixels, positive x to the right)."""
    rad = math.radians(angle)
    c, s = math.cos(rad), math.sin(rad)
    m = np.eye(3)
    m[0] = [c, s, translate[0]]
    m[1] = [-s, c, translate[1]]
    return m


def set_input_transform(G, translate: Sequence[float] = (0, 0), rotate: float = 0) -> None:
    """Translate/rotate the images a generator (or synthesis network) produces, by writing the
    *inverse* of ``make_transform(translate, rotate)`` into its input transform."""
    m = input_transform(G)
    if m is None:
        raise ValueError(f"a {generation_name(G)} generator has no input transform (StyleGAN3 only)")
    with torch.no_grad():
        m.copy_(torch.as_tensor(np.linalg.inv(make_transform(translate, rotate)), dtype=torch.float32))


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """``[1, z_dim]``: NumPy's ``RandomState(seed).randn(1, z_dim)``, as NVIDIA's scripts."""
    return torch.from_numpy(np.random.RandomState(int(seed)).randn(1, z_dim)).float()


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """``[len(seeds), z_dim]``, one :func:`z_from_seed` per seed."""
    return torch.cat([z_from_seed(s, z_dim) for s in seeds])
