"""Fréchet distance between two Gaussians (FID, Heusel et al. 2017), in float64 without SciPy.

For feature means ``mu1, mu2`` and covariances ``S1, S2``::

    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

``S1 S2`` is not symmetric, but it is similar to the symmetric positive semi-definite matrix
``M = S1^(1/2) S2 S1^(1/2)`` (AB and BA have the same eigenvalues, with A = S1^(1/2), B = S1^(1/2) S2),
so ``tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(M))``. Both square roots come from symmetric
eigendecompositions (``numpy.linalg.eigh``), with the tiny negative eigenvalues that rounding
leaves on singular covariances (fewer samples than dimensions) clipped to zero. This needs no
general matrix square root, and never produces the spurious imaginary parts SciPy's ``sqrtm`` of
``S1 S2`` can.

Covariances are the population ones (divided by N), as NVIDIA's metric computes them.
"""
from __future__ import annotations

import numpy as np

__all__ = ["frechet_distance", "sqrtm_psd", "trace_sqrt_product"]


def sqrtm_psd(S: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues,
    from rounding, are clipped to 0)."""
    S = np.asarray(S, dtype=np.float64)
    S = (S + S.T) / 2
    lam, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(lam, 0, None))) @ V.T


def trace_sqrt_product(S1: np.ndarray, S2: np.ndarray) -> float:
    """``tr((S1 S2)^(1/2))`` for symmetric PSD ``S1``, ``S2``, via ``S1^(1/2) S2 S1^(1/2)``."""
    R = sqrtm_psd(S1)
    M = R @ np.asarray(S2, dtype=np.float64) @ R
    lam = np.linalg.eigvalsh((M + M.T) / 2)
    return float(np.sqrt(np.clip(lam, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (see the module docstring)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"shape mismatch: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    m = float(np.square(mu1 - mu2).sum())
    return m + float(np.trace(sigma1) + np.trace(sigma2)) - 2 * trace_sqrt_product(sigma1, sigma2)
