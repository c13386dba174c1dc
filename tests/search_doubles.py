"""A real search (oracle, store, driver, events) whose trials train without Keras: for listener tests.

``FakeExecutor`` plays each trial's epochs with made-up metrics in this process, so a logger sees
exactly the events of a real search (begin, epochs, end, interruption, resume) in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

from archsearch.checkpoints import TrialFiles
from archsearch.executors.base import Executor
from archsearch.hyperparameters import HyperParameters
from archsearch.oracles import create_oracle
from archsearch.search import Search
from archsearch.store import TrialStore
from archsearch.trial import COMPLETED, FAILED, TrialOutcome


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
