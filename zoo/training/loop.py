"""The one training loop of the zoo: the bookkeeping around :class:`zoo.training.trainer.Trainer`.

:func:`training_loop` feeds the trainer data (each process its share of one global index stream),
logs statistics, draws sample grids, runs the metrics, writes checkpoints (every ``snap_kimg`` and
``snap_minutes``) and stops cleanly on Ctrl-C, SIGTERM or SIGUSR1 (:mod:`zoo.training.cluster`);
:func:`run` is the per-process entry point used by ``train.py`` (one process, spawned workers, or
processes started by torchrun or SLURM on one node or several). The algorithm itself (phases,
losses, EMA, growing) is the trainer's.
"""
from __future__ import annotations

import copy
import os
import sys
import time
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch

from zoo.core import checkpoint as ckpt_lib
from zoo.core import distributed as dist_lib
from zoo.core.errors import NotApplicable
from zoo.core.images import make_grid, save_image, to_uint8
from zoo.core.runtime import peak_memory_gb, peak_memory_kind, reset_peak_memory, resolve_device
from zoo.data import InfiniteSampler, dataset_labels, open_dataset_from_config, to_float
from zoo.metrics import check_applicable, compute_metrics
from zoo.training.cluster import SnapshotTimer, StopSignals, agree
from zoo.training.finetune import apply_init
from zoo.training.job import update_job
from zoo.training.loggers import make_logger
from zoo.training.trainer import Trainer

__all__ = ["training_loop", "run"]


# --------------------------------------------------------------------------------------------------
# Data feeding
# --------------------------------------------------------------------------------------------------

class _ChunkStream(torch.utils.data.Sampler):
    """This process's share of one global index stream: the stream is cut into chunks of
    ``batch_gpu`` and chunk ``j`` of every batch belongs to rank ``j % world_size``."""

    def __init__(self, base, rank: int, world_size: int, batch_gpu: int):
        self.base, self.rank, self.world_size, self.batch_gpu = base, rank, world_size, batch_gpu

    def __iter__(self) -> Iterator[int]:
        for pos, idx in enumerate(self.base):
            if (pos // self.batch_gpu) % self.world_size == self.rank:
                yield idx


def _make_loader(dataset, trainer: Trainer, workers: int) -> Iterator:
    base = InfiniteSampler(len(dataset), rank=0, num_replicas=1, seed=trainer.seed,
                           start=trainer.cur_nimg)  # the batch may change with the resolution (growing)
    sampler = _ChunkStream(base, trainer.rank, trainer.world_size, trainer.batch_gpu)
    loader = torch.utils.data.DataLoader(
        dataset, sampler=sampler, batch_size=trainer.batch_gpu, num_workers=workers,
        pin_memory=trainer.device.type == "cuda", persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None)
    return iter(loader)


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------

_POSTFIX = {"Loss/G/loss": "G", "Loss/D/loss": "D", "Loss/r1_penalty": "r1", "Loss/pl_mean": "pl",
            "Loss/gp_penalty": "gp", "Progress/lod": "lod", "Progress/augment": "p", "Timing/sec_per_kimg": "s/kimg"}


def _grid_latents(trainer: Trainer, num: int):
    gen = torch.Generator().manual_seed(123)
    z = torch.randn([num, trainer.G.z_dim], generator=gen)
    if trainer.labels is None:
        c = torch.zeros([num, 0])
    else:
        c = trainer.labels.cpu()[torch.randint(trainer.labels.shape[0], [num], generator=gen)]
    return z, c


@torch.no_grad()
def _render_grid(G, z, c, device, batch: int, cols: int, rows: int) -> np.ndarray:
    imgs = [G(zb.to(device), cb.to(device), noise_mode="const") for zb, cb in zip(z.split(batch), c.split(batch))]
    return make_grid(to_uint8(torch.cat(imgs)), cols, rows)


def _applicable_metrics(names: List[str], trainer: Trainer, run_dir: Optional[str]) -> List[str]:
    """The metrics that exist for this generation. One list can serve a sweep over generations: EQ
    (StyleGAN3 only) and W-space PPL (not ProGAN) are skipped elsewhere, with a note in job.json."""
    if not names:
        return []
    keep, skipped = [], {}
    for name in names:
        try:
            check_applicable([name], trainer.G, trainer.spec.name)
            keep.append(name)
        except NotApplicable as e:
            skipped[name] = str(e)
    if skipped and run_dir is not None:
        for reason in skipped.values():
            print(f"[zoo] metric skipped: {reason}", flush=True)
        update_job(run_dir, metrics_skipped=skipped)
    return keep


def training_loop(cfg: Dict[str, Any], run_dir: str, *, rank: int = 0, world_size: int = 1,
                  device: Optional[torch.device] = None, resume_path: Optional[str] = None,
                  dataset=None) -> Trainer:
    """Train until ``cfg['kimg']`` thousand real images have been shown to D. Returns the trainer."""
    device = device or resolve_device(cfg.get("device", "auto"))
    dcfg = cfg["data"]
    if dataset is None:
        dataset = open_dataset_from_config(dcfg, resolution=cfg.get("resolution"))
    cfg = dict(cfg, resolution=int(cfg.get("resolution") or dataset.resolution))
    resume_state = ckpt_lib.load_checkpoint(resume_path) if resume_path else None
    if resume_state is not None:
        cfg = Trainer.resume_config(cfg, resume_state)
    trainer = Trainer(cfg, img_channels=dataset.num_channels, device=device, rank=rank,
                      world_size=world_size, labels=dataset_labels(dataset) if dcfg.get("use_labels") else None)
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
    elif cfg.get("init"):  # a new run from trained weights (fine-tuning)
        apply_init(trainer, cfg["init"], strict=bool(cfg.get("init_strict", True)), log=rank == 0)

    logger = make_logger(rank, run_dir, cfg.get("logger", {}), cfg)
    if rank == 0:
        update_job(run_dir, params_G=sum(p.numel() for p in trainer.G.parameters()),
                   params_D=sum(p.numel() for p in trainer.D.parameters()),
                   G_kwargs=trainer.G_kwargs, generation=trainer.spec.name, resolution=cfg["resolution"],
                   precision=trainer.precision.describe(),
                   augment=trainer.augment.mode if trainer.augment is not None else "noaug", init=trainer.init_source)
    total_nimg = int(round(float(cfg["kimg"]) * 1000))
    gw, gh = cfg.get("grid_size", [8, 4])
    grid_z, grid_c = _grid_latents(trainer, gw * gh)

    def snapshot_grid(tag: str) -> None:
        grid = _render_grid(trainer.G_ema, grid_z, grid_c, device, trainer.batch_gpu, gw, gh)
        path = os.path.join(run_dir, f"fakes{tag}.png")
        save_image(grid, path, size=256)
        logger.log_image("samples", grid, trainer.cur_nimg / 1000)

    data_hash = dataset.content_hash() if rank == 0 else None  # recorded in every checkpoint
    mcfg = dict(cfg.get("metrics") or {})
    metric_names = _applicable_metrics(list(mcfg.get("names") or []), trainer, run_dir if rank == 0 else None)
    metric_records: List[Dict[str, Any]] = []
    metric_data = []  # the dataset the metrics compare with, opened on first use

    def run_metrics(kimg: float) -> float:
        """Compute the configured metrics on G_ema (every rank takes part); returns the seconds spent."""
        t0 = time.time()
        if not metric_data:  # NVIDIA's *_full protocol: the whole dataset, no x-flips
            full = not dcfg.get("mirror") and not dcfg.get("max_size")
            metric_data.append(dataset if full else open_dataset_from_config(
                dict(dcfg, mirror=False, max_size=None), resolution=cfg["resolution"]))
        records = compute_metrics(metric_names, trainer.G_ema, metric_data[0], mcfg, device=device, kimg=kimg,
                                  generation=trainer.spec.name, rank=rank, world_size=world_size)
        metric_records[:] = records
        for record in records:
            logger.log_metric(record, kimg)
            if rank == 0:
                text = ", ".join(f"{k} {v:.4g}" for k, v in record["results"].items())
                print(f"[zoo] {kimg:.1f} kimg: {text}", flush=True)
        return time.time() - t0

    def save_snapshot() -> str:
        state = trainer.state_dict()
        state["config"] = cfg
        if metric_records:
            state["metrics"] = copy.deepcopy(metric_records)
        state["dataset"] = {"name": dcfg.get("name"), "resolution": cfg["resolution"], "num_images": len(dataset),
                            "label_dim": trainer.c_dim, "content_hash": data_hash}
        path = os.path.join(run_dir, ckpt_lib.SNAPSHOT_PATTERN.format(kimg=trainer.cur_nimg // 1000))
        return ckpt_lib.save_checkpoint(path, state)

    if rank == 0:
        os.makedirs(run_dir, exist_ok=True)
        if trainer.cur_nimg == 0:
            reals = torch.stack([dataset[i][0] for i in range(min(len(dataset), gw * gh))])
            save_image(make_grid(reals.permute(0, 2, 3, 1).numpy(), gw, gh), os.path.join(run_dir, "reals.png"), size=256)
            snapshot_grid("_init")

    loader = _make_loader(dataset, trainer, int(dcfg.get("workers", 0)))
    loader_batch = trainer.batch_gpu
    progress = None
    if rank == 0 and cfg.get("progress", True):
        from tqdm import tqdm

        progress = tqdm(total=total_nimg / 1000, initial=trainer.cur_nimg / 1000, unit="kimg",
                        bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]",
                        file=sys.stdout, dynamic_ncols=True)

    tick_nimg = max(int(float(cfg["tick_kimg"]) * 1000), 1)
    image_nimg = max(int(float(cfg["image_kimg"]) * 1000), 1)
    snap_nimg = max(int(float(cfg["snap_kimg"]) * 1000), 1)
    metric_nimg = max(int(float(mcfg.get("every_kimg") or cfg["snap_kimg"]) * 1000), 1)
    tick_start_nimg, tick_start_time = trainer.cur_nimg, time.time()
    start_time, start_nimg, metrics_time = tick_start_time, trainer.cur_nimg, 0.0
    train_peak = metrics_peak = 0.0
    peak_kind = peak_memory_kind(device, reset_peak_memory(device))
    last_snap_path = None
    snap_timer = SnapshotTimer(cfg.get("snap_minutes"))
    stopped = False
    with StopSignals() as stop:
        while trainer.cur_nimg < total_nimg:
            trainer.prepare()  # progressive growing: this iteration's lod and batch
            if trainer.batch_gpu != loader_batch:  # the stream is re-cut at cur_nimg: exact on resume too
                loader = _make_loader(dataset, trainer, int(dcfg.get("workers", 0)))
                loader_batch = trainer.batch_gpu
            reals, real_cs = [], []
            for _ in range(trainer.rounds):
                img, c = next(loader)
                reals.append(to_float(img.to(device, non_blocking=True)))
                real_cs.append(c.to(device, non_blocking=True) if trainer.c_dim else torch.zeros([img.shape[0], 0], device=device))
            prev = trainer.cur_nimg
            trainer.step(reals, real_cs)
            cur = trainer.cur_nimg
            done = cur >= total_nimg
            # every rank must agree to stop, and to take a time-based snapshot, at the same iteration
            stopping, timed_snap = agree(stop, snap_timer.due(), rank, world_size, device)
            crossed = lambda every: cur // every != prev // every
            if progress is not None:
                progress.update((cur - prev) / 1000)
            if crossed(tick_nimg) or done or stopping:
                now = time.time()
                stats = trainer.loss.pop_stats()
                if trainer.growing is not None:
                    st = trainer.growing.at(prev)  # the schedule of the iteration just trained
                    stats.update({"Progress/lod": st.lod, "Progress/resolution": st.resolution,
                                  "Progress/alpha": st.alpha, "Progress/batch": st.batch})
                if trainer.augment is not None and trainer.augment.p is not None:
                    stats["Progress/augment"] = trainer.augment.p  # NVIDIA's name for the ADA probability
                stats["Timing/sec_per_kimg"] = (now - tick_start_time) / max(cur - tick_start_nimg, 1) * 1000
                stats["Timing/total_sec"] = now - start_time
                stats["Resources/peak_mem_gb"] = peak_memory_gb(device)
                logger.log_scalars(stats, cur / 1000)
                if progress is not None:
                    progress.set_postfix_str(", ".join(f"{short}={stats[key]:.3g}" for key, short in _POSTFIX.items() if key in stats))
                tick_start_nimg, tick_start_time = cur, now
            if rank == 0 and (crossed(image_nimg) or done):
                snapshot_grid(f"{cur // 1000:06d}")
            if metric_names and (crossed(metric_nimg) or done) and not stopping:
                train_peak = max(train_peak, peak_memory_gb(device))
                reset_peak_memory(device)
                spent = run_metrics(cur / 1000)
                metrics_peak = max(metrics_peak, peak_memory_gb(device))
                reset_peak_memory(device)
                metrics_time += spent
                tick_start_time += spent  # s/kimg measures training, not evaluation
            if rank == 0 and (crossed(snap_nimg) or done or stopping or timed_snap):
                last_snap_path = save_snapshot()
                snap_timer.reset()
            if stopping:
                stopped = True
                break
    if progress is not None:
        progress.close()
    logger.close()
    if rank == 0:
        wall = time.time() - start_time
        trained = max(trainer.cur_nimg - start_nimg, 1)
        update_job(run_dir, kimg=trainer.cur_nimg / 1000, wall_time=wall, metrics_time=metrics_time,
                   sec_per_kimg=(wall - metrics_time) / trained * 1000,
                   peak_mem_gb=max(train_peak, peak_memory_gb(device)), metrics_peak_mem_gb=metrics_peak or None,
                   peak_mem_kind=peak_kind,
                   last_checkpoint=last_snap_path)
        how = "preempted" if stop.preempted else "interrupted"
        msg = f"{how}; state saved to" if stopped else "done; last checkpoint:"
        print(f"[zoo] {msg} {last_snap_path}", flush=True)
    if stopped:
        raise stop.exception()
    return trainer


def run(rank: int, world_size: int, init_file: Optional[str], cfg: Dict[str, Any], run_dir: str,
        resume_path: Optional[str] = None, local_rank: Optional[int] = None,
        local_world_size: Optional[int] = None) -> None:
    """Per-process entry point (module level so spawned workers can pickle it). ``local_rank`` and
    ``local_world_size`` place the process on its node (default: one node, ``rank`` of ``world_size``)."""
    local_rank = rank if local_rank is None else local_rank
    local_world_size = world_size if local_world_size is None else local_world_size
    device = resolve_device(cfg.get("device", "auto"))
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    threads = cfg.get("threads")
    if threads is None and device.type == "cpu" and local_world_size > 1:  # share this node's cores
        threads = max(1, (os.cpu_count() or 1) // local_world_size)
    if threads:
        torch.set_num_threads(int(threads))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    dist_lib.init_process_group(rank, world_size, device, init_file)
    finished = False
    try:
        training_loop(cfg, run_dir, rank=rank, world_size=world_size, device=device, resume_path=resume_path)
        finished = True
    finally:
        dist_lib.shutdown(finished)
