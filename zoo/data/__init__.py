"""Datasets of the zoo: image folders, NVIDIA-format zips, CIFAR-10 and the built-in ``shapes``.

    >>> from zoo.data import open_dataset, InfiniteSampler, to_float
    >>> ds = open_dataset('shapes', None, resolution=32, use_labels=True)
    >>> image, label = ds[0]          # uint8 [3, 32, 32], float32 [5] (one-hot shape class)
    >>> sampler = InfiniteSampler(len(ds), rank=0, num_replicas=1, seed=0, start=0)
    >>> loader = torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=32, num_workers=2)
    >>> x = to_float(next(iter(loader))[0].to(device))   # float32 in [-1, 1]

Every user-facing data problem raises :class:`DatasetError` (a ``ValueError``) whose message names
the file or path and says how to fix it.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional

import torch

from .base import DatasetError, ImageDataset, dataset_labels, real_indices
from .cifar import CIFAR10Dataset
from .config import KINDS, DataConfig, check_data_config
from .image_files import ImageFolderDataset, ZipDataset, missing_path_error
from .sampler import InfiniteSampler
from .shapes import SHAPE_NAMES, ShapesDataset
from .writer import write_dataset

__all__ = [
    "DatasetError",
    "ImageDataset",
    "ImageFolderDataset",
    "ZipDataset",
    "CIFAR10Dataset",
    "ShapesDataset",
    "InfiniteSampler",
    "open_dataset",
    "open_dataset_from_config",
    "DataConfig",
    "check_data_config",
    "dataset_labels",
    "real_indices",
    "to_float",
    "write_dataset",
    "KINDS",
    "SHAPE_NAMES",
]

_COMMON_EXTRA = {"name", "hint", "prepare_hint"}  # accepted by every kind (besides KINDS[kind].options)


def open_dataset(
    kind: str,
    path: Optional[str] = None,
    resolution: Optional[int] = None,
    mirror: bool = False,
    use_labels: bool = False,
    max_size: Optional[int] = None,
    seed: int = 0,
    **kwargs: Any,
) -> ImageDataset:
    """Open a dataset.

    kind:       'folder' | 'zip' | 'image' (folder or zip, by what ``path`` is) | 'ffhq' (= 'image')
                | 'cifar10' | 'shapes'.
    path:       the folder / zip / CIFAR-10 directory; unused by 'shapes'.
    resolution: expected side; None takes it from the data.  A mismatch raises DatasetError.
    mirror:     double the length with x-flipped copies (second half).
    use_labels: return the class/vector labels (DatasetError when the data has none).
    max_size:   keep a random subset of this many images (chosen by ``seed``).
    seed:       subset seed; for 'shapes' also the generation seed.
    kwargs:     'cifar10': download (bool, default False), split ('train' | 'test' | 'all');
                'shapes': num_images (default 10000); any kind: name (override ``ds.name``),
                hint / prepare_hint (extra advice appended to "path not found" errors).
    """
    kind = str(kind).lower()
    if kind not in KINDS:
        raise DatasetError(f"unknown dataset kind {kind!r}; use one of {', '.join(sorted(KINDS))}")
    unknown = set(kwargs) - KINDS[kind].options - _COMMON_EXTRA
    if unknown:
        allowed = sorted(KINDS[kind].options | _COMMON_EXTRA)
        raise DatasetError(
            f"dataset kind {kind!r} got unknown option(s) {sorted(unknown)}; it accepts path, resolution, mirror, "
            f"use_labels, max_size, seed" + (f" and {', '.join(allowed)}" if allowed else "")
        )
    hint = kwargs.pop("hint", None) or kwargs.pop("prepare_hint", None)
    kwargs.pop("prepare_hint", None)
    common = dict(resolution=resolution, use_labels=use_labels, mirror=mirror, max_size=max_size, seed=seed)

    if kind == "shapes":
        return ShapesDataset(**common, **kwargs)
    if kind == "cifar10":
        return CIFAR10Dataset(path, **common, **kwargs)

    if path is None or str(path).strip() == "":
        raise DatasetError(f"dataset kind {kind!r} needs a path (an image folder or an NVIDIA-format .zip)")
    path = os.path.expanduser(str(path))
    if kind in ("image", "ffhq"):
        if os.path.isdir(path):
            kind = "folder"
        elif os.path.isfile(path) or path.lower().endswith(".zip"):
            kind = "zip"
        else:
            raise missing_path_error(path, "dataset", hint)
    cls = ImageFolderDataset if kind == "folder" else ZipDataset
    return cls(path, hint=hint, **common, **kwargs)


def open_dataset_from_config(dcfg: Mapping[str, Any], resolution: Optional[int]):
    """Open the dataset a ``data`` config node describes (options its kind does not take are left out)."""
    kind = KINDS.get(str(dcfg["kind"]).lower())
    if kind is None:
        raise DatasetError(f"unknown dataset kind {dcfg['kind']!r}; use one of {', '.join(sorted(KINDS))}")
    extra: Dict[str, Any] = {k: dcfg[k] for k in ("name", "prepare_hint") if dcfg.get(k) is not None}
    extra.update({k: dcfg[k] for k in kind.options if dcfg.get(k) not in (None, False)})
    return open_dataset(dcfg["kind"], dcfg.get("path"), resolution=resolution, mirror=dcfg.get("mirror", False),
                        use_labels=dcfg.get("use_labels", False), max_size=dcfg.get("max_size"),
                        seed=int(dcfg.get("seed") or 0), **extra)


def to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 images (any shape) -> float in [-1, 1] (``x / 127.5 - 1``), on the same device."""
    return images.to(dtype) / 127.5 - 1
