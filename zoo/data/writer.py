"""Write datasets in NVIDIA's format (zip or folder), atomically.

Layout: ``{i:08d}[:5]/img{i:08d}.png`` (``00000/img00000000.png`` ...), PNGs saved with
``compress_level=0``, and ``dataset.json`` = ``{"labels": [[relpath, label], ...]}`` or
``{"labels": null}``; zips are uncompressed (``ZIP_STORED``, fixed timestamps, so equal inputs give
equal bytes) unless ``compress=True``.

The one writer, :class:`DatasetWriter`, serves :func:`write_dataset` and the dataset tool
(``python -m zoo.data.prepare``): the dataset is built in a hidden temporary next to ``dest``
(``.<name>.<random>.tmp``) and renamed into place by :meth:`DatasetWriter.commit`, so nothing
half-written is ever left at ``dest``; :meth:`DatasetWriter.abort` removes the temporary.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from typing import Any, Iterable, List, Optional, Sequence, Union

import numpy as np
import PIL.Image

from zoo.core.errors import DatasetError
from zoo.core.files import umask

from .image_files import LABELS_FILE

__all__ = ["DatasetWriter", "write_dataset", "nvidia_relpath", "encode_png"]


def nvidia_relpath(index: int) -> str:
    name = f"{index:08d}"
    return f"{name[:5]}/img{name}.png"


def encode_png(image: Union[np.ndarray, PIL.Image.Image]) -> bytes:
    """A uint8 CHW or HWC array (1 or 3 channels) or a PIL image as PNG bytes (``compress_level=0``)."""
    if not isinstance(image, PIL.Image.Image):
        a = np.asarray(image)
        if a.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {a.dtype}")
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
            a = a.transpose(1, 2, 0)  # CHW -> HWC
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        image = PIL.Image.fromarray(np.ascontiguousarray(a), "L" if a.ndim == 2 else "RGB")
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=0, optimize=False)
    return buf.getvalue()


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.unlink(path)
        except OSError as e:  # cleanup must not hide the error that caused it; say what is left behind
            print(f"[zoo] could not remove the temporary {path!r} ({e}); delete it by hand", file=sys.stderr)


class DatasetWriter:
    """An NVIDIA-format dataset under construction at a temporary next to ``dest``.

    ``add_image(png)`` appends the next numbered image (and its label), ``commit(overwrite)`` writes
    ``dataset.json`` and renames the temporary over ``dest``, ``abort()`` removes it (and any parent
    directories this writer created)."""

    def __init__(self, dest: str, compress: bool = False) -> None:
        self.dest = dest
        self.is_zip = dest.lower().endswith(".zip")
        parent = os.path.dirname(dest) or "."
        self._made_dirs: List[str] = []
        d = os.path.abspath(parent)
        while not os.path.exists(d):
            self._made_dirs.append(d)
            d = os.path.dirname(d)
        os.makedirs(parent, exist_ok=True)
        prefix = f".{os.path.basename(dest)}."
        self.zf: Optional[zipfile.ZipFile] = None
        self._compress = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        if self.is_zip:
            fd, self.tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=parent)
            os.close(fd)
            self.zf = zipfile.ZipFile(self.tmp, "w", compression=self._compress, allowZip64=True)
        else:
            self.tmp = tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent)
        self.count = 0
        self.labels: List[List[Any]] = []

    def put(self, relpath: str, data: bytes) -> None:
        if self.zf is not None:
            info = zipfile.ZipInfo(relpath, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = self._compress
            info.external_attr = 0o644 << 16
            self.zf.writestr(info, data)
        else:
            path = os.path.join(self.tmp, *relpath.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

    def add_image(self, png: bytes, label: Any = None) -> str:
        """Append PNG bytes as the next image (``label``: an int class or a list of floats, or None)."""
        rel = nvidia_relpath(self.count)
        self.put(rel, png)
        self.count += 1
        if label is not None:
            self.labels.append([rel, int(label) if np.ndim(label) == 0 else [float(x) for x in label]])
        return rel

    def commit(self, overwrite: bool, labels: bool = True) -> str:
        """Write ``dataset.json`` (``labels``: whether the images carry labels; every image must then
        have one) and move the dataset to ``dest``; an existing ``dest`` needs ``overwrite``."""
        if labels and len(self.labels) != self.count:
            raise ValueError(f"{len(self.labels)} labels for {self.count} images")
        self.put(LABELS_FILE, json.dumps({"labels": self.labels if labels else None}).encode("utf-8"))
        if self.zf is not None:
            self.zf.close()
            self.zf = None
            os.chmod(self.tmp, 0o666 & ~umask())  # mkstemp makes 0600
        else:
            os.chmod(self.tmp, 0o777 & ~umask())  # mkdtemp makes 0700
        dest = self.dest
        if os.path.lexists(dest):
            empty_dir = os.path.isdir(dest) and not os.path.islink(dest) and not os.listdir(dest)
            if empty_dir and not self.is_zip:
                os.rmdir(dest)
            elif not overwrite:  # appeared while we were writing
                raise DatasetError(f"dest {dest!r} exists; pass overwrite=true to replace it.")
            elif self.is_zip and os.path.isfile(dest) and not os.path.islink(dest):
                os.replace(self.tmp, dest)  # atomic
                return dest
            else:
                trash = self.tmp + ".old"
                os.rename(dest, trash)
                try:
                    os.rename(self.tmp, dest)
                except BaseException:
                    os.rename(trash, dest)
                    raise
                _remove(trash)
                return dest
        os.rename(self.tmp, dest)
        return dest

    def abort(self) -> None:
        if self.zf is not None:
            # The zip is discarded whole; a failing close (full disk, the very error being handled)
            # must not replace the original exception, and the file is removed just below.
            with contextlib.suppress(OSError, ValueError):
                self.zf.close()
            self.zf = None
        _remove(self.tmp)
        for d in self._made_dirs:  # innermost first; only directories this run created and left empty
            try:
                os.rmdir(d)
            except OSError:
                break


def write_dataset(
    dest: str,
    images: Iterable[np.ndarray],
    labels: Optional[Sequence[Union[int, Sequence[float]]]] = None,
    compress: bool = False,
) -> str:
    """Write ``images`` (uint8 CHW or HWC arrays) to ``dest`` (``*.zip`` or a folder), replacing
    what is there, atomically; return ``dest``."""
    dest = os.path.expanduser(str(dest))
    writer = DatasetWriter(dest, compress=compress)
    try:
        labels = None if labels is None else list(labels)
        for i, image in enumerate(images):
            writer.add_image(encode_png(image), None if labels is None or i >= len(labels) else labels[i])
        if labels is not None and len(labels) != writer.count:
            raise ValueError(f"{len(labels)} labels for {writer.count} images")
        return writer.commit(overwrite=True, labels=labels is not None)
    except BaseException:
        writer.abort()
        raise
