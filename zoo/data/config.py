"""The ``data`` config node: its schema, the dataset kinds (known here once) and its checks.
``zoo.data.open_dataset_from_config`` opens the dataset it describes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from omegaconf import MISSING

from zoo.core.errors import ConfigError

__all__ = ["DataConfig", "KINDS", "Kind", "check_data_config"]


@dataclass
class DataConfig:
    name: str = MISSING
    kind: str = MISSING  # one of KINDS: shapes | folder | zip | image (folder or zip) | ffhq | cifar10
    path: Optional[str] = None
    resolution: Optional[int] = None  # native resolution; null = read it from the data
    mirror: bool = False
    use_labels: bool = False
    max_size: Optional[int] = None
    num_images: Optional[int] = None  # procedural datasets: how many images
    download: bool = False  # torchvision datasets only
    workers: int = 0
    seed: int = 0  # fixes the dataset's content (procedural data, max_size subsets), not the run's randomness
    root: Optional[str] = None  # where named datasets (ffhq{res}.zip) live
    prepare_hint: Optional[str] = None  # how to produce the dataset when it is missing


@dataclass(frozen=True)
class Kind:
    """A dataset kind: the extra options it takes (besides path, resolution, mirror, use_labels,
    max_size, seed, name and hint) and what its ``path`` is (None: it needs none)."""

    options: frozenset
    path: Optional[str]


_FILES = "an image folder or an NVIDIA-format .zip"
KINDS: Dict[str, Kind] = {
    "folder": Kind(frozenset(), _FILES),
    "zip": Kind(frozenset(), _FILES),
    "image": Kind(frozenset(), _FILES),  # folder or zip, by what the path is
    "ffhq": Kind(frozenset(), _FILES),   # = image (conf/data/ffhq.yaml)
    "cifar10": Kind(frozenset({"download", "split"}), "a directory holding cifar-10-python.tar.gz"),
    "shapes": Kind(frozenset({"num_images"}), None),
}


def check_data_config(d: Mapping[str, Any]) -> None:
    """The checks a ``data`` node needs before anything is opened: a known kind, and a path that
    exists where the kind needs one (cifar10 may download into its directory)."""
    kind = KINDS.get(str(d["kind"]).lower())
    if kind is None:
        raise ConfigError("data.kind", f"unknown dataset kind {d['kind']!r}", f"use one of {', '.join(sorted(KINDS))}")
    for key in ("num_images", "download"):
        if d.get(key) not in (None, False) and key not in kind.options:
            raise ConfigError(f"data.{key}", f"a {d['kind']} dataset does not take {key}", f"drop data.{key}")
    if kind.path is None:
        return
    if not d.get("path"):
        if d["kind"] == "cifar10":
            raise ConfigError("data.path", "cifar10 needs a directory",
                              "pass data.path=DIR (holding cifar-10-python.tar.gz) and, to fetch it, data.download=true")
        raise ConfigError("data.path", f"dataset {d.get('name')!r} needs a path", "pass data.path=/path/to/images_or.zip")
    if d["kind"] != "cifar10" and not os.path.exists(os.path.expanduser(str(d["path"]))):
        hint = f" {d['prepare_hint']}" if d.get("prepare_hint") else ""
        raise ConfigError("data.path", f"dataset not found at {d['path']!r}.{hint}",
                          "point data.path at an existing image folder or NVIDIA-format zip")
