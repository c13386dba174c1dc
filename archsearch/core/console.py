"""The console: the one channel every line a user reads from a search goes through, and its listener.

Library code never prints.  It writes lines to the ``archsearch.console`` logger (:func:`say`); the
channel's own handler puts them on stdout, flushed, as ``print`` did, so ``import archsearch`` in a
script or a notebook shows them with no logging set-up.  The CLI adds the run's log file to the same
channel (archsearch/cli/console.py), so every line it shows lands in ``archsearch.log`` once.  A program
embedding archsearch redirects or silences the lines with logging alone, e.g.
``logging.getLogger("archsearch.console").setLevel(logging.WARNING)``.

:class:`ConsoleEvents` is the search's console listener: its plan, one line per trial, resumes,
interruptions and retries, written to this channel.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from archsearch.core.events import Search, SearchEvents
from archsearch.core.objective import is_finite
from archsearch.core.trial import COMPLETED, PRUNED, Trial, TrialOutcome, TrialSpec

CONSOLE_LOGGER = "archsearch.console"


class StdoutHandler(logging.StreamHandler):
    """Each line on the *current* ``sys.stdout``, flushed: a notebook's cell, pytest's capture and the live
    progress display (which redirects stdout to print lines above itself) all see it, as with ``print``."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler sets it; stdout is looked up at each line instead
        pass


def console_logger() -> logging.Logger:
    """The channel, with its stdout handler; it does not propagate, so a root logging set-up never shows a
    line twice."""
    channel = logging.getLogger(CONSOLE_LOGGER)
    if not channel.handlers:
        channel.addHandler(StdoutHandler())
        channel.setLevel(logging.INFO)
        channel.propagate = False
    return channel


_CHANNEL = console_logger()


def say(line: str) -> None:
    """One line for the user (a note, a trial's result, a summary table)."""
    _CHANNEL.info(line)


class ConsoleEvents(SearchEvents):
    """The search's lines: its plan, one line per trial, resumes, interruptions and retries."""

    def __init__(self) -> None:
        self.search: Search | None = None

    def on_search_begin(self, search: Search) -> None:
        self.search = search
        total = getattr(search.oracle, "total_epochs", None)
        if total:
            say(f"Search plan: {total} epochs in all ({search.oracle.name}).")
        slots = search.executor.slots
        if slots > 1:
            say(f"Running {slots} trials at a time ({search.executor.describe()}).")
        note = search.repeatability_note()
        if note:
            say(note)
        note = sum_note(search.oracle.objective)
        if note:
            say(note)

    def on_trial_begin(self, trial: Trial, spec: TrialSpec, worker: str | None) -> None:
        if spec.initial_epoch > trial.initial_budget:
            say(f"Trial {trial.id}: resuming from its checkpoint at epoch {spec.initial_epoch}.")

    def on_trial_interrupted(self, trial: Trial, reason: str) -> None:
        say(f"Trial {trial.id}: interrupted; it continues from its last checkpoint when the search resumes.")

    def on_trial_retried(self, trial: Trial, reason: str, attempt: int) -> None:
        say(f"Trial {trial.id}: {reason}; continuing from its last checkpoint on a new worker (attempt {attempt + 1}).")

    def on_trial_rerun(self, trial: Trial, error: str, run: int) -> None:
        say(f"Trial {trial.id} failed ({error}); training it again (run {run}, max_retries_per_trial).")

    def on_trial_end(self, trial: Trial, outcome: TrialOutcome) -> None:
        if self.search is not None:
            say(trial_line(self.search, trial, outcome))


def sum_note(objective: Any) -> str | None:
    """A list objective in a single-objective search is KerasTuner's sum: said once, with the way to a front."""
    if objective.is_pareto or not objective.components:
        return None
    names = [p.name for p in objective.components]
    return (f"Note: the objective {names} is optimised as one number, KerasTuner's sum (minimised metrics minus "
            "maximised ones); to search the trade-off between them, their Pareto front, use search.mode=pareto "
            "(Python: objective=archsearch.ParetoObjective.of([...])).")


def trial_line(search: Search, trial: Trial, outcome: TrialOutcome) -> str:
    """``Trial 3 (4/10) | units=32 | val_accuracy=0.9120 | best 0.9300 (trial 1) | 4.2s``: the trial's id, as in
    the store, trials/trial_NNNN and the summary; how far the search is; its values, result and budget."""
    oracle = search.oracle
    objective = oracle.objective
    if objective.is_pareto:  # no one best: how many trials the front holds
        front = oracle.best_trials()
        best_text = f"front {len(front)} trial{'s' if len(front) != 1 else ''}" if front else "front -"
    else:
        best = oracle.best_trials(1)
        best_text = "best " + (f"{best[0].value:.4f} (trial {best[0].id})" if best else "-")
    limit = oracle.max_trials
    done = sum(1 for t in oracle.trials.values() if t.done)
    number = f"{trial.id} ({done}/{limit})" if limit else f"{trial.id} ({done} done)"
    values = " ".join(f"{k}={_short(v)}" for k, v in trial.hparams.items())
    if trial.status == COMPLETED and objective.is_pareto:
        result = " ".join(f"{p.name}={_short(trial.metrics.get(p.name))}" for p in objective.components)
    elif trial.status == COMPLETED and is_finite(trial.value):
        result = f"{oracle.objective.name}={trial.value:.4f}"
    elif trial.status == PRUNED:
        main = objective.main.name if objective.is_pareto else objective.name  # trial.value's metric
        result = f"pruned at epoch {outcome.epochs_done} ({main}={_short(trial.value)})"
    elif trial.failure_kind == "infeasible":  # the configuration cannot work: not a failure of the search
        reason = (trial.error or "").splitlines()[0] if trial.error else ""
        result = f"infeasible ({reason.removeprefix('infeasible: ')})"
    else:  # one line: a program's last output lines stay in the store (trials.csv, the report)
        result = f"FAILED: {(trial.error or '').splitlines()[0] if trial.error else None}"
    budget = ""
    if trial.budget is not None:
        budget = f" | epochs {trial.initial_budget}->{trial.budget}"
        if trial.resume_from is not None:
            budget += f" from trial {trial.resume_from}"
        total = getattr(oracle, "total_epochs", None)
        if total:
            budget += f" (spent {search.epochs_spent}/{total})"
    return f"Trial {number} | {values} | {result} | {best_text} | {outcome.duration:.1f}s{budget}"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
