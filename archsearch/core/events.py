"""What happens during a search, told to whoever listens: the console, loggers, progress displays.

The search driver calls a :class:`SearchEvents` listener at each step, in order; every method is
optional.  The console lines of a search come from
:class:`~archsearch.core.console.ConsoleEvents`, one listener among others, so nothing else in the
engine prints, and a logger (TensorBoard, MLflow, a progress bar)
is one more listener fed by the same events, never a parser of console output.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from archsearch.core.trial import Trial, TrialOutcome, TrialSpec

log = logging.getLogger("archsearch")


class Search(Protocol):
    """What a listener sees of the running search (the driver, archsearch/engine/search.py's ``Search``).

    Stated here so that core names no module above it, not even for type checking.
    """

    oracle: Any  # the algorithm: its trials, objective and space
    store: Any  # trials.db
    executor: Any  # where trials run: ``slots``, ``describe()``
    epochs_spent: int

    def repeatability_note(self) -> str | None: ...


class SearchEvents:
    """Listener interface of a search.  Subclass it and override what you need."""

    def on_search_begin(self, search: Search) -> None:
        """The search starts (or resumes); ``search`` gives the oracle, the store and the executor."""

    def on_trial_begin(self, trial: Trial, spec: TrialSpec, worker: str | None) -> None:
        """A trial starts training, from ``spec.initial_epoch`` (above its initial budget: it resumes)."""

    def on_epoch_end(self, trial: Trial, epoch: int, metrics: Mapping[str, float], value: float | None) -> None:
        """A trial finished an epoch (1-based); ``value`` is the objective, if the metrics hold it."""

    def on_trial_end(self, trial: Trial, outcome: TrialOutcome) -> None:
        """A trial ended: completed, pruned or failed (``trial.status``)."""

    def on_trial_interrupted(self, trial: Trial, reason: str) -> None:
        """A trial stopped without a result (Ctrl-C, a full disk, a lost worker); it continues later."""

    def on_trial_retried(self, trial: Trial, reason: str, attempt: int) -> None:
        """The worker training a trial died; the trial continues from its checkpoint on another one."""

    def on_trial_rerun(self, trial: Trial, error: str, run: int) -> None:
        """A trial failed and trains again from scratch (``max_retries_per_trial``); ``run`` counts from 2."""

    def on_search_end(self, search: Search) -> None:
        """The search ended normally (not called when it is interrupted or fails)."""

    def on_search_exit(self, search: Search, error: BaseException | None) -> None:
        """Always the last event, however the search stopped: ``error`` is None when it ended normally,
        else what stopped it (``KeyboardInterrupt`` for Ctrl-C).  Close displays and tracker runs here."""


class EventFanout(SearchEvents):
    """Several listeners as one, called in the order given.

    A listener that raises is logged and skipped: watching a search must never stop it.
    """

    def __init__(self, listeners: Sequence[SearchEvents]) -> None:
        self.listeners = list(listeners)

    def _call(self, method: str, *args: Any) -> None:
        for listener in self.listeners:
            call = getattr(listener, method, None)  # a listener written against fewer events lacks some
            if call is None:
                continue
            try:
                call(*args)
            except Exception:  # noqa: BLE001 - a broken logger must not cost the search
                log.exception("search listener %s failed in %s", type(listener).__name__, method)

    def on_search_begin(self, search):
        self._call("on_search_begin", search)

    def on_trial_begin(self, trial, spec, worker):
        self._call("on_trial_begin", trial, spec, worker)

    def on_epoch_end(self, trial, epoch, metrics, value):
        self._call("on_epoch_end", trial, epoch, metrics, value)

    def on_trial_end(self, trial, outcome):
        self._call("on_trial_end", trial, outcome)

    def on_trial_interrupted(self, trial, reason):
        self._call("on_trial_interrupted", trial, reason)

    def on_trial_retried(self, trial, reason, attempt):
        self._call("on_trial_retried", trial, reason, attempt)

    def on_trial_rerun(self, trial, error, run):
        self._call("on_trial_rerun", trial, error, run)

    def on_search_end(self, search):
        self._call("on_search_end", search)

    def on_search_exit(self, search, error):
        self._call("on_search_exit", search, error)
