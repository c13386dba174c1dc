"""The run folder's lock when garbage collection releases it: never a deadlock (Keras-free, fast)."""

from __future__ import annotations

import threading

from archsearch.core import lock as lock_module
from archsearch.core.lock import RunFolderLock, holds_lock


def test_a_release_by_garbage_collection_inside_a_lock_call_waits_for_the_next_call(tmp_path):
    old = RunFolderLock(tmp_path / "old").acquire()
    # Garbage collection ran a finalizer on the thread that is inside acquire(), holding the guard:
    # a plain release() would wait for that guard forever.
    done = threading.Event()
    with lock_module._GUARD:
        worker = threading.Thread(target=lambda: (old.release_when_collected(), done.set()))
        worker.start()
        worker.join(timeout=120)  # a hang guard only
        assert done.is_set(), "release_when_collected waited for the guard"
        assert holds_lock(tmp_path / "old")  # left for later
    RunFolderLock(tmp_path / "new").acquire().release()  # the next lock call does it
    assert not holds_lock(tmp_path / "old")


def test_a_pending_release_of_a_folder_acquired_again_keeps_the_new_hold(tmp_path):
    old = RunFolderLock(tmp_path).acquire()
    with lock_module._GUARD:
        old.release_when_collected()  # same thread, guard taken: deferred, not deadlocked
    new = RunFolderLock(tmp_path).acquire()  # count 2, then the deferred release: 1
    assert holds_lock(tmp_path)
    new.release()
    assert not holds_lock(tmp_path)


def test_with_the_guard_free_it_releases_at_once(tmp_path):
    held = RunFolderLock(tmp_path).acquire()
    held.release_when_collected()
    assert not holds_lock(tmp_path)
    held.release_when_collected()  # twice is harmless
