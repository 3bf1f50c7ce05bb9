"""Images and animations: float NCHW in [-1, 1] to uint8, grids, PNG, GIF/WebP and MP4 writers."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from PIL import Image

__all__ = ["to_uint8", "to_uint8_tensor", "make_grid", "save_image", "save_animation", "save_mp4"]


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



def _pil_frames(frames: np.ndarray) -> List[Image.Image]:
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    return [Image.fromarray(f) for f in frames]


def save_animation(frames: np.ndarray, path: str, fps: float = 30, loop: bool = True) -> str:
    """Write ``[F, H, W, C]`` uint8 frames as an animated GIF or WebP (by the extension) with Pillow.
    GIF delays are in 10 ms units, so the frame time is rounded to that (30 fps -> 30 ms)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".gif", ".webp"):
        raise ValueError(f"animations are written as .gif or .webp, not {ext!r}")
    ims = _pil_frames(frames)
    duration = max(10, int(round(1000 / fps / 10)) * 10) if ext == ".gif" else max(1, int(round(1000 / fps)))
    kwargs: Dict[str, Any] = dict(save_all=True, append_images=ims[1:], duration=duration, loop=0 if loop else 1)
    if ext == ".gif":
        kwargs.update(optimize=False, disposal=1)
    else:
        kwargs.update(lossless=True)
    if not loop and ext == ".gif":
        kwargs.pop("loop")  # no NETSCAPE loop block: play once
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    ims[0].save(path, **kwargs)
    return path


def save_mp4(frames: np.ndarray, path: str, fps: float = 30) -> Optional[str]:
    """Write ``[F, H, W, C]`` uint8 frames as H.264 MP4 with imageio-ffmpeg (an optional extra:
    ``pip install 'zoo[video]'``). Returns the path, or None (with a message) when it is not installed."""
    try:
        import imageio_ffmpeg
    except ImportError:
        print("[zoo] MP4 skipped: imageio-ffmpeg is not installed (pip install imageio-ffmpeg, or "
              "pip install 'zoo[video]'); the GIF/WebP was written", flush=True)
        return None
    frames = np.asarray(frames)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    h, w = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(path, (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=2, output_params=["-crf", "18"])
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    return path
