"""Write images in NVIDIA's dataset format (zip or folder).

Layout: ``{i:08d}[:5]/img{i:08d}.png`` (``00000/img00000000.png`` ...), PNGs saved with
``compress_level=0``, and ``dataset.json`` = ``{"labels": [[relpath, label], ...]}`` or
``{"labels": null}``; zips are uncompressed (``ZIP_STORED``) unless ``compress=True``.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import PIL.Image

__all__ = ["write_dataset", "nvidia_relpath"]


def nvidia_relpath(index: int) -> str:
    name = f"{index:08d}"
    return f"{name[:5]}/img{name}.png"


def _to_pil(image: np.ndarray) -> PIL.Image.Image:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {a.dtype}")
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = a.transpose(1, 2, 0)  # CHW -> HWC
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return PIL.Image.fromarray(np.ascontiguousarray(a), "L" if a.ndim == 2 else "RGB")


def write_dataset(
    dest: str,
    images: Iterable[np.ndarray],
    labels: Optional[Sequence[Union[int, Sequence[float]]]] = None,
    compress: bool = False,
) -> str:
    """Write ``images`` (uint8 CHW or HWC arrays) to ``dest`` (``*.zip`` or a folder); return ``dest``."""
    dest = os.path.expanduser(str(dest))
    is_zip = dest.lower().endswith(".zip")
    entries = []
    if is_zip:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        zf = zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    else:
        os.makedirs(dest, exist_ok=True)
        zf = None

    def put(relpath: str, data: bytes) -> None:
        if zf is not None:
            zf.writestr(relpath, data)
        else:
            path = os.path.join(dest, *relpath.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

    try:
        for i, image in enumerate(images):
            buf = io.BytesIO()
            _to_pil(image).save(buf, format="png", compress_level=0, optimize=False)
            rel = nvidia_relpath(i)
            put(rel, buf.getvalue())
            entries.append(rel)
        if labels is not None:
            labels = list(labels)
            if len(labels) != len(entries):
                raise ValueError(f"{len(labels)} labels for {len(entries)} images")
            doc = {"labels": [[rel, (int(l) if np.ndim(l) == 0 else [float(x) for x in l])]
                              for rel, l in zip(entries, labels)]}
        else:
            doc = {"labels": None}
        put("dataset.json", json.dumps(doc).encode("utf-8"))
    finally:
        if zf is not None:
            zf.close()
    return dest
