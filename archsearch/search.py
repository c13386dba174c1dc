"""The search loop: ask the oracle, run the trial, tell the oracle, record it.

This is the only place where the three parts meet.  The oracle never sees
Keras, the runner never sees the algorithm, and the store hears about every
step as it happens.  A future executor (local processes, Ray) replaces the
sequential ``run`` below without touching either side.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError, DiskFullError
from archsearch.objective import is_finite
from archsearch.oracles.base import Oracle
from archsearch.runner import Runner, TrialOutcome, checkpoint_epoch
from archsearch.store import TrialStore
from archsearch.trial import COMPLETED, FAILED, INTERRUPTED, PRUNED, RUNNING, Trial

log = logging.getLogger("archsearch")


class SearchAborted(ArchsearchError):
    """Too many trials failed in a row: something is systematically wrong."""


class Search:
    """Runs trials one after another until the oracle is finished."""

    def __init__(
        self,
        oracle: Oracle,
        runner: Runner,
        store: TrialStore,
        *,
        max_consecutive_failed_trials: int = 3,
        keep_top_models: int | None = 5,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.oracle = oracle
        self.runner = runner
        self.store = store
        self.max_consecutive_failed_trials = max(1, int(max_consecutive_failed_trials))
        self.keep_top_models = keep_top_models
        self.echo = echo
        self.epochs_spent = sum(max(0, r["epochs_done"] - r["initial_budget"]) for r in store.rows())
        self._consecutive_failures = 0

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        total = getattr(self.oracle, "total_epochs", None)
        if total:
            self.echo(f"Search plan: {total} epochs in all ({self.oracle.name}).")
        while True:
            trial = self._next_trial()
            if trial is None:
                break
            self.run_trial(trial)
        self._cleanup_checkpoints(final=True)

    def _next_trial(self) -> Trial | None:
        # A trial left running by an interrupted or killed search goes first, from its last checkpoint.
        for trial in self.oracle.running:
            return trial
        if self.oracle.finished:
            return None
        return self.oracle.ask()

    def run_trial(self, trial: Trial) -> TrialOutcome:
        hp = self.oracle.hyperparameters.with_values(trial.hparams)
        resume, initial, history = self._resume_point(trial)
        if self.store.trial(trial.id) is None:
            self.store.create_trial(trial)
        try:
            outcome = self.runner.run(trial, hp, reporter=self, resume_checkpoint=resume, initial_epoch=initial,
                                      history=history)
        except KeyboardInterrupt:
            self._mark_interrupted(trial)
            raise
        except DiskFullError as exc:
            # Says nothing about the configuration: the trial continues from its checkpoint on resume.
            self._mark_interrupted(trial, kind="disk", error=str(exc))
            raise
        except ArchsearchError:
            # A configuration error found while setting the trial up (the objective is not produced):
            # nothing was measured, so the trial leaves no record and a corrected search starts clean.
            if not history:
                self.store.discard_trial(trial.id)
            raise
        if outcome.hparams != trial.hparams:
            # A define-by-run builder declared new parameters while building this trial.
            hp.values = dict(outcome.hparams)
            self.oracle.update_space(hp, trial.id)
        result: Any = outcome.metrics if outcome.metrics else outcome.value
        told = self.oracle.tell(trial.id, result, status=outcome.status, error=outcome.error)
        if told.status == FAILED:
            # The runner names its failures; a "completed" trial the oracle refused had no finite objective.
            told.failure_kind = outcome.failure_kind or ("nan" if outcome.status == COMPLETED else "error")
        self.store.finish_trial(trial, outcome.duration)
        self.epochs_spent += max(0, outcome.epochs_done - initial)
        self._print_trial(trial, outcome)
        self._cleanup_checkpoints()
        self._count_failure(trial)
        return outcome

    def _mark_interrupted(self, trial: Trial, kind: str = "interrupted", error: str = "interrupted by the user") -> None:
        """Ctrl-C, SIGTERM or a full disk: the store says interrupted (and why); in memory the trial
        stays running, to continue first when the search resumes."""
        try:
            told = self.oracle.tell(trial.id, None, status=INTERRUPTED, error=error)
            told.failure_kind = kind
            self.store.finish_trial(told)
        except DiskFullError:
            pass  # the store cannot record it: the trial stays running there, which resumes it just the same
        finally:
            trial.status = RUNNING
        self.echo(f"Trial {trial.id}: interrupted; it continues from its last checkpoint when the search resumes.")

    def _resume_point(self, trial: Trial) -> tuple[Path | None, int, list[dict[str, Any]]]:
        """Where training starts: its own checkpoint after a crash, else the parent's, else scratch.

        Returns the weights to load, the epoch to continue from, and the metrics of the epochs the
        trial already trained (so its best epoch so far still counts).
        """
        own = self.runner.checkpoint_path(trial.id)
        if own.exists():
            recorded = [e for e in self.store.epochs(trial.id) if e["epoch"] > trial.initial_budget]
            # The checkpoint knows its epoch; the store may lag it by one if the process died in between.
            reached = checkpoint_epoch(own) or max((e["epoch"] for e in recorded), default=0)
            if reached > trial.initial_budget:
                self.echo(f"Trial {trial.id}: resuming from its checkpoint at epoch {reached}.")
                return own, reached, [e for e in recorded if e["epoch"] <= reached]
        if trial.resume_from is not None:
            parent = self.runner.checkpoint_path(trial.resume_from)
            if parent.exists():
                return parent, trial.initial_budget, []
            log.warning("trial %s: parent checkpoint %s is missing; training from scratch", trial.id, parent)
            trial.initial_budget = 0
        return None, trial.initial_budget, []

    # ------------------------------------------------------------ Reporter protocol
    def on_epoch(self, trial: Trial, epoch: int, metrics: Mapping[str, float], value: float | None) -> bool:
        self.store.record_epoch(trial.id, epoch, metrics, value)
        if value is None:
            return False
        return self.oracle.report(trial.id, epoch, value)

    # ------------------------------------------------------------ bookkeeping
    def _count_failure(self, trial: Trial) -> None:
        if trial.status != FAILED:
            self._consecutive_failures = 0
            return
        self._consecutive_failures += 1
        if self._consecutive_failures >= self.max_consecutive_failed_trials:
            raise SearchAborted(
                f"{self._consecutive_failures} trials failed in a row; the last error was: {trial.error}. "
                "Fix the cause (see trials.db / the log) or raise max_consecutive_failed_trials"
            )

    def _cleanup_checkpoints(self, final: bool = False) -> None:
        """Delete resume checkpoints no trial can continue from, and best weights outside the top N."""
        keep_fn = getattr(self.oracle, "checkpoints_to_keep", None)
        keep = set(keep_fn()) if keep_fn is not None and not final else set()
        for t in self.oracle.trials.values():
            if t.status in (RUNNING, INTERRUPTED) or t.id in keep:
                continue
            self.runner.checkpoint_path(t.id).unlink(missing_ok=True)
        if self.keep_top_models is not None:
            best = {t.id for t in self.oracle.best_trials(self.keep_top_models)}
            for t in self.oracle.trials.values():
                if t.done and t.id not in best:
                    self.runner.best_weights_path(t.id).unlink(missing_ok=True)

    def _print_trial(self, trial: Trial, outcome: TrialOutcome) -> None:
        best = self.oracle.best_trials(1)
        best_text = f"{best[0].value:.4f} (trial {best[0].id})" if best else "-"
        # The trial's id, as in the store, trials/trial_NNNN and the summary; then how far the search is.
        limit = self.oracle.max_trials
        done = sum(1 for t in self.oracle.trials.values() if t.done)
        number = f"{trial.id} ({done}/{limit})" if limit else f"{trial.id} ({done} done)"
        values = " ".join(f"{k}={_short(v)}" for k, v in trial.hparams.items())
        if trial.status == COMPLETED and is_finite(trial.value):
            result = f"{self.oracle.objective.name}={trial.value:.4f}"
        elif trial.status == PRUNED:
            result = f"pruned at epoch {outcome.epochs_done} ({self.oracle.objective.name}={_short(trial.value)})"
        else:
            result = f"FAILED: {trial.error}"
        budget = ""
        if trial.budget is not None:
            budget = f" | epochs {trial.initial_budget}->{trial.budget}"
            if trial.resume_from is not None:
                budget += f" from trial {trial.resume_from}"
            total = getattr(self.oracle, "total_epochs", None)
            if total:
                budget += f" (spent {self.epochs_spent}/{total})"
        self.echo(
            f"Trial {number} | {values} | {result} | best {best_text} | {outcome.duration:.1f}s{budget}"
        )


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")
