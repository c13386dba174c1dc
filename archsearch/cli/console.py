"""What the CLI prints: progress lines on the console and in the run's log file, errors as one line.

One place writes to the console, so every line a search shows also lands in
``<run folder>/archsearch.log`` exactly once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

PROGRESS_LOGGER = "archsearch.progress"  # a log channel, read back from archsearch.log files by the sweep table


def echo_to_console_and_log() -> Callable[[str], None]:
    """Print progress lines and copy them into Hydra's log file (the console already shows them once)."""
    file_log = logging.getLogger(PROGRESS_LOGGER)
    file_log.propagate = False
    file_log.setLevel(logging.INFO)
    file_log.handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    # A full disk must not turn every log line into a traceback on stderr: the console still has it.
    logging.raiseExceptions = False

    def echo(line: str) -> None:
        print(line, flush=True)
        file_log.info(line)

    return echo


def error_line(exc: BaseException) -> None:
    """A user error: one line on stderr (and in the log), no traceback."""
    logging.getLogger(PROGRESS_LOGGER).error("error: %s", exc)
    print(f"archsearch: error: {exc}", file=sys.stderr, flush=True)


def result(text: str) -> None:
    """A command's result (a table, a summary) on stdout, flushed: what the user asked to see."""
    print(text, flush=True)


def problem(text: str) -> None:
    """A problem that does not stop the command (``archsearch: could not ...``): one line on stderr."""
    print(text, file=sys.stderr, flush=True)
