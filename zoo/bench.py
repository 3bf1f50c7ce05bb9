"""Speed benchmarks: generator inference (img/s) and training (s/kimg) per generation.

    python -m zoo.bench                                  # every registered generation, both benchmarks
    python -m zoo.bench model=stylegan2 mode=inference   # one generation, one benchmark
    python -m zoo.bench model=stylegan2 mode=train resolution=64 batch=16 channel_base=8192
    python -m zoo.bench device=cuda threads=8
    python -m zoo.bench tune_allocator=false             # glibc's default allocator behaviour

Each generation has a preset per benchmark (the sizes the project's targets are stated for); any
``key=value`` given on the command line overrides it. Training runs the real training loop
(:class:`zoo.training.Trainer`, same losses, phases and lazy-regularization schedule as
``train.py``) on random images, over a whole number of regularization cycles, so the time per
kimg includes R1 and path length at their amortized cost (whole cycles until ``min_seconds``, default 10).
"""
from __future__ import annotations

import math
import os
import resource
import sys
import time
from typing import Any, Dict, List

import torch
from omegaconf import OmegaConf

from zoo import registry

# Sizes at which the issues state their targets (see README, "Performance").
PRESETS: Dict[str, Dict[str, Dict[str, Any]]] = {
    "stylegan2": {
        "inference": dict(resolution=256, batch=8, channel_base=16384, channel_max=512, mapping_layers=8,
                          noise_mode="none"),
        "train": dict(resolution=32, batch=32, channel_base=4096, channel_max=128, mapping_layers=2),
    },
    # ProGAN / StyleGAN: the fully grown networks (lod 0) at the same sizes as StyleGAN2's presets.
    "progan": {
        "inference": dict(resolution=256, batch=8, channel_base=16384, channel_max=512),
        "train": dict(resolution=32, batch=32, channel_base=4096, channel_max=128),
    },
    "stylegan": {
        "inference": dict(resolution=256, batch=8, channel_base=16384, channel_max=512, mapping_layers=8,
                          noise_mode="none"),
        "train": dict(resolution=32, batch=32, channel_base=4096, channel_max=128, mapping_layers=2),
    },
    "stylegan3": {
        "inference": dict(resolution=256, batch=4, channel_base=16384, channel_max=512, mapping_layers=2,
                          noise_mode="const"),
        "train": dict(resolution=32, batch=32, channel_base=4096, channel_max=128, mapping_layers=2),
    },
}
MODEL_KEYS = ("channel_base", "channel_max", "mapping_layers", "z_dim", "w_dim", "config")


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_cfg(model: str, opts: Dict[str, Any]) -> Dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from zoo.config import register_schemas

    register_schemas()
    conf = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=conf):
        # data=shapes is only a placeholder here; it must not leak its CPU-sized network into a
        # preset, so the model keys a preset leaves out take the model group's own defaults.
        node = compose(f"model/{model}")
        defaults = OmegaConf.to_container(node.get("model", node))
        overrides = [f"model={model}", "logger=none", f"resolution={opts['resolution']}", f"batch={opts['batch']}"]
        overrides += [f"model.{k}={opts.get(k, defaults.get(k))}" for k in MODEL_KEYS if k in opts or k in defaults]
        cfg = compose("train", overrides=overrides)
    GlobalHydra.instance().clear()
    return OmegaConf.to_container(cfg, resolve=True)


def bench_inference(model: str, opts: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    cfg = _train_cfg(model, opts)
    from zoo.config import resolve_hparams

    spec = registry.get(model)
    hp = resolve_hparams(cfg["model"], opts["resolution"], opts["batch"])
    G_kwargs, D_kwargs = spec.network_kwargs(hp, opts["resolution"], 3, 0)
    G = spec.build_generator(**G_kwargs).eval().requires_grad_(False).to(device)
    n_params = _count(G)
    z = torch.randn([opts["batch"], G.z_dim], device=device)
    c = torch.zeros([opts["batch"], 0], device=device)
    kwargs = dict(noise_mode=opts.get("noise_mode", "const"))
    with torch.inference_mode():
        for _ in range(int(opts.get("warmup", 2))):
            G(z, c, **kwargs)
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        iters, start = 0, time.perf_counter()
        while iters < int(opts.get("min_iters", 3)) or time.perf_counter() - start < float(opts.get("min_seconds", 10)):
            G(z, c, **kwargs)
            _sync(device)
            iters += 1
        elapsed = time.perf_counter() - start
    mem = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else _peak_rss_gb()
    return dict(img_per_s=iters * opts["batch"] / elapsed, sec_per_batch=elapsed / iters, params_G=n_params,
                peak_mem_gb=mem)


def bench_train(model: str, opts: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    from zoo.training.loop import Trainer

    cfg = _train_cfg(model, opts)
    trainer = Trainer(cfg, img_channels=3, device=device)
    if trainer.growing is not None:  # time the fully grown networks at the preset's batch
        import dataclasses

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
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
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
    mem = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else _peak_rss_gb()
    return dict(sec_per_kimg=elapsed / nimg * 1000, sec_per_iter=elapsed / iters,
                iters=iters, params_G=_count(trainer.G), params_D=_count(trainer.D), peak_mem_gb=mem)


def main(argv: List[str]) -> List[Dict[str, Any]]:
    from zoo.utils import tune_cpu_allocator

    args = OmegaConf.to_container(OmegaConf.from_dotlist(argv)) if argv else {}
    allocator = bool(args.pop("tune_allocator", True)) and tune_cpu_allocator()
    models = [args.pop("model")] if "model" in args else registry.names()
    modes = [args.pop("mode")] if "mode" in args else ["inference", "train"]
    device = torch.device(args.pop("device", "cpu"))
    if "threads" in args:
        torch.set_num_threads(int(args.pop("threads")))
    print(f"# zoo.bench  torch {torch.__version__}  device={device}  threads={torch.get_num_threads()}"
          f"  cpu={os.cpu_count()}  tuned_allocator={allocator}", flush=True)
    results = []
    for model in models:
        registry.get(model)
        for mode in modes:
            opts = dict(PRESETS.get(model, {}).get(mode, {}), **args)
            fn = bench_inference if mode == "inference" else bench_train
            r = fn(model, opts, device)
            r.update(model=model, mode=mode, **{k: v for k, v in opts.items()})
            results.append(r)
            desc = " ".join(f"{k}={v}" for k, v in opts.items())
            if mode == "inference":
                print(f"{model:10s} inference  {r['img_per_s']:7.2f} img/s  ({r['sec_per_batch']:.3f} s/batch)  "
                      f"G {r['params_G']:,} params  peak mem {r['peak_mem_gb']:.2f} GB  [{desc}]", flush=True)
            else:
                print(f"{model:10s} train      {r['sec_per_kimg']:7.2f} s/kimg ({r['sec_per_iter']:.3f} s/iter over {r['iters']} iters)  "
                      f"G {r['params_G']:,} / D {r['params_D']:,} params  peak mem {r['peak_mem_gb']:.2f} GB  [{desc}]", flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
