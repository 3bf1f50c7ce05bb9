"""Dataset tool: convert images into NVIDIA's dataset format (what ``dataset_tool.py`` writes).

    python -m zoo.data.prepare source=~/ffhq/images1024x1024 dest=~/datasets/ffhq256.zip resolution=256 resize_filter=box
    python -m zoo.data.prepare source=~/photos dest=~/datasets/photos128.zip resolution=128 transform=center-crop
    python -m zoo.data.prepare source=~/data/cifar10/cifar-10-python.tar.gz dest=~/datasets/cifar10.zip
    python -m zoo.data.prepare source=~/lsun/car_images dest=~/datasets/car512 resolution=512x384 transform=center-crop-wide

or from Python: ``summary = prepare_dataset(source, dest, resolution=256, resize_filter="box")``.

**Sources** (the kind is detected from the path; ``source_kind=folder|zip|cifar10`` overrides it):

* an image folder, searched recursively (FFHQ's ``images1024x1024``, exported LSUN images, ...), or a
  zip of images (an NVIDIA-format zip included).  Files are taken in the order of their relative
  paths (``/`` separators, sorted); hidden entries (a path part starting with ``.``) and macOS
  ``__MACOSX`` folders are ignored, as are files whose extension PIL cannot open.  An optional
  ``dataset.json`` at the root, ``{"labels": [[relpath, int or [floats]], ...]}``, carries the
  labels over (every image then needs one; ``labels=false`` drops them).
* CIFAR-10: torchvision's ``cifar-10-python.tar.gz`` (read in place) or the extracted
  ``cifar-10-batches-py`` folder (or a folder holding either, as ``data=cifar10`` uses), read with
  :mod:`zoo.data.cifar`'s safe reader; class labels are kept; ``split=train|test|all`` (train:
  the 50,000 images NVIDIA's tool writes).
* LSUN ``*_lmdb`` databases are refused with instructions: ``lmdb`` is not a dependency, so export
  the images first (``python data.py export <category>_lmdb --out_dir <dir>`` from
  github.com/fyu/lsun) and pass that folder.  MNIST's idx files are not supported.

**Output** (NVIDIA's layout, readable by ``data=folder`` and NVIDIA's own loader): ``dest`` ending in
``.zip`` gives an uncompressed zip (``ZIP_STORED``, fixed timestamps, so equal inputs give equal
bytes), anything else a folder; images ``00000/img00000000.png, 00000/img00000001.png, ...``
(PNG, ``compress_level=0``) numbered contiguously over the images written; ``dataset.json`` =
``{"labels": [["00000/img00000000.png", 6], ...]}`` or ``{"labels": null}``.

**Options**

* ``resolution``: the output side, a power of two (>= 4); outputs are square.  ``null`` keeps the
  source size, which requires every image to be square, the same size and a power of two (else a
  clear error suggests ``resolution=``).  ``WxH`` (e.g. ``512x384``) is accepted: ``RxR`` means R, and
  a wide ``WxH`` (H < W) is the letterbox content size for ``transform=center-crop-wide``.
* ``transform``: ``null`` (default) resizes the whole image to ``resolution`` x ``resolution`` as NVIDIA
  does, stretching non-square images (the summary counts them); ``center-crop`` takes the largest
  centred square, then resizes; ``center-crop-wide`` crops the image's centre rows to the W:H aspect
  ratio, resizes that to W x H and pastes it into the middle of a black W x W canvas (LSUN car's
  512x384-in-512 layout).  Images narrower than W or wider than W:H cannot fill the box and are skipped
  as too small, as NVIDIA's tool drops them.  (NVIDIA's ``center_crop_wide`` keeps ``round(W*h/w)``
  source rows rather than ``round(w*H/W)``, which squashes the result unless the source is exactly W
  wide, NVlabs/stylegan2-ada-pytorch#47; this tool crops the intended W:H region.)
* ``resize_filter``: ``lanczos`` (default, as NVIDIA's tool) or ``box``.  **``box`` is what reproduces
  the published FFHQ-256 FIDs** (NVIDIA's README: ``--resize-filter=box`` is required to reproduce
  the paper's numbers; Lanczos is otherwise the better filter).  Images already at the output size
  are never resampled.
* ``max_images``: use only the first N source images (in the order above), like NVIDIA's
  ``--max-images``; bad images among them are skipped, so fewer may be written.
* ``channels``: ``null`` (default) writes grayscale (L, 1 channel) when *every* source image is
  grayscale (modes 1, L, LA, 16-bit I), else RGB; ``1`` or ``3`` forces it.  Everything else is
  converted with PIL: RGBA/LA lose their alpha channel (dropped, not composited), palette (P),
  CMYK and YCbCr images become RGB, grayscale images in a colour dataset are replicated to RGB
  (NVIDIA's tool stops on mixed L/RGB data and on RGBA), and 16-bit grayscale is scaled to 8 bits.
  The summary lists what was converted.  EXIF orientation is ignored, as in NVIDIA's tool.
* ``strict``: bad images (corrupt or truncated files, files that are not images, unsupported modes,
  images too small for ``center-crop-wide``) are skipped and named in the summary; ``strict=true``
  stops at the first one instead.
* ``overwrite``: an existing ``dest`` is refused unless ``overwrite=true`` (an empty folder is fine).
* ``workers``: processes that decode/resize/encode in parallel (``null``: up to 8 for large
  sources, ``0``: in this process); the output is the same for any value.

Nothing half-written is ever left at ``dest``: the dataset is built in a hidden temporary file or
folder next to it (``.<name>.<random>.tmp``) and renamed into place at the end; on an error,
Ctrl-C or SIGTERM the temporary is removed (only a SIGKILL can leave one behind).  The summary says
how many images were written and skipped (with their names and reasons), the resolution, channels,
labels, output path and time.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import PIL.Image
from omegaconf import MISSING

from zoo.config import ConfigError
from zoo.utils import umask

from .base import DatasetError, is_power_of_two
from .cifar import ARCHIVE as CIFAR_ARCHIVE
from .cifar import BATCH_DIR as CIFAR_BATCH_DIR
from .cifar import SPLITS as CIFAR_SPLITS
from .export import nvidia_relpath
from .image_files import LABELS_FILE, _is_hidden, image_extensions

__all__ = ["prepare_dataset", "format_summary", "detect_source_kind", "PrepareConfig", "register_schema", "run", "main"]

SOURCE_KINDS = ("folder", "zip", "cifar10")
TRANSFORMS = ("center-crop", "center-crop-wide")
RESIZE_FILTERS = {"box": PIL.Image.Resampling.BOX, "lanczos": PIL.Image.Resampling.LANCZOS}
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N"}
_SIXTEEN_BIT_GRAY = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_OTHER_ARCHIVES = (".tar", ".tar.gz", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".tfrecords")
_MIN_SIDE = 4
_AUTO_WORKERS_MIN_IMAGES = 256


# ------------------------------------------------------------------------------------------------
# Option checks
# ------------------------------------------------------------------------------------------------

def _pow2_neighbours(n: int) -> str:
    lo = 1 << max(int(math.floor(math.log2(max(n, 1)))), 2)
    return f"{lo} or {lo * 2}" if lo != n else str(n)


def _parse_transform(transform: Any) -> Optional[str]:
    if transform is None:
        return None
    t = str(transform).strip().lower().replace("_", "-")
    if t in ("", "none", "null", "resize"):
        return None
    if t not in TRANSFORMS:
        raise ConfigError("transform", f"unknown transform {transform!r}",
                          "use transform=center-crop, transform=center-crop-wide or leave it null (plain resize)")
    return t


def _parse_resolution(resolution: Any, transform: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
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
    if not (is_power_of_two(w) and w >= _MIN_SIDE):
        raise ConfigError("resolution", f"{w} is not a power of two >= {_MIN_SIDE}",
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


def _parse_filter(resize_filter: Any) -> str:
    f = str(resize_filter if resize_filter is not None else "lanczos").strip().lower()
    if f not in RESIZE_FILTERS:
        raise ConfigError("resize_filter", f"unknown filter {resize_filter!r}",
                          "use resize_filter=lanczos (default, as NVIDIA) or resize_filter=box (reproduces the FFHQ-256 numbers)")
    return f


def _check_int(value: Any, key: str, minimum: int, fix: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ConfigError(key, f"{value!r} is not an integer >= {minimum}", fix)
    return int(value)


# ------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------

def _lmdb_error(path: str) -> DatasetError:
    return DatasetError(
        f"{path!r} looks like an LSUN lmdb database, which this tool cannot read (lmdb is not a dependency). "
        f"Export the images first, e.g. `python data.py export {path} --out_dir <images_dir>` with "
        f"github.com/fyu/lsun, then pass source=<images_dir> (add transform=center-crop or center-crop-wide)."
    )


def detect_source_kind(source: str) -> str:
    """'folder' | 'zip' | 'cifar10' from the path; DatasetError for what this tool cannot read."""
    source = os.path.expanduser(str(source))
    if os.path.isdir(source):
        base = os.path.basename(os.path.normpath(source))
        if base.endswith("_lmdb") or os.path.isfile(os.path.join(source, "data.mdb")):
            raise _lmdb_error(source)
        if (base == CIFAR_BATCH_DIR or os.path.isfile(os.path.join(source, "data_batch_1"))
                or os.path.isdir(os.path.join(source, CIFAR_BATCH_DIR))
                or os.path.isfile(os.path.join(source, CIFAR_ARCHIVE))):
            return "cifar10"
        return "folder"
    if os.path.isfile(source):
        low = source.lower()
        if low.endswith(".zip"):
            return "zip"
        if low.endswith((".tar.gz", ".tgz")):
            return "cifar10"
        if low.endswith(".mdb"):
            raise _lmdb_error(os.path.dirname(source))
        if "idx3-ubyte" in os.path.basename(low):
            raise DatasetError(f"{source!r}: MNIST idx files are not supported; convert them to an image folder first.")
        if zipfile.is_zipfile(source):
            return "zip"
        raise DatasetError(
            f"cannot tell what dataset {source!r} is: use an image folder, a .zip of images, CIFAR-10's "
            f"{CIFAR_ARCHIVE} or its {CIFAR_BATCH_DIR}/ folder (or set source_kind=folder|zip|cifar10)."
        )
    raise DatasetError(f"source not found: {source!r} does not exist. Pass source= an image folder, a .zip or CIFAR-10's {CIFAR_ARCHIVE}.")


def _list_images(kind: str, path: str) -> Tuple[List[str], int]:
    """(image relpaths sorted, number of other files ignored)."""
    if kind == "folder":
        files = []
        for root, dirs, names in os.walk(path, followlinks=True):
            dirs.sort()
            for n in names:
                files.append(os.path.relpath(os.path.join(root, n), path).replace(os.sep, "/"))
    else:
        try:
            with zipfile.ZipFile(path) as zf:
                files = [n for n in zf.namelist() if not n.endswith("/")]
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetError(f"{path!r} is not a readable zip file ({exc}).") from None
    exts = set(image_extensions())
    images = sorted(f for f in files if os.path.splitext(f)[1].lower() in exts and not _is_hidden(f))
    other = sum(1 for f in files if f != LABELS_FILE and not _is_hidden(f)) - len(images)
    return images, other


def _read_labels_file(kind: str, path: str) -> Optional[bytes]:
    if kind == "folder":
        p = os.path.join(path, LABELS_FILE)
        if not os.path.isfile(p):
            return None
        with open(p, "rb") as f:
            return f.read()
    with zipfile.ZipFile(path) as zf:
        try:
            return zf.read(LABELS_FILE)
        except KeyError:
            return None


def _label_table(raw: Optional[bytes], where: str) -> Optional[Dict[str, Any]]:
    """relpath -> label from a dataset.json, or None when it has no labels."""
    if raw is None:
        return None
    how = f'{LABELS_FILE} must hold {{"labels": [["<relative/path.png>", <int class or [floats]>], ...]}} or {{"labels": null}}; fix it, or pass labels=false'
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{where!r} is not valid JSON ({exc}). {how}.") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{where!r}: expected a JSON object. {how}.")
    labels = doc.get("labels")
    if labels is None:
        return None
    try:
        pairs = labels.items() if isinstance(labels, dict) else labels
        return {str(k).replace("\\", "/"): v for k, v in pairs}
    except (TypeError, ValueError):
        raise DatasetError(f'{where!r}: "labels" must be a list of [relative_path, label] pairs. {how}.') from None


def _normalise_labels(names: Sequence[str], values: Sequence[Any], where: str) -> Tuple[List[Any], int]:
    """JSON-ready labels (ints or float lists, as the reader expects) and the label dimension."""
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and float(v).is_integer()

    fix = f"Use integer classes >= 0 or equal-length number lists for every image in {where!r}, or pass labels=false"
    if all(is_int(v) for v in values):
        ints = [int(v) for v in values]
        neg = [f"{n} ({v})" for n, v in zip(names, ints) if v < 0]
        if neg:
            raise DatasetError(f"negative class label(s): {_listing(neg)}. {fix}.")
        return ints, max(ints) + 1
    if all(isinstance(v, (list, tuple)) for v in values):
        lens = sorted({len(v) for v in values})
        if len(lens) != 1:
            raise DatasetError(f"vector labels of different lengths {lens}. {fix}.")
        try:
            return [[float(x) for x in v] for v in values], lens[0]
        except (TypeError, ValueError):
            raise DatasetError(f"vector labels must contain only numbers. {fix}.") from None
    odd = [f"{n} ({v!r})" for n, v in zip(names, values) if not is_int(v)]
    raise DatasetError(f"labels must be all integer classes or all number lists; got e.g. {_listing(odd, 3)}. {fix}.")


def _listing(items: Sequence[str], k: int = 5) -> str:
    shown = ", ".join(items[:k])
    return shown + (f" ... and {len(items) - k} more" if len(items) > k else "")


# ------------------------------------------------------------------------------------------------
# Per-image work (in this process or in worker processes)
# ------------------------------------------------------------------------------------------------

def _reason(exc: BaseException) -> str:
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


class _Processor:
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
            return index, None, _reason(exc), False, None

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


_WORKER: Optional[_Processor] = None


def _worker_init(processor: _Processor) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool
    _WORKER = processor


def _worker_run(job):
    assert _WORKER is not None
    return _WORKER(job)


# ------------------------------------------------------------------------------------------------
# Destination: a temporary next to dest, renamed into place
# ------------------------------------------------------------------------------------------------

def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.unlink(path)
        except OSError as e:  # cleanup must not hide the error that caused it; say what is left behind
            print(f"[zoo] could not remove the temporary {path!r} ({e}); delete it by hand", file=sys.stderr)


class _Writer:
    def __init__(self, dest: str) -> None:
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
        if self.is_zip:
            fd, self.tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=parent)
            os.close(fd)
            self.zf = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        else:
            self.tmp = tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent)

    def put(self, relpath: str, data: bytes) -> None:
        if self.zf is not None:
            info = zipfile.ZipInfo(relpath, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            self.zf.writestr(info, data)
        else:
            path = os.path.join(self.tmp, *relpath.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

    def commit(self, overwrite: bool) -> None:
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
                return
            else:
                trash = self.tmp + ".old"
                os.rename(dest, trash)
                try:
                    os.rename(self.tmp, dest)
                except BaseException:
                    os.rename(trash, dest)
                    raise
                _remove(trash)
                return
        os.rename(self.tmp, dest)

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


def _check_dest(source: str, dest: str, overwrite: bool, kind: str) -> None:
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


# ------------------------------------------------------------------------------------------------
# The tool
# ------------------------------------------------------------------------------------------------

def _progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=True)


def _scan_headers(kind: str, path: str, names: Sequence[str], progress: bool):
    """-> (sizes {name: (w, h)}, modes {name: mode}, bad [(name, reason)])."""
    sizes: Dict[str, Tuple[int, int]] = {}
    modes: Dict[str, str] = {}
    bad: List[Tuple[str, str]] = []
    zf = zipfile.ZipFile(path) if kind == "zip" else None
    try:
        for name in _progress(names, len(names), "reading headers", progress):
            try:
                fp = zf.open(name) if zf is not None else open(os.path.join(path, *name.split("/")), "rb")
                with fp, PIL.Image.open(fp) as img:
                    sizes[name] = img.size
                    modes[name] = img.mode
            except Exception as exc:
                bad.append((name, _reason(exc)))
    finally:
        if zf is not None:
            zf.close()
    return sizes, modes, bad


def prepare_dataset(
    source: str,
    dest: str,
    resolution: Any = None,
    transform: Optional[str] = None,
    resize_filter: str = "lanczos",
    max_images: Optional[int] = None,
    strict: bool = False,
    overwrite: bool = False,
    source_kind: Optional[str] = None,
    channels: Optional[int] = None,
    labels: bool = True,
    split: str = "train",
    workers: Optional[int] = 0,
    progress: bool = False,
) -> Dict[str, Any]:
    """Convert ``source`` into an NVIDIA-format dataset at ``dest`` (``*.zip`` or a folder).

    See the module docstring for every option.  Returns the summary dict: ``dest``, ``format``
    ('zip' | 'folder'), ``source``, ``source_kind``, ``considered`` (source images looked at),
    ``images`` (written), ``skipped`` ([{'name', 'reason'}], in source order), ``resolution``,
    ``channels``, ``mode``, ``labels`` (bool), ``label_dim``, ``transform``, ``resize_filter``,
    ``stretched`` (non-square images resized without a transform), ``converted`` ({source mode:
    count}), ``ignored_files`` (non-image files in the source), ``seconds``.

    Raises :class:`~zoo.config.ConfigError` for bad options and :class:`DatasetError` for data
    problems (both ``ValueError``); nothing is left at ``dest`` then.
    """
    t0 = time.time()
    transform = _parse_transform(transform)
    side, wide_h = _parse_resolution(resolution, transform)
    resize_filter = _parse_filter(resize_filter)
    max_images = _check_int(max_images, "max_images", 1, "use a positive number of images, or null for all")
    channels = _check_int(channels, "channels", 1, "use channels=1 (grayscale), channels=3 (RGB) or null (from the data)")
    if channels not in (None, 1, 3):
        raise ConfigError("channels", f"{channels} channels are not supported", "use channels=1, channels=3 or null")
    workers = _check_int(workers, "workers", 0, "use workers=0 (in this process), a number of processes, or null (automatic)")
    if split not in CIFAR_SPLITS:
        raise ConfigError("split", f"unknown CIFAR-10 split {split!r}", f"use one of {', '.join(sorted(CIFAR_SPLITS))}")
    if source is None or str(source).strip() in ("", "???"):
        raise ConfigError("source", "is required", "pass source=/path/to/images (a folder, a .zip or cifar-10-python.tar.gz)")
    if dest is None or str(dest).strip() in ("", "???"):
        raise ConfigError("dest", "is required", "pass dest=/path/to/out.zip (or a folder)")
    source = os.path.abspath(os.path.expanduser(str(source)))
    dest = os.path.abspath(os.path.expanduser(str(dest)))
    if source_kind is not None and str(source_kind).lower() not in ("", "auto", "null", "none"):
        kind = str(source_kind).lower()
        if kind not in SOURCE_KINDS:
            raise ConfigError("source_kind", f"unknown source kind {source_kind!r}", f"use one of {', '.join(SOURCE_KINDS)} or null (detect)")
        if not os.path.exists(source):
            raise DatasetError(f"source not found: {source!r} does not exist.")
    else:
        kind = detect_source_kind(source)
    _check_dest(source, dest, bool(overwrite), kind)

    # -- the source's items and labels ----------------------------------------------------------
    skipped: List[Tuple[str, str]] = []
    cifar_images: Optional[np.ndarray] = None
    label_values: Optional[List[Any]] = None
    ignored = 0
    keep_side: Optional[int] = None
    if kind == "cifar10":
        from .cifar import CIFAR10Dataset

        ds = CIFAR10Dataset(source, split=split, use_labels=True)
        n = ds.num_raw_images if max_images is None else min(ds.num_raw_images, max_images)
        cifar_images = ds.raw_images[:n]
        names = [f"{split}[{i}]" for i in range(n)]
        if labels:
            label_values = [int(v) for v in ds.raw_class_labels[:n]]
        mode = "L" if channels == 1 else "RGB"
        keep_side = 32
        candidates = names
    else:
        all_names, ignored = _list_images(kind, source)
        if not all_names:
            raise DatasetError(f"no image files found in {source!r} ({ignored} other file(s)); it must contain images PIL can read (.png, .jpg, ...).")
        names = all_names if max_images is None else all_names[:max_images]
        table = _label_table(_read_labels_file(kind, source), f"{source}/{LABELS_FILE}") if labels else None
        if table is not None:
            missing = [f for f in names if f not in table]
            if missing:
                raise DatasetError(
                    f"{source}/{LABELS_FILE} has labels but none for {len(missing)} image(s): {_listing(missing)}. "
                    f"Add them, or pass labels=false to write the dataset without labels."
                )
            label_values = [table[f] for f in names]
        candidates = list(names)
        mode = {1: "L", 3: "RGB"}.get(channels or 0, "")
        if channels is None or side is None:
            sizes, modes, bad = _scan_headers(kind, source, names, progress)
            if bad and strict:
                raise DatasetError(f"cannot read image {source}/{bad[0][0]} ({bad[0][1]}); strict=true stops at the first bad image. "
                                   f"Remove or re-encode it, or run with strict=false to skip bad images.")
            skipped.extend(bad)
            bad_names = {b for b, _ in bad}
            candidates = [f for f in names if f not in bad_names]
            if not candidates:
                raise DatasetError(f"none of the {len(names)} image file(s) in {source!r} can be read: {_listing([f'{b} ({r})' for b, r in bad])}.")
            if channels is None:
                mode = "L" if all(modes[f] in _GRAY_MODES for f in candidates) else "RGB"
            if side is None:
                fix = ("Pass resolution=<power of two> to resize them (add transform=center-crop to keep the aspect ratio), "
                       "e.g. resolution=256 transform=center-crop")
                nonsquare = [f"{f} ({sizes[f][0]}x{sizes[f][1]})" for f in candidates if sizes[f][0] != sizes[f][1]]
                if nonsquare:
                    raise DatasetError(f"resolution=null keeps the source size, but {len(nonsquare)} image(s) are not square: {_listing(nonsquare)}. {fix}.")
                odd = [f"{f} ({sizes[f][0]}x{sizes[f][1]})" for f in candidates if not (is_power_of_two(sizes[f][0]) and sizes[f][0] >= _MIN_SIDE)]
                if odd:
                    raise DatasetError(f"resolution=null keeps the source size, but the side of {_listing(odd)} is not a power of two >= {_MIN_SIDE}. {fix}.")
                first = sizes[candidates[0]]
                mixed = [f"{f} ({sizes[f][0]}x{sizes[f][1]})" for f in candidates if sizes[f] != first]
                if mixed:
                    raise DatasetError(f"resolution=null keeps the source size, but the images differ in size: {candidates[0]} is "
                                       f"{first[0]}x{first[1]}, {_listing(mixed)} differ(s). {fix}.")
                keep_side = first[0]
    out_side = side if side is not None else keep_side
    label_dim = 0
    if label_values is not None:
        label_values, label_dim = _normalise_labels(names, label_values, source)
        label_of = dict(zip(names, label_values))

    # -- convert --------------------------------------------------------------------------------
    processor = _Processor(kind, source, mode, transform, side, wide_h, resize_filter, keep_side)
    index_of = {name: i for i, name in enumerate(names)}
    jobs: Iterator[Tuple[int, str, Optional[np.ndarray]]] = (
        (index_of[name], name, None if cifar_images is None else cifar_images[index_of[name]].transpose(1, 2, 0))
        for name in candidates
    )
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if len(candidates) >= _AUTO_WORKERS_MIN_IMAGES else 0
        workers = 0 if workers <= 1 else workers
    pool = None
    writer: Optional[_Writer] = None
    written = 0
    stretched = 0
    converted: Dict[str, int] = {}
    out_labels: List[List[Any]] = []
    try:
        try:
            writer = _Writer(dest)
        except OSError as exc:
            raise DatasetError(f"cannot write next to dest {dest!r} ({exc}); check the folder and its permissions.") from None
        if workers and len(candidates) > 1:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods and sys.platform != "darwin" else "spawn")
            pool = ctx.Pool(workers, initializer=_worker_init, initargs=(processor,))
            chunk = max(1, min(32, len(candidates) // (workers * 8)))
            results = pool.imap(_worker_run, jobs, chunksize=chunk)
        else:
            results = map(processor, jobs)
        for index, png, reason, was_stretched, src_mode in _progress(results, len(candidates), "prepare", progress):
            name = names[index]
            if png is None:
                if strict:
                    raise DatasetError(
                        f"cannot use image {name!r} of {source!r} ({reason}); strict=true stops at the first bad image. "
                        f"Remove or fix it, or run with strict=false to skip bad images."
                    )
                skipped.append((name, str(reason)))
                continue
            rel = nvidia_relpath(written)
            try:
                writer.put(rel, png)
            except OSError as exc:
                raise DatasetError(f"writing {dest!r} failed ({exc}); nothing was written there.") from None
            written += 1
            stretched += int(bool(was_stretched))
            if src_mode is not None:
                converted[src_mode] = converted.get(src_mode, 0) + 1
            if label_values is not None:
                out_labels.append([rel, label_of[name]])
        if written == 0:
            raise DatasetError(f"no image of {source!r} could be used, so nothing was written; skipped: "
                               f"{_listing([f'{n} ({r})' for n, r in skipped])}.")
        doc = {"labels": out_labels if label_values is not None else None}
        try:
            writer.put(LABELS_FILE, json.dumps(doc).encode("utf-8"))
            writer.commit(bool(overwrite))
        except OSError as exc:
            raise DatasetError(f"writing {dest!r} failed ({exc}); nothing was written there.") from None
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
            pool = None
        if writer is not None:
            writer.abort()
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        processor.close()

    order = {n: i for i, n in enumerate(names)}
    skipped.sort(key=lambda s: order.get(s[0], -1))
    return {
        "dest": dest,
        "format": "zip" if writer.is_zip else "folder",
        "source": source,
        "source_kind": kind,
        "considered": len(names),
        "images": written,
        "skipped": [{"name": n, "reason": r} for n, r in skipped],
        "resolution": out_side,
        "letterbox": [out_side, wide_h] if wide_h is not None else None,
        "channels": 1 if mode == "L" else 3,
        "mode": mode,
        "labels": label_values is not None,
        "label_dim": label_dim,
        "transform": transform,
        "resize_filter": resize_filter,
        "stretched": stretched,
        "converted": converted,
        "ignored_files": ignored,
        "seconds": time.time() - t0,
    }


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def format_summary(summary: Dict[str, Any], max_listed: int = 50) -> str:
    """The human-readable report that ``python -m zoo.data.prepare`` prints."""
    s = summary
    res = s["resolution"]
    lines = [f"[prepare] wrote {s['images']} image{'s' if s['images'] != 1 else ''} to {s['dest']} ({s['format']}) "
             f"in {_duration(s['seconds'])}"]
    src = f"  source:   {s['source']} ({s['source_kind']}; {s['considered']} image{'s' if s['considered'] != 1 else ''} considered"
    if s.get("ignored_files"):
        src += f", {s['ignored_files']} non-image file{'s' if s['ignored_files'] != 1 else ''} ignored"
    lines.append(src + ")")
    how = f"transform {s['transform']}" if s["transform"] else "no transform"
    if s.get("letterbox"):
        how += f" ({s['letterbox'][0]}x{s['letterbox'][1]} letterboxed)"
    lines.append(f"  images:   {res}x{res}, {s['channels']} channel{'s' if s['channels'] != 1 else ''} ({s['mode']}); "
                 f"{how}, resize filter {s['resize_filter']}")
    if s["labels"]:
        lines.append(f"  labels:   yes (label_dim {s['label_dim']})")
    else:
        lines.append('  labels:   no ("labels": null)')
    skipped = s["skipped"]
    lines.append(f"  skipped:  {len(skipped)}" + (":" if skipped else ""))
    for item in skipped[:max_listed]:
        lines.append(f"    {item['name']}: {item['reason']}")
    if len(skipped) > max_listed:
        lines.append(f"    ... and {len(skipped) - max_listed} more")
    if s.get("stretched"):
        lines.append(f"  note:     {s['stretched']} non-square image(s) were stretched to {res}x{res} (no transform); "
                     f"transform=center-crop keeps the aspect ratio")
    if s.get("converted"):
        parts = ", ".join(f"{n} {m}" + (" (alpha dropped)" if m in ("RGBA", "LA", "La", "RGBa", "PA") else "")
                          for m, n in sorted(s["converted"].items()))
        lines.append(f"  note:     converted to {s['mode']}: {parts}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# The Hydra app: python -m zoo.data.prepare source=... dest=... [key=value ...]
# ------------------------------------------------------------------------------------------------

@dataclass
class PrepareConfig:
    """Schema of ``conf/prepare.yaml`` (``python -m zoo.data.prepare``); see the module docstring."""

    source: str = MISSING
    dest: str = MISSING
    resolution: Any = None  # power of two (square output); null: keep the source size; WxH for center-crop-wide
    transform: Optional[str] = None  # null (resize) | center-crop | center-crop-wide
    resize_filter: str = "lanczos"  # lanczos (NVIDIA's default) | box (reproduces the FFHQ-256 numbers)
    max_images: Optional[int] = None
    strict: bool = False  # stop at the first bad image instead of skipping it
    overwrite: bool = False
    source_kind: Optional[str] = None  # null: detect | folder | zip | cifar10
    channels: Optional[int] = None  # null: 1 if every image is grayscale, else 3
    labels: bool = True  # keep the source's labels (dataset.json / CIFAR-10 classes)
    split: str = "train"  # CIFAR-10: train | test | all
    workers: Optional[int] = None  # null: automatic; 0: in this process
    progress: bool = True


def register_schema() -> None:
    """Store :class:`PrepareConfig` as ``schema_prepare`` in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="schema_prepare", node=PrepareConfig)


def run(cfg: Any) -> Dict[str, Any]:
    """Run the tool on a composed ``conf/prepare.yaml`` config and print the summary."""
    from omegaconf import OmegaConf

    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        raise ConfigError(missing[0], "is required", f"pass {missing[0]}=PATH")
    options = OmegaConf.to_container(cfg, resolve=True)
    options = {k: v for k, v in options.items() if k in PrepareConfig.__dataclass_fields__}  # type: ignore[union-attr]
    summary = prepare_dataset(**options)
    print(format_summary(summary), flush=True)
    return summary


def _config_dir() -> Optional[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    conf = os.path.normpath(os.path.join(here, "..", "..", "conf"))
    return conf if os.path.isfile(os.path.join(conf, "prepare.yaml")) else None


def main() -> None:
    import hydra

    register_schema()
    conf = _config_dir()

    @hydra.main(version_base="1.3", config_path=conf, config_name="prepare" if conf else "schema_prepare")
    def _app(cfg) -> None:
        from zoo.cli import report_user_errors

        def on_sigterm(signum, frame):  # unwind like Ctrl-C, so the temporary output is removed
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)
        report_user_errors(run, cfg)

    _app()


if __name__ == "__main__":
    main()
