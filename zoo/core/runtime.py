"""The process and its device: which device to run on, the CPU allocator, peak memory, durations."""
from __future__ import annotations

import os
import resource
from typing import Optional

import torch

__all__ = ["resolve_device", "tune_cpu_allocator", "peak_memory_gb", "reset_peak_memory", "peak_memory_kind",
           "format_duration"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU; anything else as ``torch.device`` reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def tune_cpu_allocator() -> bool:
    """Keep freed activation buffers in the process instead of returning them to the OS.

    glibc serves allocations above 32 MiB with fresh ``mmap`` pages and trims the heap eagerly,
    so every large activation of a forward/backward pass is zero-filled page by page again: on
    the 2-core CPU machines this costs up to a quarter of a StyleGAN2 inference pass (measured
    6.9 → 8.2 img/s at 256 px). Raising the mmap and trim thresholds makes glibc reuse the
    memory. It changes no result. Called by the entry points (train.py, sample.py, zoo.bench),
    never on import; a no-op where glibc's ``mallopt`` is unavailable. Returns whether it applied.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1))


# ------------------------------------------------------------------------------------------------
# Peak memory: CUDA max allocated, or the process's peak resident set on CPU
# ------------------------------------------------------------------------------------------------

def _vm_hwm_gb() -> Optional[float]:
    """The process's peak resident set since the last reset (Linux ``VmHWM``); None elsewhere."""
    if not os.path.exists("/proc/self/status"):
        return None
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2 ** 20
    return None


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory since the last :func:`reset_peak_memory`: CUDA max allocated, or on CPU the
    process's peak resident set (VmHWM; without /proc, the lifetime peak ru_maxrss)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    hwm = _vm_hwm_gb()
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def reset_peak_memory(device: torch.device) -> bool:
    """Start a new peak-memory window (a job of a sweep, the training after a metric evaluation, one
    benchmark). Returns False where the platform cannot reset the CPU peak (no writable
    /proc/self/clear_refs): peaks then cover the whole process lifetime."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as f:  # Linux: "5" resets VmHWM to the current RSS
            f.write("5")
        return _vm_hwm_gb() is not None
    except OSError:
        return False


def peak_memory_kind(device: torch.device, resettable: bool) -> str:
    """What :func:`peak_memory_gb` measures, for records: ``cuda_max_allocated``, ``process_peak_rss``
    or ``process_lifetime_peak_rss`` (when the window could not be reset)."""
    if device.type == "cuda":
        return "cuda_max_allocated"
    return "process_peak_rss" if resettable else "process_lifetime_peak_rss"


def format_duration(seconds: Optional[float]) -> str:
    """``'42.0 s'``, ``'3.7 min'``, ``'1.2 h'`` (``'–'`` for None)."""
    if seconds is None:
        return "–"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"
