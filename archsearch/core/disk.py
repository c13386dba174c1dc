"""Running out of disk space: found before it does harm, and reported as one clear error.

Libraries fail in their own ways when a disk fills up (``OSError`` ENOSPC,
SQLite's "database or disk is full", HDF5's "errno = 28", and at worst a
crash inside C code), so the search checks free space before each large
write and turns every such failure into a :class:`~archsearch.errors.DiskFullError`
that names the device, the file and how to continue.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from archsearch.errors import DiskFullError

# Room kept free beyond a file's own size, for SQLite's journal, logs and file-system overhead.
MARGIN_BYTES = 2 * 1024 * 1024
_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DISK_FULL_TEXTS = ("no space left", "database or disk is full", "errno = 28", "disk quota exceeded")


def free_bytes(path: str | Path) -> int:
    """Free bytes on the device holding ``path`` (or its nearest existing parent)."""
    return shutil.disk_usage(_existing(Path(path))).free


def device_of(path: str | Path) -> str:
    """The mount point holding ``path``: what a user recognises in ``df``."""
    current = _existing(Path(path)).resolve()
    device = current.stat().st_dev
    while current.parent != current and current.parent.stat().st_dev == device:
        current = current.parent
    return str(current)


def ensure_space(path: str | Path, needed: int = 0, run_folder: str | Path | None = None,
                 file: str | Path | None = None) -> None:
    """Raise DiskFullError unless ``needed`` bytes (plus a margin) fit in the folder ``path``.

    ``file`` names what was about to be written (the folder itself when not given).
    """
    free, wanted = free_bytes(path), int(needed) + MARGIN_BYTES
    if free < wanted:
        raise DiskFullError(device_of(path), str(file or path), None if run_folder is None else str(run_folder),
                            free=free, needed=wanted)


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the disk is full."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
            return True
        text = str(exc).lower()
        if any(t in text for t in _DISK_FULL_TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def as_disk_full(exc: BaseException, path: str | Path, run_folder: str | Path | None = None) -> DiskFullError:
    """The DiskFullError to raise for a low-level failure while writing ``path``."""
    if isinstance(exc, DiskFullError):
        return exc
    return DiskFullError(device_of(path), str(path), None if run_folder is None else str(run_folder))


def file_size(path: str | Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
