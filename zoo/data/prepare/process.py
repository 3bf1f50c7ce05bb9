"""Dataset tool, stage 3: the work per image, in this process or in worker processes: decode (or
take the array), convert the mode, crop/resize, encode as PNG."""
from __future__ import annotations

import io
import os
import re
import signal
import zipfile
from typing import Any, Dict, Optional, Tuple

import numpy as np
import PIL.Image

from .options import RESIZE_FILTERS

__all__ = ["GRAY_MODES", "Processor", "failure_reason", "worker_init", "worker_run"]

GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N"}
_SIXTEEN_BIT_GRAY = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def failure_reason(exc: BaseException) -> str:
    """One line about why an image cannot be used (without PIL's file-object reprs)."""
    if isinstance(exc, PIL.UnidentifiedImageError):
        return "not an image file PIL can read (UnidentifiedImageError)"
    text = re.sub(r"\s*<_io\.[^>]*>", "", str(exc)).strip() or "unreadable"
    return f"{type(exc).__name__}: {text}"

def _to_mode(img: PIL.Image.Image, target: str) -> PIL.Image.Image:
    if img.mode == target:
        return img
    if img.mode in _SIXTEEN_BIT_GRAY:  # 16-bit grayscale: scale, do not clip (PIL's convert clips)
        a = np.asarray(img).astype(np.float64)
        gray = PIL.Image.fromarray(np.clip(np.round(a * (255.0 / 65535.0)), 0, 255).astype(np.uint8), "L")
        return gray if target == "L" else gray.convert("RGB")
    if img.mode == "F":
        raise ValueError("32-bit float images are not supported; save them as 8-bit PNG")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL's documented route for palette transparency
    return img.convert(target)

class Processor:
    """Decode (or take) one image, convert, crop/resize, encode as PNG. Picklable."""

    def __init__(self, kind: str, path: str, mode: str, transform: Optional[str], side: Optional[int],
                 wide_h: Optional[int], resize_filter: str, keep_side: Optional[int]) -> None:
        self.kind, self.path, self.mode = kind, path, mode
        self.transform, self.side, self.wide_h = transform, side, wide_h
        self.resample = RESIZE_FILTERS[resize_filter]
        self.keep_side = keep_side  # resolution=null: the common source size
        self._zip: Optional[zipfile.ZipFile] = None
        self._zip_pid: Optional[int] = None

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_zip"] = state["_zip_pid"] = None
        return state

    def close(self) -> None:
        if self._zip is not None and self._zip_pid == os.getpid():
            self._zip.close()
        self._zip = self._zip_pid = None

    def _read(self, name: str) -> bytes:
        if self.kind == "folder":
            with open(os.path.join(self.path, *name.split("/")), "rb") as f:
                return f.read()
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip.read(name)

    def __call__(self, job: Tuple[int, str, Optional[np.ndarray]]):
        """-> (index, png bytes or None, reason or None, stretched, converted-from mode or None)."""
        index, name, array = job
        try:
            if array is not None:
                img = PIL.Image.fromarray(array, "L" if array.ndim == 2 else "RGB")
            else:
                img = PIL.Image.open(io.BytesIO(self._read(name)))
                img.load()  # decode everything now: truncated/corrupt data fails here
            src_mode = img.mode
            img = _to_mode(img, self.mode)
            out, reason, stretched = self._transform(img)
            if out is None:
                return index, None, reason, False, None
            buf = io.BytesIO()
            out.save(buf, format="png", compress_level=0, optimize=False)
            return index, buf.getvalue(), None, stretched, (src_mode if src_mode != self.mode else None)
        except Exception as exc:  # PIL raises many types for bad data (OSError, SyntaxError, ValueError, ...)
            return index, None, failure_reason(exc), False, None

    def _transform(self, img: PIL.Image.Image):
        w, h = img.size
        if self.transform is None:
            if self.side is None:
                if (w, h) != (self.keep_side, self.keep_side):
                    return None, f"{w}x{h} differs from the dataset's {self.keep_side}x{self.keep_side}", False
                return img, None, False
            if (w, h) != (self.side, self.side):
                img = img.resize((self.side, self.side), self.resample)
            return img, None, w != h
        if self.transform == "center-crop":
            c = min(w, h)
            left, top = (w - c) // 2, (h - c) // 2
            img = img.crop((left, top, left + c, top + c))
            if c != self.side:
                img = img.resize((self.side, self.side), self.resample)
            return img, None, False
        # center-crop-wide: crop the centre rows to the W:H aspect, resize to WxH, letterbox into WxW.
        W, H = self.side, self.wide_h
        if w < W:
            return None, f"too small for center-crop-wide: {w}x{h} is narrower than {W} px (no upscaling)", False
        if int(round(W * h / w)) < H:
            return None, f"too small for center-crop-wide: {w}x{h} is wider than the {W}:{H} box", False
        ch = min(h, int(round(w * H / W)))
        top = (h - ch) // 2
        img = img.crop((0, top, w, top + ch))
        if img.size != (W, H):
            img = img.resize((W, H), self.resample)
        canvas = PIL.Image.new(img.mode, (W, W), 0)
        canvas.paste(img, (0, (W - H) // 2))
        return canvas, None, False

_WORKER: Optional[Processor] = None

def worker_init(processor: Processor) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool
    _WORKER = processor

def worker_run(job):
    assert _WORKER is not None
    return _WORKER(job)
