"""Files that are either the old complete version or the new complete one, never half of either.

Every file a search exports (``best/model.keras``, ``hparams.yaml``, ``trials.csv``,
pictures) is written under a temporary name in the same folder, flushed to disk
and renamed over the old one: a kill, a crash or a full disk at any moment
leaves a reader the previous file, whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archsearch.core.disk import as_disk_full, ensure_space, is_disk_full


def temporary_name(path: Path) -> Path:
    """``best/.model.tmp-123.keras``: same folder (so the rename is atomic), same suffix (Keras checks it)."""
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".weights.h5") else path.suffix
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.tmp-{os.getpid()}{suffix}")


@contextmanager
def atomic_path(path: str | Path, expected_size: int = 0, run_folder: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    ``expected_size`` bytes (plus a margin) must be free first, so a full disk is found before
    any library starts writing; a write that still runs out of space raises DiskFullError.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ensure_space(path.parent, expected_size, run_folder, file=path)
    tmp = temporary_name(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if not isinstance(exc, Exception):
            raise
        if is_disk_full(exc):
            raise as_disk_full(exc, path, run_folder) from exc
        raise


def write_text(path: str | Path, text: str, run_folder: str | Path | None = None) -> Path:
    """Write ``text`` to ``path`` atomically."""
    data = text.encode("utf-8")
    with atomic_path(path, len(data), run_folder) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _fsync(path: Path) -> None:
    if not path.exists():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries a killed export left in ``folder`` (``.model.tmp-123.keras``, ...).

    Only the process holding the run folder's lock writes there, so any temporary found by it
    before it writes is a leftover.
    """
    removed = []
    folder = Path(folder)
    if folder.is_dir():
        for entry in folder.glob(".*.tmp-*"):
            if entry.is_file():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed
