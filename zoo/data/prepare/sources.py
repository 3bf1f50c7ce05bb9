"""Dataset tool, stage 2: the source (an image folder, a zip of images, CIFAR-10): what kind it is,
its image files in order, their labels (``dataset.json``) and their headers (size, mode)."""
from __future__ import annotations

import json
import math
import os
import sys
import zipfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import PIL.Image

from zoo.core.errors import DatasetError

from ..cifar import ARCHIVE as CIFAR_ARCHIVE
from ..cifar import BATCH_DIR as CIFAR_BATCH_DIR
from ..image_files import LABELS_FILE, _is_hidden, image_extensions
from .process import failure_reason

__all__ = ["SOURCE_KINDS", "detect_source_kind", "list_images", "read_labels_file", "label_table",
           "normalise_labels", "listing", "scan_headers"]

SOURCE_KINDS = ("folder", "zip", "cifar10")


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

def list_images(kind: str, path: str) -> Tuple[List[str], int]:
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

def read_labels_file(kind: str, path: str) -> Optional[bytes]:
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

def label_table(raw: Optional[bytes], where: str) -> Optional[Dict[str, Any]]:
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

def normalise_labels(names: Sequence[str], values: Sequence[Any], where: str) -> Tuple[List[Any], int]:
    """JSON-ready labels (ints or float lists, as the reader expects) and the label dimension."""
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and float(v).is_integer()

    fix = f"Use integer classes >= 0 or equal-length number lists for every image in {where!r}, or pass labels=false"
    if all(is_int(v) for v in values):
        ints = [int(v) for v in values]
        neg = [f"{n} ({v})" for n, v in zip(names, ints) if v < 0]
        if neg:
            raise DatasetError(f"negative class label(s): {listing(neg)}. {fix}.")
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
    raise DatasetError(f"labels must be all integer classes or all number lists; got e.g. {listing(odd, 3)}. {fix}.")

def listing(items: Sequence[str], k: int = 5) -> str:
    shown = ", ".join(items[:k])
    return shown + (f" ... and {len(items) - k} more" if len(items) > k else "")

def progress_bar(iterable, total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=True)

def scan_headers(kind: str, path: str, names: Sequence[str], progress: bool):
    """-> (sizes {name: (w, h)}, modes {name: mode}, bad [(name, reason)])."""
    sizes: Dict[str, Tuple[int, int]] = {}
    modes: Dict[str, str] = {}
    bad: List[Tuple[str, str]] = []
    zf = zipfile.ZipFile(path) if kind == "zip" else None
    try:
        for name in progress_bar(names, len(names), "reading headers", progress):
            try:
                fp = zf.open(name) if zf is not None else open(os.path.join(path, *name.split("/")), "rb")
                with fp, PIL.Image.open(fp) as img:
                    sizes[name] = img.size
                    modes[name] = img.mode
            except Exception as exc:
                bad.append((name, failure_reason(exc)))
    finally:
        if zf is not None:
            zf.close()
    return sizes, modes, bad
