"""Ctrl-C during a Python-API search: stop at a safe point, not wherever the signal lands.

Python's default SIGINT handler raises ``KeyboardInterrupt`` in whatever Python code runs at that
moment.  Inside a TensorFlow clean-up function (a ``__del__``, a weakref callback) such an exception
is printed and dropped, and the search trained on as if nothing had happened.  While
:func:`stop_at_safe_points` is active (``Tuner.search()`` in the main thread), the first Ctrl-C only
sets a flag; the search driver (between trials) and the runner's callback (before each batch) call
:func:`raise_if_requested`, so the ``KeyboardInterrupt`` starts where the driver records the running
trial as interrupted (a resumed search continues it).  A second Ctrl-C raises at once, as Python
would.  Signal handlers exist in the main thread only: elsewhere nothing changes.

The command line keeps its own handlers (``archsearch/__main__.py``), which this module leaves alone.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

FIRST_PRESS = (b"archsearch: stopping at the next safe point (the running trial is saved, and a resumed "
               b"search continues it); press Ctrl-C again to stop at once\n")


@dataclass
class _State:
    """The one SIGINT guard of this process (signals reach the main thread only)."""

    active: bool = False
    presses: int = 0
    raised: bool = False  # the first press's KeyboardInterrupt is on its way
    reader: socket.socket | None = None
    writer: socket.socket | None = None


_STATE = _State()


def stop_requested() -> bool:
    """A first Ctrl-C came and was not acted on yet (always False outside the main thread)."""
    return (_STATE.active and _STATE.presses > 0 and not _STATE.raised
            and threading.current_thread() is threading.main_thread())


def raise_if_requested() -> None:
    """At a safe point: raise the ``KeyboardInterrupt`` a first Ctrl-C asked for (once)."""
    if stop_requested():
        _STATE.raised = True
        raise KeyboardInterrupt


def wakeup_handle() -> socket.socket | None:
    """Readable once Ctrl-C was pressed: a driver blocked on its workers waits on it too, so it stops at once."""
    return _STATE.reader if _STATE.active else None


def _on_sigint(signum, frame) -> None:
    _STATE.presses += 1
    if _STATE.presses > 1:
        raise KeyboardInterrupt  # the user insists: stop now, wherever this lands
    try:
        os.write(2, FIRST_PRESS)
    except OSError:
        pass
    if _STATE.writer is not None:
        try:
            _STATE.writer.send(b"\0")
        except OSError:  # its buffer is full: it is readable already
            pass


def _can_install() -> bool:
    """Only over Python's own handler, in the main thread: a handler the user set (or SIG_IGN) is theirs."""
    return (threading.current_thread() is threading.main_thread() and not _STATE.active
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)


@contextmanager
def stop_at_safe_points() -> Iterator[None]:
    """Defer the first Ctrl-C to the search's safe points for the duration of the block.

    A Ctrl-C that no safe point acted on (it came after the last trial) is raised when the block ends,
    so a Ctrl-C is never lost.  The previous handler is back when the block ends, however it ends.
    """
    if not _can_install():
        yield
        return
    reader, writer = socket.socketpair()
    for end in (reader, writer):
        end.setblocking(False)
    global _STATE
    _STATE = _State(active=True, reader=reader, writer=writer)
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        pending = _STATE.presses > 0 and not _STATE.raised
        _STATE = _State()
        reader.close()
        writer.close()
    if pending:
        raise KeyboardInterrupt


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs, then hand each to the handler it was meant for.

    For a backend's first import: TensorFlow runs Python clean-ups (weakref callbacks, ``__del__``) from C
    while it starts, and a ``KeyboardInterrupt`` raised in one is printed as "Exception ignored" with its
    traceback and then dropped, or turned into an ``ImportError``.  Held, the signal reaches its handler
    right after the import, in ordinary code, seconds late at most.  Only Python-level handlers are held
    (SIG_IGN and SIG_DFL mean what they say), and only in the main thread, where handlers run.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for stop in (signal.SIGINT, signal.SIGTERM):
        if callable(signal.getsignal(stop)):
            previous[stop] = signal.signal(stop, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
        for signum in received:
            signal.raise_signal(signum)  # the first may raise here: the later ones are the handler's to absorb
