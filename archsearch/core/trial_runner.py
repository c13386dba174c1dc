"""The trial-runner seam: what trains one trial, as every executor sees it.

The driver decides *which* trials run (the oracle) and records *what happened* (the store, the
events); an executor decides *where* a trial runs (this process, a worker process, a Ray actor);
a :class:`TrialRunner` decides *how* a trial runs: build it from its values, train it epoch by
epoch, checkpoint it, score it.  The executors call :meth:`TrialRunner.run` and nothing else, so a
runner that trains a Keras model (:class:`archsearch.training.runner.Runner`, the first
implementation), a numpy objective (``tests/numpy_runner.py``) or an external program goes through
the same search, pruning, resume and report.

It lives in ``core`` beside :class:`~archsearch.core.trial.TrialSpec` and
:class:`~archsearch.core.trial.TrialOutcome` (the words it speaks), not in ``executors``: the
runners (``training``, a test, a later command runner) implement it and must not import the
executors that carry them, and the executors must not import any runner.

A runner's contract:

- **picklable**: the process and Ray executors send one copy to each worker (its module must be
  importable there); keep data that is expensive to pickle loadable by path instead.
- **run** trains ``trial`` (its values are ``hp``) to ``trial.budget`` epochs (None: the runner's
  own default), starting at ``initial_epoch`` from ``resume_checkpoint`` when given (its own
  checkpoint after a crash, or the parent trial's for a promotion), and calls
  ``reporter.on_epoch(trial, epoch, metrics, value)`` after every epoch (``epoch`` counts from 1;
  ``value`` is the objective, None when the epoch did not produce it).  A True answer means *stop*:
  the runner ends the trial at once and returns it as ``pruned``.  ``history`` holds the epochs
  trained before an interruption, so their best still counts.  A failure of the configuration
  (NaN, out of memory, too large) is returned as a ``failed`` outcome; an error the user must fix
  before any trial can train (an :class:`~archsearch.errors.ArchsearchError`) is raised.
- **files** say where each trial's folder is (``trials/trial_NNNN/``).  The runner writes the
  trial's resume checkpoint at ``files.checkpoint(trial.id)`` every epoch (atomically; recording
  the epoch it holds as :func:`archsearch.core.checkpoints.checkpoint_epoch` reads it makes a resume
  after ``kill -9`` exact) and the best epoch's state at ``files.best_weights(trial.id)``.  The
  driver reads and deletes those files; an executor whose workers see another folder (Ray's
  ``executor.storage``) points ``files.workdir`` there before the runner is sent.
- **needs** (:class:`RunnerNeeds`) say what it asks of the executor: a GPU, and a set-up to run in
  each worker process before the runner is unpickled.  A runner without ``needs`` needs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # a worker process imports this module before anything else: it stays light
    from archsearch.core.checkpoints import TrialFiles
    from archsearch.core.trial import Trial, TrialOutcome


class Reporter(Protocol):
    """Receives every epoch's metrics; returning True stops (prunes) the trial."""

    def on_epoch(self, trial: Trial, epoch: int, metrics: Mapping[str, float], value: float | None) -> bool: ...


@dataclass(frozen=True)
class RunnerNeeds:
    """What a runner asks of the executor that carries its trials.

    ``gpu``: its trials can use a GPU, so a process executor gives each worker one of the visible
    GPUs (one worker per GPU); False: workers see none, and a GPU asked for in ``executor.gpus`` or
    ``executor.resources.num_gpus`` is a ConfigError.  ``worker_setup``: ``"module:function"``
    that a worker process (local or Ray) calls with its CPU thread count (None: no limit) and whether
    to filter the library's start-up notices, *before* it unpickles the runner: the place for a
    deep-learning library's process-wide settings, which must be made before it is imported.  None:
    the worker only sets the usual thread variables (``OMP_NUM_THREADS``, ...) and imports nothing.
    """

    gpu: bool = False
    worker_setup: str | None = None


NO_NEEDS = RunnerNeeds()


@runtime_checkable
class TrialRunner(Protocol):
    """Builds and trains one trial; the only thing an executor knows about training."""

    needs: RunnerNeeds
    files: TrialFiles

    def run(
        self,
        trial: Trial,
        hp: Any,
        reporter: Reporter | None = None,
        resume_checkpoint: Path | None = None,
        initial_epoch: int = 0,
        history: Sequence[Mapping[str, float]] = (),
    ) -> TrialOutcome:
        """Train ``trial`` (values ``hp``, an archsearch ``HyperParameters``) and say how it ended."""
        ...


def needs_of(runner: Any) -> RunnerNeeds:
    """``runner.needs``, or :data:`NO_NEEDS` for a runner that states none."""
    needs = getattr(runner, "needs", None)
    return needs if isinstance(needs, RunnerNeeds) else NO_NEEDS


def call_worker_setup(needs: RunnerNeeds, threads: int | None, quiet: bool = False) -> bool:
    """Run the runner's ``worker_setup`` in this (worker) process; False when it has none."""
    if not needs.worker_setup:
        return False
    module, _, name = needs.worker_setup.partition(":")
    getattr(importlib.import_module(module), name)(threads, quiet)
    return True
