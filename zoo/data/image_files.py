"""Readers for image folders and zips in NVIDIA's dataset format.

Both readers list every file with an extension PIL can open (recursively, sorted by the relative
path with '/' separators), skip hidden entries (any path part starting with '.') and macOS
``__MACOSX`` folders, and check every file's header at open time (PIL only reads the header, so
this is cheap): unreadable files, non-square images, sides that are not a power of two and mixed
sizes are all reported as :class:`DatasetError` naming the offending files.

NVIDIA layout (``dataset_tool.py``): ``00000/img00000000.png, 00000/img00000001.png, ...`` and a
``dataset.json`` at the root holding ``{"labels": [["00000/img00000000.png", 6], ...]}`` or
``{"labels": null}``.  Integer labels become one-hot float32 vectors (``label_dim = max + 1``),
list labels pass through as float32 vectors.

Zip files are opened lazily once per process (``os.getpid()`` is checked), so datasets can be sent
to DataLoader worker processes, forked or spawned, without sharing an open file handle.
"""
from __future__ import annotations

import abc
import contextlib
import io
import json
import os
import re
import zipfile
from typing import Any, Dict, IO, List, Optional, Sequence, Tuple

import numpy as np
import PIL.Image

from .base import DatasetError, ImageDataset, is_power_of_two

__all__ = ["ImageFolderDataset", "ZipDataset", "image_extensions", "missing_path_error"]

LABELS_FILE = "dataset.json"
_MAX_LISTED = 5


def image_extensions() -> List[str]:
    """Lower-case extensions (with dot) that PIL can *open* (not just save)."""
    PIL.Image.init()
    return sorted(ext for ext, fmt in PIL.Image.EXTENSION.items() if fmt in PIL.Image.OPEN)


def _is_hidden(relpath: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in relpath.split("/"))


def _listing(items: Sequence[str], k: int = _MAX_LISTED) -> str:
    shown = ", ".join(items[:k])
    return shown + (f" ... and {len(items) - k} more" if len(items) > k else "")


def nvidia_format_help(res: Optional[int] = None) -> str:
    side = f"{res}x{res}" if res else "square power-of-two"
    return (
        f"NVIDIA's dataset format: a zip (uncompressed is fastest) or folder of {side} PNG images "
        f"(all the same size, RGB or grayscale) stored as 00000/img00000000.png, 00000/img00000001.png, ..., "
        f'with an optional dataset.json at the root: {{"labels": [["00000/img00000000.png", <int class>], ...]}} '
        f'or {{"labels": null}}. NVIDIA\'s dataset_tool.py writes this format, and so does '
        f"`python -m zoo.data.prepare`"
    )


def missing_path_error(path: str, what: str = "dataset", hint: Optional[str] = None) -> DatasetError:
    """DatasetError for a path that does not exist, with preparation advice."""
    msg = f"{what} not found: {path!r} does not exist."
    base = os.path.basename(str(path).rstrip("/\\"))
    m = re.fullmatch(r"ffhq(\d+)\.zip", base, flags=re.IGNORECASE)
    if m:
        if hint:  # the config's own advice (conf/data/ffhq.yaml: prepare_hint) replaces the generic one
            return DatasetError(f"{msg} {str(hint).strip()}")
        res = int(m.group(1))
        msg += (
            f" Prepare FFHQ at {res}x{res} from the original images (github.com/NVlabs/ffhq-dataset) in "
            f"{nvidia_format_help(res)}; e.g. python -m zoo.data.prepare source=/path/to/ffhq/images1024x1024 "
            f"dest={path} resolution={res} resize_filter=box (box reproduces the published FFHQ numbers)."
        )
    elif base.lower().endswith(".zip"):
        msg += f" Create it in {nvidia_format_help()}, or point the dataset path at an existing image folder/zip."
    else:
        msg += " Check the dataset path (an image folder or a .zip in NVIDIA's dataset format)."
    if hint:
        msg += " " + str(hint).strip()
    return DatasetError(msg)


class _ImageFilesDataset(ImageDataset):
    """Shared logic of the folder and zip readers; subclasses provide file access."""

    kind = "image_files"

    def __init__(
        self,
        path: str,
        resolution: Optional[int] = None,
        use_labels: bool = False,
        mirror: bool = False,
        max_size: Optional[int] = None,
        seed: int = 0,
        name: Optional[str] = None,
    ) -> None:
        self._path = str(path)
        all_files = self._list_files()
        exts = set(image_extensions())
        self._image_fnames = sorted(
            f for f in all_files if os.path.splitext(f)[1].lower() in exts and not _is_hidden(f)
        )
        if not self._image_fnames:
            raise DatasetError(
                f"no image files found in {self._path!r} ({len(all_files)} other file(s)); it must contain images "
                f"PIL can read (.png, .jpg, ...), e.g. in {nvidia_format_help()}."
            )
        size, mode = self._scan_headers()
        if resolution is not None and int(resolution) != size:
            raise DatasetError(
                f"dataset {self._path!r} has {size}x{size} images but resolution={int(resolution)} was requested. "
                f"Either prepare the data at {int(resolution)}x{int(resolution)} (e.g. python -m zoo.data.prepare "
                f"source=<images> dest=<out>.zip resolution={int(resolution)}, {nvidia_format_help(int(resolution))}) "
                f"or set resolution={size} (or null to take it from the data)."
            )
        self._mode = mode
        raw_labels = self._load_labels() if use_labels else None
        default_name = os.path.splitext(os.path.basename(self._path.rstrip("/\\")))[0]
        super().__init__(
            name=name or default_name,
            num_raw=len(self._image_fnames),
            resolution=size,
            num_channels=1 if mode == "L" else 3,
            raw_labels=raw_labels,
            use_labels=use_labels,
            mirror=mirror,
            max_size=max_size,
            seed=seed,
            where=self._path,
        )

    # -- file access (subclasses) ------------------------------------------------------------

    @abc.abstractmethod
    def _list_files(self) -> List[str]:
        """Implemented by each concrete reader."""

    @abc.abstractmethod
    def _open_file(self, fname: str) -> IO[bytes]:
        """Implemented by each concrete reader."""

    def _open_header(self, fname: str) -> IO[bytes]:
        """A file object good enough for reading the header (may stream)."""
        return self._open_file(fname)

    @abc.abstractmethod
    def _file_stats(self) -> List[Any]:
        """Implemented by each concrete reader."""

    def _where(self, fname: str) -> str:
        return f"{self._path}/{fname}"

    # -- validation --------------------------------------------------------------------------

    def _scan_headers(self) -> Tuple[int, str]:
        """Read every header; return (side, 'L' or 'RGB'). Raise DatasetError naming bad files."""
        bad: List[str] = []
        sizes: List[Tuple[int, int]] = []
        modes = set()
        for fname in self._image_fnames:
            try:
                with self._open_header(fname) as fp:
                    with PIL.Image.open(fp) as img:
                        sizes.append(img.size)
                        modes.add(img.mode)
            except Exception as exc:  # PIL raises many types for garbage (OSError, SyntaxError, ...)
                bad.append(f"{fname} ({type(exc).__name__}: {exc})")
                sizes.append((-1, -1))
        if bad:
            raise DatasetError(
                f"{len(bad)} file(s) in {self._path!r} cannot be read as images: {_listing(bad)}. "
                f"Remove or re-encode them (e.g. re-save as PNG), then retry."
            )
        fix = (
            "All images must be square, the same size, with a power-of-two side (4, 8, ..., 1024). "
            "Crop/resize the data first, e.g. python -m zoo.data.prepare source=<images> dest=<out>.zip "
            "resolution=256 transform=center-crop."
        )
        nonsquare = [f"{f} ({w}x{h})" for f, (w, h) in zip(self._image_fnames, sizes) if w != h]
        if nonsquare:
            raise DatasetError(f"non-square image(s) in {self._path!r}: {_listing(nonsquare)}. {fix}")
        not_pow2 = [f"{f} ({w}x{h})" for f, (w, h) in zip(self._image_fnames, sizes) if not is_power_of_two(w)]
        if not_pow2:
            raise DatasetError(
                f"image side is not a power of two in {self._path!r}: {_listing(not_pow2)}. {fix}"
            )
        first_size = sizes[0]
        mixed = [f"{f} ({w}x{h})" for f, (w, h) in zip(self._image_fnames, sizes) if (w, h) != first_size]
        if mixed:
            raise DatasetError(
                f"mixed image sizes in {self._path!r}: the first image {self._image_fnames[0]} is "
                f"{first_size[0]}x{first_size[1]} but {_listing(mixed)} differ(s). {fix}"
            )
        return first_size[0], ("L" if modes == {"L"} else "RGB")

    @abc.abstractmethod
    def _read_labels_json(self) -> Optional[bytes]:
        """Implemented by each concrete reader."""

    def _load_labels(self) -> np.ndarray:
        where = self._where(LABELS_FILE)
        how = (
            f'Add {LABELS_FILE} with {{"labels": [["<relative/path.png>", <int class or [floats]>], ...]}} '
            f"for every image, or set use_labels=false."
        )
        raw = self._read_labels_json()
        if raw is None:
            raise DatasetError(f"use_labels=true but {where!r} does not exist. {how}")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise DatasetError(f"{where!r} is not valid JSON ({exc}). {how}") from None
        labels = doc.get("labels") if isinstance(doc, dict) else None
        if labels is None:
            raise DatasetError(f'use_labels=true but {where!r} has no labels ("labels": null or missing). {how}')
        try:
            table: Dict[str, Any] = {str(k).replace("\\", "/"): v for k, v in (labels.items() if isinstance(labels, dict) else labels)}
        except (TypeError, ValueError):
            raise DatasetError(f'{where!r}: "labels" must be a list of [relative_path, label] pairs. {how}') from None
        missing = [f for f in self._image_fnames if f not in table]
        if missing:
            raise DatasetError(f"{where!r} has no label for {len(missing)} image(s): {_listing(missing)}. {how}")
        values = [table[f] for f in self._image_fnames]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() for v in values):
            ints = np.asarray(values, dtype=np.int64)
            if ints.min() < 0:
                bad = [f for f, v in zip(self._image_fnames, values) if v < 0]
                raise DatasetError(f"{where!r}: negative class label for {_listing(bad)}. {how}")
            onehot = np.zeros([ints.size, int(ints.max()) + 1], dtype=np.float32)
            onehot[np.arange(ints.size), ints] = 1
            return onehot
        if all(isinstance(v, (list, tuple)) for v in values):
            lens = {len(v) for v in values}
            if len(lens) != 1:
                raise DatasetError(f"{where!r}: vector labels have different lengths {sorted(lens)}. {how}")
            try:
                return np.asarray(values, dtype=np.float32).reshape(len(values), -1)
            except (TypeError, ValueError):
                raise DatasetError(f"{where!r}: vector labels must contain only numbers. {how}") from None
        odd = [f"{f} ({v!r})" for f, v in zip(self._image_fnames, values)
               if not (isinstance(v, int) and not isinstance(v, bool))]
        raise DatasetError(
            f"{where!r}: labels must be all integer classes or all number lists; got e.g. {_listing(odd, 3)}. {how}"
        )

    # -- decoding -----------------------------------------------------------------------------

    def _load_raw_image(self, raw_index: int) -> np.ndarray:
        fname = self._image_fnames[raw_index]
        try:
            with self._open_file(fname) as fp:
                with PIL.Image.open(fp) as img:
                    target = "L" if self.num_channels == 1 else "RGB"
                    if img.mode != target:
                        img = img.convert(target)
                    array = np.asarray(img, dtype=np.uint8)
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(
                f"cannot decode image {self._where(fname)!r} ({type(exc).__name__}: {exc}). "
                f"Remove or re-encode it, then retry."
            ) from exc
        if array.shape[:2] != (self.resolution, self.resolution):
            raise DatasetError(
                f"image {self._where(fname)!r} is {array.shape[1]}x{array.shape[0]}, expected "
                f"{self.resolution}x{self.resolution} (did the data change after the dataset was opened?)"
            )
        if array.ndim == 2:
            array = array[:, :, None]
        return array.transpose(2, 0, 1)

    def _content_identity(self) -> Dict[str, Any]:
        return {"kind": "image_files", "files": self._file_stats()}

    @property
    def path(self) -> str:
        return self._path

    @property
    def image_fnames(self) -> List[str]:
        return list(self._image_fnames)


class ImageFolderDataset(_ImageFilesDataset):
    """Images under a directory, searched recursively."""

    kind = "folder"

    def __init__(self, path: str, **kwargs) -> None:
        path = os.path.expanduser(str(path))
        hint = kwargs.pop("hint", None)
        if not os.path.exists(path):
            raise missing_path_error(path, "image folder", hint)
        if not os.path.isdir(path):
            raise DatasetError(f"{path!r} is not a directory; kind=folder needs a folder of images (use kind=zip for a .zip).")
        super().__init__(path, **kwargs)

    def _list_files(self) -> List[str]:
        out = []
        for root, dirs, files in os.walk(self._path, followlinks=True):
            dirs.sort()
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), self._path)
                out.append(rel.replace(os.sep, "/"))
        return sorted(out)

    def _open_file(self, fname: str) -> IO[bytes]:
        return open(os.path.join(self._path, *fname.split("/")), "rb")

    def _read_labels_json(self) -> Optional[bytes]:
        p = os.path.join(self._path, LABELS_FILE)
        if not os.path.isfile(p):
            return None
        with open(p, "rb") as f:
            return f.read()

    def _file_stats(self) -> List[Any]:
        # Name, size and modification time: cheap, and any rewrite of a file changes the hash.
        stats = []
        for f in self._image_fnames:
            st = os.stat(os.path.join(self._path, *f.split("/")))
            stats.append([f, st.st_size, st.st_mtime_ns])
        return stats


class ZipDataset(_ImageFilesDataset):
    """Images inside a zip (stored or deflated), NVIDIA's dataset_tool layout or any other."""

    kind = "zip"

    def __init__(self, path: str, **kwargs) -> None:
        path = os.path.expanduser(str(path))
        hint = kwargs.pop("hint", None)
        if not os.path.exists(path):
            raise missing_path_error(path, "dataset zip", hint)
        if not os.path.isfile(path):
            raise DatasetError(f"{path!r} is not a file; kind=zip needs a .zip file (use kind=folder for a directory).")
        self._path = path
        self._zipfile: Optional[zipfile.ZipFile] = None
        self._zip_pid: Optional[int] = None
        try:
            self._get_zipfile()
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetError(
                f"{path!r} is not a readable zip file ({exc}). Re-create it in {nvidia_format_help()}."
            ) from None
        super().__init__(path, **kwargs)

    def _get_zipfile(self) -> zipfile.ZipFile:
        # One handle per process: a handle inherited through fork shares its file offset with the
        # parent, so a child must never read through it.
        if self._zipfile is None or self._zip_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self._path)
            self._zip_pid = os.getpid()
        return self._zipfile

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_zipfile"] = None
        state["_zip_pid"] = None
        return state

    def close(self) -> None:
        if self._zipfile is not None and self._zip_pid == os.getpid():
            self._zipfile.close()
        self._zipfile = None
        self._zip_pid = None

    def __del__(self):
        # At interpreter shutdown zipfile may already be torn down; closing is best effort then.
        with contextlib.suppress(Exception):
            self.close()

    def _list_files(self) -> List[str]:
        return sorted(n for n in self._get_zipfile().namelist() if not n.endswith("/"))

    def _open_file(self, fname: str) -> IO[bytes]:
        # Read the whole member: PIL seeks, which is slow on compressed zip members.
        return io.BytesIO(self._get_zipfile().read(fname))

    def _open_header(self, fname: str) -> IO[bytes]:
        return self._get_zipfile().open(fname)  # streams: only the header gets read

    def _read_labels_json(self) -> Optional[bytes]:
        zf = self._get_zipfile()
        try:
            return zf.read(LABELS_FILE)
        except KeyError:
            return None

    def _file_stats(self) -> List[Any]:
        # Name, size and CRC-32 from the central directory: content-based and free to read.
        zf = self._get_zipfile()
        return [[f, zf.getinfo(f).file_size, zf.getinfo(f).CRC] for f in self._image_fnames]
