"""Improved precision and recall (Kynkäänniemi et al. 2019), with NVIDIA's k-NN manifolds.

A set of feature vectors defines a manifold: the union of the balls around each of its points
whose radius is the distance to that point's ``k``-th nearest neighbour in the set (the point
itself not counted; NVIDIA's ``pr50k3`` uses k = 3). A probe lies on the manifold if it is within
the radius of at least one of its points (distance <= radius).

* precision = the fraction of generated features on the manifold of the real features;
* recall    = the fraction of real features on the manifold of the generated features.

Distances are Euclidean, computed in float32 on the device in blocks (``row_batch`` probes by
``col_batch`` manifold points), so memory stays bounded for 50k x 200k comparisons; the k
smallest distances of each point are merged across column blocks. (NVIDIA keeps the features in
float16; float32 is used here.)
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch

__all__ = ["precision_recall", "knn_radii", "on_manifold"]


def _as_tensor(x: Any, device: Any) -> torch.Tensor:
    t = x if torch.is_tensor(x) else torch.from_numpy(np.asarray(x))
    return t.to(device or "cpu", torch.float32)


def _sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``[len(a), len(b)]`` (|a|^2 + |b|^2 - 2 a.b, clamped at 0)."""
    d = a.square().sum(1, keepdim=True) + b.square().sum(1)[None] - 2 * (a @ b.T)
    return d.clamp_(min=0)


def knn_radii(manifold: torch.Tensor, k: int, row_batch: int = 10000, col_batch: int = 10000) -> torch.Tensor:
    """Squared distance from each point to its ``k``-th nearest neighbour in ``manifold``
    (excluding itself: the (k+1)-th smallest distance, the first being the point itself)."""
    n = manifold.shape[0]
    if n < k + 1:
        raise ValueError(f"a {k}-NN manifold needs more than {k} points, got {n}")
    out = []
    for rows in manifold.split(row_batch):
        best = None
        for cols in manifold.split(col_batch):
            d = _sq_dist(rows, cols)
            cand = d if best is None else torch.cat([best, d], dim=1)
            best = cand.topk(min(k + 1, cand.shape[1]), dim=1, largest=False).values
        out.append(best[:, k])
    return torch.cat(out)


def on_manifold(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor,
                row_batch: int = 10000, col_batch: int = 10000) -> torch.Tensor:
    """Boolean ``[len(probes)]``: whether each probe is within the radius of some manifold point."""
    out = []
    for rows in probes.split(row_batch):
        hit = torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)
        for cols, r in zip(manifold.split(col_batch), radii.split(col_batch)):
            hit |= (_sq_dist(rows, cols) <= r[None]).any(dim=1)
        out.append(hit)
    return torch.cat(out)


def precision_recall(gen_features: Any, real_features: Any, k: int = 3, row_batch: int = 10000,
                     col_batch: int = 10000, device: Optional[Any] = None) -> Tuple[float, float]:
    """``(precision, recall)`` of generated vs real features ``[n, d]`` (see the module docstring)."""
    gen, real = _as_tensor(gen_features, device), _as_tensor(real_features, device)
    if gen.ndim != 2 or real.ndim != 2 or gen.shape[1] != real.shape[1]:
        raise ValueError(f"features must be [n, d] with the same d, got {tuple(gen.shape)} and {tuple(real.shape)}")
    result = []
    for manifold, probes in ((real, gen), (gen, real)):
        radii = knn_radii(manifold, k, row_batch, col_batch)
        result.append(float(on_manifold(probes, manifold, radii, row_batch, col_batch).double().mean()))
    return result[0], result[1]
