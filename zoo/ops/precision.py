"""Mixed precision, as NVIDIA's networks do it: some blocks compute in a low-precision dtype.

NVIDIA's policy (StyleGAN2/2-ADA/3, ``num_fp16_res = 4``): the blocks of the four highest
resolutions of G and D run in float16 (StyleGAN3: the layers whose sampling rate times
``2 ** num_fp16_res`` exceeds the output resolution), activations are clamped to ±``conv_clamp`` =
256, float16 modulated convolutions pre-normalise their weights and styles (against overflow;
bfloat16 has float32's exponent range and needs none), and everything else -- the
mapping network, the lowest resolutions, the images, the losses, the regularisers, the optimizer
state and the EMA -- stays float32; the parameters themselves are always float32 (each block casts
them to its compute dtype, so gradients arrive in float32).

The zoo follows that policy with one change of dtype by device: float16 on CUDA, **bfloat16 on
CPUs** (oneDNN runs bf16 convolutions 2-2.7x faster than fp32 on CPUs with AVX512-BF16 or AMX;
fp16 convolutions are not accelerated there). ``dtype='bf16'`` also selects bfloat16 on CUDA GPUs
that support it. A network's precision is a run-time setting, not part of its architecture or state
dict: :meth:`set_precision` on the zoo's generators and discriminators marks their low-precision
blocks, checkpoints hold float32 weights either way, and ``force_fp32=True`` (NVIDIA's argument)
runs one call in float32.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["PRECISIONS", "LOW_DTYPES", "Precision", "cpu_supports_bf16", "low_precision_dtype",
           "fp16_resolution", "resolve_mode", "FP32"]

PRECISIONS = ("fp32", "mixed", "auto")
LOW_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@functools.lru_cache(maxsize=None)
def cpu_supports_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic that oneDNN accelerates (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = {w for line in f if line.startswith("flags") for w in line.split()}
    except OSError:  # not Linux: ask oneDNN
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check()) if check is not None else False
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def low_precision_dtype(device: torch.device, dtype: Optional[str] = None) -> torch.dtype:
    """The dtype low-precision blocks compute in on ``device``: ``dtype`` if given (``'fp16'`` or
    ``'bf16'``), else float16 on CUDA and bfloat16 elsewhere."""
    if dtype is not None:
        return LOW_DTYPES[dtype]
    return torch.float16 if torch.device(device).type == "cuda" else torch.bfloat16


def resolve_mode(mode: str, device: torch.device, dtype: Optional[str] = None) -> str:
    """``'auto'`` -> ``'mixed'`` on CUDA (as NVIDIA) and on CPUs with bf16 arithmetic (AVX512-BF16 /
    AMX), ``'fp32'`` elsewhere; ``'fp32'`` and ``'mixed'`` unchanged."""
    if mode not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {mode!r}")
    if mode != "auto":
        return mode
    if torch.device(device).type == "cuda":
        return "mixed"
    return "mixed" if cpu_supports_bf16() and dtype != "fp16" else "fp32"


def fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """NVIDIA's rule for StyleGAN2 G and D: blocks at this resolution and above run in low precision
    (``max(2 ** (log2(R) + 1 - num_fp16_res), 8)``; ``num_fp16_res = 0``: none)."""
    if num_fp16_res <= 0:
        return 1 << 30
    return max(2 ** (int(img_resolution).bit_length() - 1 + 1 - int(num_fp16_res)), 8)


@dataclass(frozen=True)
class Precision:
    """A network's run-time precision: ``mode`` ``'fp32'`` (everything float32) or ``'mixed'``
    (the blocks :func:`fp16_resolution` selects run in :func:`low_precision_dtype`); ``dtype``
    ``None`` (by device), ``'fp16'`` or ``'bf16'``; ``num_fp16_res`` as NVIDIA's."""

    mode: str = "fp32"
    dtype: Optional[str] = None
    num_fp16_res: int = 4

    def __post_init__(self):
        if self.mode not in ("fp32", "mixed"):
            raise ValueError(f"precision mode must be 'fp32' or 'mixed', got {self.mode!r}")
        if self.dtype is not None and self.dtype not in LOW_DTYPES:
            raise ValueError(f"precision dtype must be one of {sorted(LOW_DTYPES)} or None, got {self.dtype!r}")
        if int(self.num_fp16_res) < 0:
            raise ValueError(f"num_fp16_res must be >= 0, got {self.num_fp16_res}")

    @property
    def mixed(self) -> bool:
        return self.mode == "mixed" and self.num_fp16_res > 0

    def compute_dtype(self, device: torch.device, low: bool, force_fp32: bool = False) -> torch.dtype:
        """The dtype of a block (``low``: the block is one of the low-precision ones)."""
        if low and self.mixed and not force_fp32:
            return low_precision_dtype(device, self.dtype)
        return torch.float32

    def describe(self) -> str:
        return "fp32" if not self.mixed else f"mixed ({self.dtype or 'fp16 on CUDA, bf16 on CPU'}, num_fp16_res={self.num_fp16_res})"


FP32 = Precision()

