"""Feature networks for the metrics.

A detector is a TorchScript module called as ``detector(images, return_features=True)`` on uint8
``[N, 3, H, W]`` images (any size: NVIDIA's networks resize internally) and returning float
features ``[N, D]``. The defaults are NVIDIA's TorchScript files:

* Inception-v3 (``inception-2015-12-05.pt``, 2048 pool features) for FID and KID;
* VGG16 (``vgg16.pt``, 4096 fc2 features with ``return_features=True``) for precision/recall; PPL
  uses the same file as LPIPS: ``vgg(img, resize_images=False, return_lpips=True)``.

They are downloaded once into the cache directory (``metrics.cache_dir``, else ``$ZOO_CACHE``,
else ``~/.cache/zoo``) and checked against a sha256: the one given (``metrics.detector_sha256`` /
``metrics.vgg_sha256``) or, trust on first use, the one recorded in ``<file>.sha256`` when the
file was first downloaded. ``metrics.detector=PATH`` / ``metrics.vgg=PATH`` use local files instead,
and ``metrics.download=false`` never touches the network. Files come through the zoo's one cached
downloader, :func:`zoo.core.download.cached_download` (the projector's VGG16 too).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

import torch

from zoo.core.download import cached_download, load_torchscript, verify_sha256
from zoo.core.errors import DetectorError
from zoo.core.files import sha256_of

__all__ = ["INCEPTION_URL", "VGG16_URL", "DEFAULTS", "Detector", "resolve_detector", "load_detector"]

INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"

# detector key -> (config key of a local file, config key of its sha256, URL, cache file name, description)
DEFAULTS: Dict[str, Tuple[str, str, str, str, str]] = {
    "inception": ("detector", "detector_sha256", INCEPTION_URL, "inception-2015-12-05.pt",
                  "the Inception-v3 feature network (FID, KID)"),
    "vgg": ("vgg", "vgg_sha256", VGG16_URL, "vgg16.pt", "the VGG16 feature network (precision/recall, PPL)"),
}


@dataclasses.dataclass
class Detector:
    """A loaded feature network and where it came from (for the metrics' protocol records)."""

    name: str                 # file name without extension, e.g. 'inception-2015-12-05'
    sha256: str
    path: str
    url: Optional[str]        # None for a local file
    module: torch.nn.Module

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, C, H, W]`` (C = 1 is repeated to 3) -> float32 features ``[N, D]``."""
        if images.dtype != torch.uint8:
            raise TypeError(f"detectors take uint8 images, got {images.dtype}")
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        out = self.module(images, return_features=True)
        return out.float().reshape(images.shape[0], -1)

    def describe(self) -> Dict[str, Any]:
        return {"detector": self.name, "detector_sha256": self.sha256, "detector_url": self.url}


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    value = cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)
    return default if value is None else value


def resolve_detector(which: str, cfg: Any) -> Tuple[str, str, Optional[str]]:
    """``(path, sha256, url)`` of detector ``which`` (``'inception'`` or ``'vgg'``) under the metrics
    config ``cfg`` (keys ``detector``/``vgg``, ``*_sha256``, ``cache_dir``, ``download``): a local
    file if the config names one, else NVIDIA's file from the cache (downloaded if allowed)."""
    local_key, sha_key, url, filename, what = DEFAULTS[which]
    local, expected = _get(cfg, local_key), _get(cfg, sha_key)
    if local:
        path = os.path.abspath(os.path.expanduser(str(local)))
        if not os.path.isfile(path):
            raise DetectorError(f"metrics.{local_key}", f"no file at {path} ({what})",
                                f"point metrics.{local_key} at a TorchScript file, or drop it to use NVIDIA's "
                                f"{filename} ({url})", reason="missing", path=path, url=url)
        return path, verify_sha256(path, expected, key=f"metrics.{sha_key}"), None
    path = cached_download(url, filename, sha256=expected, download=bool(_get(cfg, "download", True)),
                           cache=_get(cfg, "cache_dir"), key=f"metrics.{local_key}", sha_key=f"metrics.{sha_key}",
                           what=what)
    return path, sha256_of(path), url


def load_detector(which: str, cfg: Any, device: Any = "cpu") -> Detector:
    """Resolve (see :func:`resolve_detector`) and load a detector onto ``device``."""
    path, digest, url = resolve_detector(which, cfg)
    name = os.path.splitext(os.path.basename(path))[0]
    return Detector(name=name, sha256=digest, path=path, url=url, module=load_torchscript(path, device))
