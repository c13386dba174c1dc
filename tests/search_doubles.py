"""A real search (oracle, store, driver, events) whose trials train without Keras: for listener tests.

``FakeExecutor`` plays each trial's epochs with made-up metrics in this process, so a logger sees
exactly the events of a real search (begin, epochs, end, interruption, resume) in milliseconds.
``ShuffledExecutor`` runs several trials at a time that finish in a seeded random order, as workers do.
"""

from __future__ import annotations

import random
from pathlib import Path

from archsearch.core.checkpoints import TrialFiles
from archsearch.executors.base import Executor
from archsearch.space.hyperparameters import HyperParameters
from archsearch.oracles import create_oracle
from archsearch.engine.search import Search
from archsearch.core.store import TrialStore
from archsearch.core.trial import COMPLETED, FAILED, PRUNED, TrialOutcome


def space() -> HyperParameters:
    hp = HyperParameters()
    hp.Int("units", 8, 64, step=8)
    hp.Float("lr", 1e-4, 1e-2, sampling="log")
    hp.Choice("act", ["relu", "elu"])
    return hp


def metrics_of(trial_id: int, epoch: int) -> dict[str, float]:
    """Made-up but distinct per trial and epoch, so a test can check which value landed where."""
    return {"loss": 1.0 / (epoch + trial_id), "val_accuracy": 0.5 + 0.01 * trial_id + 0.001 * epoch}


class FakeExecutor(Executor):
    """Trains each submitted trial for ``epochs`` epochs at once; ``fail`` trials raise, ``stop_at`` (trial,
    epoch) raises KeyboardInterrupt there, as Ctrl-C would, after writing its checkpoint."""

    name = "fake"

    def __init__(self, files: TrialFiles, epochs: int = 3, fail: tuple[int, ...] = (),
                 stop_at: tuple[int, int] | None = None) -> None:
        super().__init__(1)
        self.files, self.epochs, self.fail, self.stop_at = files, epochs, fail, stop_at
        self.queue: list = []

    @property
    def running(self) -> list[int]:
        return [spec.trial_id for spec in self.queue]

    def submit(self, spec) -> None:
        self.queue.append(spec)

    def wait(self) -> None:
        spec = self.queue[0]
        trial = spec.trial
        self.handler.trial_started(spec, "fake-0")
        if trial.id in self.fail:
            self.queue.pop(0)
            self.handler.trial_finished(trial.id, TrialOutcome(status=FAILED, error="ValueError: boom",
                                                               failure_kind="error", duration=0.1))
            return
        best = None
        for epoch in range(spec.initial_epoch + 1, self.epochs + 1):
            metrics = metrics_of(trial.id, epoch)
            self.handler.epoch_ended(trial.id, epoch, metrics, metrics["val_accuracy"])
            best = metrics
            if self.stop_at == (trial.id, epoch):
                self.files.trial_dir(trial.id).mkdir(parents=True, exist_ok=True)
                self.files.checkpoint(trial.id).write_bytes(b"")  # the store's epochs say where it resumes
                self.stop_at = None
                raise KeyboardInterrupt
        self.queue.pop(0)
        self.handler.trial_finished(trial.id, TrialOutcome(
            status=COMPLETED, value=best["val_accuracy"], metrics=best, epochs_done=self.epochs, best_epoch=self.epochs,
            duration=0.5, hparams=dict(trial.hparams)))

    def interrupt(self) -> None:
        self.queue.clear()


def run_search(folder: Path, listeners, max_trials: int = 3, **executor_options) -> Search:
    """One search (or its resume: same folder) of ``max_trials`` trials; returns the finished Search."""
    store = TrialStore(folder / "trials.db")
    oracle = create_oracle("random", space(), "val_accuracy", max_trials=max_trials, seed=1)
    store.reopen_retryable()
    events = store.events()
    if events:
        oracle.restore(events)
    files = TrialFiles(folder)
    search = Search(oracle, FakeExecutor(files, **executor_options), store, files, listeners=listeners)
    search.run()
    return search


class ShuffledExecutor(Executor):
    """``slots`` trials at a time, finishing in a seeded random order (``jitter``), as real workers do.

    Each ``wait()`` trains one epoch of a running trial chosen at random, so which trial reports or ends
    first changes with ``jitter`` while every trial's metrics depend only on its values and epoch
    (``curve(hparams, epoch)``).  Trials without a budget train ``epochs`` epochs.  A checkpoint file is
    written at each epoch, so a promotion continues from its parent as with real training.
    """

    name = "shuffled"

    def __init__(self, files: TrialFiles, curve, slots: int = 2, jitter: int = 0, epochs: int = 3) -> None:
        super().__init__(slots)
        self.files, self.curve, self.epochs = files, curve, epochs
        self.rng = random.Random(jitter)
        self.training: dict[int, list] = {}  # trial id -> [spec, epochs reached, best metrics, best epoch]

    @property
    def running(self) -> list[int]:
        return list(self.training)

    def submit(self, spec) -> None:
        self.training[spec.trial_id] = [spec, spec.initial_epoch, None, None]
        self.handler.trial_started(spec, f"fake-{len(self.training)}")

    def wait(self) -> None:
        trial_id = self.rng.choice(sorted(self.training))
        state = self.training[trial_id]
        spec, epoch = state[0], state[1] + 1
        trial = spec.trial
        metrics = self.curve(trial.hparams, epoch)
        self.files.trial_dir(trial_id).mkdir(parents=True, exist_ok=True)
        self.files.checkpoint(trial_id).write_bytes(b"")
        state[1] = epoch
        if state[2] is None or metrics["val_accuracy"] >= state[2]["val_accuracy"]:
            state[2], state[3] = metrics, epoch
        stop = self.handler.epoch_ended(trial_id, epoch, metrics, metrics["val_accuracy"])
        budget = trial.budget if trial.budget is not None else self.epochs
        if stop or epoch >= budget:
            del self.training[trial_id]
            best, best_epoch = state[2], state[3]
            self.handler.trial_finished(trial_id, TrialOutcome(
                status=PRUNED if stop else COMPLETED, value=best["val_accuracy"], metrics=best, epochs_done=epoch,
                best_epoch=best_epoch, duration=0.1, hparams=dict(trial.hparams)))

    def interrupt(self) -> None:
        self.training.clear()
