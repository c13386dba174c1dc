"""The search driver: the only place where oracle, executor, store and listeners meet.

An event-driven loop: while the oracle has work and the executor a free slot, ``ask()`` and
submit; when a trial reports an epoch, record it and let the oracle decide whether it goes on;
when a trial ends, ``tell()``, record, clean up and ask again.  The oracle never sees Keras,
the trial runner (a :class:`~archsearch.core.trial_runner.TrialRunner`, which only the executor
calls) never sees the algorithm, the executor only moves specs and events, and the store
hears about every step as it happens.  With one slot this is exactly the old sequential loop.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archsearch.core.checkpoints import TrialFiles, checkpoint_epoch
from archsearch.core.constraints import Constraints
from archsearch.core.measures import VIOLATION
from archsearch.core.disk import ensure_space
from archsearch.errors import ArchsearchError, DiskFullError
from archsearch.core.events import EventFanout, SearchEvents
from archsearch.executors.base import Executor
from archsearch.core.interrupts import raise_if_requested
from archsearch.oracles.base import Oracle
from archsearch.oracles.hand_driven import ORACLE_STATE
from archsearch.core.store import STORE_FILE, TrialStore
from archsearch.core.trial import COMPLETED, FAILED, INTERRUPTED, PRUNED, RUNNING, Trial, TrialOutcome, TrialSpec

from archsearch.engine.settings import DEFAULT_MAX_RETRIES, SearchSettings

log = logging.getLogger("archsearch")


class SearchAborted(ArchsearchError):
    """Too many trials failed (in a row, or in all): something is systematically wrong."""


class Search:
    """Runs trials on an executor until the oracle is finished."""

    def __init__(
        self,
        oracle: Oracle,
        executor: Executor,
        store: TrialStore,
        files: TrialFiles,
        *,
        max_consecutive_failed_trials: int = SearchSettings.max_consecutive_failed_trials,
        max_failed_trials: int | None = SearchSettings.max_failed_trials,
        keep_top_models: int | None = SearchSettings.keep_top_models,
        max_retries: int = DEFAULT_MAX_RETRIES,
        listeners: Sequence[SearchEvents] = (),
        constraints: Constraints | Sequence[str] | None = None,
    ) -> None:
        """``listeners`` hear every step (the console lines are one of them, ConsoleEvents): the driver
        itself never writes to the terminal.  ``constraints`` are checked on every trial's final metrics
        (whatever ran it: a Keras model, a command), see :meth:`judge`."""
        self.oracle = oracle
        self.executor = executor
        self.store = store
        self.files = files
        self.max_consecutive_failed_trials = max(1, int(max_consecutive_failed_trials))
        self.max_failed_trials = None if max_failed_trials is None else max(1, int(max_failed_trials))
        self.keep_top_models = keep_top_models
        self.max_retries = max(0, int(max_retries))
        self.events = EventFanout(list(listeners))
        self.constraints = Constraints.parse(constraints)
        self.epochs_spent = sum(max(0, r["epochs_done"] - r["initial_budget"]) for r in store.rows())
        self._consecutive_failures = 0
        self._specs: dict[int, TrialSpec] = {}  # submitted and not yet ended
        self._failed_runs: dict[int, int] = {}  # trial id -> times it failed and ran again (max_retries_per_trial)

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        self.events.on_search_begin(self)
        try:
            self._run()
        except BaseException as exc:
            self.events.on_search_exit(self, exc)
            raise
        self.events.on_search_exit(self, None)

    def _run(self) -> None:
        self.oracle.saved_state()  # a get_state override that cannot be saved is refused before any trial
        self.executor.start(self)
        try:
            while True:
                raise_if_requested()  # a first Ctrl-C in the Python API stops here, or before a batch
                self._fill_free_slots()
                if not self.executor.running:
                    break
                self.executor.wait()
        except KeyboardInterrupt:
            self.executor.interrupt()
            self._interrupt_running("interrupted", "interrupted by the user")
            raise
        except DiskFullError as exc:
            # Says nothing about the configurations: the trials continue from their checkpoints on resume.
            self.executor.interrupt()
            self._interrupt_running("disk", str(exc))
            raise
        except ArchsearchError as exc:
            # A configuration error found while setting a trial up (the objective is not produced, the
            # builder returns no model): nothing was measured, so that trial leaves no record and a
            # corrected search starts clean; the others continue from their checkpoints on resume.
            self.executor.interrupt()
            failed = getattr(exc, "trial_id", None)
            if failed is not None and failed in self._specs:
                spec = self._specs.pop(failed)
                if not spec.history and not self.store.epochs(failed):
                    self.store.discard_trial(failed)
            self._interrupt_running("interrupted", f"the search stopped: {exc}")
            raise
        finally:
            self.executor.shutdown()
        self._cleanup_checkpoints(final=True)
        self.events.on_search_end(self)

    def repeatability_note(self) -> str | None:
        """Why this search cannot repeat exactly with its seeds, or None when it does.

        With one trial at a time every algorithm repeats.  With several, the trials' finishing order
        varies from run to run, and only an oracle that never decides from results (random, grid;
        without a pruner) gives the same trials in any order.  Making the others wait for results in
        a fixed order would idle workers, which is what parallel trials are for (ASHA above all).
        """
        slots = max(self.executor.slots, getattr(self.executor, "max_slots", 1))  # trials_per_gpu=auto may grow them
        if slots <= 1 or self.oracle.repeats_in_parallel():
            return None
        why = ("its pruner compares each trial with the trials finished so far" if self.oracle.pruner is not None
               else "what it tries next depends on which trials have finished when a worker frees up")
        return (f"Note: {self.oracle.name or type(self.oracle).__name__} with {slots} trials at a time does not "
                f"repeat exactly, even with the same seeds: {why}, and parallel trials finish in a different "
                "order each run. parallel_trials=1 repeats exactly (random and grid search without a pruner "
                "repeat at any parallel_trials).")

    def _fill_free_slots(self) -> None:
        while self.executor.free_slots > 0:
            raise_if_requested()  # no trial starts after Ctrl-C
            trial = self._next_trial()
            if trial is None:
                return
            self._submit(trial)

    def _next_trial(self) -> Trial | None:
        # Trials left running by an interrupted or killed search go first, from their last checkpoints.
        for trial in self.oracle.running:
            if trial.id not in self._specs:
                return trial
        if self.oracle.finished:
            return None
        return self.oracle.ask()

    def _submit(self, trial: Trial, attempt: int = 0) -> None:
        resume, initial, history = self._resume_point(trial)
        if self.store.trial(trial.id) is None:
            self.store.create_trial(trial)
        hp = self.oracle.hyperparameters.with_values(trial.hparams)
        hp.values.update(self.oracle.keras_tuner_values(trial))  # KerasTuner's Hyperband: tuner/epochs, ...
        spec = TrialSpec(trial=trial, hyperparameters=hp,
                         resume_checkpoint=None if resume is None else str(resume), initial_epoch=initial,
                         history=history, attempt=attempt)
        self._specs[trial.id] = spec
        self.executor.submit(spec)

    def _resume_point(self, trial: Trial) -> tuple[Path | None, int, list[dict[str, Any]]]:
        """Where training starts: its own checkpoint after a crash, else the parent's, else scratch.

        Returns the weights to load, the epoch to continue from, and the metrics of the epochs the
        trial already trained (so its best epoch so far still counts).
        """
        own = self.files.checkpoint(trial.id)
        if own.exists():
            recorded = [e for e in self.store.epochs(trial.id) if e["epoch"] > trial.initial_budget]
            # The checkpoint knows its epoch; the store may lag it by one if the process died in between.
            reached = checkpoint_epoch(own) or max((e["epoch"] for e in recorded), default=0)
            if reached > trial.initial_budget:
                return own, reached, [e for e in recorded if e["epoch"] <= reached]
        if trial.resume_from is not None:
            parent = self.files.checkpoint(trial.resume_from)
            if parent.exists():
                return parent, trial.initial_budget, []
            log.warning("trial %s: parent checkpoint %s is missing; training from scratch", trial.id, parent)
            trial.initial_budget = 0
        return None, trial.initial_budget, []

    # ------------------------------------------------------------ ExecutorHandler
    def trial_started(self, spec: TrialSpec, worker: str | None) -> None:
        if worker is not None:
            self.store.set_worker(spec.trial_id, worker)
        self.events.on_trial_begin(spec.trial, spec, worker)

    def epoch_ended(self, trial_id: int, epoch: int, metrics: Mapping[str, float], value: float | None) -> bool:
        self.store.record_epoch(trial_id, epoch, metrics, value)
        trial = self.oracle.trials[trial_id]
        self.events.on_epoch_end(trial, epoch, metrics, value)
        if value is None:
            return False
        return self.oracle.epoch_report(trial_id, epoch, metrics, value)

    def trial_finished(self, trial_id: int, outcome: TrialOutcome) -> None:
        spec = self._specs.pop(trial_id)
        trial = self.oracle.trials[trial_id]
        if self._retry_failed(trial, spec, outcome):
            return
        outcome = self.judge(outcome)
        for name in self.oracle.keras_tuner_values(trial):  # shown to the trial, not part of its values
            outcome.hparams.pop(name, None)
        if outcome.hparams != trial.hparams:
            # A define-by-run builder declared new parameters while building this trial (in a worker,
            # the space it grew comes back with the outcome).
            hp = (outcome.space if outcome.space is not None else spec.hyperparameters).copy()
            hp.values = dict(outcome.hparams)
            self.oracle.update_space(hp, trial_id)
        result: Any = outcome.metrics if outcome.metrics else outcome.value
        told = self.oracle.tell(trial_id, result, status=outcome.status, error=outcome.error)
        if told.status == FAILED:
            # The runner names its failures; a "completed" trial the oracle refused had no finite objective.
            told.failure_kind = outcome.failure_kind or ("nan" if outcome.status == COMPLETED else "error")
        self._record_end(told, outcome.duration, outcome.epochs_done)
        self.epochs_spent += max(0, outcome.epochs_done - spec.initial_epoch)
        self.events.on_trial_end(told, outcome)
        self._cleanup_checkpoints()
        self._count_failure(told)

    def judge(self, outcome: TrialOutcome) -> TrialOutcome:
        """The search's constraints on a finished trial's final metrics.

        A broken one makes the trial infeasible (failed, never counted as a failure) with the message
        and its ``constraint_violation``; a completed trial that lacks a constrained value fails loudly
        (``no_metric``): a constraint is never silently ignored.  A trial that holds them all stores
        ``constraint_violation = 0.0``.  A pruned trial is judged on what it has; a failed one (an
        infeasible model the runner refused before training included) is left as it is.
        """
        if not self.constraints or outcome.status not in (COMPLETED, PRUNED):
            return outcome
        if outcome.status == PRUNED and not outcome.metrics:
            return outcome  # pruned with its value only: nothing to judge, and its value must stay
        metrics = dict(outcome.metrics)
        broken = self.constraints.violations(metrics)
        if broken:
            metrics[VIOLATION] = Constraints.total(broken)
            return dataclasses.replace(outcome, status=FAILED, failure_kind="infeasible", metrics=metrics,
                                       error=Constraints.message(broken))
        missing = self.constraints.missing(metrics) if outcome.status == COMPLETED else []
        if missing:
            bound = [str(c) for c in self.constraints if c.name in missing]
            return dataclasses.replace(outcome, status=FAILED, failure_kind="no_metric", error=(
                f"the trial reported no {', '.join(missing)}, which the constraint{'s' if len(bound) > 1 else ''} "
                f"{', '.join(bound)} bound{'' if len(bound) > 1 else 's'}: report it (a metric, or a model measure "
                "archsearch computes), or remove the constraint"))
        metrics[VIOLATION] = 0.0
        return dataclasses.replace(outcome, metrics=metrics)

    def executor_note(self, key: str, value: Mapping[str, Any]) -> None:
        """The executor's own record (``gpu_sharing``), kept in the store's meta for the report and a resume."""
        self.store.set_meta(key, dict(value))

    def trial_lost(self, trial_id: int, reason: str) -> None:
        trial = self.oracle.trials[trial_id]
        # HDF5 can crash a worker outright when the disk fills under it: that is the disk's fault.
        ensure_space(self.files.trial_dir(trial_id).parent, 0, self.files.workdir,
                     file=self.files.checkpoint(trial_id))
        spec = self._specs.pop(trial_id)
        if spec.attempt < self.max_retries:
            self.events.on_trial_retried(trial, reason, spec.attempt + 1)
            self._submit(trial, attempt=spec.attempt + 1)
            return
        told = self.oracle.tell(trial_id, None, status=FAILED,
                                error=f"{reason}; {spec.attempt + 1} workers died training it (executor.max_retries="
                                      f"{self.max_retries})")
        told.failure_kind = "lost"
        self._record_end(told)
        self.events.on_trial_end(told, TrialOutcome(status=FAILED, error=told.error))
        self._cleanup_checkpoints()
        self._count_failure(told)

    def _retry_failed(self, trial: Trial, spec: TrialSpec, outcome: TrialOutcome) -> bool:
        """KerasTuner's ``max_retries_per_trial``: a trial that raised runs again, from scratch."""
        retries = self._failed_runs.get(trial.id, 0)
        if outcome.status != FAILED or outcome.failure_kind != "error" or retries >= self.oracle.max_retries_per_trial:
            return False
        self._failed_runs[trial.id] = retries + 1
        self.files.checkpoint(trial.id).unlink(missing_ok=True)
        self.events.on_trial_rerun(trial, outcome.error or "an error", retries + 2)
        self._submit(trial, attempt=spec.attempt)
        return True

    # ------------------------------------------------------------ bookkeeping
    def _record_end(self, told: Trial, duration: float | None = None, epochs_done: int | None = None) -> None:
        """The store hears how a trial ended, with the oracle's own saved state (KerasTuner's
        ``get_state`` override, if any) in the same transaction."""
        try:
            state = self.oracle.saved_state()
        except ArchsearchError:  # the trial's end is kept all the same; then the search stops
            self.store.finish_trial(told, duration, epochs_done)
            raise
        self.store.finish_trial(told, duration, epochs_done, meta=None if state is None else {ORACLE_STATE: state})

    def _interrupt_running(self, kind: str, error: str) -> None:
        """The store says interrupted (and why); in memory the trials stay running, to continue first."""
        for trial_id in list(self._specs):
            trial = self.oracle.trials[trial_id]
            try:
                told = self.oracle.tell(trial_id, None, status=INTERRUPTED, error=error)
                told.failure_kind = kind
                self.store.finish_trial(told)  # no oracle state: it is saved when trials end for good
            except DiskFullError:
                pass  # the store cannot record it: the trial stays running there, which resumes it just the same
            finally:
                trial.status = RUNNING
            self.events.on_trial_interrupted(trial, error)
        self._specs.clear()

    def _count_failure(self, trial: Trial) -> None:
        if trial.failure_kind == "infeasible":
            return  # a configuration known not to fit (a constraint, max_model_size) says nothing about the search
        if trial.status == FAILED and self.executor.failure_absorbed(trial.id):
            return  # out of GPU memory beside other trials: the executor runs fewer per GPU now
        if trial.status != FAILED:
            self._consecutive_failures = 0
            return
        self._consecutive_failures += 1
        if self.max_failed_trials is not None:
            failed = [t for t in self.oracle.trials.values() if t.status == FAILED and t.failure_kind != "infeasible"
                      and not self.executor.failure_absorbed(t.id)]
            if len(failed) >= self.max_failed_trials:
                raise SearchAborted(
                    f"{len(failed)} trials failed (max_failed_trials={self.max_failed_trials}); the last error was: "
                    f"{trial.error}. Fix the cause (see {STORE_FILE} / the log) or raise max_failed_trials")
        if self._consecutive_failures >= self.max_consecutive_failed_trials:
            raise SearchAborted(
                f"{self._consecutive_failures} trials failed in a row; the last error was: {trial.error}. "
                f"Fix the cause (see {STORE_FILE} / the log) or raise max_consecutive_failed_trials"
            )

    def _cleanup_checkpoints(self, final: bool = False) -> None:
        """Delete resume checkpoints no trial can continue from, and best weights outside the top N."""
        keep_fn = getattr(self.oracle, "checkpoints_to_keep", None)
        keep = set(keep_fn()) if keep_fn is not None and not final else set()
        for t in self.oracle.trials.values():
            if t.status in (RUNNING, INTERRUPTED) or t.id in keep:
                continue
            self.files.checkpoint(t.id).unlink(missing_ok=True)
        if self.keep_top_models is not None:
            best = {t.id for t in self.oracle.best_trials(self.keep_top_models)}
            if self.oracle.objective.is_pareto:  # every point of the front is exported (best/pareto/)
                best |= {t.id for t in self.oracle.best_trials()}
            for t in self.oracle.trials.values():
                if t.done and t.id not in best:
                    self.files.best_weights(t.id).unlink(missing_ok=True)
        for t in self.oracle.trials.values():
            if t.done:  # no empty trials/trial_NNNN/ left behind
                self.files.remove_if_empty(t.id)
