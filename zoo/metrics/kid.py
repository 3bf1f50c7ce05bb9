"""Kernel Inception distance (KID, Bińkowski et al. 2018, "Demystifying MMD GANs").

The squared maximum mean discrepancy between the generated features ``x`` and the real features
``y`` with the cubic polynomial kernel ``k(a, b) = (a.b / d + 1)^3`` (``d``: feature dimension),
estimated without bias on random subsets of ``m`` items from each set::

    MMD^2_u = [sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)] / (m (m - 1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2

and averaged over ``num_subsets`` subsets (NVIDIA: 100 subsets, ``m = min(n_gen, n_real, 1000)``,
items drawn without replacement within a subset). Being unbiased, the estimate is near zero,
and can be negative, for two samples of the same distribution. Computed in float64.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

__all__ = ["kernel_inception_distance", "mmd2_unbiased"]


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased MMD^2 estimate between two equally sized sets ``[m, d]`` (cubic kernel)."""
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise ValueError(f"need two sets of the same size >= 2, got {x.shape[0]} and {y.shape[0]}")
    kxx, kyy, kxy = _kernel(x, x), _kernel(y, y), _kernel(x, y)
    within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(gen_features: Any, real_features: Any, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0,
                              device: Optional[Any] = None) -> float:
    """KID of ``gen_features [n_gen, d]`` vs ``real_features [n_real, d]`` (arrays or tensors): the
    mean of :func:`mmd2_unbiased` over ``num_subsets`` random subsets of
    ``m = min(n_gen, n_real, max_subset_size)`` items of each, drawn with
    ``np.random.RandomState(seed)``. Computed in float64 on ``device`` (default: CPU)."""
    x = torch.as_tensor(np.asarray(gen_features) if not torch.is_tensor(gen_features) else gen_features)
    y = torch.as_tensor(np.asarray(real_features) if not torch.is_tensor(real_features) else real_features)
    x, y = x.to(device or "cpu", torch.float64), y.to(device or "cpu", torch.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be [n, d] with the same d, got {tuple(x.shape)} and {tuple(y.shape)}")
    m = min(x.shape[0], y.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 generated and 2 real items, got {x.shape[0]} and {y.shape[0]}")
    rnd = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        ix = torch.from_numpy(rnd.choice(x.shape[0], m, replace=False)).to(x.device)
        iy = torch.from_numpy(rnd.choice(y.shape[0], m, replace=False)).to(y.device)
        total += mmd2_unbiased(x[ix], y[iy])
    return total / num_subsets
