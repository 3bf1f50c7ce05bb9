"""``python -m zoo.metrics``: the metrics of a checkpoint, as NVIDIA's ``calc_metrics.py`` (``conf/metrics.yaml``).

    python -m zoo.metrics ckpt=outputs/.../network-snapshot-000200.pt metrics.names=[fid50k_full,pr50k3_full]
    python -m zoo.metrics ckpt=... metrics.names=fid2k data=folder data.path=~/data/mydata.zip
    python -m zoo.metrics ckpt=... metrics.names=[fid50k_full] gpus=8

The dataset is the one recorded in the checkpoint's training config (without x-flips or a
``max_size`` subset: NVIDIA's ``_full`` protocol) unless ``data=...`` names another; its resolution
and whether labels are used come from the generator. Every result is appended as one JSON line
to ``out`` (default ``metrics.jsonl`` next to the checkpoint) and printed as a table. User errors
(bad metric name, missing detector, checkpoint or data) print one line and exit with status 2.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from omegaconf import MISSING, DictConfig, OmegaConf

from zoo import generations
from zoo.apps.common import AppSpec, hydra_main
from zoo.core import distributed as dist_lib
from zoo.core.errors import ConfigError, NotApplicable
from zoo.core.files import file_sha256
from zoo.core.runtime import resolve_device, tune_cpu_allocator
from zoo.data import open_dataset_from_config
from zoo.data.config import DataConfig
from zoo.interop.load import load_any, load_network
from zoo.metrics.compute import check_applicable, compute_metrics, metrics_config
from zoo.metrics.config import MetricsConfig
from zoo.metrics.detectors import resolve_detector
from zoo.metrics.registry import check_metric_names

__all__ = ["MetricsAppConfig", "evaluate", "format_table", "main", "APP"]


@dataclass
class MetricsAppConfig:
    """``python -m zoo.metrics ckpt=... metrics.names=[...] [data=...]`` (``conf/metrics.yaml``).

    ``resolution`` is set from the generator (it only serves the ``${resolution}`` of data configs
    such as ``conf/data/ffhq.yaml``). ``model``, ``kimg``, ``tick_kimg``, ``image_kimg`` and
    ``snap_kimg`` are ignored: they exist so that ``data=shapes``, whose config also sets training
    keys, composes here too."""

    ckpt: str = MISSING
    data: Optional[DataConfig] = None  # null: the dataset recorded in the checkpoint's training config
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    which: str = "G_ema"
    device: str = "auto"
    gpus: int = 1  # processes (one per GPU with NCCL, or gloo CPU workers), as NVIDIA's calc_metrics --gpus
    out: Optional[str] = None  # results file (jsonl, appended); null: metrics.jsonl next to the checkpoint
    progress: bool = True  # progress bars
    resolution: Optional[int] = None  # set from the generator; do not pass
    model: Any = None  # ignored (set by data=shapes)
    kimg: Any = None  # ignored (set by data=shapes)
    tick_kimg: Any = None  # ignored
    image_kimg: Any = None  # ignored
    snap_kimg: Any = None  # ignored


def _needs_dataset(specs, G) -> bool:
    return any(s.needs_reals for s in specs) or bool(getattr(G, "c_dim", 0))


def _data_config(cfg: DictConfig, state: Dict[str, Any], G) -> Dict[str, Any]:
    """The dataset's config node as a plain dict, with the generator's resolution and labels."""
    if cfg.get("data") is not None:
        cfg.resolution = int(G.img_resolution)  # for ${resolution} in data configs (ffhq)
        dcfg = OmegaConf.to_container(cfg.data, resolve=True)
    else:
        dcfg = (state.get("config") or {}).get("data")
        if not dcfg:
            raise ConfigError("data", f"the checkpoint {cfg.ckpt!r} records no dataset",
                              "pass one, e.g. data=folder data.path=/path/to/dataset.zip (or data=cifar10, ffhq, shapes)")
        dcfg = dict(dcfg, mirror=False, max_size=None)  # NVIDIA: the full dataset, no x-flips
    return dict(dcfg, use_labels=bool(getattr(G, "c_dim", 0)))


def _open_dataset(dcfg: Dict[str, Any], resolution: int):
    return open_dataset_from_config(dcfg, resolution=resolution)


def _job(rank: int, world_size: int, init_file: Optional[str], job: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One process of the evaluation (all of it when ``world_size == 1``)."""
    device = resolve_device(job["device"])
    if world_size > 1:
        if device.type == "cuda":
            device = torch.device("cuda", rank)
            torch.cuda.set_device(device)
        else:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
        dist_lib.init_process_group(rank, world_size, device, init_file)
    finished = False
    try:
        G = load_network(load_any(job["ckpt"]), which=job["which"], device=device)
        dataset = _open_dataset(job["data"], G.img_resolution) if job["data"] is not None else None
        records = compute_metrics(job["names"], G, dataset, job["metrics"], device=device, kimg=job["kimg"],
                                  generation=job["generation"], rank=rank, world_size=world_size,
                                  progress=job["progress"])
        if rank == 0 and job.get("result_file"):
            with open(job["result_file"], "w") as f:
                json.dump(records, f)
        finished = True
        return records
    finally:
        if world_size > 1:
            dist_lib.shutdown(finished)


def format_table(records: List[Dict[str, Any]]) -> str:
    """The results as a readable table: metric, result key, value, reals, generated, time."""
    rows = [("metric", "result", "value", "reals", "generated", "cached", "time")]
    for rec in records:
        p = rec.get("protocol", {})
        for i, (key, value) in enumerate(rec["results"].items()):
            rows.append((rec["metric"] if i == 0 else "", key, f"{value:.6g}",
                         str(p.get("num_real", "")) if i == 0 else "", str(p.get("num_gen", "")) if i == 0 else "",
                         ("yes" if p.get("real_stats_cached") else "no") if i == 0 and p.get("num_real") else "",
                         f"{rec['total_time']:.1f} s" if i == 0 else ""))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    right = {2, 3, 4, 6}
    return "\n".join("  ".join(v.rjust(w) if c in right else v.ljust(w) for c, (v, w) in enumerate(zip(r, widths))).rstrip()
                     for r in rows)


def evaluate(cfg: DictConfig) -> List[Dict[str, Any]]:
    """Run the app on a composed ``conf/metrics.yaml`` config; returns the records (also appended
    to the jsonl file and printed). Every check that can fail on user input runs before any work."""
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        what = "PATH to a checkpoint" if missing[0] == "ckpt" else "..."
        raise ConfigError(missing[0], "is required", f"pass {missing[0]}={what}")
    names = list(cfg.metrics.names or [])
    if not names:
        raise ConfigError("metrics.names", "no metrics given", "pass e.g. metrics.names=[fid50k_full,kid50k_full]")
    specs = check_metric_names(names)
    if cfg.which not in ("G_ema", "G"):
        raise ConfigError("which", f"cannot evaluate {cfg.which!r}", "use which=G_ema or which=G")
    if cfg.gpus < 1:
        raise ConfigError("gpus", f"must be >= 1, got {cfg.gpus}", "use gpus=1 or more")
    if cfg.device not in ("auto", "cpu", "cuda") and not str(cfg.device).startswith("cuda:"):
        raise ConfigError("device", f"unknown device {cfg.device!r}", "use device=auto, cpu or cuda")
    if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but is not available", "use device=auto or device=cpu")
    if cfg.gpus > 1 and torch.cuda.is_available() and cfg.device != "cpu" and cfg.gpus > torch.cuda.device_count():
        raise ConfigError("gpus", f"gpus={cfg.gpus} but only {torch.cuda.device_count()} CUDA device(s) are visible",
                          f"use gpus<={torch.cuda.device_count()}")
    if not os.path.isfile(cfg.ckpt):
        raise ConfigError("ckpt", f"no checkpoint at {cfg.ckpt!r}", "pass ckpt=PATH to a network-snapshot-*.pt (or an NVIDIA .pkl)")
    tune_cpu_allocator()

    state = load_any(cfg.ckpt)
    generation = state.get("generation")
    generations.get(generation)
    G = load_network(state, which=cfg.which, device="cpu")
    try:
        check_applicable(specs, G, generation)
    except NotApplicable as e:
        raise ConfigError("metrics.names", str(e), "drop that metric") from None
    dcfg = _data_config(cfg, state, G) if _needs_dataset(specs, G) else None
    if dcfg is not None:
        _open_dataset(dcfg, G.img_resolution)  # fails here, with the data's own message, if it cannot open
    mcfg = metrics_config(cfg.metrics)
    for which in sorted({s.detector for s in specs if s.detector}):
        resolve_detector(which, mcfg)  # downloads once, before any process starts
    kimg = (state.get("progress") or {}).get("cur_nimg")
    job = {"ckpt": os.path.abspath(cfg.ckpt), "which": cfg.which, "device": cfg.device, "names": names,
           "metrics": mcfg, "data": dcfg, "generation": generation, "progress": bool(cfg.progress),
           "kimg": None if kimg is None else float(kimg) / 1000}
    del G, state

    if cfg.gpus == 1:
        records = _job(0, 1, None, job)
    else:
        with tempfile.TemporaryDirectory(prefix="zoo-metrics-") as tmp:
            job["result_file"] = os.path.join(tmp, "records.json")
            print(f"[zoo] launching {cfg.gpus} processes", flush=True)
            dist_lib.launch(_job, int(cfg.gpus), tmp, args=(job,))
            with open(job["result_file"]) as f:
                records = json.load(f)

    out = cfg.out or os.path.join(os.path.dirname(os.path.abspath(cfg.ckpt)), "metrics.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    ckpt_sha = file_sha256(cfg.ckpt)
    with open(out, "a") as f:
        for rec in records:
            f.write(json.dumps(dict(rec, kimg=job["kimg"], ckpt=job["ckpt"], ckpt_sha256=ckpt_sha)) + "\n")
    print(format_table(records), flush=True)
    print(f"[zoo] appended {len(records)} result line{'s' if len(records) != 1 else ''} to {os.path.abspath(out)}",
          flush=True)
    return records


APP = AppSpec("metrics", evaluate, schema=MetricsAppConfig, always_list=("metrics.names",))


def main(argv=None) -> None:
    hydra_main(APP, argv)
