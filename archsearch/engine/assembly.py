"""One assembly of a search: run folder, oracle, store, executor and listeners, built in one place.

The command line (``archsearch/cli/app.py``), ``mode=retrain`` (``archsearch/cli/retrain.py``) and the
Python ``Tuner`` (``archsearch/keras_tuner``) all build their search here, from the typed settings of
:mod:`archsearch.engine.settings`.  The trial runner is the caller's: the engine never imports Keras,
so the caller passes a runner (the Keras one, or any other) when the search starts.

The parts come in the order a search needs them:

1. :class:`Assembly` claims the run folder (its lock, and ``overwrite``);
2. :func:`create_search_oracle` makes the oracle over the space;
3. :meth:`Assembly.open` opens ``trials.db`` and refuses a different search stored there;
4. :meth:`Assembly.restore` replays what the store holds (a resumed search);
5. :meth:`Assembly.search` builds the executor for the runner and the driver with its listeners.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archsearch.core.lock import LOCK_FILE, RunFolderLock
from archsearch.core.objective import LINEAR
from archsearch.core.store import STORE_FILE, TrialStore
from archsearch.engine.settings import ExecutorSettings, SearchSettings, TunerSettings
from archsearch.errors import ConfigRuntimeError

log = logging.getLogger("archsearch")

# What Hydra writes into the CLI's run folder before the search starts: overwrite=true keeps it.
HYDRA_OUTPUTS = (".hydra", "archsearch.log")


def clear_folder(folder: Path, keep: Sequence[str] = ()) -> None:
    """``overwrite=True``: delete what a folder holds, except ``keep`` (the lock this process holds)."""
    if not folder.exists():
        return
    for entry in folder.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def create_search_oracle(tuner: TunerSettings, space: Any, objective: Any, reference_point: Any = None,
                         reference_field: str = "search.reference_point") -> Any:
    """The oracle ``tuner`` names, over ``space`` (None: learned from the trials), optimising ``objective``;
    ``reference_point``: a Pareto search's ``search.reference_point`` (see ``Oracle.set_reference_point``),
    ``reference_field`` the setting an error names (``hydra.sweeper.reference_point`` in a sweep)."""
    from archsearch.oracles import create_oracle

    oracle = create_oracle(tuner.name, space, objective, **tuner.options)
    oracle.set_reference_point(reference_point, reference_field)
    return oracle


# The trainer's settings that change what a trial's numbers mean (mixed precision, compiled steps), and what a
# search stored before they existed trained with.
TRAINING_DEFAULTS = {"mixed_precision": "auto", "jit_compile": "auto", "steps_per_execution": "auto"}


def fingerprint(oracle: Any, training: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What makes two searches the same search: the algorithm, the objective, the space and (``training``,
    the Keras runner's) the training policy's settings."""
    objective = oracle.objective
    found = {
        "oracle": oracle.name,
        "objective": [objective.name, objective.direction,  # a component's scale only when log (stores before it)
                      *([[c.name, c.direction, *([c.scale] if c.scale != LINEAR else [])]
                         for c in objective.components] if objective.components else [])],
        "space": json.loads(json.dumps(oracle.hyperparameters.get_config(), default=str)),
    }
    if training is not None:
        found["training"] = {k: training.get(k, v) for k, v in TRAINING_DEFAULTS.items()}
    return found


def _training_changes(stored: Mapping[str, Any], mine: Mapping[str, Any]) -> list[str]:
    """``trainer.<name>`` for each training setting that differs (a store from before them: the defaults)."""
    if "training" not in mine:
        return []
    before = stored.get("training") or TRAINING_DEFAULTS
    return [f"trainer.{k}" for k, v in mine["training"].items() if before.get(k, TRAINING_DEFAULTS[k]) != v]


class Assembly:
    """The parts of one search in a run folder, which it holds locked for as long as it lives."""

    def __init__(self, project_dir: str | Path, overwrite: bool = False) -> None:
        # The folder is this process's for as long as the search lives: a second search is refused by name,
        # and so is a new one in this process while another is searching there.
        self.project_dir = Path(project_dir)
        self.lock = RunFolderLock(self.project_dir).acquire(idle=True)
        if overwrite:
            clear_folder(self.project_dir, keep=(LOCK_FILE, *HYDRA_OUTPUTS))
        self.store: TrialStore | None = None
        self.oracle: Any = None

    def open(self, oracle: Any, config: Mapping[str, Any] | None = None, accept_changes: bool = False,
             training: Mapping[str, Any] | None = None) -> TrialStore:
        """Open ``trials.db`` for ``oracle``; a new search stores its fingerprint and ``config`` there.
        ``accept_changes``: a stored search with another space or objective continues under this one's
        (the sweeper's ``resume=force``) instead of being refused.  ``training``: the Keras runner's
        policy settings (trainer.mixed_precision, jit_compile, steps_per_execution), part of the fingerprint."""
        self.oracle = oracle
        self.store = TrialStore(self.project_dir / STORE_FILE)
        oracle._keep_state_in(self.store)  # oracle.save() writes there
        self._check_or_write_fingerprint(config, accept_changes, training)
        return self.store

    def _check_or_write_fingerprint(self, config: Mapping[str, Any] | None, accept_changes: bool = False,
                                    training: Mapping[str, Any] | None = None) -> None:
        """Refuse to mix a different search into an existing folder (resume it or overwrite it instead).

        A new search stores its fingerprint and its config (the CLI's) in one transaction, before
        anything else: a kill in the first milliseconds leaves both or neither, never a store that
        a resume would run with defaults.
        """
        assert self.store is not None
        mine = fingerprint(self.oracle, training)
        stored = self.store.get_meta("fingerprint")
        if stored is None or self.store.count() == 0:
            self.store.set_meta_many({"fingerprint": mine, **({"config": dict(config)} if config is not None else {})})
            return
        changed = [key for key in ("oracle", "objective") if stored.get(key) != mine[key]]
        stored_space, my_space = stored.get("space", {}), mine["space"]
        changed += [f"space.{n}" for n in sorted(set(stored_space) & set(my_space)) if stored_space[n] != my_space[n]]
        changed += [f"space.{n} (removed)" for n in sorted(set(stored_space) - set(my_space))]
        changed += _training_changes(stored, mine)
        if changed and accept_changes:
            log.warning("%s: continuing a search whose settings changed (%s)", self.project_dir, ", ".join(changed))
            self.store.set_meta("fingerprint", mine)
        elif changed:
            raise ConfigRuntimeError(
                str(self.project_dir),
                f"holds a different search (changed: {', '.join(changed)})",
                "resume it with the same settings, choose another directory/project_name, or pass `overwrite=True`",
            )
        if stored != mine:  # a define-by-run space that grew: remember the larger one
            self.store.set_meta("fingerprint", mine)

    def restore(self, oracle: Any = None) -> str | None:
        """Replay the store into the oracle (``oracle``: a fresh one, as ``reload()`` gives); the line that
        says what a resumed search continues, or None for a new search."""
        from archsearch.oracles.hand_driven import ORACLE_STATE

        assert self.store is not None
        if oracle is not None:
            self.oracle = oracle
            oracle._keep_state_in(self.store)
        self.store.reopen_retryable()
        events = self.store.events()
        if not events:
            return None
        self.oracle.restore(events)
        self.oracle.restore_saved_state(self.store.get_meta(ORACLE_STATE))
        done = sum(1 for t in self.oracle.trials.values() if t.done)
        running = [t.id for t in self.oracle.running]
        limit = self.oracle.max_trials
        return (f"Resuming the search in {self.project_dir}: {done} trials already done"
                + (f" of max_trials={limit}" if limit else "")
                + (f", trial {running[0]} to continue" if len(running) == 1 else
                   f", trials {running} to continue" if running else "") + ".")

    def slots_for_the_trials_left(self, slots: int) -> tuple[int, str | None]:
        """``slots`` capped at the trials this search can still run, and the note saying so: 64 workers
        for max_trials=2 would each start TensorFlow (and split the cores 64 ways) for nothing."""
        limit = self.oracle.max_trials
        if limit is None or slots <= 1:
            return slots, None
        runnable = max(1, int(limit) - sum(1 for t in self.oracle.trials.values() if t.done))
        if runnable >= slots:
            return slots, None
        left = "" if runnable == int(limit) else " still to run"
        return runnable, (f"Note: parallel_trials={slots}, but max_trials={limit} leaves {runnable} "
                          f"trial{'s' if runnable != 1 else ''}{left}: running at most {runnable} at a time.")

    def search(self, runner: Any, executor: ExecutorSettings, slots: int, settings: SearchSettings,
               listeners: Sequence[Any], constraints: Any = None) -> Any:
        """The driver over an executor of ``runner`` (the trial runner: Keras, or any other); ``constraints``
        (archsearch.core.constraints) are checked on every trial's final metrics."""
        from archsearch.engine.search import Search
        from archsearch.executors import create_executor

        assert self.store is not None
        pool = create_executor(executor.name, runner, slots, executor.options)
        return Search(
            self.oracle,
            pool,
            self.store,
            getattr(pool, "files", runner.files),  # a Ray cluster may keep trial files elsewhere
            max_consecutive_failed_trials=settings.max_consecutive_failed_trials,
            max_failed_trials=settings.max_failed_trials,
            keep_top_models=settings.keep_top_models,
            max_retries=executor.max_retries,
            listeners=list(listeners),
            constraints=constraints,
        )
