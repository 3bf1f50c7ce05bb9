"""Small shared helpers: image conversion and grids, devices, seeds."""
from __future__ import annotations

import os
from typing import IO, Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image

__all__ = ["to_uint8", "to_uint8_tensor", "make_grid", "save_image", "resolve_device", "z_from_seed", "tune_cpu_allocator",
           "file_sha256", "atomic_write", "umask"]


def to_uint8_tensor(img: torch.Tensor) -> torch.Tensor:
    """NCHW float in [-1, 1] → NCHW uint8 on the same device (NVIDIA's ``img * 127.5 + 128``, clamped, truncated)."""
    return (img.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """NCHW float in [-1, 1] → NHWC uint8 NumPy array (see :func:`to_uint8_tensor`)."""
    return to_uint8_tensor(img).permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: np.ndarray, cols: int, rows: Optional[int] = None) -> np.ndarray:
    """NHWC uint8 → one (rows*H, cols*W, C) image, row-major; missing cells stay black."""
    n, h, w, c = images.shape
    rows = rows if rows is not None else -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), dtype=images.dtype)
    for i in range(min(n, rows * cols)):
        r, q = divmod(i, cols)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = images[i]
    return grid


def save_image(array: np.ndarray, path: str, size: Optional[int] = None) -> str:
    """Save an HWC uint8 array (C = 1 or 3) as PNG, optionally nearest-upscaled so its height is ``size``."""
    arr = array[..., 0] if array.shape[-1] == 1 else array
    im = Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
    if size is not None and im.height < size:
        factor = max(1, size // im.height)
        im = im.resize((im.width * factor, im.height * factor), Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    im.save(tmp)
    os.replace(tmp, path)
    return path


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """The latent of a seed, identical on every machine (NumPy's RandomState, as NVIDIA's scripts)."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).float()


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    return torch.cat([z_from_seed(s, z_dim) for s in seeds])


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


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def umask() -> int:
    """The process umask (read without changing it for longer than the call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str, write: Callable[[IO], None], binary: bool = True) -> str:
    """Call ``write(f)`` on a temporary file in ``path``'s directory, fsync, give it the usual
    permissions (0666 & ~umask; temporary files start as 0600) and rename it over ``path``. An
    interrupted write never leaves a truncated or half-written ``path`` behind."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
