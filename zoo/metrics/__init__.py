"""Quality metrics: FID, KID, precision/recall, PPL and the StyleGAN3 equivariance metrics, with
NVIDIA's names and protocols (``fid50k_full``, ``kid50k_full``, ``pr50k3_full``, ``ppl2_wend``,
``eqt50k_int``, ``eqt50k_frac``, ``eqr50k``, and any sample count: ``fid2k``, ``kid10k_full``)::

    from zoo.metrics import compute_metrics, check_metric_names
    check_metric_names(["fid2k", "pr2k3_full"])                 # ConfigError on a bad name
    records = compute_metrics(["fid2k"], G, dataset, {"batch": 32}, device="cuda", kimg=200)
    records[0]["results"]                                      # {'fid2k': 12.3}

From the command line: ``python -m zoo.metrics ckpt=PATH metrics.names=[fid50k_full]``
(the app is :mod:`zoo.apps.metrics`). Modules: :mod:`.registry` (names), :mod:`.compute` (running them),
:mod:`.features` (feature passes, statistics cache), :mod:`.detectors` (feature networks, the
cached downloader), :mod:`.frechet`, :mod:`.kid`, :mod:`.precision_recall` (the distances),
:mod:`.ppl`, :mod:`.equivariance`.
"""
from zoo.metrics.compute import check_applicable, compute_metrics, load_detectors, metrics_config
from zoo.core.download import cached_download
from zoo.core.errors import ChecksumError, DetectorError
from zoo.metrics.config import MetricsConfig
from zoo.metrics.detectors import Detector, load_detector
from zoo.metrics.frechet import frechet_distance
from zoo.metrics.kid import kernel_inception_distance
from zoo.metrics.precision_recall import precision_recall
from zoo.metrics.registry import MetricSpec, check_metric_names, metric_names_help, parse_metric

__all__ = [
    "compute_metrics", "check_metric_names", "check_applicable", "parse_metric", "metric_names_help",
    "MetricSpec", "MetricsConfig", "metrics_config", "load_detectors", "load_detector", "Detector", "DetectorError",
    "ChecksumError", "cached_download", "frechet_distance", "kernel_inception_distance", "precision_recall",
]
