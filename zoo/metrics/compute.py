"""Running metrics: :func:`compute_metrics`, the entry point of the training loop and of
``python -m zoo.metrics``.

Protocol (NVIDIA's): generated images use truncation psi = 1 and random noise, with c drawn from
the dataset's labels for a conditional G (see :mod:`zoo.metrics.features`); reals are the dataset's
unflipped images. The feature networks are loaded once per call and shared among the metrics,
and so are the feature passes: metrics that need the same generated images (same N and seed) or
the same reals get them from one pass, computed in the first metric that needs them (its
``total_time`` includes the pass). Dataset statistics are cached on disk (see
:mod:`zoo.metrics.features`).

PPL and the equivariance metrics are computed by :mod:`zoo.metrics.ppl` and
:mod:`zoo.metrics.equivariance` (imported when needed).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from zoo.core.contract import generation_name, has_styles, input_transform
from zoo.core.distributed import all_ranks_agree, broadcast_float, is_distributed
from zoo.core.download import cache_dir
from zoo.core.errors import ConfigError, NotApplicable
from zoo.data import dataset_labels, real_indices
from zoo.metrics import features as F
from zoo.metrics.config import MetricsConfig
from zoo.metrics.detectors import Detector, load_detector, resolve_detector
from zoo.metrics.equivariance import compute_equivariance
from zoo.metrics.frechet import frechet_distance
from zoo.metrics.kid import kernel_inception_distance
from zoo.metrics.ppl import compute_ppl
from zoo.metrics.precision_recall import precision_recall
from zoo.metrics.registry import (EQ_BATCH, EQ_ROTATE_MAX, EQ_TRANSLATE_MAX, KID_SUBSET_SIZE, KID_SUBSETS,
                                  PPL_BATCH, MetricSpec, check_metric_names)

__all__ = ["compute_metrics", "check_applicable", "metrics_config", "load_detectors"]


def metrics_config(cfg: Any) -> Dict[str, Any]:
    """The metrics config (a ``MetricsConfig``, DictConfig or dict; None for the defaults) as a
    plain dict with every :class:`zoo.metrics.config.MetricsConfig` key (unknown keys are kept)."""
    out = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
           for f in dataclasses.fields(MetricsConfig)}
    if cfg is None:
        return out
    if dataclasses.is_dataclass(cfg):
        cfg = dataclasses.asdict(cfg)
    else:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
    out.update(dict(cfg))
    return out


def check_applicable(names: Sequence[Any], G, generation: Optional[str] = None) -> None:
    """Raise :class:`zoo.core.errors.NotApplicable` if a metric does not exist for ``G``: the
    equivariance metrics need StyleGAN3's input transform, W-space PPL a mapping network."""
    gen = getattr(G, "generation", None) or generation or generation_name(G)
    for spec in (n if isinstance(n, MetricSpec) else check_metric_names([n])[0] for n in names):
        if spec.kind == "eq" and input_transform(G) is None:
            raise NotApplicable(f"{spec.name}: the equivariance metrics need a StyleGAN3 generator (an input "
                                f"transform), and a {gen} generator has none")
        if spec.kind == "ppl" and spec.space == "w" and not has_styles(G):
            raise NotApplicable(f"{spec.name}: PPL in W needs a mapping network, and a {gen} generator has none "
                                f"(use ppl2_zend or ppl2_zfull)")


def load_detectors(which: Sequence[str], mcfg: Dict[str, Any], device: Any, rank: int = 0,
                   world_size: int = 1) -> Dict[str, Detector]:
    """Load the detectors ``which`` (``'inception'``, ``'vgg'``). With several processes rank 0
    resolves (downloads) first and the others follow, as NVIDIA's metrics do."""
    which = sorted(set(which))
    if is_distributed(world_size):
        import torch.distributed as dist

        error = None
        if rank == 0:
            try:
                for w in which:
                    resolve_detector(w, mcfg)
            except ConfigError as e:
                error = e
        box = [None if error is None else str(error)]
        dist.broadcast_object_list(box, src=0)
        if error is not None:
            raise error
        if box[0] is not None:
            raise RuntimeError(f"rank 0 could not load the feature networks: {box[0]}")
    return {w: load_detector(w, mcfg, device) for w in which}


class _FeatureBank:
    """Features of reals and generated images, computed on first use and shared between metrics.

    Plans the passes up front: for each number of reals (and of generated images) the detectors it
    feeds and what they capture, so one pass serves e.g. ``fid50k_full`` (mean/cov) and
    ``kid50k_full`` (all features) together."""

    def __init__(self, specs: List[MetricSpec], G, dataset, detectors: Dict[str, Detector], mcfg: Dict[str, Any],
                 labels: Optional[torch.Tensor], device: torch.device, rank: int, world_size: int, progress: bool):
        self.G, self.dataset, self.detectors, self.mcfg = G, dataset, detectors, mcfg
        self.labels, self.device, self.rank, self.world_size, self.progress = labels, device, rank, world_size, progress
        self.num_reals = len(real_indices(dataset)) if dataset is not None else 0
        self.content_hash = dataset.content_hash() if dataset is not None else None
        self.real_plan: Dict[int, Dict[str, set]] = {}
        self.gen_plan: Dict[int, Dict[str, set]] = {}
        for spec in specs:
            if spec.needs_reals:
                cap = "mean_cov" if spec.kind == "fid" else "all"
                self.real_plan.setdefault(self.real_count(spec), {}).setdefault(spec.detector, set()).add(cap)
                self.gen_plan.setdefault(spec.num_gen, {}).setdefault(spec.detector, set()).add(cap)
        self._real: Dict[Tuple[str, int, str], Tuple[F.FeatureStats, bool]] = {}
        self._gen: Dict[Tuple[str, int], F.FeatureStats] = {}
        batch = int(mcfg["batch"])
        workers = mcfg.get("workers")
        self.batch = batch
        self.workers = int(workers) if workers is not None else (3 if device.type == "cuda" else 0)
        self.gen_batch = int(mcfg.get("batch_gen") or F.default_gen_batch(G.img_resolution, batch))

    def real_count(self, spec: MetricSpec) -> int:
        return self.num_reals if spec.max_real is None else min(self.num_reals, spec.max_real)

    def reals(self, det: str, n: int, capture: str) -> Tuple[F.FeatureStats, bool]:
        """``(stats, from_cache)`` of the first ``n`` reals."""
        if (det, n, capture) not in self._real:
            self._compute_reals(n)
        return self._real[(det, n, capture)]

    def _compute_reals(self, n: int) -> None:
        use_cache = bool(self.mcfg.get("cache", True))
        cache = cache_dir(self.mcfg.get("cache_dir"))
        missing: Dict[str, set] = {}
        where: Dict[Tuple[str, str], Tuple[str, Dict[str, Any]]] = {}
        for det, caps in self.real_plan[n].items():
            for cap in sorted(caps):
                key = F.stats_cache_key(self.dataset, self.detectors[det], n, cap, self.content_hash)
                path = F.stats_cache_path(cache, key)
                where[(det, cap)] = (path, key)
                stats = F.load_cached_stats(path, key) if use_cache else None
                if all_ranks_agree(stats is not None, self.world_size, self.device):
                    self._real[(det, n, cap)] = (stats, True)
                else:
                    missing.setdefault(det, set()).add(cap)
        if not missing:
            return
        result = F.dataset_feature_stats(
            self.dataset, {d: self.detectors[d] for d in missing}, n, missing, batch=self.batch,
            workers=self.workers, device=self.device, rank=self.rank, world_size=self.world_size,
            progress=self.progress)
        for det, caps in missing.items():
            for cap in caps:
                stats = result[det].subset(cap)
                if use_cache and self.rank == 0:
                    path, key = where[(det, cap)]
                    F.save_cached_stats(path, key, stats)
                self._real[(det, n, cap)] = (stats, False)

    def generated(self, det: str, n: int) -> F.FeatureStats:
        if (det, n) not in self._gen:
            plan = self.gen_plan[n]
            result = F.generator_feature_stats(
                self.G, {d: self.detectors[d] for d in plan}, n, plan, seed=int(self.mcfg["seed"]),
                labels=self.labels, batch=self.batch, gen_batch=self.gen_batch, device=self.device,
                rank=self.rank, world_size=self.world_size, progress=self.progress)
            self._gen.update({(d, n): s for d, s in result.items()})
        return self._gen[(det, n)]


def _dataset_info(dataset, num_reals: int, content_hash: Optional[str]) -> Optional[Dict[str, Any]]:
    if dataset is None:
        return None
    return {"name": str(getattr(dataset, "name", type(dataset).__name__)), "content_hash": content_hash,
            "resolution": int(dataset.resolution), "num_images": int(num_reals),
            "mirror": bool(getattr(dataset, "mirror", False)), "label_dim": int(getattr(dataset, "label_dim", 0))}


def _check_inputs(specs: List[MetricSpec], G, dataset) -> None:
    needs_reals = any(s.needs_reals for s in specs)
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if dataset is None:
        if needs_reals or c_dim:
            why = "compare with real images" if needs_reals else "draw the conditional generator's labels from"
            raise ConfigError("data", f"the metrics need a dataset to {why}", "pass the dataset (data=...)")
        return
    if needs_reals:
        if int(dataset.resolution) != int(G.img_resolution):
            raise ConfigError("data.resolution", f"the dataset is {dataset.resolution} px but the generator makes "
                              f"{G.img_resolution} px images", f"use the dataset at {G.img_resolution} px")
        g_ch, d_ch = int(getattr(G, "img_channels", 3)), int(dataset.num_channels)
        if g_ch != d_ch:
            raise ConfigError("data", f"the dataset has {d_ch} channel(s) but the generator makes {g_ch}",
                              "compare with a dataset of the generator's kind")
        if len(real_indices(dataset)) == 0:
            raise ConfigError("data", "the dataset has no images", "point data at a non-empty dataset")
    if c_dim and getattr(dataset, "label_dim", 0) != c_dim:
        raise ConfigError("data.use_labels", f"the generator is conditional ({c_dim} labels) but the dataset "
                          f"provides {getattr(dataset, 'label_dim', 0)}", "open the dataset with use_labels=true")


def compute_metrics(names: Sequence[str], G, dataset, cfg: Any, *, device: Any, kimg: Optional[float] = None,
                    generation: Optional[str] = None, rank: int = 0, world_size: int = 1,
                    progress: bool = False) -> List[Dict[str, Any]]:
    """Compute the metrics ``names`` (see :mod:`zoo.metrics.registry`) of generator ``G``.

    ``dataset``: the :class:`zoo.data.ImageDataset` to compare with (its unflipped items; labels
    for a conditional G); it may be None when no metric needs reals and G is unconditional.
    ``cfg``: the metrics config (:class:`zoo.metrics.config.MetricsConfig`, a DictConfig or a dict; only
    its detector/cache/batch/seed keys are read, ``names`` is not). ``G`` must already be on
    ``device``; it is run without gradients and left unchanged. ``kimg`` and
    ``generation`` are recorded (``G.generation`` wins when set). With ``world_size > 1`` every
    rank of the initialised process group calls this; the work is shared and every rank returns
    the same records.

    Returns one JSON-able record per metric, in order::

        {"metric": "fid50k_full", "results": {"fid50k_full": 5.1}, "protocol": {...},
         "total_time": seconds, "timestamp": unix time}

    ``results`` has NVIDIA's keys (``pr50k3_full_precision`` / ``_recall`` for PR); ``protocol``
    records the detector (name, sha256, URL), the numbers of real and generated samples, truncation
    psi (1), the noise mode, the dataset (name, content hash, resolution, unflipped images), kimg,
    generation, seed, the number of processes and whether the real statistics came from the cache.
    Raises :class:`zoo.core.errors.ConfigError` (bad names, missing detector or data) and
    :class:`zoo.core.errors.NotApplicable` (e.g. EQ on StyleGAN2) before any work is done.
    """
    specs = check_metric_names(names)
    mcfg = metrics_config(cfg)
    device = torch.device(device)
    gen_name = getattr(G, "generation", None) or generation or generation_name(G)
    check_applicable(specs, G, gen_name)
    _check_inputs(specs, G, dataset)
    if is_distributed(world_size) and not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} out of range for world_size {world_size}")
    labels = dataset_labels(dataset, unflipped=True) if int(getattr(G, "c_dim", 0) or 0) else None
    detectors = load_detectors([s.detector for s in specs if s.detector], mcfg, device, rank, world_size)
    bank = _FeatureBank(specs, G, dataset, detectors, mcfg, labels, device, rank, world_size, progress)
    seed = int(mcfg["seed"])
    base = {"generation": gen_name, "kimg": None if kimg is None else float(kimg), "seed": seed,
            "truncation_psi": 1.0, "world_size": int(world_size),
            "dataset": _dataset_info(dataset, bank.num_reals, bank.content_hash)}

    records = []
    for spec in specs:
        t0 = time.time()
        proto = dict(base)
        if spec.detector:
            proto.update(detectors[spec.detector].describe())
        if spec.needs_reals:
            results, extra = _distance_metric(spec, bank, seed, device)
        else:
            results, extra = _sample_metric(spec, G, detectors, bank, labels, seed, device, world_size)
        proto.update(extra)
        records.append({"metric": spec.name, "results": results, "protocol": proto,
                        "total_time": time.time() - t0, "timestamp": time.time()})
    return records


def _distance_metric(spec: MetricSpec, bank: _FeatureBank, seed: int, device: torch.device):
    """FID / KID / PR: generated vs real features."""
    n_real = bank.real_count(spec)
    cap = "mean_cov" if spec.kind == "fid" else "all"
    real, cached = bank.reals(spec.detector, n_real, cap)
    gen = bank.generated(spec.detector, spec.num_gen)
    extra = {"num_real": int(real.num_items), "num_gen": int(gen.num_items), "noise_mode": "random",
             "real_stats_cached": bool(cached), "full": spec.full, "max_real": spec.max_real}
    if spec.kind == "fid":
        return {spec.name: frechet_distance(*gen.mean_cov(), *real.mean_cov())}, extra
    if spec.kind == "kid":
        value = kernel_inception_distance(gen.all(), real.all(), num_subsets=KID_SUBSETS,
                                          max_subset_size=KID_SUBSET_SIZE, seed=seed, device=device)
        extra.update(num_subsets=KID_SUBSETS,
                     subset_size=min(KID_SUBSET_SIZE, real.num_items, gen.num_items))
        return {spec.name: value}, extra
    precision, recall = precision_recall(gen.all(), real.all(), k=spec.nhood, device=device)
    extra.update(nhood_size=spec.nhood)
    return {f"{spec.name}_precision": precision, f"{spec.name}_recall": recall}, extra


def _sample_metric(spec: MetricSpec, G, detectors: Dict[str, Detector], bank: _FeatureBank,
                   labels: Optional[torch.Tensor], seed: int, device: torch.device, world_size: int):
    """PPL / EQ: every rank computes the (seeded) metric; rank 0's value is broadcast."""
    # NVIDIA's batch sizes are part of these metrics' definitions: PPL draws one set of noise maps per
    # batch (2 pairs), EQ one transform per batch (4 images).
    batch = PPL_BATCH if spec.kind == "ppl" else EQ_BATCH
    extra: Dict[str, Any] = {"num_real": 0, "num_gen": spec.num_gen, "noise_mode": "const",
                             "real_stats_cached": False, "batch_size": batch}
    if spec.kind == "ppl":
        value = compute_ppl(G, detectors["vgg"].module, num_samples=spec.num_gen, epsilon=spec.epsilon,
                            space=spec.space, sampling=spec.sampling, crop=spec.crop, batch_size=batch,
                            device=device, seed=seed, labels=labels)
        extra.update(epsilon=spec.epsilon, space=spec.space, sampling=spec.sampling, crop=spec.crop)
    else:
        value = compute_equivariance(G, num_samples=spec.num_gen, kind=spec.eq, translate_max=EQ_TRANSLATE_MAX,
                                     rotate_max=EQ_ROTATE_MAX, batch_size=batch, device=device,
                                     seed=seed, labels=labels)
        extra.update(kind=spec.eq, translate_max=EQ_TRANSLATE_MAX, rotate_max=EQ_ROTATE_MAX)
    value = broadcast_float(value, world_size, device)
    return {spec.name: value}, extra
