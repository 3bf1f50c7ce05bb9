"""What ``train.py`` and ``sample.py`` do, as functions of a composed Hydra config (testable without
a subprocess). Both scripts are thin ``@hydra.main`` wrappers around these."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from zoo.config import ConfigError, parse_floats, parse_seeds, validate

__all__ = ["train", "sample", "report_user_errors"]


def listify_argv(argv, keys, always=()) -> list:
    """``key=a,b`` -> ``key=[a,b]`` for list-valued keys, so ``seeds=1,5,9`` or ``translate=0.1,0``
    need no brackets (Hydra would read the commas as a sweep); keys in ``always`` are lists even with
    one value (``metrics.names=fid2k``). Under ``-m``/``--multirun`` commas mean a sweep, so only a
    single value of an ``always`` key is wrapped."""
    multirun = "-m" in argv or "--multirun" in argv
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+")
        if sep and value and not value.startswith(("[", "'", '"')):
            if (key in always and (not multirun or "," not in value)) or (key in keys and "," in value and not multirun):
                arg = f"{arg.partition('=')[0]}=[{value}]"
        out.append(arg)
    return out


def _hydra_output_dir() -> Optional[str]:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        try:
            return HydraConfig.get().runtime.output_dir
        except Exception:  # compose() without return_hydra_config
            return None
    return None


def _hydra_sweep_dir() -> Optional[str]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return HydraConfig.get().sweep.dir
    return None


def _user_errors():
    from zoo.data import DatasetError
    from zoo.training.checkpoint import CheckpointError

    return (ConfigError, DatasetError, CheckpointError)


def report_user_errors(fn, cfg: DictConfig):
    """Run ``fn(cfg)``; print a user error (bad config, data or checkpoint) as one clear line and
    exit with status 2 for a single run. In a multirun the error propagates, so Hydra reports the
    failed job and carries on with the others."""
    try:
        return fn(cfg)
    except _user_errors() as e:
        if _hydra_sweep_dir():
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # the loop has already saved its state (see training_loop)
        print("interrupted", file=sys.stderr)
        sys.exit(130)


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------

def train(cfg: DictConfig, run_dir: Optional[str] = None) -> str:
    """Validate, pick the run directory (resuming if asked) and run the training loop on
    ``cfg.gpus`` processes. Returns the run directory. ``<run_dir>/job.json`` records the job and
    how it ended (``running`` → ``done`` | ``interrupted`` | ``failed``), for ``python -m zoo.report``."""
    from zoo.training.job import update_job

    run_dir, resume_path = _run_dir_and_resume(cfg, run_dir or _hydra_output_dir() or os.path.join(cfg.run_root, "run"))
    record = int(os.environ.get("RANK", "0")) == 0  # torchrun: one job.json, written by rank 0
    model = cfg.get("model") or {}
    if record:
        update_job(run_dir, status="running", started=time.time(), generation=model.get("name"),
                   config_name=model.get("config"), experiment=cfg.get("experiment"),
                   data=(cfg.get("data") or {}).get("name"), kimg_target=cfg.get("kimg"),
                   overrides=_hydra_overrides(), resumed_from=resume_path, pid=os.getpid())
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
    from zoo.training.checkpoint import find_latest_checkpoint

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


def _hydra_overrides() -> list:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        try:
            return list(HydraConfig.get().overrides.task)
        except Exception:  # compose() without return_hydra_config
            return []
    return []


def _train(cfg: DictConfig, run_dir: str, resume_path: Optional[str]) -> str:
    from zoo.training import distributed as dist_lib
    from zoo.training.loop import run
    from zoo.utils import tune_cpu_allocator

    validate(cfg)
    tune_cpu_allocator()
    sweep_dir = _hydra_sweep_dir()
    if sweep_dir and cfg.logger.group is None:  # wandb groups the jobs of one sweep
        cfg.logger.group = os.path.basename(os.path.normpath(sweep_dir))
    plain: Dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    os.makedirs(run_dir, exist_ok=True)
    if dist_lib.is_torchrun():
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if world != cfg.gpus:
            raise ConfigError("gpus", f"torchrun started {world} processes but gpus={cfg.gpus}", f"pass gpus={world}")
        from zoo.utils import resolve_device

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


# ------------------------------------------------------------------------------------------------
# sample
# ------------------------------------------------------------------------------------------------

MODES = ("images", "mixing", "interpolate", "noise", "truncation", "project")


def _parse_grid_wh(spec: Any):
    """``grid`` of mode=interpolate: ``WxH`` (or true/1 for one walk)."""
    if spec is True or spec is None or spec == 1:
        return 1, 1
    try:
        w, h = (int(v) for v in str(spec).lower().split("x"))
        if w < 1 or h < 1:
            raise ValueError
        return w, h
    except ValueError:
        raise ConfigError("grid", f"cannot parse {spec!r} as WxH", "use e.g. grid=2x2 (walks per row x rows)") from None


def sample(cfg: DictConfig, outdir: Optional[str] = None) -> str:
    """``sample.py``: render a checkpoint in one of :data:`MODES` (see ``zoo.sampling``). Writes the
    files and a ``sample.json`` (checkpoint sha256, generation, every option) into the output
    directory, prints where they went and returns it."""
    import zoo
    from zoo import registry
    from zoo.interop import load_any
    from zoo.utils import file_sha256, resolve_device, tune_cpu_allocator

    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        raise ConfigError(missing[0], "is required", f"pass {missing[0]}=PATH")
    if cfg.mode not in MODES:
        raise ConfigError("mode", f"unknown mode {cfg.mode!r}", f"use one of {', '.join(MODES)}")
    noise_mode = cfg.noise_mode if cfg.noise_mode is not None else ("random" if cfg.mode == "noise" else "const")
    if noise_mode not in ("const", "random", "none"):
        raise ConfigError("noise_mode", f"unknown noise mode {noise_mode!r}", "use const, random or none")
    if cfg.which not in ("G_ema", "G"):
        raise ConfigError("which", f"cannot sample from {cfg.which!r}", "use which=G_ema or which=G")
    if cfg.batch < 1:
        raise ConfigError("batch", f"{cfg.batch} is not a positive batch size", "use e.g. batch=8")
    if cfg.mode != "interpolate" and not isinstance(cfg.grid, bool):
        raise ConfigError("grid", f"expected true or false for mode={cfg.mode}, got {cfg.grid!r}",
                          "use grid=true or grid=false (grid=WxH is for mode=interpolate)")
    seeds = parse_seeds(cfg.seeds)
    tune_cpu_allocator()
    state = load_any(cfg.ckpt)   # a zoo .pt, or an NVIDIA .pkl imported on the fly
    generation = state.get("generation")
    if cfg.model is not None and cfg.model.name != generation:
        raise ConfigError("model", f"the checkpoint holds a {generation!r} model, not {cfg.model.name!r}",
                          f"drop model= or use model={generation}")
    registry.get(generation)
    device = resolve_device(cfg.device)
    G = zoo.load(state, which=cfg.which, device=device)
    if cfg.translate is not None or cfg.rotate:
        if not hasattr(G, "set_transform"):
            raise ConfigError("translate" if cfg.translate is not None else "rotate",
                              f"a {generation} generator has no input transform (StyleGAN3 only)",
                              "drop translate=/rotate=")
        translate = parse_floats(cfg.translate if cfg.translate is not None else 0.0, "translate", 2)
        G.set_transform(translate, float(cfg.rotate))

    c = torch.zeros([1, G.c_dim], device=device)
    if G.c_dim:
        if cfg.class_idx is None:
            raise ConfigError("class_idx", f"the model is conditional ({G.c_dim} classes)", f"pass class_idx=0..{G.c_dim - 1}")
        if not 0 <= cfg.class_idx < G.c_dim:
            raise ConfigError("class_idx", f"{cfg.class_idx} is out of range", f"use 0..{G.c_dim - 1}")
        c[:, cfg.class_idx] = 1
    elif cfg.class_idx is not None:
        raise ConfigError("class_idx", "the model is unconditional", "drop class_idx")

    outdir = outdir or cfg.outdir or _hydra_output_dir() or "samples"
    os.makedirs(outdir, exist_ok=True)
    from zoo import sample_modes

    run_mode = getattr(sample_modes, f"run_{cfg.mode}")
    extra = run_mode(G, cfg, c, outdir, noise_mode=noise_mode, seeds=seeds, generation=generation)
    options = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in ("seeds", "ckpt", "model")}
    options["noise_mode"] = noise_mode
    info = {"ckpt": os.path.abspath(cfg.ckpt), "ckpt_sha256": file_sha256(cfg.ckpt), "generation": generation,
            "mode": cfg.mode, "seeds": seeds, **options, **{k: v for k, v in extra.items() if k != "files"}}
    with open(os.path.join(outdir, "sample.json"), "w") as f:
        json.dump(info, f, indent=2)
    files = extra.get("files", [])
    print(f"[zoo] mode={cfg.mode}: wrote {len(files)} file{'s' if len(files) != 1 else ''} ({', '.join(files[:4])}{', ...' if len(files) > 4 else ''}) "
          f"and sample.json to {os.path.abspath(outdir)}", flush=True)
    return outdir
