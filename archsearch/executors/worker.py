"""The worker process: trains the trials its driver sends, one at a time, until told to stop.

Started with the ``spawn`` method (TensorFlow is not fork-safe), it sets its environment (GPU,
thread counts, and the runner's own ``worker_setup``, e.g. Keras' backend) *before* the runner is
unpickled, and then answers the driver
over a pipe: ``epoch`` messages wait for the driver's decision (continue or stop), so pruning
is decided exactly as in a single process.  It ignores Ctrl-C (the driver decides what stops)
and exits on its own when the driver dies, so a ``kill -9`` of the driver leaves no orphan.
This module imports nothing heavy at the top: unpickling the target must stay cheap.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

from archsearch.core.trial_runner import NO_NEEDS, RunnerNeeds, call_worker_setup


@dataclass
class WorkerSettings:
    """How one worker process is set up before it unpickles the runner (and imports what it trains with)."""

    env: dict[str, str] = field(default_factory=dict)
    threads: int | None = None  # CPU threads for the backend's op pools (None: the backend's default)
    parent_pid: int = 0
    needs: RunnerNeeds = NO_NEEDS  # the runner's: its worker_setup runs here, before it is unpickled


def worker_main(conn, runner_bytes: bytes, settings: WorkerSettings) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(settings.env)
    _die_with_parent(settings.parent_pid)
    try:
        limit_threads(settings.threads)
        # backend_logs.QUIET_ENV: the CLI's choice to filter a backend's start-up notices
        call_worker_setup(settings.needs, settings.threads, os.environ.get("ARCHSEARCH_QUIET_BACKEND") == "1")
        runner = pickle.loads(runner_bytes)
    except BaseException:  # noqa: BLE001 - tell the driver why this worker cannot work
        conn.send(("crash", None, traceback.format_exc()))
        return
    from archsearch.errors import ArchsearchError
    from archsearch.executors.base import run_spec

    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "exit":
            return
        spec = message[1]
        try:
            outcome = run_spec(runner, spec, _PipeReporter(conn))
        except ArchsearchError as exc:
            conn.send(("error", spec.trial_id, exc))
            continue
        except _Stopped:
            return
        except BaseException:  # noqa: BLE001 - an internal bug: the driver shows it
            conn.send(("crash", spec.trial_id, traceback.format_exc()))
            return
        conn.send(("finished", spec.trial_id, outcome))


class _Stopped(Exception):
    """The driver closed the pipe or asked this worker to exit while a trial was training."""


class _PipeReporter:
    """Each epoch goes to the driver, and training waits for its answer (continue or stop)."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def on_epoch(self, trial, epoch, metrics, value) -> bool:
        try:
            self.conn.send(("epoch", trial.id, int(epoch), dict(metrics), value))
            answer = self.conn.recv()
        except (EOFError, OSError):
            raise _Stopped from None
        if answer[0] == "exit":
            raise _Stopped
        return bool(answer[1])


def _die_with_parent(parent_pid: int) -> None:
    """Exit as soon as the driver is gone (killed with -9 included)."""
    if not parent_pid:
        return
    if sys.platform.startswith("linux"):
        try:  # the kernel sends SIGKILL to this process when its parent dies
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="archsearch-parent-watch", daemon=True).start()


def limit_threads(threads: int | None) -> None:
    """Give this worker its share of the CPU cores, so parallel workers do not fight over them.

    The usual thread variables, read by numpy's BLAS and the deep-learning libraries when they load;
    a library's own pools are sized by the runner's ``worker_setup``.
    """
    if not threads:
        return
    n = str(int(threads))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = n
    os.environ["TF_NUM_INTEROP_THREADS"] = "1" if int(threads) == 1 else "2"
