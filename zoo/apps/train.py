"""``python train.py [model=stylegan2] [data=shapes] [gpus=1] [key=value ...]``: validate the config,
pick the run directory (resuming if asked) and run the training loop on ``gpus`` processes (or under
torchrun). ``conf/train.yaml``; the schema and its checks are :mod:`zoo.training.config`."""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from zoo.apps.common import AppSpec, hydra_main, hydra_output_dir, hydra_overrides, hydra_sweep_dir
from zoo.core import distributed as dist_lib
from zoo.core.checkpoint import find_latest_checkpoint
from zoo.core.errors import ConfigError
from zoo.core.runtime import resolve_device, tune_cpu_allocator
from zoo.training.config import validate, validate_start
from zoo.training.job import update_job
from zoo.training.loop import run

__all__ = ["train", "main", "APP"]


def train(cfg: DictConfig, run_dir: Optional[str] = None) -> str:
    """Validate, pick the run directory (resuming if asked) and run the training loop on
    ``cfg.gpus`` processes. Returns the run directory. ``<run_dir>/job.json`` records the job and
    how it ended (``running`` → ``done`` | ``interrupted`` | ``failed``), for ``python -m zoo.report``.
    Bad ``aug.*`` / ``init=`` values stop it before anything is written."""
    validate_start(cfg)
    run_dir, resume_path = _run_dir_and_resume(cfg, run_dir or hydra_output_dir() or os.path.join(cfg.run_root, "run"))
    record = int(os.environ.get("RANK", "0")) == 0  # torchrun: one job.json, written by rank 0
    model = cfg.get("model") or {}
    if record:
        update_job(run_dir, status="running", started=time.time(), generation=model.get("name"),
                   config_name=model.get("config"), experiment=cfg.get("experiment"),
                   data=(cfg.get("data") or {}).get("name"), kimg_target=cfg.get("kimg"),
                   overrides=hydra_overrides(), resumed_from=resume_path, pid=os.getpid())
    try:
        out = _train(cfg, run_dir, resume_path)
    except BaseException as e:
        if record:
            interrupted = isinstance(e, KeyboardInterrupt)
            update_job(run_dir, status="interrupted" if interrupted else "failed", ended=time.time(),
                       **({} if interrupted else {"error": f"{type(e).__name__}: {e}"}))
        raise
    if record:
        update_job(run_dir, status="done", ended=time.time())
    return out


def _run_dir_and_resume(cfg: DictConfig, run_dir: str):
    """``resume=auto`` continues the newest checkpoint under ``run_root`` in its own directory."""
    resume_path = None
    if cfg.resume == "auto":
        resume_path = find_latest_checkpoint(cfg.run_root)
        if resume_path is None:
            print(f"[zoo] resume=auto: no checkpoint under {cfg.run_root!r}, starting a new run", flush=True)
        else:
            run_dir = os.path.dirname(resume_path)
            print(f"[zoo] resume=auto: continuing {resume_path}", flush=True)
    elif cfg.resume:
        if not os.path.isfile(cfg.resume):
            raise ConfigError("resume", f"checkpoint {cfg.resume!r} does not exist", "pass resume=auto or a path to a network-snapshot-*.pt")
        resume_path = cfg.resume
    return run_dir, resume_path


def _train(cfg: DictConfig, run_dir: str, resume_path: Optional[str]) -> str:
    validate(cfg)
    tune_cpu_allocator()
    sweep_dir = hydra_sweep_dir()
    if sweep_dir and cfg.logger.group is None:  # wandb groups the jobs of one sweep
        cfg.logger.group = os.path.basename(os.path.normpath(sweep_dir))
    plain: Dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    os.makedirs(run_dir, exist_ok=True)
    if dist_lib.is_torchrun():
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if world != cfg.gpus:
            raise ConfigError("gpus", f"torchrun started {world} processes but gpus={cfg.gpus}", f"pass gpus={world}")
        device = resolve_device(cfg.device)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        dist_lib.init_process_group(rank, world, device)
        run_dir = dist_lib.broadcast_object(run_dir)
        run(rank, world, None, plain, run_dir, resume_path)
    else:
        if cfg.gpus > 1:
            print(f"[zoo] launching {cfg.gpus} processes", flush=True)
        dist_lib.launch(run, cfg.gpus, run_dir, args=(plain, run_dir, resume_path))
    print(f"[zoo] run directory: {os.path.abspath(run_dir)}", flush=True)
    return run_dir


APP = AppSpec("train", train, always_list=("metrics.names", "aug.policy"))  # metrics.names=fid2k needs no brackets


def main(argv=None) -> None:
    hydra_main(APP, argv)
