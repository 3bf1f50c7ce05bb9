"""CIFAR-10 from the official python archive (``cifar-10-python.tar.gz``), 32x32 RGB, 10 classes.

Where the data may live (``path``):

* ``<path>/cifar-10-batches-py/`` (the extracted archive, what torchvision's ``CIFAR10`` uses),
* ``<path>/cifar-10-python.tar.gz`` (read directly, nothing is extracted), or
* ``path`` pointing at either of those two itself.

Design choice: torchvision is used **only to download** (``download=True``).  Reading goes through
our own small reader of the same python-pickle batch format, because torchvision's
``CIFAR10(download=False)`` insists on the md5 checksums of the official files, which makes it
impossible to test offline on a tiny fake archive, and because it would unpickle arbitrary objects.
Our reader uses a restricted unpickler that only accepts the numpy array reconstruction functions,
so a tampered batch file cannot run code.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .base import DatasetError, ImageDataset

__all__ = ["CIFAR10Dataset", "CIFAR10_CLASSES"]

ARCHIVE = "cifar-10-python.tar.gz"
BATCH_DIR = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
SPLITS = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}
SPLITS["all"] = SPLITS["train"] + SPLITS["test"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# (module, name) pairs a CIFAR batch pickle may reference: numpy array reconstruction only.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.startswith("numpy.core"):  # the official files say numpy.core; numpy >= 2 calls it numpy._core
            try:
                return super().find_class("numpy._core" + module[len("numpy.core"):], name)
            except (ImportError, AttributeError):  # numpy 1: the original name is the real one
                return super().find_class(module, name)
        return super().find_class(module, name)


def _unpickle(data: bytes, where: str) -> Any:
    try:
        return _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:
        raise DatasetError(
            f"cannot read CIFAR-10 batch {where!r} ({type(exc).__name__}: {exc}). "
            f"Delete it and re-extract the official {ARCHIVE} ({URL})."
        ) from None


def _fix() -> str:
    return (
        f"Put the official {ARCHIVE} ({URL}) or its extracted {BATCH_DIR}/ folder there, "
        f"or pass download=true to let torchvision download it."
    )


class CIFAR10Dataset(ImageDataset):
    kind = "cifar10"

    def __init__(
        self,
        path: Optional[str],
        resolution: Optional[int] = None,
        use_labels: bool = False,
        mirror: bool = False,
        max_size: Optional[int] = None,
        seed: int = 0,
        download: bool = False,
        split: str = "train",
        name: Optional[str] = None,
    ) -> None:
        if split not in SPLITS:
            raise DatasetError(f"unknown CIFAR-10 split {split!r}; use one of {sorted(SPLITS)}")
        if path is None or str(path).strip() == "":
            raise DatasetError(
                f"kind=cifar10 needs a path: a directory that holds (or will hold) {BATCH_DIR}/ or {ARCHIVE}. "
                + _fix()
            )
        if resolution is not None and int(resolution) != 32:
            raise DatasetError(
                f"CIFAR-10 images are 32x32 but resolution={int(resolution)} was requested; "
                f"set resolution=32 (or null) for CIFAR-10."
            )
        self._path = os.path.expanduser(str(path))
        self._split = split
        source, kind = self._locate(download)
        blobs = self._read_files(source, kind, SPLITS[split] + ["batches.meta"], optional={"batches.meta"})
        images, labels = [], []
        for fname in SPLITS[split]:
            where = os.path.join(source, fname)
            entry = _unpickle(blobs[fname], where)
            if not isinstance(entry, dict) or "data" not in entry or ("labels" not in entry and "fine_labels" not in entry):
                raise DatasetError(f"{where!r} is not a CIFAR-10 batch (no 'data'/'labels'). " + _fix())
            data = np.asarray(entry["data"])
            lab = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or lab.shape != (data.shape[0],):
                raise DatasetError(
                    f"{where!r}: expected 'data' uint8 [N, 3072] and N labels, got {data.dtype} {list(data.shape)} "
                    f"and {lab.size} labels. " + _fix()
                )
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(lab)
        self._images = np.ascontiguousarray(np.concatenate(images))
        self._labels_int = np.concatenate(labels)
        if self._labels_int.size and (self._labels_int.min() < 0 or self._labels_int.max() > 9):
            raise DatasetError(f"CIFAR-10 labels in {source!r} must be in 0..9. " + _fix())
        label_names = CIFAR10_CLASSES
        if blobs.get("batches.meta") is not None:
            meta = _unpickle(blobs["batches.meta"], os.path.join(source, "batches.meta"))
            if isinstance(meta, dict) and isinstance(meta.get("label_names"), list) and len(meta["label_names"]) == 10:
                label_names = [str(x) for x in meta["label_names"]]
        onehot = np.zeros([self._labels_int.size, 10], dtype=np.float32)
        onehot[np.arange(self._labels_int.size), self._labels_int] = 1
        self._source = source
        self._digest: Optional[str] = None
        super().__init__(
            name=name or "cifar10",
            num_raw=self._images.shape[0],
            resolution=32,
            num_channels=3,
            raw_labels=onehot,
            use_labels=use_labels,
            mirror=mirror,
            max_size=max_size,
            seed=seed,
            label_names=label_names,
            where=source,
        )

    # -- locating and reading ----------------------------------------------------------------

    def _locate(self, download: bool) -> Tuple[str, str]:
        p = self._path
        if os.path.isfile(p) and p.endswith((".tar.gz", ".tgz")):
            return p, "tar"
        if os.path.isdir(p):
            if os.path.basename(os.path.normpath(p)) == BATCH_DIR:
                return p, "dir"
            if os.path.isdir(os.path.join(p, BATCH_DIR)):
                return os.path.join(p, BATCH_DIR), "dir"
            if os.path.isfile(os.path.join(p, ARCHIVE)):
                return os.path.join(p, ARCHIVE), "tar"
        elif os.path.exists(p):
            raise DatasetError(f"CIFAR-10 path {p!r} is neither a directory nor {ARCHIVE}. " + _fix())
        if not download:
            raise DatasetError(
                f"CIFAR-10 not found at {p!r}: expected {os.path.join(p, ARCHIVE)!r} or "
                f"{os.path.join(p, BATCH_DIR)!r}. " + _fix()
            )
        self._download(p)
        return os.path.join(p, BATCH_DIR), "dir"

    @staticmethod
    def _download(root: str) -> None:
        try:
            from torchvision.datasets import CIFAR10  # only used to download (see module docstring)
        except ImportError as exc:
            raise DatasetError(
                f"download=true needs torchvision ({exc}); or put {ARCHIVE} ({URL}) into {root!r} yourself."
            ) from None
        try:
            os.makedirs(root, exist_ok=True)
            CIFAR10(root=root, train=True, download=True)
        except Exception as exc:
            raise DatasetError(
                f"downloading CIFAR-10 into {root!r} failed ({type(exc).__name__}: {exc}). "
                f"Download {URL} by hand and put {ARCHIVE} into {root!r}."
            ) from None
        if not os.path.isdir(os.path.join(root, BATCH_DIR)):
            raise DatasetError(f"download finished but {os.path.join(root, BATCH_DIR)!r} is missing. " + _fix())

    @staticmethod
    def _read_files(source: str, kind: str, names: List[str], optional=frozenset()) -> Dict[str, Optional[bytes]]:
        out: Dict[str, Optional[bytes]] = {}
        if kind == "dir":
            for n in names:
                f = os.path.join(source, n)
                if os.path.isfile(f):
                    with open(f, "rb") as fp:
                        out[n] = fp.read()
                else:
                    out[n] = None
        else:
            try:
                with tarfile.open(source, "r:*") as tar:
                    for member in tar:
                        base = os.path.basename(member.name)
                        if member.isfile() and base in names and base not in out:
                            out[base] = tar.extractfile(member).read()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DatasetError(
                    f"cannot read CIFAR-10 archive {source!r} ({type(exc).__name__}: {exc}); it may be truncated. "
                    f"Delete it and download {URL} again."
                ) from None
        missing = [n for n in names if out.get(n) is None and n not in optional]
        if missing:
            raise DatasetError(f"CIFAR-10 at {source!r} is incomplete: missing {', '.join(missing)}. " + _fix())
        return out

    # -- raw access (zoo.data.prepare) --------------------------------------------------------

    @property
    def raw_images(self) -> np.ndarray:
        """Every image of the split, uint8 ``[N, 3, 32, 32]`` (a read-only view)."""
        view = self._images.view()
        view.flags.writeable = False
        return view

    @property
    def raw_class_labels(self) -> np.ndarray:
        """The class index (0..9) of every image, int64 ``[N]`` (a copy)."""
        return self._labels_int.copy()

    # -- dataset API ------------------------------------------------------------------------

    def _load_raw_image(self, raw_index: int) -> np.ndarray:
        return self._images[raw_index]

    def _content_identity(self) -> Dict[str, Any]:
        if self._digest is None:
            h = hashlib.sha256(self._images.tobytes())
            h.update(self._labels_int.astype("<i8").tobytes())
            self._digest = h.hexdigest()
        return {"kind": "cifar10", "split": self._split, "data": self._digest}
