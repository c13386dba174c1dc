"""The ``Logger`` interface: a search listener that also knows its run folder and config.

A tracker (TensorBoard, MLflow, W&B, Neptune) sees the search only through its events
(:class:`~archsearch.core.events.SearchEvents`), in the driver process whatever the executor, so it
never parses console output and never runs inside a worker.  On top of the events it gets the
run folder and the config (``__init__``), the exported results (:meth:`Logger.on_results`) and
the end of the run however it ended (:meth:`Logger.close`), which the events alone do not say.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archsearch.core.events import EventFanout, SearchEvents

log = logging.getLogger("archsearch")

SCORE = "score"  # a trial's objective at its best epoch, the value the search ranks it by, in every tracker


def trial_folder(trial_id: int) -> str:
    """``trial_0007``: a trial's name in every tracker, as its weights folder is ``trials/trial_0007``."""
    return f"trial_{trial_id:04d}"


def is_number(value: Any) -> bool:
    """A finite number a tracker can plot (metrics may hold NaN, None or text)."""
    try:
        return value is not None and not isinstance(value, (str, bytes)) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class Logger(SearchEvents):
    """One tracker.  Override the :class:`SearchEvents` methods you need, plus these two.

    ``run_folder``: where the search writes (``trials.db``, ``best/``); ``config``: the run's plain
    config (what a tracker stores as the search's parameters); ``options``: this logger's own
    section, ``logger.<name>`` (already checked by its factory).
    """

    name = "logger"

    def __init__(self, run_folder: str | Path, config: Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None) -> None:
        self.run_folder = Path(run_folder)
        self.config = dict(config or {})
        self.options = dict(options or {})

    def check(self) -> None:
        """Reach the tracker's target (a server, a store) before the first trial; raise a
        :class:`~archsearch.errors.ConfigError` naming the option if it cannot be used.

        Called once by ``create_loggers``.  Failures later in the search are logged, not fatal, so
        a tracker that goes away mid-search never stops it; one that never worked must not let a
        search run for hours logging nothing.
        """

    def on_results(self, best_dir: Path | None) -> None:
        """The results were exported (``trials.csv``, ``best/``; ``best_dir`` None if no trial completed).

        Called after the search, also after an interrupted one, before :meth:`close`.
        """

    def close(self, error: BaseException | None = None) -> None:
        """The run is over: ``error`` None after a normal end, else what stopped it (Ctrl-C, a failure)."""


class Loggers(EventFanout):
    """The configured loggers as one listener; like the events, a logger that raises is logged, not fatal."""

    def __init__(self, loggers: Sequence[Logger]) -> None:
        super().__init__(loggers)

    def on_results(self, best_dir: Path | None) -> None:
        self._call("on_results", best_dir)

    def close(self, error: BaseException | None = None) -> None:
        self._call("close", error)
