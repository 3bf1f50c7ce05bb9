"""The zoo's one hierarchy of user errors.

Every problem a user can fix (a bad config value, a missing or corrupt dataset, a checkpoint of
another generation, an unsafe pickle, a feature network that cannot be downloaded, an operation a
generation does not have) is a :class:`ZooError`: *what* is wrong (``problem``), optionally *where*
(``key``: the config key, file or path) and *how to fix it* (``fix``). The entry points print it as
one line and exit with status 2 (``zoo.apps.common.report_user_errors``); nothing else is a user
error, so a bug still shows its traceback.

    raise ConfigError("batch", "total batch 30 is not divisible by gpus=4", "use e.g. batch=28")
    # -> "batch: total batch 30 is not divisible by gpus=4. Fix: use e.g. batch=28"

All of them are ``ValueError`` s (``UnknownGenerationError`` is also a ``KeyError``), so code that
catches the builtin classes keeps working.
"""
from __future__ import annotations

from typing import Optional

__all__ = ["ZooError", "ConfigError", "DatasetError", "CheckpointError", "InteropError", "UnsafePickleError",
           "DetectorError", "ChecksumError", "NotApplicable", "UnknownGenerationError"]


class ZooError(ValueError):
    """A user error: ``problem`` (what is wrong), ``key`` (where: a config key, a file, a path; may be
    None) and ``fix`` (what to do; may be None). ``str(e)`` is ``"key: problem. Fix: fix"``."""

    def __init__(self, problem: str, *, key: Optional[str] = None, fix: Optional[str] = None):
        self.problem, self.key, self.fix = str(problem), key, fix
        text = self.problem if key is None else f"{key}: {self.problem}"
        super().__init__(f"{text}. Fix: {fix}" if fix else text)


class ConfigError(ZooError):
    """A configuration value is wrong; the message names the key and how to fix it."""

    def __init__(self, key: str, problem: str, fix: str):
        super().__init__(problem, key=key, fix=fix)


class DatasetError(ZooError):
    """A data problem: the message names the file or path and says how to fix it."""


class CheckpointError(ZooError):
    """A checkpoint cannot be used: missing, truncated, of another generation or format."""


class InteropError(CheckpointError):
    """A foreign checkpoint (NVIDIA pickle, rosinality file) cannot be imported or exported."""


class UnsafePickleError(InteropError):
    """A pickle asks for a global outside the allow-list (code would run if it were loaded)."""


class DetectorError(ConfigError):
    """A feature network (or other cached download) cannot be had: not cached and downloads off, the
    download failed, or a local file is missing. ``reason`` is ``'offline'``, ``'download'`` or
    ``'missing'``; ``path`` and ``url`` say what to fetch and where to put it."""

    def __init__(self, key: str, problem: str, fix: str, *, reason: str, path: str = "", url: str = ""):
        super().__init__(key, problem, fix)
        self.reason, self.path, self.url = reason, path, url


class ChecksumError(ConfigError):
    """A file does not have the expected sha256."""


class NotApplicable(ZooError):
    """The operation does not exist for this generation (e.g. style mixing on ProGAN)."""


class UnknownGenerationError(ZooError, KeyError):
    """No generation of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return ValueError.__str__(self)
