"""``python -m zoo.bench [model=NAME] [mode=inference|train] [key=value ...]``: speed benchmarks,
generator inference (img/s) and training (s/kimg) per generation (``conf/bench.yaml``).

    python -m zoo.bench                                  # every registered generation, both benchmarks
    python -m zoo.bench model=stylegan2 mode=inference   # one generation, one benchmark
    python -m zoo.bench model=stylegan2 mode=train resolution=64 batch=16 channel_base=8192
    python -m zoo.bench device=cuda threads=8
    python -m zoo.bench tune_allocator=false             # glibc's default allocator behaviour

Each generation has a preset per benchmark (``bench`` in its ``zoo/generations/<name>.py``: the
sizes the project's targets are stated for); any key given on the command line overrides it.
Training runs the real training algorithm (:class:`zoo.training.Trainer`, same losses, phases and
lazy-regularization schedule as ``train.py``) on random images, over a whole number of
regularization cycles, so the time per kimg includes R1 and path length at their amortized cost
(whole cycles until ``min_seconds``, default 10).
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from zoo import generations
from zoo.apps.common import AppSpec, hydra_main
from zoo.core.errors import ConfigError
from zoo.core.runtime import peak_memory_gb, reset_peak_memory, tune_cpu_allocator
from zoo.training.trainer import Trainer

__all__ = ["BenchConfig", "bench", "bench_inference", "bench_train", "train_config", "main", "APP"]

MODES = ("inference", "train")
MODEL_KEYS = ("channel_base", "channel_max", "mapping_layers", "z_dim", "w_dim", "config")


@dataclass
class BenchConfig:
    """``conf/bench.yaml``. Keys left null take the generation's preset (or the model's default)."""

    model: Any = None  # model=NAME selects one generation's config group (null: every registered one)
    mode: Optional[str] = None  # inference | train (null: both)
    device: str = "cpu"  # cpu | cuda | cuda:N
    threads: Optional[int] = None  # torch CPU threads (null: torch's default)
    tune_allocator: bool = True  # keep freed activations in the process (zoo.core.runtime.tune_cpu_allocator)
    resolution: Optional[int] = None
    batch: Optional[int] = None
    channel_base: Optional[int] = None
    channel_max: Optional[int] = None
    mapping_layers: Optional[int] = None
    z_dim: Optional[int] = None
    w_dim: Optional[int] = None
    config: Optional[str] = None  # StyleGAN3: t | r
    noise_mode: Optional[str] = None  # inference: const | random | none
    warmup: int = 2  # untimed iterations first
    min_iters: int = 3  # inference: at least this many timed batches
    min_seconds: float = 10.0  # and at least this long
    cycles: int = 1  # training: at least this many lazy-regularization cycles


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_config(model: str, opts: Dict[str, Any]) -> Dict[str, Any]:
    """The resolved-enough train config (plain dict) of a benchmark: the generation's model defaults
    with the preset's model keys, at the preset's resolution and batch."""
    spec = generations.get(model)
    m = spec.defaults()
    m.update({k: opts[k] for k in MODEL_KEYS if opts.get(k) is not None and k in m})
    return dict(model=m, resolution=int(opts["resolution"]), batch=int(opts["batch"]), batch_gpu=None, seed=0, kimg=0)


def bench_inference(model: str, opts: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    cfg = train_config(model, opts)
    spec = generations.get(model)
    hp = spec.resolve_hparams(cfg["model"], opts["resolution"], opts["batch"])
    G_kwargs, _ = spec.network_kwargs(hp, opts["resolution"], 3, 0)
    G = spec.build_generator(**G_kwargs).eval().requires_grad_(False).to(device)
    n_params = _count(G)
    z = torch.randn([opts["batch"], G.z_dim], device=device)
    c = torch.zeros([opts["batch"], 0], device=device)
    kwargs = dict(noise_mode=opts.get("noise_mode", "const"))
    with torch.inference_mode():
        for _ in range(int(opts.get("warmup", 2))):
            G(z, c, **kwargs)
        _sync(device)
        reset_peak_memory(device)
        iters, start = 0, time.perf_counter()
        while iters < int(opts.get("min_iters", 3)) or time.perf_counter() - start < float(opts.get("min_seconds", 10)):
            G(z, c, **kwargs)
            _sync(device)
            iters += 1
        elapsed = time.perf_counter() - start
    mem = peak_memory_gb(device)
    return dict(img_per_s=iters * opts["batch"] / elapsed, sec_per_batch=elapsed / iters, params_G=n_params,
                peak_mem_gb=mem)


def bench_train(model: str, opts: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    cfg = train_config(model, opts)
    trainer = Trainer(cfg, img_channels=3, device=device)
    if trainer.growing is not None:  # time the fully grown networks at the preset's batch
        trainer.growing = dataclasses.replace(trainer.growing, start_resolution=trainer.resolution, minibatch={})
        trainer.prepare()
    intervals = [p.interval for p in trainer.phases]
    cycle = math.lcm(*intervals)  # one full lazy-regularization cycle (16 iterations for SG2)
    cycles = int(opts.get("cycles", 1))
    res, b = trainer.resolution, trainer.batch_gpu
    gen = torch.Generator().manual_seed(0)
    reals = [torch.rand([b, 3, res, res], generator=gen).to(device) * 2 - 1 for _ in range(trainer.rounds)]
    cs = [torch.zeros([b, 0], device=device) for _ in range(trainer.rounds)]
    for _ in range(int(opts.get("warmup", 2))):  # the first iterations include the lazy phases
        trainer.step(reals, cs)
    trainer.batch_idx = 0  # start the timed cycle aligned with the regularization schedule
    _sync(device)
    reset_peak_memory(device)
    # Whole cycles, at least ``cycles`` of them and at least ``min_seconds`` (generations without
    # lazy regularization have 1-iteration cycles, too short to time alone).
    min_seconds = float(opts.get("min_seconds", 10))
    iters, start = 0, time.perf_counter()
    while iters < cycle * cycles or time.perf_counter() - start < min_seconds:
        for _ in range(cycle):
            trainer.step(reals, cs)
        iters += cycle
        _sync(device)
    elapsed = time.perf_counter() - start
    nimg = iters * trainer.batch
    mem = peak_memory_gb(device)
    return dict(sec_per_kimg=elapsed / nimg * 1000, sec_per_iter=elapsed / iters,
                iters=iters, params_G=_count(trainer.G), params_D=_count(trainer.D), peak_mem_gb=mem)


def bench(cfg: Any) -> List[Dict[str, Any]]:
    """Run the benchmarks a :class:`BenchConfig` (or a dict of its keys) asks for; print one line each
    and return the results."""
    args = dict(OmegaConf.to_container(cfg, resolve=True)) if isinstance(cfg, DictConfig) else dict(cfg)
    defaults = {f.name: f.default for f in dataclasses.fields(BenchConfig)}
    unknown = set(args) - set(defaults)
    if unknown:
        raise ConfigError(sorted(unknown)[0], "is not a benchmark option", f"use one of {', '.join(defaults)}")
    args = dict(defaults, **args)
    allocator = bool(args.pop("tune_allocator")) and tune_cpu_allocator()
    model, mode = args.pop("model"), args.pop("mode")
    if isinstance(model, dict):  # model=NAME on the command line composes that generation's config group
        model = model.get("name")
    models = [model] if model is not None else generations.names()
    for name in models:
        try:
            generations.get(name)
        except KeyError as e:
            raise ConfigError("model", str(e), f"use model=<one of {', '.join(generations.names())}> or leave it out") from None
    if mode is not None and mode not in MODES:
        raise ConfigError("mode", f"unknown benchmark {mode!r}", "use mode=inference or mode=train (or leave it out: both)")
    modes = [mode] if mode is not None else list(MODES)
    device = torch.device(args.pop("device"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but is not available", "use device=cpu")
    threads = args.pop("threads")
    if threads:
        torch.set_num_threads(int(threads))
    print(f"# zoo.bench  torch {torch.__version__}  device={device}  threads={torch.get_num_threads()}"
          f"  cpu={os.cpu_count()}  tuned_allocator={allocator}"
          + (f"  gpu={torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""), flush=True)
    overrides = {k: v for k, v in args.items() if v is not None}
    results = []
    for name in models:
        for m in modes:
            opts = dict(generations.get(name).bench.get(m, {}), **overrides)
            fn = bench_inference if m == "inference" else bench_train
            r = fn(name, opts, device)
            r.update(model=name, mode=m, **opts)
            results.append(r)
            desc = " ".join(f"{k}={v}" for k, v in opts.items())
            if m == "inference":
                print(f"{name:10s} inference  {r['img_per_s']:7.2f} img/s  ({r['sec_per_batch']:.3f} s/batch)  "
                      f"G {r['params_G']:,} params  peak mem {r['peak_mem_gb']:.2f} GB  [{desc}]", flush=True)
            else:
                print(f"{name:10s} train      {r['sec_per_kimg']:7.2f} s/kimg ({r['sec_per_iter']:.3f} s/iter over {r['iters']} iters)  "
                      f"G {r['params_G']:,} / D {r['params_D']:,} params  peak mem {r['peak_mem_gb']:.2f} GB  [{desc}]", flush=True)
    return results


APP = AppSpec("bench", bench, schema=BenchConfig)


def main(argv=None) -> None:
    hydra_main(APP, argv)
