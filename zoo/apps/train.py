"""``python train.py [model=stylegan2] [data=shapes] [gpus=1] [nodes=1] [key=value ...]``: validate the
config, pick the run directory (resuming if asked) and run the training loop on ``gpus`` processes, or
in the processes torchrun or SLURM (Hydra's submitit launcher) started on ``nodes`` machines.
``conf/train.yaml``; the schema and its checks are :mod:`zoo.training.config`; signals, requeueing and
time-based snapshots are :mod:`zoo.training.cluster`'s."""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from zoo.apps.common import (AppSpec, hydra_main, hydra_output_dir, hydra_overrides, hydra_sweep_dir, insert_overrides,
                             override_value)
from zoo.core import distributed as dist_lib
from zoo.core.checkpoint import find_latest_checkpoint
from zoo.core.errors import ConfigError
from zoo.core.runtime import resolve_device, tune_cpu_allocator
from zoo.training import cluster
from zoo.training.config import validate, validate_start
from zoo.training.job import update_job
from zoo.training.loop import run

__all__ = ["train", "cluster_overrides", "main", "APP"]


def train(cfg: DictConfig, run_dir: Optional[str] = None) -> str:
    """Validate, pick the run directory (resuming if asked) and run the training loop on
    ``cfg.gpus`` processes (per node). Returns the run directory. ``<run_dir>/job.json`` records the
    job and how it ended (``running`` → ``done`` | ``interrupted`` | ``preempted`` | ``failed``), for
    ``python -m zoo.report``. A preempted cluster job is requeued (:func:`zoo.training.cluster.requeue`).
    Bad ``aug.*`` / ``init=`` values stop it before anything is written."""
    validate_start(cfg)
    own_dir = run_dir or hydra_output_dir() or os.path.join(cfg.run_root, "run")
    launched = dist_lib.launcher_env()
    record = launched is None or launched.rank == 0  # one job.json, written by rank 0
    run_dir, resume_path = _run_dir_and_resume(cfg, own_dir, sweep=hydra_sweep_dir() is not None)
    model = cfg.get("model") or {}
    if record:
        update_job(run_dir, status="running", started=time.time(), generation=model.get("name"),
                   config_name=model.get("config"), experiment=cfg.get("experiment"),
                   data=(cfg.get("data") or {}).get("name"), kimg_target=cfg.get("kimg"),
                   overrides=hydra_overrides(), resumed_from=resume_path, pid=os.getpid())
    try:
        out = _train(cfg, run_dir, resume_path, own_dir)
    except BaseException as e:
        if record:
            preempted = isinstance(e, cluster.Preempted)
            status = "preempted" if preempted else "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            plan = cluster.requeue_plan(cfg.resume) if preempted else None
            update_job(run_dir, status=status, ended=time.time(),
                       **({"signal": e.signame, "requeue": plan} if preempted else {}),
                       **({} if isinstance(e, KeyboardInterrupt) else {"error": f"{type(e).__name__}: {e}"}))
            if preempted:
                cluster.requeue(plan, e.signum)
        raise
    if record:
        update_job(run_dir, status="done", ended=time.time())
    return out


def _run_dir_and_resume(cfg: DictConfig, run_dir: str, sweep: bool = False):
    """``resume=auto`` continues the newest checkpoint in this job's own directory (a requeued job);
    without one, a single run continues the newest checkpoint under ``run_root`` in its directory,
    and a job of a sweep starts afresh (the sweep's other jobs are not its runs)."""
    resume_path = None
    if cfg.resume == "auto":
        resume_path = find_latest_checkpoint(run_dir) if os.path.isdir(run_dir) else None
        if resume_path is None and not sweep:
            resume_path = find_latest_checkpoint(cfg.run_root)
        if resume_path is None:
            where = "in this job's directory" if sweep else f"under {cfg.run_root!r}"
            print(f"[zoo] resume=auto: no checkpoint {where}, starting a new run", flush=True)
        else:
            run_dir = os.path.dirname(resume_path)
            print(f"[zoo] resume=auto: continuing {resume_path}", flush=True)
    elif cfg.resume:
        if not os.path.isfile(cfg.resume):
            raise ConfigError("resume", f"checkpoint {cfg.resume!r} does not exist", "pass resume=auto or a path to a network-snapshot-*.pt")
        resume_path = cfg.resume
    return run_dir, resume_path


def _check_launch(cfg: DictConfig, env: dist_lib.LauncherEnv) -> None:
    """The processes a launcher started must be the ``nodes × gpus`` the config asks for."""
    if env.world_size != cfg.nodes * cfg.gpus or env.local_world_size != cfg.gpus:
        started = f"{env.world_size} processes ({env.nodes} node(s) × {env.local_world_size})"
        raise ConfigError("gpus" if env.nodes == cfg.nodes else "nodes",
                          f"{env.launcher} started {started} but nodes={cfg.nodes} gpus={cfg.gpus}",
                          f"pass nodes={env.nodes} gpus={env.local_world_size} (gpus = processes per node)")


def _train(cfg: DictConfig, run_dir: str, resume_path: Optional[str], own_dir: Optional[str] = None) -> str:
    validate(cfg)
    tune_cpu_allocator()
    sweep_dir = hydra_sweep_dir()
    if sweep_dir and cfg.logger.group is None:  # wandb groups the jobs of one sweep
        cfg.logger.group = os.path.basename(os.path.normpath(sweep_dir))
    plain: Dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    launched = dist_lib.launcher_env()
    if launched is not None:  # torchrun or SLURM started every process, on one node or several
        _check_launch(cfg, launched)
        device = resolve_device(cfg.device)
        if device.type == "cuda":
            device = torch.device("cuda", launched.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(device)
        dist_lib.init_launched_group(launched, device)
        run_dir, resume_path = dist_lib.broadcast_object((run_dir, resume_path))  # rank 0's, on every node
        if launched.rank == 0:
            os.makedirs(run_dir, exist_ok=True)
        elif own_dir and os.path.abspath(own_dir) != os.path.abspath(run_dir):
            _remove_if_empty(own_dir)  # Hydra's directory for this rank, when its clock named it differently
        run(launched.rank, launched.world_size, None, plain, run_dir, resume_path,
            local_rank=launched.local_rank, local_world_size=launched.local_world_size)
    else:
        if cfg.nodes > 1:
            raise ConfigError("nodes", f"nodes={cfg.nodes} needs a launcher that starts the processes on every node",
                              f"run under torchrun --nnodes {cfg.nodes} --nproc_per_node {cfg.gpus} ... or "
                              f"python train.py -m hydra/launcher=submitit_slurm nodes={cfg.nodes} gpus={cfg.gpus} ...")
        os.makedirs(run_dir, exist_ok=True)
        if cfg.gpus > 1:
            print(f"[zoo] launching {cfg.gpus} processes", flush=True)
        dist_lib.launch(run, cfg.gpus, run_dir, args=(plain, run_dir, resume_path))
    print(f"[zoo] run directory: {os.path.abspath(run_dir)}", flush=True)
    return run_dir


def _remove_if_empty(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:  # not empty, or already gone: not ours to delete
        pass


def cluster_overrides(argv) -> list:
    """The overrides train.py adds to its command line (each unless ``argv`` sets that key itself):

    * with ``hydra/launcher=submitit_slurm`` or ``submitit_local``, the job's shape from the run's
      keys: ``nodes=N gpus=G`` → N nodes, G tasks (processes) and G GPUs per node (no GPUs with
      ``device=cpu``); on SLURM also up to 100 requeues after time-outs (the plugin's
      ``max_num_timeout`` is 0: never);
    * on torchrun ranks > 0, no ``.hydra/`` copy and no log file (rank 0's directory is the run's,
      and only rank 0 writes)."""
    extra = {}
    launcher = override_value(argv, "hydra/launcher") or ""
    if launcher.startswith("submitit"):
        extra.update({"hydra.launcher.nodes": "${nodes}", "hydra.launcher.tasks_per_node": "${gpus}"})
        if override_value(argv, "device") != "cpu":
            extra["hydra.launcher.gpus_per_node"] = "${gpus}"
        if launcher == "submitit_slurm":
            extra["hydra.launcher.max_num_timeout"] = "100"
    if dist_lib.is_torchrun() and os.environ.get("RANK", "0") != "0":
        extra.update({"hydra.output_subdir": "null", "hydra/job_logging": "stdout"})
    return [f"{key}={value}" for key, value in extra.items() if override_value(argv, key) is None]


APP = AppSpec("train", train, always_list=("metrics.names", "aug.policy"))  # metrics.names=fid2k needs no brackets


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    hydra_main(APP, insert_overrides(argv, cluster_overrides(argv)))
