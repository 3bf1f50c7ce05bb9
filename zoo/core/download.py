"""Downloads and the cache: NVIDIA's feature networks (metrics, projection) and anything else the zoo
fetches once and keeps.

The cache directory is ``override``, else ``$ZOO_CACHE``, else ``~/.cache/zoo``. A download goes to
``<file>.part`` and is renamed into place only once complete (and verified when a sha256 is
given); its sha256 is recorded in ``<file>.sha256`` and checked on every later use (trust on first
use unless pinned). Every failure is a :class:`zoo.core.errors.DetectorError` naming the file, its
URL and the config key of a local copy.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Optional

import torch

from zoo.core.errors import ChecksumError, DetectorError
from zoo.core.files import file_sha256, sha256_of

__all__ = ["cache_dir", "cached_download", "verify_sha256", "load_torchscript"]


def cache_dir(override: Optional[str] = None) -> str:
    """Downloads and dataset statistics: ``override``, else ``$ZOO_CACHE``, else ``~/.cache/zoo``."""
    if override:
        return os.path.abspath(os.path.expanduser(str(override)))
    return os.environ.get("ZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "zoo")


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
