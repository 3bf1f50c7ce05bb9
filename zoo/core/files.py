"""Files: atomic writes, hashes, the process umask.

Every file the zoo writes that a later step reads back (checkpoints, ``job.json``, statistics
caches, exports, datasets) goes through :func:`atomic_write`: an interrupted write never leaves a
truncated or half-written file behind.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from typing import IO, Any, Callable, Dict, Tuple

__all__ = ["atomic_write", "atomic_torch_save", "file_sha256", "sha256_of", "umask"]


def umask() -> int:
    """The process umask (read without changing it for longer than the call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str, write: Callable[[IO], None], binary: bool = True) -> str:
    """Call ``write(f)`` on a temporary file in ``path``'s directory, fsync, give it the usual
    permissions (0666 & ~umask; temporary files start as 0600) and rename it over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_torch_save(path: str, obj: Any) -> str:
    """``torch.save`` through :func:`atomic_write`."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_SHA_MEMO: Dict[Tuple[str, int, int], str] = {}


def sha256_of(path: str) -> str:
    """:func:`file_sha256` memoised on (path, size, mtime): large files are hashed once per process."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = file_sha256(path)
    return _SHA_MEMO[key]
