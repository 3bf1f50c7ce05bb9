"""Micro-benchmarks behind the speed choices in :mod:`zoo.ops` -- rerun them on new hardware.

    python -m zoo.ops.benchmark                      # CPU, batch 8, the layers of a 256-px StyleGAN2
    python -m zoo.ops.benchmark --batch 1 --device cuda
    python -m zoo.ops.benchmark --grad               # forward + backward (training) instead of inference

For every modulated-conv layer shape it times the non-fused (shared weights) and fused (per-sample
weights) paths and prints which one :func:`zoo.ops.choose_fused` picks, so the rule can be checked
against the measurement. It also compares one 2-D FIR pass with two 1-D passes. Whole-network
throughput (img/s, s/kimg) is measured by ``python -m zoo.bench``.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, List, Tuple

import torch

from .conv import choose_fused, modulated_conv2d
from .fir import setup_filter, upfirdn2d

# (in_channels, out_channels, input resolution, up) of a 256-px, channel_base=16384 StyleGAN2.
SG2_256_LAYERS: List[Tuple[int, int, int, int]] = [
    (512, 512, 4, 1), (512, 512, 4, 2), (512, 512, 8, 1), (512, 512, 8, 2), (512, 512, 16, 1), (512, 512, 16, 2),
    (512, 512, 32, 1), (512, 256, 32, 2), (256, 256, 64, 1), (256, 128, 64, 2), (128, 128, 128, 1),
    (128, 64, 128, 2), (64, 64, 256, 1),
]


def _time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Best-of-``repeats`` wall time in ms (the minimum is the least noisy on a shared machine)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def bench_modconv(batch: int, device: torch.device, grad: bool, repeats: int) -> None:
    f = setup_filter([1, 3, 3, 1], device=device)
    memory_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    print(f"# modulated_conv2d, batch {batch}, {'forward+backward' if grad else 'inference'}, {device}")
    print(f"{'layer':>28s} {'non-fused':>10s} {'fused':>10s}  faster    rule")
    for in_ch, out_ch, res, up in SG2_256_LAYERS:
        x = torch.randn(batch, in_ch, res, res, device=device).contiguous(memory_format=memory_format)
        w = torch.randn(out_ch, in_ch, 3, 3, device=device)
        s = torch.randn(batch, in_ch, device=device)
        b = torch.zeros(out_ch, device=device)
        if grad:
            for t in (x, w, s, b):
                t.requires_grad_(True)
        times = {}
        for fused in (False, True):
            def run(fused=fused):
                with torch.set_grad_enabled(grad):
                    y = modulated_conv2d(x, w, s, up=up, padding=1, resample_filter=f, flip_weight=(up == 1),
                                         fused=fused, bias=b, activation="lrelu", gain=2 ** 0.5)
                    if grad:
                        y.sum().backward()
            times[fused] = _time(run, device, repeats)
        rule = choose_fused(x, w, up=up, requires_grad=grad)
        faster = times[True] < times[False]
        name = f"{in_ch}->{out_ch} {res}px{' up2' if up > 1 else ''}"
        print(f"{name:>28s} {times[False]:9.2f}ms {times[True]:9.2f}ms  {'fused' if faster else 'shared':8s}"
              f"  {'fused' if rule else 'shared'}", flush=True)


def bench_fir(batch: int, device: torch.device, repeats: int) -> None:
    memory_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    print(f"# FIR filter (pad 1, 4 taps): one 2-D pass vs two 1-D passes, batch {batch}, {device}")
    f2 = setup_filter([1, 3, 3, 1], device=device)
    f1 = setup_filter([1, 3, 3, 1], device=device, separable=True)
    for ch, res in [(64, 257), (128, 129), (512, 33)]:
        x = torch.randn(batch, ch, res, res, device=device).contiguous(memory_format=memory_format)
        with torch.inference_mode():
            t2 = _time(lambda: upfirdn2d(x, f2, padding=1), device, repeats)
            t1 = _time(lambda: upfirdn2d(x, f1, padding=1), device, repeats)
        print(f"{ch:4d}ch {res}px: 2-D {t2:8.2f} ms   separable {t1:8.2f} ms", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grad", action="store_true", help="time forward+backward instead of inference")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_modconv(args.batch, device, args.grad, args.repeats)
    bench_fir(args.batch, device, args.repeats)


if __name__ == "__main__":
    main()
