"""Dataset tool, stage 1: the options (transform, resolution, resize filter, counts) and the
destination checks; each failure is a ConfigError naming the option and the fix."""
from __future__ import annotations

import math
import os
import re
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import PIL.Image

from zoo.core.errors import ConfigError, DatasetError
from zoo.core.parse import is_power_of_two

__all__ = ["TRANSFORMS", "RESIZE_FILTERS", "MIN_SIDE", "parse_transform", "parse_resolution", "parse_filter",
           "check_int", "check_dest"]

TRANSFORMS = ("center-crop", "center-crop-wide")
RESIZE_FILTERS = {"box": PIL.Image.Resampling.BOX, "lanczos": PIL.Image.Resampling.LANCZOS}
_OTHER_ARCHIVES = (".tar", ".tar.gz", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".tfrecords")
MIN_SIDE = 4


def _pow2_neighbours(n: int) -> str:
    lo = 1 << max(int(math.floor(math.log2(max(n, 1)))), 2)
    return f"{lo} or {lo * 2}" if lo != n else str(n)

def parse_transform(transform: Any) -> Optional[str]:
    if transform is None:
        return None
    t = str(transform).strip().lower().replace("_", "-")
    if t in ("", "none", "null", "resize"):
        return None
    if t not in TRANSFORMS:
        raise ConfigError("transform", f"unknown transform {transform!r}",
                          "use transform=center-crop, transform=center-crop-wide or leave it null (plain resize)")
    return t

def parse_resolution(resolution: Any, transform: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
    """-> (side, letterbox content height for center-crop-wide or None)."""
    if resolution is None or (isinstance(resolution, str) and resolution.strip().lower() in ("", "null", "none")):
        if transform is not None:
            raise ConfigError("resolution", f"transform={transform} needs an output size",
                              "pass resolution=256 (center-crop) or resolution=512x384 (center-crop-wide)")
        return None, None
    explicit_h = False
    try:
        if isinstance(resolution, bool):
            raise ValueError
        if isinstance(resolution, (int, np.integer)) or (isinstance(resolution, float) and resolution.is_integer()):
            w = h = int(resolution)
        elif isinstance(resolution, str):
            m = re.fullmatch(r"\s*(\d+)\s*(?:[x,]\s*(\d+))?\s*", resolution.lower())
            if not m:
                raise ValueError
            w = int(m.group(1))
            h = int(m.group(2)) if m.group(2) else w
            explicit_h = m.group(2) is not None
        elif isinstance(resolution, Sequence) or hasattr(resolution, "__iter__"):
            w, h = (int(v) for v in resolution)
            explicit_h = True
        else:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError("resolution", f"cannot parse {resolution!r}",
                          "use a power of two such as resolution=256 (or WxH such as 512x384 with transform=center-crop-wide)") from None
    if not (is_power_of_two(w) and w >= MIN_SIDE):
        raise ConfigError("resolution", f"{w} is not a power of two >= {MIN_SIDE}",
                          f"use e.g. resolution={_pow2_neighbours(w).split(' or ')[0]}: outputs are square with a "
                          f"power-of-two side ({_pow2_neighbours(w)} here), as the training code requires")
    if transform == "center-crop-wide":
        if not explicit_h:
            raise ConfigError("resolution", f"transform=center-crop-wide letterboxes a wide crop into a {w}x{w} square and "
                              "needs the size of that crop",
                              f"pass resolution={w}x{w * 3 // 4} (width x height of the content, e.g. LSUN car's 512x384)")
        if not 1 <= h <= w:
            raise ConfigError("resolution", f"letterbox height {h} must be between 1 and the width {w}",
                              f"use e.g. resolution={w}x{w * 3 // 4}")
        return w, h
    if h != w:
        raise ConfigError("resolution", f"{w}x{h} is not square; outputs are square",
                          f"use resolution={w}, or transform=center-crop-wide to letterbox a {w}x{h} crop into {w}x{w}")
    return w, None

def parse_filter(resize_filter: Any) -> str:
    f = str(resize_filter if resize_filter is not None else "lanczos").strip().lower()
    if f not in RESIZE_FILTERS:
        raise ConfigError("resize_filter", f"unknown filter {resize_filter!r}",
                          "use resize_filter=lanczos (default, as NVIDIA) or resize_filter=box (reproduces the FFHQ-256 numbers)")
    return f

def check_int(value: Any, key: str, minimum: int, fix: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ConfigError(key, f"{value!r} is not an integer >= {minimum}", fix)
    return int(value)

def check_dest(source: str, dest: str, overwrite: bool, kind: str) -> None:
    if not os.path.basename(dest.rstrip("/\\")):
        raise ConfigError("dest", f"{dest!r} is not a file or folder name", "pass dest=/path/to/out.zip or dest=/path/to/out_folder")
    low = dest.lower()
    if low.endswith(_OTHER_ARCHIVES):
        raise ConfigError("dest", f"{dest!r} is not a .zip; NVIDIA's format is an uncompressed zip or a folder",
                          f"use dest={os.path.splitext(dest)[0].removesuffix('.tar')}.zip or a folder name")
    real_src, real_dst = os.path.realpath(source), os.path.realpath(dest)
    if real_src == real_dst:
        raise ConfigError("dest", "dest is the source", "write to a new path")
    if kind == "folder" and (real_dst + os.sep).startswith(real_src + os.sep):
        raise ConfigError("dest", f"{dest!r} is inside the source folder (a later run would read it back as images)",
                          "put dest outside the source folder")
    if (real_src + os.sep).startswith(real_dst + os.sep):
        raise ConfigError("dest", f"the source {source!r} is inside dest {dest!r}", "choose a dest that does not contain the source")
    if os.path.lexists(dest):
        empty_dir = os.path.isdir(dest) and not low.endswith(".zip") and not os.listdir(dest)
        if not empty_dir and not overwrite:
            raise DatasetError(
                f"dest {dest!r} already exists. Pass overwrite=true to replace it (the old one is replaced only "
                f"once the new dataset is complete), or choose another dest."
            )
