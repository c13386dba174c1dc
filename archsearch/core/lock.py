"""One search process per run folder: an OS-level lock on ``<run folder>/.archsearch.lock``.

Two processes searching one folder would both "resume" the same running trial and
mix their records in one store.  The lock is an advisory ``flock`` held for the
whole search: the kernel releases it when the process ends, however it ends, so a
``kill -9`` never leaves a stale lock behind.  The file keeps the holder's pid,
host and command line, so the refusal can say who holds it.  When trials later run
in worker processes, the driver alone holds the lock.  Within one process the lock
is shared (the CLI's set-up and its tuner both take it), so each search also claims
the folder for its run (``searching``): a second tuner searching the same folder
from another thread is refused as another process would be.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archsearch.errors import FolderNotWritable, RunFolderBusy

LOCK_FILE = ".archsearch.lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# The locks this process holds: path -> [open file, count].  A lock is re-entrant within one
# process (the CLI's set-up and its tuner both take it), and shared by its threads.
_HELD: dict[str, list] = {}
_GUARD = threading.Lock()
# Releases asked for by garbage collection while _GUARD was taken (see release_when_collected).
_PENDING: list[RunFolderLock] = []
# The searches running in this process: lock path -> the thread running it.  The flock keeps other
# processes out, but this process's threads share it; two tuners searching one folder from two
# threads would delete each other's checkpoints, so a second search here is refused too.
_SEARCHING: dict[str, str] = {}


class RunFolderLock:
    """The run folder's lock; ``with RunFolderLock(folder):`` or ``acquire()`` / ``release()``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._held = False

    def acquire(self, *, idle: bool = False) -> RunFolderLock:
        """Take the lock (re-entrant within this process); ``idle``: refuse while a search of this
        process runs in the folder (a new tuner there would reopen and rewrite its trials)."""
        if self._held:
            return self
        key = str(self.path.resolve())
        with _GUARD:
            if idle and key in _SEARCHING:
                raise self._busy_here(key)
            if key in _HELD:
                _HELD[key][1] += 1
                self._held = True
                return self
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                handle = open(self.path, "a+", encoding="utf-8")
            except PermissionError as exc:
                raise FolderNotWritable(
                    f"{self.folder} is not writable ({exc.strerror}): a search needs to write its run folder; "
                    "make it writable (e.g. chmod u+w) or copy the run folder somewhere writable and resume the copy"
                ) from None
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _describe_holder(self.path)
                    handle.close()
                    raise RunFolderBusy(
                        f"{self.folder} is in use by another search ({holder}); a run folder belongs to one "
                        "search process at a time: wait for it to finish or stop it, or choose another run folder"
                    ) from None
            _write_holder(handle)
            _HELD[key] = [handle, 1]
            self._held = True
        _release_pending()
        return self

    def release(self) -> None:
        if not self._held:
            return
        with _GUARD:
            self._release_guarded()
        _release_pending()

    @contextmanager
    def searching(self) -> Iterator[None]:
        """Hold the folder for one search of this process: a second search there, from any thread or
        tuner, is refused until this one ends (the lock itself is shared by the process's threads)."""
        key = str(self.path.resolve())
        with _GUARD:
            if key in _SEARCHING:
                raise self._busy_here(key)
            _SEARCHING[key] = threading.current_thread().name
        try:
            yield
        finally:
            with _GUARD:
                _SEARCHING.pop(key, None)

    def _busy_here(self, key: str) -> RunFolderBusy:
        return RunFolderBusy(
            f"{self.folder} is in use by another search in this process (thread {_SEARCHING[key]!r}, "
            f"process {os.getpid()}); a run folder belongs to one search at a time: wait for that search "
            "to finish, or give this tuner another directory/project_name"
        )

    def release_when_collected(self) -> None:
        """``release`` for a ``weakref.finalize`` of an object that holds this lock.

        Garbage collection may run it on a thread that is inside :meth:`acquire` or :meth:`release`,
        holding the guard: waiting for the guard there would deadlock that thread (it once hung a
        test for good).  So it releases now if the guard is free, else leaves the release to the
        next lock call.
        """
        if not self._held:
            return
        if _GUARD.acquire(blocking=False):
            try:
                self._release_guarded()
            finally:
                _GUARD.release()
        else:
            _PENDING.append(self)

    def _release_guarded(self) -> None:
        key = str(self.path.resolve())
        entry = _HELD.get(key)
        self._held = False
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            handle = entry[0]
            del _HELD[key]
            try:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            finally:
                try:
                    handle.close()
                except OSError:  # its holder record could not be flushed (a full disk): no matter
                    pass

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _release_pending() -> None:
    """The releases garbage collection left while the guard was taken (outside it: never nested)."""
    while _PENDING:
        lock = _PENDING.pop()
        with _GUARD:
            if lock._held:
                lock._release_guarded()


def holds_lock(folder: str | Path) -> bool:
    """Whether this process holds the lock of ``folder``."""
    return str((Path(folder) / LOCK_FILE).resolve()) in _HELD


def _write_holder(handle) -> None:
    """Record who holds the lock (best effort: a full disk must not stop a search from locking)."""
    record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": " ".join(sys.argv)[:500]}
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(record) + "\n")
        handle.flush()
    except OSError:
        pass


def _describe_holder(path: Path) -> str:
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        record = {}
    if not record.get("pid"):
        return "a process that has not said who it is"
    text = f"process {record['pid']}"
    if record.get("host") and record["host"] != socket.gethostname():
        text += f" on {record['host']}"
    if record.get("since"):
        text += f", since {record['since']}"
    if record.get("command"):
        text += f": {record['command']}"
    return text
