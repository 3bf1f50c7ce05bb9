"""The ``metrics`` config node (training's ``metrics.*`` and ``python -m zoo.metrics``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

__all__ = ["MetricsConfig"]


@dataclass
class MetricsConfig:
    """Quality metrics (``zoo.metrics``), during training and in ``python -m zoo.metrics``.

    Names: ``fid{N}k[_full]``, ``kid{N}k[_full]``, ``pr{N}k3[_full]``, ``ppl2_{w|z}{end|full}``,
    ``ppl_{w|z}{end|full}`` (cropped), ``eqt{N}k_int``, ``eqt{N}k_frac``, ``eqr{N}k`` (N: thousands
    of samples; ``python -m zoo.metrics --help`` and ``zoo.metrics.metric_names_help()`` list them)."""

    names: List[str] = field(default_factory=list)  # e.g. [fid50k_full, kid50k_full, pr50k3_full, ppl2_wend] or [fid2k]
    every_kimg: Optional[float] = None  # training: run the metrics every this many kimg (null: at every snapshot) and at the end
    detector: Optional[str] = None  # FID/KID feature network: local TorchScript path; null: NVIDIA's Inception-v3 (cached download)
    vgg: Optional[str] = None  # PR/PPL network: local TorchScript path; null: NVIDIA's VGG16 (cached download)
    detector_sha256: Optional[str] = None  # expected sha256 of the detector file (null: recorded on first download)
    vgg_sha256: Optional[str] = None
    cache_dir: Optional[str] = None  # downloads and dataset statistics; null: $ZOO_CACHE or ~/.cache/zoo
    download: bool = True  # allow downloading the default detectors
    cache: bool = True  # keep dataset statistics in <cache_dir>/metric-stats (reused while the data is unchanged)
    batch: int = 64  # images per detector call (and per generated batch)
    batch_gen: Optional[int] = None  # images per generator call; null: batch, at most 4 x 1024^2 pixels (4 at 1024 px)
    workers: Optional[int] = None  # data-loading processes for the dataset pass; null: 3 on CUDA, 0 on CPU
    seed: int = 0  # latents, labels and subsets of every metric derive from it
