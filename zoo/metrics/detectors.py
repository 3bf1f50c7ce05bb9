"""Feature networks for the metrics, and the one cached downloader of the zoo.

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
and ``metrics.download=false`` never touches the network. :func:`zoo.sampling.load_vgg16` (the
projector's LPIPS) goes through :func:`cached_download` too.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Dict, Optional, Tuple

import torch

from zoo.config import ConfigError
from zoo.utils import file_sha256

__all__ = ["INCEPTION_URL", "VGG16_URL", "DEFAULTS", "DetectorError", "ChecksumError", "Detector",
           "cache_dir", "cached_download", "verify_sha256", "sha256_of", "load_torchscript",
           "resolve_detector", "load_detector"]

INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"

# detector key -> (config key of a local file, config key of its sha256, URL, cache file name, description)
DEFAULTS: Dict[str, Tuple[str, str, str, str, str]] = {
    "inception": ("detector", "detector_sha256", INCEPTION_URL, "inception-2015-12-05.pt",
                  "the Inception-v3 feature network (FID, KID)"),
    "vgg": ("vgg", "vgg_sha256", VGG16_URL, "vgg16.pt", "the VGG16 feature network (precision/recall, PPL)"),
}


class DetectorError(ConfigError):
    """A feature network cannot be had (not cached and downloads off, download failed, missing local
    file). ``reason`` is ``'offline'``, ``'download'`` or ``'missing'``; ``path`` and ``url`` say
    what to fetch and where to put it."""

    def __init__(self, key: str, problem: str, fix: str, *, reason: str, path: str = "", url: str = ""):
        super().__init__(key, problem, fix)
        self.reason, self.path, self.url = reason, path, url


class ChecksumError(ConfigError):
    """A feature network's file does not have the expected sha256."""


def cache_dir(override: Optional[str] = None) -> str:
    """Downloads and dataset statistics: ``override``, else ``$ZOO_CACHE``, else ``~/.cache/zoo``."""
    if override:
        return os.path.abspath(os.path.expanduser(str(override)))
    return os.environ.get("ZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "zoo")


_SHA_MEMO: Dict[Tuple[str, int, int], str] = {}


def sha256_of(path: str) -> str:
    """``file_sha256`` memoised on (path, size, mtime): detectors are hashed once per process."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = file_sha256(path)
    return _SHA_MEMO[key]


def verify_sha256(path: str, expected: Optional[str], key: str = "sha256") -> str:
    """The file's sha256; raises :class:`ChecksumError` if ``expected`` is given and differs."""
    digest = sha256_of(path)
    if expected and digest != str(expected).strip().lower():
        raise ChecksumError(key, f"{path}: sha256 {digest} does not match the expected {expected}",
                            "delete the file to download it again, or correct the expected sha256")
    return digest


def cached_download(url: str, filename: str, *, sha256: Optional[str] = None, download: bool = True,
                    cache: Optional[str] = None, key: str = "path", sha_key: Optional[str] = None,
                    what: Optional[str] = None, timeout: float = 60.0) -> str:
    """The path of ``<cache>/<filename>``, downloading it from ``url`` on first use.

    The download goes to ``<file>.part`` and is renamed into place only once complete and (when
    ``sha256`` is given) verified, so an interrupted download never leaves a bad file; its sha256
    is recorded in ``<file>.sha256``. A cached file is checked against ``sha256`` or, when none is
    given, the recorded one (:class:`ChecksumError` on mismatch); a file put into the cache by hand
    has its sha256 recorded on first use. Raises :class:`DetectorError`
    when the file is not cached and ``download`` is false or the download fails; the message names
    the file, the URL, the path to put it at and the config ``key`` for a local copy instead
    (``sha_key``: the config key of the expected sha256, for the checksum error)."""
    what = what or filename
    cache = cache_dir(cache)
    path = os.path.join(cache, filename)
    fix = f"download {url} and put it at {path}, or set {key}=PATH to a local copy"
    if not os.path.isfile(path):
        if not download:
            raise DetectorError(key, f"{what} is not in the cache ({path}) and downloads are off",
                                fix, reason="offline", path=path, url=url)
        import urllib.request

        tmp = f"{path}.{os.getpid()}.part"
        try:
            os.makedirs(cache, exist_ok=True)
            print(f"[zoo] downloading {url} -> {path}", flush=True)
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    f.write(chunk)
            digest = file_sha256(tmp)
            if sha256 and digest != str(sha256).strip().lower():
                raise DetectorError(key, f"the download of {what} has sha256 {digest}, expected {sha256}",
                                    fix, reason="download", path=path, url=url)
            os.replace(tmp, path)
            with open(path + ".sha256", "w") as f:
                f.write(digest + "\n")
        except OSError as e:
            raise DetectorError(key, f"could not download {what} ({e})", fix, reason="download",
                                path=path, url=url) from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    expected = sha256
    if not expected and os.path.isfile(path + ".sha256"):
        with open(path + ".sha256") as f:
            expected = f.read().strip() or None
    digest = verify_sha256(path, expected, key=sha_key or key)
    if not expected:  # put there by hand: record it now (trust on first use), so later changes are caught
        try:
            with open(path + ".sha256", "w") as f:
                f.write(digest + "\n")
        except OSError as e:  # a read-only cache still works, it just cannot remember the hash
            pin = f"{sha_key}={digest}" if sha_key else "the expected sha256"
            warnings.warn(f"could not record the sha256 of {path} ({e}); later changes to the file will not be "
                          f"detected unless you pin {pin}")
    return path


def load_torchscript(path: str, device: Any = "cpu") -> torch.nn.Module:
    """``torch.jit.load`` in eval mode (torch's FutureWarning about TorchScript is silenced:
    NVIDIA's detectors are TorchScript files)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(path, map_location=device).eval()


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
