"""``shapes``: the zoo's built-in procedural dataset (the default; nothing to download).

Every image is one filled shape on a soft two-colour gradient background.  Per image, drawn from
``np.random.RandomState(seed)`` (whose stream numpy keeps frozen, so the bytes are stable):

* class = shape type, balanced over the dataset: circle, square, triangle, ring, cross
  (``label_names``; ``use_labels=True`` gives the one-hot class for conditional training),
* scale, position (the shape stays inside the frame) and rotation,
* foreground hue/saturation/value, a background of a clearly different hue and brightness
  (a third of the images have a dark shape on a light background), and a background gradient
  (second colour and direction).

Rendering is analytic anti-aliasing: each shape is a signed distance field evaluated at the pixel
centres (in pixel units) and the coverage is ``clip(0.5 - distance, 0, 1)``, i.e. a one-pixel
linear ramp across every edge.  Everything is vectorised over images (numpy, chunks of a few
million pixels), so 10k images at 32x32 take well under a second.

The images are kept in memory as one uint8 array ``[N, 3, R, R]``; ``content_hash`` depends on
(seed, num_images, resolution, GENERATOR_VERSION) and the view options only.  Bump
``GENERATOR_VERSION`` whenever the rendering changes.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .base import DatasetError, ImageDataset, is_power_of_two

__all__ = ["ShapesDataset", "render_shapes", "SHAPE_NAMES", "GENERATOR_VERSION"]

GENERATOR_VERSION = 1
SHAPE_NAMES = ["circle", "square", "triangle", "ring", "cross"]
# Farthest point of each shape from its centre, in units of its "radius" (see _sdf).
_EXTENT = np.array([1.0, 0.8 * math.sqrt(2.0), 1.2, 1.0, math.hypot(0.95, 0.3)])
_CHUNK_PIXELS = 1 << 21  # pixels per vectorised chunk (~8 MB per float32 plane)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, all inputs in [0, 1]; returns [..., 3] float32."""
    h6 = (h % 1.0) * 6.0
    k = (np.array([5.0, 3.0, 1.0], dtype=np.float32) + h6[..., None]) % 6.0
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (v[..., None] * (1.0 - s[..., None] * ramp)).astype(np.float32)


def _draw_params(num: int, resolution: int, seed: int) -> Dict[str, np.ndarray]:
    """All random parameters of all images, drawn in a fixed order (the order is part of the format)."""
    rnd = np.random.RandomState(seed % (1 << 32))
    k = len(SHAPE_NAMES)
    p: Dict[str, np.ndarray] = {}
    p["cls"] = rnd.permutation(np.arange(num) % k).astype(np.int64)  # balanced classes
    p["size"] = rnd.uniform(0.16, 0.36, num) * resolution  # shape "radius" in pixels
    margin = p["size"] * _EXTENT[p["cls"]]  # keep the whole shape inside the frame
    p["cx"] = margin + rnd.uniform(0.0, 1.0, num) * (resolution - 2 * margin)
    p["cy"] = margin + rnd.uniform(0.0, 1.0, num) * (resolution - 2 * margin)
    p["angle"] = rnd.uniform(0.0, 2 * math.pi, num)
    fg_h = rnd.uniform(0.0, 1.0, num)
    fg_s = rnd.uniform(0.45, 0.95, num)
    fg_v = rnd.uniform(0.62, 1.0, num)
    bg_h = fg_h + rnd.uniform(0.25, 0.75, num)  # a clearly different hue
    bg_s = rnd.uniform(0.10, 0.65, num)
    bg_v = rnd.uniform(0.06, 0.40, num)
    bg_h2 = bg_h + rnd.uniform(-0.08, 0.08, num)
    bg_v2 = np.clip(bg_v + rnd.uniform(-0.15, 0.15, num), 0.02, 0.45)
    inverted = rnd.uniform(0.0, 1.0, num) < 1.0 / 3.0  # dark shape on a light background
    fg_v = np.where(inverted, 1.04 - fg_v, fg_v)
    bg_v = np.where(inverted, 1.02 - bg_v, bg_v)
    bg_v2 = np.where(inverted, 1.02 - bg_v2, bg_v2)
    p["fg"] = _hsv_to_rgb(fg_h, fg_s, fg_v)
    p["bg0"] = _hsv_to_rgb(bg_h, bg_s, bg_v)
    p["bg1"] = _hsv_to_rgb(bg_h2, bg_s, bg_v2)
    p["grad_angle"] = rnd.uniform(0.0, 2 * math.pi, num)
    return p


def _sdf(cls: int, u: np.ndarray, v: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, negative inside) of shape ``cls`` at local coords (u, v), radius s."""
    if cls == 0:  # circle
        return np.sqrt(u * u + v * v) - s
    if cls == 1:  # square (half side 0.8 s)
        return np.maximum(np.abs(u), np.abs(v)) - 0.8 * s
    if cls == 2:  # equilateral triangle: intersection of three half-planes, inradius 0.6 s
        d = None
        for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
            e = u * math.cos(a) + v * math.sin(a)
            d = e if d is None else np.maximum(d, e)
        return d - 0.6 * s
    if cls == 3:  # ring: outer radius s, inner radius 0.5 s
        return np.abs(np.sqrt(u * u + v * v) - 0.75 * s) - 0.25 * s
    if cls == 4:  # cross: two bars, half length 0.95 s, half width 0.3 s
        au, av = np.abs(u), np.abs(v)
        bar1 = np.maximum(au - 0.95 * s, av - 0.3 * s)
        bar2 = np.maximum(au - 0.3 * s, av - 0.95 * s)
        return np.minimum(bar1, bar2)
    raise AssertionError(cls)


def render_shapes(num: int, resolution: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Render ``num`` images; returns (uint8 [num, 3, R, R], int64 class labels [num])."""
    p = _draw_params(num, resolution, seed)
    out = np.empty([num, 3, resolution, resolution], dtype=np.uint8)
    coords = np.arange(resolution, dtype=np.float32) + 0.5
    X = coords[None, None, :]
    Y = coords[None, :, None]
    chunk = max(1, _CHUNK_PIXELS // (resolution * resolution))
    f32 = lambda a: a.astype(np.float32)[:, None, None]  # noqa: E731  (per-image scalar -> [B,1,1])
    for cls in range(len(SHAPE_NAMES)):
        members = np.nonzero(p["cls"] == cls)[0]
        for start in range(0, members.size, chunk):
            idx = members[start:start + chunk]
            dx, dy = X - f32(p["cx"][idx]), Y - f32(p["cy"][idx])
            c, s = f32(np.cos(p["angle"][idx])), f32(np.sin(p["angle"][idx]))
            u = c * dx + s * dy
            v = c * dy - s * dx
            alpha = np.clip(0.5 - _sdf(cls, u, v, f32(p["size"][idx])), 0.0, 1.0)
            # Background gradient along a random direction, t in [0, 1] across the image.
            gc, gs = f32(np.cos(p["grad_angle"][idx])), f32(np.sin(p["grad_angle"][idx]))
            half = resolution / 2.0
            t = np.clip(((X - half) * gc + (Y - half) * gs) / resolution + 0.5, 0.0, 1.0)
            alpha = alpha[:, None]
            t = t[:, None]
            bg0 = p["bg0"][idx][:, :, None, None]
            bg1 = p["bg1"][idx][:, :, None, None]
            fg = p["fg"][idx][:, :, None, None]
            bg = bg0 + (bg1 - bg0) * t
            img = bg + (fg - bg) * alpha
            out[idx] = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, p["cls"]


class ShapesDataset(ImageDataset):
    kind = "shapes"

    def __init__(
        self,
        resolution: Optional[int] = None,
        use_labels: bool = False,
        mirror: bool = False,
        max_size: Optional[int] = None,
        seed: int = 0,
        num_images: int = 10000,
        name: Optional[str] = None,
    ) -> None:
        resolution = 32 if resolution is None else int(resolution)
        if not is_power_of_two(resolution) or resolution < 4:
            raise DatasetError(f"shapes: resolution must be a power of two >= 4 (4, 8, 16, 32, ...), got {resolution}")
        num_images = int(num_images)
        if num_images <= 0:
            raise DatasetError(f"shapes: num_images must be positive, got {num_images}")
        self._gen_seed = int(seed)
        self._images, self._classes = render_shapes(num_images, resolution, self._gen_seed)
        onehot = np.zeros([num_images, len(SHAPE_NAMES)], dtype=np.float32)
        onehot[np.arange(num_images), self._classes] = 1
        super().__init__(
            name=name or "shapes",
            num_raw=num_images,
            resolution=resolution,
            num_channels=3,
            raw_labels=onehot,
            use_labels=use_labels,
            mirror=mirror,
            max_size=max_size,
            seed=seed,
            label_names=SHAPE_NAMES,
        )

    @property
    def classes(self) -> np.ndarray:
        """int64 shape class of every raw image."""
        return self._classes

    def _load_raw_image(self, raw_index: int) -> np.ndarray:
        return self._images[raw_index]

    def _content_identity(self) -> Dict[str, Any]:
        return {
            "kind": "shapes",
            "version": GENERATOR_VERSION,
            "seed": self._gen_seed,
            "num_images": int(self._images.shape[0]),
        }
