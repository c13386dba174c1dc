"""What the CLI prints: the console channel's lines on the console and in the run's log file, errors as one line.

The lines themselves come from the console channel (archsearch/core/console.py), the one writer every
part of a search uses; the CLI only adds the run's log file to it, so every line a search shows also
lands in ``<run folder>/archsearch.log`` exactly once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from archsearch.core.console import StdoutHandler, console_logger


@contextmanager
def console_and_log_file() -> Iterator[None]:
    """For one job: the channel's lines on stdout and in Hydra's log file (Hydra's own console handler is
    the root's, which the channel does not reach, so each line shows once).  The channel is put back after."""
    channel = console_logger()
    before = (list(channel.handlers), channel.level, channel.disabled)
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    channel.handlers = [StdoutHandler(), *files]
    channel.setLevel(logging.INFO)
    channel.disabled = False
    # A full disk must not turn every log line into a traceback on stderr: the console still has it.
    logging.raiseExceptions = False
    try:
        yield
    finally:
        channel.handlers, level, channel.disabled = before[0], before[1], before[2]
        channel.setLevel(level)


def error_line(exc: BaseException) -> None:
    """A user error: one line on stderr (and in the log), no traceback."""
    _to_log_file(logging.ERROR, f"error: {exc}")
    problem(f"archsearch: error: {exc}")


def _to_log_file(level: int, text: str) -> None:
    """``text`` in the run's log file only: stderr says it to the user in its own words."""
    channel = console_logger()
    record = channel.makeRecord(channel.name, level, __file__, 0, text, (), None)
    for handler in channel.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def result(text: str) -> None:
    """A command's result (a table, a summary) on stdout, flushed: what the user asked to see."""
    print(text, flush=True)


def problem(text: str) -> None:
    """A problem that does not stop the command (``archsearch: could not ...``): one line on stderr."""
    print(text, file=sys.stderr, flush=True)
