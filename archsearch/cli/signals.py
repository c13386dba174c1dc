"""Ctrl-C and SIGTERM on the command line: the first stops the search cleanly, later ones are absorbed.

The entry point (``archsearch/__main__.py``) installs these handlers before anything slow is
imported, so a Ctrl-C during start-up is one clean line too; a sweep job started by another
launcher installs them as it starts (``cli/sweep.py``).  The Python API keeps Python's own handler
and defers a Ctrl-C to safe points instead (``core/interrupts.py``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_INTERRUPTED = 130


def exit_interrupted() -> None:
    """Exit 130, whatever CPython remembers of the Ctrl-C.

    Two traps.  At shutdown Python puts back the default SIGINT handler, and one more Ctrl-C then would
    kill the process by signal: ignored signals are left alone, so ignore them now.  And a KeyboardInterrupt
    that passed through Python code run from C (TensorFlow's import runs some through ``PyRun_String``)
    sets CPython's "unhandled Ctrl-C" flag even though it was handled here; the interpreter would then
    kill itself by SIGINT at exit (status -2).  So finish what normal shutdown does that matters (exit
    functions, logging, the console) and leave with ``os._exit``.
    """
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_IGN)
    import atexit
    import logging

    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(EXIT_INTERRUPTED)


class Interrupts:
    """Ctrl-C and SIGTERM: the first stops the search (KeyboardInterrupt); later ones are absorbed,
    so a second impatient Ctrl-C never kills the process while it records and exports what finished.

    While Hydra imports and composes the config the handler is *held*: a signal is only counted, and
    the task raises it when it starts (``arm``).  A KeyboardInterrupt raised inside Hydra's or
    OmegaConf's start-up can be swallowed there (the search then runs on) or leave a half-built
    config behind (a bogus config error); counting it instead makes a Ctrl-C at any moment one line.
    """

    def __init__(self) -> None:
        self.count = 0
        self.armed = False

    def __call__(self, signum, frame) -> None:
        self.count += 1
        if self.count == 1 and self.armed:
            raise KeyboardInterrupt
        if self.count == 2:
            os.write(2, b"archsearch: already stopping; saving what finished (use kill -9 to stop at once)\n")

    def arm(self) -> None:
        """From here a signal stops at once; one that came while held stops now."""
        self.armed = True
        if self.count:
            raise KeyboardInterrupt

    def hold(self) -> None:
        """Back to counting only: Hydra composes the next job of a multirun, or tears down."""
        self.armed = False


INTERRUPTS = Interrupts()


def install() -> None:
    """The command line's Ctrl-C and SIGTERM handling, for this process (the entry point, a sweep job),
    counting from nothing and held until the task arms it."""
    INTERRUPTS.count, INTERRUPTS.armed = 0, False
    signal.signal(signal.SIGINT, INTERRUPTS)
    signal.signal(signal.SIGTERM, INTERRUPTS)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then stop as they asked (KeyboardInterrupt).

    If the block runs because of an earlier interrupt, the later signals are simply absorbed.
    Outside the main thread (signal handlers cannot be set there) the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in handled}
    already_stopping = sys.exc_info()[0] is not None
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received and not already_stopping:
        raise KeyboardInterrupt
