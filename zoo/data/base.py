"""Common base of every dataset in the zoo.

A dataset is a fixed list of *raw* images (uint8, CHW, square, power-of-two side) with optional
labels.  On top of that the base class implements the two view options every reader shares, with
the semantics of NVIDIA's loaders:

* ``max_size``: keep a random subset of that many raw images, chosen with
  ``np.random.RandomState(seed)`` and then sorted, so the subset is a pure function of the seed.
* ``mirror``: the dataset has length ``2 * N``; index ``i < N`` is raw item ``i`` and index
  ``N + i`` is the same item flipped along x (labels are shared).

Subclasses only implement ``_load_raw_image(raw_index)`` and supply the raw labels.
"""
from __future__ import annotations

import abc
import hashlib
import json
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from zoo.core.errors import DatasetError
from zoo.core.parse import is_power_of_two

__all__ = ["DatasetError", "ImageDataset", "is_power_of_two", "real_indices", "dataset_labels"]


class ImageDataset(torch.utils.data.Dataset, abc.ABC):
    """Base class: ``ds[i] -> (uint8 tensor [C, H, W], float32 tensor [label_dim])``.

    Attributes: ``name``, ``resolution``, ``num_channels``, ``label_dim``, ``has_labels``,
    ``image_shape`` (``[C, H, W]``), ``label_shape`` (``[label_dim]``), ``label_names`` (or None),
    ``mirror``, ``max_size``, ``seed``.
    """

    kind = "base"

    def __init__(
        self,
        *,
        name: str,
        num_raw: int,
        resolution: int,
        num_channels: int,
        raw_labels: Optional[np.ndarray],
        use_labels: bool = False,
        mirror: bool = False,
        max_size: Optional[int] = None,
        seed: int = 0,
        label_names: Optional[Sequence[str]] = None,
        where: str = "",
    ) -> None:
        super().__init__()
        if num_raw <= 0:
            raise DatasetError(f"dataset {where or name!r} contains no images")
        self.name = str(name)
        self.resolution = int(resolution)
        self.num_channels = int(num_channels)
        self.mirror = bool(mirror)
        self.max_size = None if max_size is None else int(max_size)
        self.seed = int(seed)
        self.use_labels = bool(use_labels)
        self._num_raw = int(num_raw)

        # Labels: [num_raw, label_dim] float32; label_dim 0 when labels are not used.
        if self.use_labels and raw_labels is not None:
            raw_labels = np.ascontiguousarray(raw_labels, dtype=np.float32)
            if raw_labels.ndim != 2 or raw_labels.shape[0] != num_raw:
                raise AssertionError(f"raw labels have shape {raw_labels.shape}, expected [{num_raw}, D]")
            self._raw_labels = raw_labels
            self.label_names = list(label_names) if label_names is not None else None
        else:
            self._raw_labels = np.zeros([num_raw, 0], dtype=np.float32)
            self.label_names = None

        # Raw index of every item (NVIDIA semantics: random subset, sorted; then optional x-flips).
        raw_idx = np.arange(num_raw, dtype=np.int64)
        if self.max_size is not None:
            if self.max_size <= 0:
                raise DatasetError(f"max_size must be a positive number of images or null, got {max_size}")
            if self.max_size < num_raw:
                rnd = np.random.RandomState(self.seed % (1 << 31))
                rnd.shuffle(raw_idx)
                raw_idx = np.sort(raw_idx[: self.max_size])
        xflip = np.zeros(raw_idx.size, dtype=np.uint8)
        if self.mirror:
            raw_idx = np.tile(raw_idx, 2)
            xflip = np.concatenate([xflip, np.ones_like(xflip)])
        self._raw_idx = raw_idx
        self._xflip = xflip

    # -- to implement -------------------------------------------------------------------------

    @abc.abstractmethod
    def _load_raw_image(self, raw_index: int) -> np.ndarray:
        """The raw image ``raw_index`` as uint8 ``[C, H, W]``."""

    @abc.abstractmethod
    def _content_identity(self) -> Dict[str, Any]:
        """JSON-able description of the raw content (not the view options)."""

    # -- public API ---------------------------------------------------------------------------

    @property
    def image_shape(self) -> List[int]:
        return [self.num_channels, self.resolution, self.resolution]

    @property
    def label_dim(self) -> int:
        return int(self._raw_labels.shape[1])

    @property
    def label_shape(self) -> List[int]:
        return [self.label_dim]

    @property
    def has_labels(self) -> bool:
        return self.label_dim > 0

    @property
    def num_raw_images(self) -> int:
        return self._num_raw

    def __len__(self) -> int:
        return int(self._raw_idx.size)

    def _check_index(self, idx: int) -> int:
        idx = int(idx)
        n = len(self)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f"index {idx} out of range for dataset {self.name!r} of length {n}")
        return idx

    def get_image(self, idx: int) -> np.ndarray:
        """uint8 numpy image [C, H, W] of item ``idx`` (flipped for the mirrored half)."""
        idx = self._check_index(idx)
        image = self._load_raw_image(int(self._raw_idx[idx]))
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return np.array(image, dtype=np.uint8, order="C", copy=True)  # never hand out internal storage

    def get_label(self, idx: int) -> np.ndarray:
        """float32 numpy label [label_dim] of item ``idx``."""
        idx = self._check_index(idx)
        return self._raw_labels[self._raw_idx[idx]].copy()

    def get_all_labels(self) -> np.ndarray:
        """float32 [len(self), label_dim] labels of every item, without decoding any image."""
        return self._raw_labels[self._raw_idx].copy()

    def __getitem__(self, idx: int):
        image = self.get_image(idx)
        return torch.from_numpy(image), torch.from_numpy(self.get_label(idx))

    def content_hash(self) -> str:
        """Stable hex digest of the raw content identity plus the view (subset, mirror, labels).

        Two datasets with the same hash return the same items; use it to key cached statistics.
        """
        h = hashlib.sha256()
        ident = dict(self._content_identity())
        ident.update(
            resolution=self.resolution,
            num_channels=self.num_channels,
            label_dim=self.label_dim,
        )
        h.update(json.dumps(ident, sort_keys=True, default=str).encode("utf-8"))
        h.update(self._raw_idx.astype("<i8").tobytes())
        h.update(self._xflip.tobytes())
        h.update(self._raw_labels.astype("<f4").tobytes())
        return h.hexdigest()[:32]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, len={len(self)}, shape={self.image_shape}, "
            f"label_dim={self.label_dim}, mirror={self.mirror}, max_size={self.max_size})"
        )


def real_indices(dataset) -> np.ndarray:
    """Indices of the unflipped items of ``dataset`` (all of them unless it is mirrored)."""
    xflip = getattr(dataset, "_xflip", None)
    if xflip is not None and len(xflip) == len(dataset):
        return np.flatnonzero(np.asarray(xflip) == 0)
    n = len(dataset)
    return np.arange(n // 2 if getattr(dataset, "mirror", False) else n)


def dataset_labels(dataset, unflipped: bool = False) -> Optional[torch.Tensor]:
    """float32 ``[N, label_dim]`` labels of every item (``unflipped``: of the unflipped items only, as
    the metrics use), or None when the dataset has no labels. A conditional G draws its classes from
    these rows, as NVIDIA's training loop and metrics do."""
    if dataset is None or not getattr(dataset, "has_labels", False) or getattr(dataset, "label_dim", 0) == 0:
        return None
    labels = np.asarray(dataset.get_all_labels(), dtype=np.float32)
    if unflipped:
        labels = labels[real_indices(dataset)]
    return torch.from_numpy(np.ascontiguousarray(labels))
