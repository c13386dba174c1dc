"""The process executor's worker life cycle, with a Keras-free runner (fast: no TensorFlow import).

A worker's replacement starts while it trains its last trial, a retiring worker is never waited
for on the driver's thread, and shutdown stops every worker at once.
"""

from __future__ import annotations

import time

import pytest

from archsearch.executors.process import ProcessExecutor
from archsearch.space.hyperparameters import HyperParameters
from archsearch.core.trial import COMPLETED, Trial, TrialOutcome, TrialSpec


class SleepyRunner:
    """Trains nothing: reports ``epochs`` epochs of ``seconds`` each, then completes."""

    def __init__(self, epochs: int = 2, seconds: float = 0.2) -> None:
        self.epochs, self.seconds = epochs, seconds

    def run(self, trial, hp, reporter=None, resume_checkpoint=None, initial_epoch=0, history=None):
        for epoch in range(initial_epoch, self.epochs):
            time.sleep(self.seconds)
            if reporter is not None and reporter.on_epoch(trial, epoch, {"loss": 1.0 / (epoch + 1)}, 1.0 / (epoch + 1)):
                break
        return TrialOutcome(status=COMPLETED, value=0.5, epochs_done=self.epochs)


class Recorder:
    def __init__(self) -> None:
        self.started: list[tuple[int, str | None]] = []
        self.finished: list[int] = []
        self.epochs: list[tuple[int, int]] = []
        self.lost: list[int] = []

    def trial_started(self, spec, worker):
        self.started.append((spec.trial_id, worker))

    def epoch_ended(self, trial_id, epoch, metrics, value):
        self.epochs.append((trial_id, epoch))
        return False

    def trial_finished(self, trial_id, outcome):
        self.finished.append(trial_id)

    def trial_lost(self, trial_id, reason):
        self.lost.append(trial_id)


def spec(trial_id: int) -> TrialSpec:
    return TrialSpec(Trial(trial_id, {}), hyperparameters=HyperParameters())


def run_to_end(executor: ProcessExecutor, recorder: Recorder, trial_id: int, max_events: int = 10_000) -> None:
    """Handle the executor's events until ``trial_id`` ends; each wait() handles at least one event, so a
    trial that never ends shows up as a bounded count of events, not a clock."""
    for _ in range(max_events):
        if trial_id in recorder.finished:
            return
        executor.wait()
    pytest.fail(f"trial {trial_id} did not finish within {max_events} executor events")


def test_a_worker_s_replacement_starts_during_its_last_trial_and_takes_the_next_one():
    executor = ProcessExecutor(SleepyRunner(), slots=1, max_trials_per_worker=2, threads=None)
    recorder = Recorder()
    executor.start(recorder)
    try:
        executor.submit(spec(0))
        assert executor._spares == {}  # not its last trial yet
        run_to_end(executor, recorder, 0)
        executor.submit(spec(1))
        spare = executor._spares[0]  # its last trial: the replacement is already starting
        assert spare.process.is_alive()
        run_to_end(executor, recorder, 1)
        assert executor._workers == {} and len(executor._retiring) == 1  # asked to exit, not waited for
        executor.submit(spec(2))
        assert recorder.started[2][1] == spare.name  # the spare took the next trial
        run_to_end(executor, recorder, 2)
        assert executor._retiring == []  # reaped meanwhile
        assert executor._started_workers == 2
    finally:
        executor.shutdown()
    assert executor._workers == {} and executor._spares == {} and executor._retiring == []
    assert recorder.lost == [] and recorder.finished == [0, 1, 2]
    assert [e for e in recorder.epochs if e[0] == 2] == [(2, 0), (2, 1)]


def test_shutdown_stops_every_worker_at_once_and_kills_unused_spares():
    executor = ProcessExecutor(SleepyRunner(epochs=1, seconds=0.05), slots=3, max_trials_per_worker=1, threads=None)
    recorder = Recorder()
    executor.start(recorder)
    for trial_id in range(3):
        executor.submit(spec(trial_id))
    assert len(executor._spares) == 3
    for trial_id in range(3):
        run_to_end(executor, recorder, trial_id)
    processes = [w.process for w in [*executor._workers.values(), *executor._spares.values()]]
    processes += [w.process for w, _ in executor._retiring]
    executor.shutdown()
    assert all(not p.is_alive() for p in processes)
    assert executor._workers == {} and executor._spares == {} and executor._retiring == []


def test_a_spare_that_died_before_its_turn_is_replaced_without_losing_the_trial():
    executor = ProcessExecutor(SleepyRunner(epochs=1, seconds=0.05), slots=1, max_trials_per_worker=1, threads=None)
    recorder = Recorder()
    executor.start(recorder)
    try:
        executor.submit(spec(0))
        spare = executor._spares[0]
        spare.process.kill()
        spare.process.join(5)
        run_to_end(executor, recorder, 0)
        executor.submit(spec(1))
        run_to_end(executor, recorder, 1)
    finally:
        executor.shutdown()
    assert recorder.finished == [0, 1] and recorder.lost == []
    assert recorder.started[1][1] != spare.name
