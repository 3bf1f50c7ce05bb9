"""``python -m zoo.bench [model=NAME] [mode=inference|train|visualizer] [key=value ...]``: speed benchmarks,
generator inference (img/s) and training (s/kimg) per generation (``conf/bench.yaml``), and on request
the browser visualizer's ms per frame.

    python -m zoo.bench                                  # every registered generation, both benchmarks
    python -m zoo.bench model=stylegan2 mode=inference   # one generation, one benchmark
    python -m zoo.bench model=stylegan2 mode=train resolution=64 batch=16 channel_base=8192
    python -m zoo.bench device=cuda threads=8
    python -m zoo.bench tune_allocator=false             # glibc's default allocator behaviour
    python -m zoo.bench model=stylegan2 mode=visualizer  # ms per frame of python -m zoo.visualizer, 256 px

Each generation has a preset per benchmark (``bench`` in its ``zoo/generations/<name>.py``: the
sizes the project's targets are stated for); any key given on the command line overrides it.
Training runs the real training algorithm (:class:`zoo.training.Trainer`, same losses, phases and
lazy-regularization schedule as ``train.py``) on random images, over a whole number of
regularization cycles, so the time per kimg includes R1 and path length at their amortized cost
(whole cycles until ``min_seconds``, default 10). ``mode=visualizer`` (only when asked for) renders
single frames as the browser visualizer does (:class:`zoo.sampling.explore.View`, PNG encoding
included), a new seed each frame, with the generation's default model config at 256 px (the network
``train.py model=NAME resolution=256`` builds): the median of ``frames`` renders of the image alone
and of the image with a feature map (the middle feature layer, mean mode) and the spectrum.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from omegaconf import DictConfig, OmegaConf

from zoo import generations
from zoo.apps.common import AppSpec, hydra_main
from zoo.apps.visualizer import frame_json
from zoo.core.errors import ConfigError
from zoo.core.runtime import peak_memory_gb, reset_peak_memory, tune_cpu_allocator
from zoo.ops.precision import cpu_supports_bf16, resolve_mode
from zoo.sampling.explore import Controls, View
from zoo.training.config import check_precision
from zoo.training.trainer import Trainer

__all__ = ["BenchConfig", "bench", "bench_inference", "bench_train", "bench_visualizer", "train_config", "main",
           "APP"]

MODES = ("inference", "train", "visualizer")
DEFAULT_MODES = ("inference", "train")  # visualizer only when asked for
VISUALIZER_PRESET = dict(resolution=256, batch=1)  # the model keys keep the generation's defaults
MODEL_KEYS = ("channel_base", "channel_max", "mapping_layers", "z_dim", "w_dim", "config")


@dataclass
class BenchConfig:
    """``conf/bench.yaml``. Keys left null take the generation's preset (or the model's default)."""

    model: Any = None  # model=NAME selects one generation's config group (null: every registered one)
    mode: Optional[str] = None  # inference | train | visualizer (null: inference and train)
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
    frames: int = 20  # visualizer: timed renders of each kind (the median is reported)
    precision: Optional[str] = None  # fp32 | mixed | auto (null: fp32 and mixed side by side where mixed helps)
    precision_dtype: Optional[str] = None  # mixed: null = fp16 on CUDA, bf16 on CPU; fp16 | bf16
    num_fp16_res: Optional[int] = None  # mixed: null = 4 (NVIDIA's default)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_config(model: str, opts: Dict[str, Any], precision: str = "fp32") -> Dict[str, Any]:
    """The resolved-enough train config (plain dict) of a benchmark: the generation's model defaults
    with the preset's model keys, at the preset's resolution and batch, in ``precision``."""
    spec = generations.get(model)
    m = spec.defaults()
    m.update({k: opts[k] for k in MODEL_KEYS if opts.get(k) is not None and k in m})
    return dict(model=m, resolution=int(opts["resolution"]), batch=int(opts["batch"]), batch_gpu=None, seed=0, kimg=0,
                precision=precision, precision_dtype=opts.get("precision_dtype"),
                num_fp16_res=int(opts.get("num_fp16_res", 4)))


def _interleaved(runs: Dict[str, Callable[[], int]], min_rounds: int, min_seconds: float,
                 device: torch.device) -> Dict[str, Tuple[float, int]]:
    """Time each of ``runs`` (name -> a function doing one unit of work, returning how many items it
    did) in alternation, round after round, until every one ran ``min_rounds`` times and
    ``min_seconds`` passed in all. Alternating makes a side-by-side comparison fair on a shared or
    throttling machine. Returns name -> (median seconds per item, rounds)."""
    times: Dict[str, List[float]] = {name: [] for name in runs}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or time.perf_counter() - start < min_seconds:
        for name, fn in runs.items():
            _sync(device)
            t0 = time.perf_counter()
            n = fn()
            _sync(device)
            times[name].append((time.perf_counter() - t0) / n)
        rounds += 1
    return {name: (statistics.median(ts), len(ts)) for name, ts in times.items()}


def bench_inference(model: str, opts: Dict[str, Any], device: torch.device,
                    precisions: Sequence[str] = ("fp32",)) -> Dict[str, Dict[str, Any]]:
    """Generator inference in each of ``precisions`` (same weights), timed side by side."""
    cfg = train_config(model, opts)
    spec = generations.get(model)
    hp = spec.resolve_hparams(cfg["model"], opts["resolution"], opts["batch"])
    G_kwargs, _ = spec.network_kwargs(hp, opts["resolution"], 3, 0)
    G = spec.build_generator(**G_kwargs).eval().requires_grad_(False).to(device)
    z = torch.randn([opts["batch"], G.z_dim], device=device)
    c = torch.zeros([opts["batch"], 0], device=device)
    kwargs = dict(noise_mode=opts.get("noise_mode", "const"))
    nets, out = {}, {}
    with torch.inference_mode():
        for prec in precisions:
            net = G if prec == "fp32" else copy.deepcopy(G).set_precision(prec, opts.get("precision_dtype"),
                                                                          int(opts.get("num_fp16_res", 4)))
            reset_peak_memory(device)
            for _ in range(int(opts.get("warmup", 2))):
                net(z, c, **kwargs)
            _sync(device)
            nets[prec] = net
            out[prec] = dict(params_G=_count(net), peak_mem_gb=peak_memory_gb(device))

        def run(net):
            return lambda: (net(z, c, **kwargs), opts["batch"])[1]

        timed = _interleaved({p: run(n) for p, n in nets.items()}, int(opts.get("min_iters", 3)),
                             float(opts.get("min_seconds", 10)), device)
    for prec, (sec_per_img, rounds) in timed.items():
        out[prec].update(img_per_s=1 / sec_per_img, sec_per_batch=sec_per_img * opts["batch"], iters=rounds)
    return out


def bench_train(model: str, opts: Dict[str, Any], device: torch.device,
                precisions: Sequence[str] = ("fp32",)) -> Dict[str, Dict[str, Any]]:
    """Training in each of ``precisions`` (the same initial weights and data), whole
    lazy-regularization cycles timed side by side."""
    trainers, out = {}, {}
    for prec in precisions:
        trainer = Trainer(train_config(model, opts, prec), img_channels=3, device=device)
        if trainer.growing is not None:  # time the fully grown networks at the preset's batch
            trainer.growing = dataclasses.replace(trainer.growing, start_resolution=trainer.resolution, minibatch={})
            trainer.prepare()
        trainers[prec] = trainer
    first = next(iter(trainers.values()))
    cycle = math.lcm(*[p.interval for p in first.phases])  # one full lazy-regularization cycle (16 for SG2)
    res, b = first.resolution, first.batch_gpu
    gen = torch.Generator().manual_seed(0)
    reals = [torch.rand([b, 3, res, res], generator=gen).to(device) * 2 - 1 for _ in range(first.rounds)]
    cs = [torch.zeros([b, 0], device=device) for _ in range(first.rounds)]
    for prec, trainer in trainers.items():
        reset_peak_memory(device)
        for _ in range(int(opts.get("warmup", 2))):  # the first iterations include the lazy phases
            trainer.step(reals, cs)
        _sync(device)
        trainer.batch_idx = 0  # timed cycles start aligned with the regularization schedule
        out[prec] = dict(params_G=_count(trainer.G), params_D=_count(trainer.D), peak_mem_gb=peak_memory_gb(device),
                         precision_used=trainer.precision.describe())

    def run(trainer):
        def one_cycle():
            for _ in range(cycle):
                trainer.step(reals, cs)
            return cycle * trainer.batch
        return one_cycle

    # Whole cycles (generations without lazy regularization have 1-iteration cycles, too short to time
    # alone: min_seconds then decides), alternating between the precisions.
    timed = _interleaved({p: run(t) for p, t in trainers.items()}, int(opts.get("cycles", 1)),
                         float(opts.get("min_seconds", 10)), device)
    for prec, (sec_per_img, rounds) in timed.items():
        out[prec].update(sec_per_kimg=sec_per_img * 1000, sec_per_iter=sec_per_img * first.batch,
                         iters=rounds * cycle)
    return out


def bench_visualizer(model: str, opts: Dict[str, Any], device: torch.device,
                     precisions: Sequence[str] = ("fp32",)) -> Dict[str, Dict[str, Any]]:
    """Frames of the browser visualizer (render + PNG encoding of everything shown), one seed per
    frame: the image alone, and with the middle feature layer's map and the spectrum. Medians over
    ``frames`` renders of each, the two kinds and the precisions alternating."""
    cfg = train_config(model, opts)
    spec = generations.get(model)
    hp = spec.resolve_hparams(cfg["model"], opts["resolution"], 1)
    G_kwargs, _ = spec.network_kwargs(hp, opts["resolution"], 3, 0)
    G = spec.build_generator(**G_kwargs).eval().requires_grad_(False).to(device)
    G.generation = model
    views = {prec: View(G if prec == "fp32" else copy.deepcopy(G).set_precision(prec, opts.get("precision_dtype"),
                                                                            int(opts.get("num_fp16_res", 4))))
             for prec in precisions}
    layers = next(iter(views.values())).capabilities()["feature_layers"]
    layer = layers[len(layers) // 2]
    kinds = {"image": {}, "full": dict(feature_layer=layer, spectrum=True)}
    times: Dict[Tuple[str, str], List[float]] = {(p, k): [] for p in views for k in kinds}
    warmup, frames = int(opts.get("warmup", 2)), int(opts.get("frames", 20))
    for i in range(warmup + frames):
        for prec, view in views.items():
            for kind, extra in kinds.items():
                t0 = time.perf_counter()
                frame_json(view.render(Controls(seed=i, **extra)))
                if i >= warmup:
                    times[(prec, kind)].append((time.perf_counter() - t0) * 1000)
    return {prec: dict(params_G=_count(view.G), feature_layer=layer, frames=frames,
                       ms_image=statistics.median(times[(prec, "image")]),
                       ms_full=statistics.median(times[(prec, "full")]),
                       ms_image_min=min(times[(prec, "image")]), ms_full_min=min(times[(prec, "full")]))
            for prec, view in views.items()}


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
        raise ConfigError("mode", f"unknown benchmark {mode!r}",
                          "use mode=inference, mode=train or mode=visualizer (or leave it out: inference and train)")
    modes = [mode] if mode is not None else list(DEFAULT_MODES)
    device = torch.device(args.pop("device"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but is not available", "use device=cpu")
    precision = args.pop("precision")
    check_precision(precision or "auto", args.get("precision_dtype"), str(device), int(args.get("num_fp16_res") or 4))
    if precision is None:  # side by side: fp32, and mixed where the device runs it faster
        precisions = ["fp32"] + (["mixed"] if resolve_mode("auto", device, args.get("precision_dtype")) == "mixed" else [])
    else:
        precisions = [resolve_mode(precision, device, args.get("precision_dtype"))]
    threads = args.pop("threads")
    if threads:
        torch.set_num_threads(int(threads))
    print(f"# zoo.bench  torch {torch.__version__}  device={device}  threads={torch.get_num_threads()}"
          f"  cpu={os.cpu_count()}  tuned_allocator={allocator}  precision={'+'.join(precisions)}"
          + (f"  gpu={torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
          + (f"  cpu_bf16={cpu_supports_bf16()}" if device.type == "cpu" else ""), flush=True)
    overrides = {k: v for k, v in args.items() if v is not None}
    results = []
    for name in models:
        for m in modes:
            preset = VISUALIZER_PRESET if m == "visualizer" else generations.get(name).bench.get(m, {})
            opts = dict(preset, **overrides)
            fn = {"inference": bench_inference, "train": bench_train, "visualizer": bench_visualizer}[m]
            by_precision = fn(name, opts, device, precisions)
            desc = " ".join(f"{k}={v}" for k, v in opts.items())
            for prec, r in by_precision.items():
                r.update(model=name, mode=m, precision=prec, **opts)
                results.append(r)
                if m == "visualizer":
                    print(f"{name:10s} visualizer {prec:5s} {r['ms_image']:7.1f} ms/frame image only, "
                          f"{r['ms_full']:7.1f} ms/frame with feature map ({r['feature_layer']}) + spectrum  "
                          f"(median of {r['frames']}; fastest {r['ms_image_min']:.1f} / {r['ms_full_min']:.1f})  "
                          f"G {r['params_G']:,} params  [{desc}]", flush=True)
                elif m == "inference":
                    print(f"{name:10s} inference {prec:5s} {r['img_per_s']:7.2f} img/s  ({r['sec_per_batch']:.3f} s/batch, "
                          f"median of {r['iters']})  G {r['params_G']:,} params  peak mem {r['peak_mem_gb']:.2f} GB  [{desc}]",
                          flush=True)
                else:
                    print(f"{name:10s} train     {prec:5s} {r['sec_per_kimg']:7.2f} s/kimg ({r['sec_per_iter']:.3f} s/iter, "
                          f"{r['iters']} iters)  G {r['params_G']:,} / D {r['params_D']:,} params  "
                          f"peak mem {r['peak_mem_gb']:.2f} GB  [{desc}]", flush=True)
            if len(by_precision) == 2:
                a, b = by_precision["fp32"], by_precision["mixed"]
                if m == "inference":
                    ratio = b["img_per_s"] / a["img_per_s"]
                elif m == "visualizer":
                    ratio = a["ms_image"] / b["ms_image"]
                else:
                    ratio = a["sec_per_kimg"] / b["sec_per_kimg"]
                print(f"{name:10s} {m:9s} mixed/fp32 speed-up {ratio:.2f}x ({b.get('precision_used', 'mixed')})", flush=True)
                b["speedup_vs_fp32"] = ratio
    return results


APP = AppSpec("bench", bench, schema=BenchConfig)


def main(argv=None) -> None:
    hydra_main(APP, argv)
