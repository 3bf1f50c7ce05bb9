"""Feature extraction for the metrics: dataset and generator passes, and the dataset-statistics cache.

Reals
    The first ``n`` *unflipped* items of the dataset (a mirrored dataset contributes its original
    half only), in dataset order, as NVIDIA's metrics take the first ``max_real`` items. uint8
    images go to the detector as they are (1 channel repeated to 3).

Generated images
    ``G(z, c, truncation_psi=1, noise_mode='random')`` converted to uint8 as
    ``(x * 127.5 + 128).clamp(0, 255)``. Sample ``i`` belongs to batch ``i // batch``; batch ``b``
    draws its latents, its labels (uniformly among the dataset's labels, for a conditional G) and
    the global RNG state for G's random noise from ``(seed, b)`` alone. The images are therefore
    the same whichever metric asks for them and however many processes share the work; FID, KID
    and PR with the same N see the same images, and a pass is shared when several metrics need it.

Several processes
    With ``world_size > 1`` (``torch.distributed`` initialised), rank ``r`` handles batches
    ``r, r + W, r + 2W, ...``; after each round the features are all-gathered and appended in batch
    order, so every rank ends up with exactly the features of a one-process run.

Statistics
    :class:`FeatureStats` accumulates the mean and covariance (float64) and/or keeps every feature
    vector (float32). Dataset statistics are cached as ``.npz`` (written atomically: temporary file,
    then rename) under ``<cache>/metric-stats/``, keyed by the dataset's content hash, resolution
    and mirror flag, the detector's sha256, the number of items and what was captured
    (``mean_cov`` or ``all``); the key is stored in the file and checked on load.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch

from zoo.core.distributed import gather_rows
from zoo.core.files import atomic_write
from zoo.core.images import to_uint8_tensor
from zoo.data import real_indices
from zoo.metrics.detectors import Detector

__all__ = ["FeatureStats", "CAPTURES", "generated_images",
           "stats_cache_key", "stats_cache_path", "load_cached_stats", "save_cached_stats",
           "dataset_feature_stats", "generator_feature_stats", "batch_seed", "default_gen_batch"]

CAPTURES = ("mean_cov", "all")


class FeatureStats:
    """Running statistics of feature vectors.

    ``capture_mean_cov``: the float64 sums of ``x`` and ``x x^T``, giving the mean and the population
    covariance ``E[x x^T] - mean mean^T`` (divided by N, as NVIDIA's metrics). ``capture_all``: every
    vector, float32 ``[N, D]``."""

    def __init__(self, capture_mean_cov: bool = False, capture_all: bool = False):
        self.capture_mean_cov, self.capture_all = bool(capture_mean_cov), bool(capture_all)
        self.num_items = 0
        self.num_features: Optional[int] = None
        self._sum: Optional[np.ndarray] = None
        self._sum_sq: Optional[np.ndarray] = None
        self._all: List[np.ndarray] = []

    def append(self, x: Any) -> None:
        x = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"features must be [N, D], got {x.shape}")
        if self.num_features is None:
            self.num_features = x.shape[1]
            if self.capture_mean_cov:
                self._sum = np.zeros([x.shape[1]], np.float64)
                self._sum_sq = np.zeros([x.shape[1], x.shape[1]], np.float64)
        elif x.shape[1] != self.num_features:
            raise ValueError(f"feature dimension changed from {self.num_features} to {x.shape[1]}")
        self.num_items += x.shape[0]
        if self.capture_all:
            self._all.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self._sum += x64.sum(axis=0)
            self._sum_sq += x64.T @ x64

    def mean_cov(self) -> Tuple[np.ndarray, np.ndarray]:
        if not self.capture_mean_cov or not self.num_items:
            raise ValueError("no mean/covariance captured")
        mean = self._sum / self.num_items
        return mean, self._sum_sq / self.num_items - np.outer(mean, mean)

    def all(self) -> np.ndarray:
        if not self.capture_all:
            raise ValueError("features were not kept (capture_all=False)")
        if len(self._all) != 1:
            self._all = [np.concatenate(self._all) if self._all else np.zeros([0, self.num_features or 0], np.float32)]
        return self._all[0]

    def subset(self, capture: str) -> "FeatureStats":
        """A view holding only ``capture`` (``'mean_cov'`` or ``'all'``), for caching it alone."""
        out = FeatureStats(capture_mean_cov=capture == "mean_cov", capture_all=capture == "all")
        out.num_items, out.num_features = self.num_items, self.num_features
        if capture == "mean_cov":
            out._sum, out._sum_sq = self._sum, self._sum_sq
        else:
            out._all = [self.all()]
        return out

    def to_arrays(self) -> Dict[str, np.ndarray]:
        arrays = {"num_items": np.int64(self.num_items)}
        if self.capture_mean_cov:
            arrays.update(sum=self._sum, sum_sq=self._sum_sq)
        if self.capture_all:
            arrays.update(features=self.all())
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "FeatureStats":
        out = cls(capture_mean_cov="sum" in arrays, capture_all="features" in arrays)
        out.num_items = int(arrays["num_items"])
        if out.capture_mean_cov:
            out._sum, out._sum_sq = np.asarray(arrays["sum"], np.float64), np.asarray(arrays["sum_sq"], np.float64)
            out.num_features = out._sum.shape[0]
        if out.capture_all:
            out._all = [np.asarray(arrays["features"], np.float32)]
            out.num_features = out._all[0].shape[1]
        return out


# ------------------------------------------------------------------------------------------------
# Statistics cache
# ------------------------------------------------------------------------------------------------

def stats_cache_key(dataset, detector: Detector, num_items: int, capture: str,
                    content_hash: Optional[str] = None) -> Dict[str, Any]:
    """What identifies a dataset's statistics: content, view and detector (``content_hash``:
    ``dataset.content_hash()`` if already known)."""
    if capture not in CAPTURES:
        raise ValueError(f"capture must be one of {CAPTURES}, got {capture!r}")
    return {"dataset": str(getattr(dataset, "name", type(dataset).__name__)),
            "content_hash": str(content_hash or dataset.content_hash()), "resolution": int(dataset.resolution),
            "mirror": bool(getattr(dataset, "mirror", False)), "detector": detector.name,
            "detector_sha256": detector.sha256, "num_items": int(num_items), "capture": capture,
            "version": 1}


def stats_cache_path(cache: str, key: Dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key["dataset"])[:40]
    return os.path.join(cache, "metric-stats",
                        f"{safe}-{key['resolution']}-{key['detector']}-{key['num_items']}-{key['capture']}-{digest}.npz")


def load_cached_stats(path: str, key: Dict[str, Any]) -> Optional[FeatureStats]:
    """The statistics stored at ``path`` if it exists and holds ``key``; None otherwise (a corrupt
    or foreign file counts as a miss)."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if json.loads(str(f["key"])) != key:
                return None
            return FeatureStats.from_arrays({k: f[k] for k in f.files if k != "key"})
    except (OSError, ValueError, KeyError) as e:
        print(f"[zoo] ignoring unreadable statistics cache {path} ({e})", flush=True)
        return None


def save_cached_stats(path: str, key: Dict[str, Any], stats: FeatureStats) -> str:
    """Write ``stats`` and ``key`` to ``path`` atomically (temporary file in the same directory,
    then ``os.replace``)."""
    return atomic_write(path, lambda f: np.savez(f, key=np.array(json.dumps(key, sort_keys=True)), **stats.to_arrays()))


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False, dynamic_ncols=True)


def _run_rounds(num_batches: int, batch_size: int, batch_fn, stats: Dict[str, FeatureStats],
                detectors: Dict[str, Detector], rank: int, world_size: int, device: torch.device,
                total: int, desc: str, progress: bool) -> None:
    """Rank ``r`` computes batches ``r, r + W, ...`` (``batch_fn(b)``: uint8 images); after each
    round the features of every detector are gathered and appended to ``stats`` in batch order."""
    rounds = -(-num_batches // world_size)
    with _progress(total, desc, progress and rank == 0) as bar:
        for r in range(rounds):
            b = r * world_size + rank
            images = batch_fn(b) if b < num_batches else None
            for name, det in detectors.items():
                feats = det.features(images.to(device)) if images is not None else None
                for part in gather_rows(feats, world_size, device):
                    stats[name].append(part)
            if bar is not None:
                bar.update(min(total, (r + 1) * world_size * batch_size) - bar.n)


# ------------------------------------------------------------------------------------------------
# Dataset features
# ------------------------------------------------------------------------------------------------

def dataset_feature_stats(dataset, detectors: Dict[str, Detector], num_items: int,
                          captures: Dict[str, Iterable[str]], *, batch: int = 64, workers: int = 0,
                          device: Any = "cpu", rank: int = 0, world_size: int = 1,
                          progress: bool = False) -> Dict[str, FeatureStats]:
    """One pass over the first ``num_items`` unflipped dataset items, feeding every detector in
    ``detectors``; ``captures[name]`` says what to keep for each (``'mean_cov'``, ``'all'``).
    Returns ``{detector name: FeatureStats}``, identical on every rank."""
    device = torch.device(device)
    idx = real_indices(dataset)[:num_items]
    batches = [idx[i:i + batch].tolist() for i in range(0, len(idx), batch)]
    mine = batches[rank::world_size]
    loader = iter(torch.utils.data.DataLoader(dataset, batch_sampler=mine, num_workers=workers,
                                              pin_memory=device.type == "cuda"))
    stats = {name: FeatureStats(capture_mean_cov="mean_cov" in set(captures[name]),
                                capture_all="all" in set(captures[name])) for name in detectors}

    def batch_fn(_b: int) -> torch.Tensor:
        images = next(loader)[0]
        if images.dtype != torch.uint8:
            raise TypeError(f"dataset items must be uint8 images, got {images.dtype}")
        return images

    _run_rounds(len(batches), batch, batch_fn, stats, detectors, rank, world_size, device, len(idx),
                "dataset features", progress)
    return stats


# ------------------------------------------------------------------------------------------------
# Generated images
# ------------------------------------------------------------------------------------------------

def batch_seed(seed: int, batch_index: int) -> int:
    """A 63-bit seed for batch ``batch_index`` of a run seeded with ``seed``."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(batch_index), 0x6D6574]).generate_state(2, np.uint32)
    return (int(state[0]) << 31 ^ int(state[1])) & ((1 << 63) - 1)


def default_gen_batch(resolution: int, batch: int) -> int:
    """Images per generator call when ``metrics.batch_gen`` is null: ``batch``, but at most 4 x
    1024^2 pixels per call (4 images at 1024 px, as NVIDIA's metrics; 64 at 256 px)."""
    return max(1, min(int(batch), (4 << 20) // (int(resolution) ** 2)))


def generated_images(G, batch_index: int, count: int, *, seed: int, labels: Optional[torch.Tensor],
                     device: Any, gen_batch: int) -> torch.Tensor:
    """The ``count`` uint8 images of batch ``batch_index`` (see the module docstring)."""
    device = torch.device(device)
    s = batch_seed(seed, batch_index)
    gen = torch.Generator().manual_seed(s)
    z = torch.randn([count, G.z_dim], generator=gen)
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim:
        if labels is None or labels.shape[0] == 0:
            raise ValueError("the generator is conditional, but the dataset has no labels to draw c from")
        c = labels[torch.randint(labels.shape[0], [count], generator=gen)]
    else:
        c = torch.zeros([count, 0])
    out = []
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), torch.no_grad():  # G's random noise, restored afterwards
        torch.random.default_generator.manual_seed(s)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(s)
        for zb, cb in zip(z.split(gen_batch), c.split(gen_batch)):
            img = G(zb.to(device), cb.to(device), truncation_psi=1, noise_mode="random")
            out.append(to_uint8_tensor(img))
    return torch.cat(out)


def generator_feature_stats(G, detectors: Dict[str, Detector], num_items: int,
                            captures: Dict[str, Iterable[str]], *, seed: int = 0,
                            labels: Optional[torch.Tensor] = None, batch: int = 64,
                            gen_batch: Optional[int] = None, device: Any = "cpu", rank: int = 0,
                            world_size: int = 1, progress: bool = False) -> Dict[str, FeatureStats]:
    """Generate ``num_items`` images (see the module docstring) and feed every detector; returns
    ``{detector name: FeatureStats}``, identical on every rank."""
    gen_batch = gen_batch or default_gen_batch(G.img_resolution, batch)
    num_batches = -(-num_items // batch)
    stats = {name: FeatureStats(capture_mean_cov="mean_cov" in set(captures[name]),
                                capture_all="all" in set(captures[name])) for name in detectors}

    def batch_fn(b: int) -> torch.Tensor:
        return generated_images(G, b, min(batch, num_items - b * batch), seed=seed, labels=labels,
                                device=device, gen_batch=gen_batch)

    _run_rounds(num_batches, batch, batch_fn, stats, detectors, rank, world_size, torch.device(device),
                num_items, "generator features", progress)
    return stats
