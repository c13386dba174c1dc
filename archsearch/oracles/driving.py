"""Drive an oracle over a plain Python objective: the one ask/tell/report loop tests and benchmarks share.

Every oracle test and benchmark needs the same loop (ask, train epoch by epoch with ``report``, tell),
with variations: several trials running at once, finishing in some order, some failing, a kill part
way through.  :func:`drive` is that loop, written once; :func:`resume` rebuilds an oracle after a
simulated kill through the same path a resumed search takes (``restore`` from the store's history,
then the oracle's saved state).  Keras-free, and in the package rather than in ``tests/`` because the
scripts in ``bench/`` import ``archsearch``, not the test folder.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from archsearch.oracles.base import FAILED, PRUNED, Oracle, Trial
from archsearch.oracles.hand_driven import ORACLE_STATE

Result = float | Mapping[str, float] | None
History = list[tuple[str, Trial]]


@dataclass
class Drive:
    """What a :func:`drive` did: the trials it started, the epochs trained, what it left running."""

    asked: list[Trial] = field(default_factory=list)
    told: list[Trial] = field(default_factory=list)
    running: list[Trial] = field(default_factory=list)  # still in flight: stopped by ``max_asks``
    epochs: int = 0  # epochs trained, counting a continued trial from where it resumed
    epochs_at: list[int] = field(default_factory=list)  # ``epochs`` when each told trial finished
    ask_seconds: list[float] = field(default_factory=list)  # how long each ask that gave a trial took
    waits: int = 0  # asks answered None while trials were running (the oracle waited for results)
    most_running: int = 0  # the most trials in flight at once

    @property
    def values(self) -> list[float | None]:
        """The told trials' objective values, in the order they finished."""
        return [t.value for t in self.told]


def drive(
    oracle: Oracle,
    objective: Callable[[dict[str, Any]], Result] | None = None,
    *,
    curve: Callable[[dict[str, Any], int], Result] | None = None,
    epochs: int = 1,
    concurrent: int = 1,
    order: Literal["oldest", "newest", "random"] = "oldest",
    seed: int = 0,
    fail: Callable[[Trial], bool] | None = None,
    declare: Callable[[Any], None] | None = None,
    max_asks: int | None = None,
    max_epochs_trained: int | None = None,
    kill: bool = False,
    store: Any = None,
    history: History | None = None,
) -> Drive:
    """Run ``oracle`` until it has nothing more to start, or a limit is reached; return what happened.

    Give the objective as ``objective(hparams)`` (told once, no epochs) or as a learning curve
    ``curve(hparams, epoch)``: a trial is then reported epoch by epoch from its ``initial_budget`` to its
    ``budget`` (``epochs`` when the oracle sets none) and stops when ``report`` prunes it.  A result of
    None or NaN is an infeasible point (the oracle records it failed).

    ``concurrent`` trials run at once: the loop asks until that many are in flight (or the oracle has
    nothing now), then finishes one, the ``oldest``, the ``newest`` or a ``random`` one (seeded by
    ``seed``).  ``fail(trial)`` True tells the trial failed.  ``declare(hp)`` plays a define-by-run model
    builder: it gets the trial's ``HyperParameters`` as the trial starts, and the names it declares join
    the oracle's space (``update_space``), as a tuner's build does.

    ``max_asks`` stops asking after that many trials, ``max_epochs_trained`` once that many epochs were
    trained (the epoch budget benchmarks give each contender); the trials in flight then finish, or with
    ``kill`` are left running, as a kill leaves them.  ``store`` (a ``TrialStore``) records every ask,
    epoch and tell the way a search does, so :func:`resume` can rebuild from it; ``history`` collects
    ``("ask" | "tell", trial copy)`` pairs, the history ``Oracle.restore`` replays, without a file.
    Random search on a space it cannot use up never runs out: give it ``max_trials`` or a limit here.
    """
    if (objective is None) == (curve is None):
        raise TypeError("drive() needs exactly one of objective= (hparams -> result) or curve= (hparams, epoch)")
    if concurrent < 1:
        raise ValueError(f"concurrent must be at least 1, got {concurrent}")
    pick = random.Random(seed)
    done = Drive()
    in_flight: list[Trial] = []
    while True:
        while len(in_flight) < concurrent and _may_ask(done, max_asks, max_epochs_trained):
            start = time.perf_counter()
            trial = oracle.ask()
            if trial is None:
                done.waits += bool(in_flight)
                break
            done.ask_seconds.append(time.perf_counter() - start)
            if declare is not None:
                _build(oracle, trial, declare)
            _record_ask(trial, store, history)
            done.asked.append(trial)
            in_flight.append(trial)
        done.most_running = max(done.most_running, len(in_flight))
        if not in_flight or (kill and not _may_ask(done, max_asks, max_epochs_trained)):
            break
        index = {"oldest": 0, "newest": len(in_flight) - 1}.get(order)
        trial = in_flight.pop(pick.randrange(len(in_flight)) if index is None else index)
        done.epochs += _finish(oracle, trial, objective, curve, epochs, fail, store)
        done.told.append(oracle.trials[trial.id])
        done.epochs_at.append(done.epochs)
        if history is not None:
            history.append(("tell", copy.deepcopy(oracle.trials[trial.id])))
    done.running = in_flight
    return done


def _may_ask(done: Drive, max_asks: int | None, max_epochs_trained: int | None) -> bool:
    return ((max_asks is None or len(done.asked) < max_asks)
            and (max_epochs_trained is None or done.epochs < max_epochs_trained))


def _build(oracle: Oracle, trial: Trial, declare: Callable[[Any], None]) -> None:
    hp = oracle.hyperparameters.with_values(trial.hparams)
    declare(hp)
    oracle.update_space(hp, trial_id=trial.id)


def _record_ask(trial: Trial, store: Any, history: History | None) -> None:
    if store is not None:
        store.create_trial(trial)
    if history is not None:
        history.append(("ask", copy.deepcopy(trial)))


def _finish(oracle: Oracle, trial: Trial, objective, curve, epochs: int, fail, store: Any) -> int:
    """Train one trial (epoch by epoch for a curve) and tell the oracle; return the epochs trained."""
    budget = trial.budget if trial.budget is not None else epochs
    trained = 0
    status, result = None, None
    if curve is None:
        result = objective(trial.hparams)
    else:
        for epoch in range(trial.initial_budget + 1, budget + 1):
            result = curve(trial.hparams, epoch)
            trained += 1
            value = oracle.objective.value_from(result) if isinstance(result, Mapping) else result
            if store is not None:
                store.record_epoch(trial.id, epoch, {oracle.objective.name: value} if value is not None else {}, value)
            if oracle.report(trial.id, epoch, result):
                status, result = PRUNED, None
                break
    if fail is not None and fail(trial):
        oracle.tell(trial.id, None, status=FAILED, error="RuntimeError: failed on purpose (drive(fail=...))")
    elif status == PRUNED:
        oracle.tell(trial.id, None, status=PRUNED)
    else:
        oracle.tell(trial.id, result)
    if store is not None:
        state = oracle.saved_state()
        store.finish_trial(oracle.trials[trial.id], epochs_done=trial.initial_budget + trained,
                           meta=None if state is None else {ORACLE_STATE: state})
    return trained


def resume(make: Callable[[], Oracle], store: Any = None, history: History | None = None) -> Oracle:
    """A fresh oracle from ``make()``, rebuilt from a killed one's store (or ``history``) as a resumed search does.

    With a ``TrialStore`` this is the resume path itself: replay the stored asks and tells, then hand the
    oracle the state it saved; trials that were running stay running, to be told by the caller.
    """
    if (store is None) == (history is None):
        raise TypeError("resume() needs exactly one of store= (a TrialStore) or history= (drive(history=...))")
    oracle = make()
    oracle.restore(store.events() if store is not None else history)
    if store is not None:
        oracle.restore_saved_state(store.get_meta(ORACLE_STATE))
    return oracle
