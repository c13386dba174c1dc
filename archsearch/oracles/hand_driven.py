"""KerasTuner's way of driving and extending an oracle by hand, over archsearch's ask/tell.

KerasTuner code drives an oracle with ``create_trial(tuner_id)`` / ``update_trial`` /
``end_trial`` and extends one by overriding ``populate_space(trial_id)`` (what to try next) and
``score_trial(trial)`` (how a finished trial is scored).  archsearch's own search loop speaks
``ask``/``tell``; this mixin keeps KerasTuner's meaning on top of it:

* one ongoing trial per tuner id: asking again for the same id returns that trial (workers that
  share a trial, as with a multi-worker distribution strategy, share an id);
* a trial ended ``INVALID`` (it raised, or a completed one scored NaN) runs again under the same
  id, up to ``max_retries_per_trial`` times, before it counts as failed; ``FAILED`` never runs
  again; ``max_consecutive_failed_trials`` failures in a row raise ``RuntimeError``;
* with a project folder (``_set_project_dir``, as KerasTuner's tuner sets it) every trial is kept
  in ``trials.db`` there, written as it happens, and ``reload()`` on a new oracle continues the
  search: the trials that were running run again, under their ids.

:func:`synchronized` serialises calls into one oracle from several threads (KerasTuner's
decorator for overrides), without blocking other oracles.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from archsearch.errors import FatalTypeError
from archsearch.core.objective import is_finite, numeric_metrics
from archsearch.core.trial import COMPLETED, FAILED, IDLE, INTERRUPTED, RUNNING, STOPPED, Status, Trial

log = logging.getLogger("archsearch")
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_MAX_CONSECUTIVE_FAILURES = 3  # KerasTuner's default, and the tuner's (archsearch.engine.search)
ORACLE_STATE = "oracle_state"  # the store's meta key for a subclass's get_state()


def synchronized(method: F) -> F:
    """One call at a time into the same oracle (re-entrant, so an override may call ``super()``)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._hand_lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class HandDrivenOracle:
    """The hand-driven half of :class:`archsearch.oracles.base.Oracle` (see the module docstring)."""

    # Set by Oracle.__init__ through _init_hand_driven.
    trials: dict[int, Trial]

    def _init_hand_driven(self) -> None:
        self.ongoing_trials: dict[str, Trial] = {}  # tuner id -> its running trial
        self.start_order: list[int] = []  # trial ids, as they started (kept by ask)
        self.end_order: list[int] = []  # trial ids, as they ended for good (kept by tell)
        self.tuner_ids: set[str] = set()
        self._run_times: dict[int, int] = {}  # trial id -> times it ended (retries included)
        self._retry_queue: list[int] = []
        self._algorithm_proposal = None  # what populate_space's default drew, for the ask that called it
        self._hand_lock = threading.RLock()
        self._store = None
        self._state_store = None  # a tuner's store, where save() keeps the state (the tuner records the trials)
        self.directory: str | None = None
        self.project_name: str | None = None

    # ------------------------------------------------------------ extension points
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Override to choose a trial's values: return ``{"values": {...}, "status": "RUNNING"}``.

        ``"IDLE"`` says nothing can start until a running trial ends, ``"STOPPED"`` that the search
        is over.  archsearch's own oracles implement ``_propose`` instead; on them this returns what
        their algorithm proposes, so an override of a built-in oracle can call
        ``super().populate_space(trial_id)`` and change the values (as in KerasTuner).
        """
        if not self._has_own_algorithm():
            raise NotImplementedError(f"{type(self).__name__} overrides neither populate_space nor _propose")
        proposal = self._propose()
        self._algorithm_proposal = proposal
        if proposal is None:  # over for good (e.g. Hyperband out of values), or waiting for running trials
            return {"status": "STOPPED" if self._exhausted or self.finished else "IDLE"}
        return {"values": dict(proposal.hparams), "status": "RUNNING"}

    def _has_own_algorithm(self) -> bool:
        """Whether the class proposes through ``_propose`` (archsearch's oracles) rather than populate_space."""
        return False

    def score_trial(self, trial: Trial) -> None:
        """Override to score a completed trial (set ``trial.score``); by default its objective's value."""

    def _overrides(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(HandDrivenOracle, name)

    def hand_driven_overrides(self) -> list[str]:
        """The hand-driving methods this class overrides that a tuner's search never calls (it asks and tells)."""
        return [name for name in ("create_trial", "end_trial") if self._overrides(name)]

    def epoch_report(self, trial_id: int, epoch: int, metrics: Mapping[str, float], value: float) -> bool:
        """What a search tells the oracle after each epoch; True: stop the trial now.

        Through an ``update_trial`` override when the class has one (KerasTuner's way for an oracle
        to stop a trial early: it returns, or sets the trial's status to, ``"STOPPED"``), else
        through ``report`` and the pruner.
        """
        if not self._overrides("update_trial"):
            # A Pareto search's pruner compares every objective reported at the epoch, not only the first.
            pareto = self.objective.is_pareto and self.objective.value_from(metrics) is not None
            return self.report(trial_id, epoch, dict(metrics) if pareto else value)
        trial = self._get(trial_id)
        answer = self.update_trial(trial.trial_id, dict(metrics), step=epoch)
        stop = str(answer).lower() == STOPPED or trial.status == STOPPED
        if trial.status != RUNNING:
            trial.status = RUNNING  # it runs until the search tells the oracle its outcome
        return stop

    def _random_values(self) -> dict[str, Any] | None:
        """Random values never tried before (None after many collisions), for ``populate_space`` overrides."""
        for _ in range(100):
            values = self.hyperparameters.sample(self.rng)
            if self.is_new(values):
                return values
        return None

    def _duplicate(self, values: Mapping[str, Any]) -> bool:
        """KerasTuner's check: were these (active) values tried already?"""
        return not self.is_new(values)

    # ------------------------------------------------------------ the protocol
    @synchronized
    def create_trial(self, tuner_id: str | None = None) -> Trial:
        """The trial ``tuner_id`` should run: its ongoing one, a retry, a new one, or a stopped/idle marker."""
        tuner_id = "tuner0" if tuner_id is None else str(tuner_id)
        if tuner_id in self.ongoing_trials:
            return self.ongoing_trials[tuner_id]
        self.tuner_ids.add(tuner_id)
        if self._retry_queue:
            trial = self.trials[self._retry_queue.pop(0)]
            trial.status, trial.error, trial.value = RUNNING, None, None
            trial.metrics, trial.intermediate = {}, {}
            if self._store is not None:
                self._store.set_worker(trial.id, tuner_id)
        else:
            trial = self.ask()
            if trial is None:
                over = self.finished or self._trial_limit_reached() or self._exhausted
                return Trial(-1, {}, status=STOPPED if over else IDLE)
            if self._store is not None:
                self._store.create_trial(trial, worker=tuner_id)
        self.ongoing_trials[tuner_id] = trial
        return self._attach(trial)

    @synchronized
    def update_trial(self, trial_id: int | str, metrics: Mapping[str, float] | float, step: int = 0) -> Status:
        """An intermediate result (``step``: epochs trained so far); says ``stopped`` (``== "STOPPED"``) when
        it should stop."""
        trial = self._get(trial_id)
        if isinstance(metrics, Mapping):
            missing = [name for name in self.objective.metric_names if name not in metrics]
            if missing:
                raise ValueError(f"Objective value missing in metrics reported to the oracle: expected "
                                 f"{missing}, found {sorted(metrics)}")
            numbers = numeric_metrics(metrics)
            value = self.objective.value_from(numbers)
            best = self.objective.value_from(trial.metrics) if trial.metrics else None
            if not trial.metrics or self.objective.better(value, best):
                trial.metrics = numbers  # the best step's metrics become the trial's result at end_trial
            if self._store is not None:
                self._store.record_epoch(trial.id, int(step), numbers, value if is_finite(value) else None)
        stop = self.report(trial.id, int(step), metrics)
        return Status(STOPPED if stop else RUNNING)  # equals KerasTuner's "STOPPED"/"RUNNING" too

    @synchronized
    def end_trial(self, trial: Trial | int | str, status: str | None = None, message: str | None = None) -> Trial:
        """Close a trial: completed (its best reported value, or ``trial.metrics``, is its result), ``INVALID``
        (it runs again while retries are left) or ``FAILED``.  ``end_trial(trial_id, status)`` is the old form."""
        own = self._get(trial.id if isinstance(trial, Trial) else trial)
        given = Status(status or (trial.status if isinstance(trial, Trial) else COMPLETED))
        given = Status(COMPLETED) if given == RUNNING else given  # ended without a status: it finished
        message = message or (trial.error if isinstance(trial, Trial) else None)
        if isinstance(trial, Trial) and trial is not own and trial.hparams:
            own.hparams = dict(trial.hparams)  # a worker's copy may hold values its builder added
        metrics = trial.metrics if isinstance(trial, Trial) and trial.metrics else own.metrics
        result: Any = metrics or (self.objective.best(own.intermediate.values()) if own.intermediate else None)
        retryable = bool(getattr(given, "retryable", False))
        if given == COMPLETED:
            value = self.objective.value_from(result) if isinstance(result, Mapping) else result
            if not is_finite(value):
                retryable, message = True, message or f"objective {self.objective.name} is {value}"
        self._release(own)
        self._run_times[own.id] = self._run_times.get(own.id, 0) + 1
        if retryable and self._run_times[own.id] <= self.max_retries_per_trial:
            left = self.max_retries_per_trial + 1 - self._run_times[own.id]
            log.info("Trial %s failed %d time(s); %d retries left.", own.trial_id, self._run_times[own.id], left)
            own.status, own.error = Status("INVALID"), message  # failed for now; runs again
            self._retry_queue.append(own.id)
            self._persist_end(own)
            return own
        if retryable or given == FAILED:
            ended = self.tell(own.id, None, status=FAILED, error=message)
        else:
            ended = self.tell(own.id, result, status=str(given), error=message)
        self._persist_end(ended)
        self._check_consecutive_failures()
        return self._attach(ended)

    def _release(self, trial: Trial) -> None:
        for tuner_id, ongoing in list(self.ongoing_trials.items()):
            if ongoing.id == trial.id:
                del self.ongoing_trials[tuner_id]

    def _check_consecutive_failures(self) -> None:
        limit = self.max_consecutive_failed_trials or DEFAULT_MAX_CONSECUTIVE_FAILURES
        run = 0
        for trial_id in self.end_order:
            run = run + 1 if self.trials[trial_id].status == FAILED else 0
        if run >= limit:
            last = self.trials[self.end_order[-1]]
            raise RuntimeError(f"Number of consecutive failures exceeded the limit of {limit}: "
                               f"{run} trials failed in a row.\n{last.error or ''}".rstrip())

    # ------------------------------------------------------------ a project folder
    def _set_project_dir(self, directory: str | Path, project_name: str, overwrite: bool = False) -> None:
        """Keep this oracle's trials in ``<directory>/<project_name>/trials.db`` (``overwrite``: start afresh)."""
        from archsearch.core.store import STORE_FILE, STORE_FILES, TrialStore

        folder = Path(directory) / str(project_name)
        folder.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for name in STORE_FILES:
                (folder / name).unlink(missing_ok=True)
        self.directory, self.project_name = str(directory), str(project_name)
        self._store = TrialStore(folder / STORE_FILE)

    def reload(self) -> None:
        """Continue the search kept in the project folder; the trials that were running run again."""
        if self._store is None:
            raise RuntimeError("reload() needs a project folder: call _set_project_dir(directory, project_name) "
                               "first (a Tuner does it for its oracle)")
        if self.trials:
            raise RuntimeError("reload() continues a new oracle; this one already holds trials")
        self.restore(self._store.events())
        self._run_times = {int(k): int(v) for k, v in (self._store.get_meta("run_times", {}) or {}).items()}
        queued = [int(i) for i in self._store.get_meta("retry_queue", []) or [] if int(i) in self.trials]
        ended = [t for t in self._store.trials() if t.status not in (RUNNING, INTERRUPTED) and t.id not in queued]
        self.end_order = [t.id for t in sorted(ended, key=lambda t: self._tell_order(t.id))]
        self.start_order = sorted(self.trials)
        self.ongoing_trials = {}
        self._retry_queue = queued
        for trial in self.trials.values():
            if trial.status in (RUNNING, INTERRUPTED) and trial.id not in queued:
                trial.status = INTERRUPTED
                self._retry_queue.append(trial.id)
        self.restore_saved_state(self._store.get_meta(ORACLE_STATE))

    def _tell_order(self, trial_id: int) -> int:
        row = next((r for r in self._store.rows() if r["id"] == trial_id), None)
        return int(row["tell_seq"] or 0) if row else 0

    def _bookkeeping(self) -> dict[str, Any]:
        """What reload() needs besides the trials: the retries used and waiting."""
        return {"run_times": {str(k): v for k, v in self._run_times.items()}, "retry_queue": list(self._retry_queue)}

    def _keep_state_in(self, store: Any) -> None:
        """A tuner's store (trials.db), where :meth:`save` keeps the state while the tuner records the trials."""
        self._state_store = store

    def save(self) -> None:
        """Keep the oracle's state now, so a resumed search continues from it (KerasTuner's ``Oracle.save``).

        KerasTuner writes ``get_state()`` to ``oracle.json`` next to its trial files.  Here trials.db
        is the one record: the trials are in it as they happen, and save() writes into it what a
        resume cannot rebuild from them, the state a ``get_state`` override adds (handed to
        ``set_state`` on reload) and the retry bookkeeping, as every trial's end also does.  No
        ``oracle.json`` is written: a second copy could disagree with the store after a kill.
        """
        store = self._store if self._store is not None else self._state_store
        if store is None:
            raise RuntimeError("save() needs a project folder: call _set_project_dir(directory, project_name) "
                               "first, or pass the oracle to a tuner (it gives it its folder)")
        state = self.saved_state()
        meta = self._bookkeeping() if self._store is not None else {}
        if state is not None:
            meta[ORACLE_STATE] = state
        if meta:
            store.set_meta_many(meta)

    def _persist_end(self, trial: Trial) -> None:
        if self._store is None:
            return
        meta = self._bookkeeping()
        try:
            state = self.saved_state()
        except FatalTypeError:  # the trial's end is kept all the same
            self._store.finish_trial(trial, meta=meta)
            raise
        self._store.finish_trial(trial, meta={**meta, **({} if state is None else {ORACLE_STATE: state})})

    # ------------------------------------------------------------ KerasTuner's saved state
    def get_state(self) -> dict[str, Any]:
        """KerasTuner's oracle state.  A subclass adds its own (``state = super().get_state()``); it is
        saved with every trial that ends and handed to ``set_state`` when the search resumes.  The
        trials themselves are in the store, not here."""
        return {
            "ongoing_trials": {tuner_id: trial.trial_id for tuner_id, trial in self.ongoing_trials.items()},
            "start_order": list(self.start_order),
            "end_order": list(self.end_order),
            "seed": self.seed,
            "tried_so_far": sorted(self._tried),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Given, once, the last saved ``get_state()`` after a resume replayed the store.  The replay
        has rebuilt the base state already (it re-asks and re-tells every trial), so the base keeps it;
        a subclass's override restores what it added."""

    def saved_state(self) -> dict[str, Any] | None:
        """What to save when a trial ends: a ``get_state`` override's state (None without one).

        It must be JSON (KerasTuner writes it to ``oracle.json``); anything else is refused loudly,
        since a state that cannot be saved would be lost at the first resume.
        """
        if type(self).get_state is HandDrivenOracle.get_state:
            return None
        state = self.get_state()
        try:
            json.dumps(state)
        except (TypeError, ValueError) as exc:
            raise FatalTypeError(f"{type(self).__name__}.get_state() must return JSON values, as KerasTuner saves "
                                 f"it as JSON: {exc}; convert them (e.g. a datetime with .isoformat())") from None
        return state

    def restore_saved_state(self, state: Mapping[str, Any] | None) -> None:
        """After a resume's replay: a ``set_state`` override gets the state saved last."""
        if state is not None and type(self).set_state is not HandDrivenOracle.set_state:
            self.set_state(state)

    # ------------------------------------------------------------ KerasTuner's deprecated spellings
    def _populate_space(self, trial_id: str) -> dict[str, Any]:
        import warnings

        warnings.warn("_populate_space is deprecated: use populate_space", DeprecationWarning, stacklevel=2)
        return self.populate_space(trial_id)

    def _score_trial(self, trial: Trial) -> None:
        import warnings

        warnings.warn("_score_trial is deprecated: use score_trial", DeprecationWarning, stacklevel=2)
        self.score_trial(trial)

    # ------------------------------------------------------------ copies
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_hand_lock", None)
        state["_store"] = state["_state_store"] = None  # a copy (another process) does not write into the folder
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._hand_lock = threading.RLock()

