"""One run of the user's program: started in its own session, its output kept, stopped gently then firmly.

The program runs in a process group of its own, so a Ctrl-C typed at the terminal reaches archsearch alone
(which decides what stops), and stopping a trial stops everything the program started (a shell wrapper, a
data loader's workers).  On Linux the kernel sends it SIGTERM if the process that started it dies (a worker
killed, or ``kill -9`` of archsearch), so no trial outlives its search.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

TAIL_LINES = 20  # the last lines of a failed program, in the store and on the console


def _die_with_parent() -> None:
    """In the child, before it executes the program: SIGTERM when its parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


class Program:
    """The program of one trial, running; its output lines arrive on :attr:`lines` as it prints them."""

    def __init__(self, argv: Sequence[str], cwd: str | Path | None, env: dict[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.lines: queue.Queue[str | None] = queue.Queue()  # None: the output ended (the program is ending)
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.started = time.monotonic()
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed when the reader ends
        self._log.write(f"=== archsearch: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            self.argv, cwd=None if cwd is None else str(cwd), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._reader = threading.Thread(target=self._read, name=f"archsearch-output-{self.process.pid}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Copy every byte to output.log as it comes, and hand the lines on (``\\r`` progress bars split too)."""
        assert self.process.stdout is not None
        partial = b""
        try:
            while True:
                chunk = self.process.stdout.read1(65536) if hasattr(self.process.stdout, "read1") else \
                    self.process.stdout.readline()
                if not chunk:
                    break
                self._log.write(chunk)
                self._log.flush()
                partial += chunk
                *complete, partial = partial.replace(b"\r", b"\n").split(b"\n")
                for raw in complete:
                    self._hand_on(raw)
            if partial:
                self._hand_on(partial)
        finally:
            self._log.close()
            self.lines.put(None)

    def _hand_on(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace")
        if line.strip():
            self.tail.append(line)
        self.lines.put(line)

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def wait(self, timeout: float) -> None:
        """Until the program exits, at most ``timeout`` seconds."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass

    def finish_output(self, timeout: float = 30.0) -> None:
        """Wait (bounded) until every line the program printed has been read."""
        self._reader.join(timeout)

    def stop(self, stop_file: Path, grace_period: float) -> None:
        """Ask the program to stop (``ARCHSEARCH_STOP_FILE``, then SIGTERM to its group), SIGKILL after the grace period."""
        try:
            stop_file.touch()
        except OSError:
            pass
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=max(0.0, grace_period))
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait()
        self._signal(signal.SIGKILL)  # whatever it started and left behind in its group

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def describe_exit(code: int) -> str:
    """``exit status 1`` or ``killed by SIGKILL`` (a negative return code is the signal)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit status {code}"
