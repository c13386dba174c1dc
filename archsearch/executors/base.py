"""The executor interface: *where* trials train, apart from *what* is tried and *how* it trains.

The search driver submits :class:`~archsearch.core.trial.TrialSpec` objects and waits; the executor
trains them (in this process, in local worker processes, on a Ray cluster) and reports what
happens through the driver's :class:`ExecutorHandler`: a trial started, finished an epoch (the
handler answers whether to stop it), ended, or was lost with its worker.  Oracle, runner and
store never know which executor carries a trial, and an executor knows the runner only as a
:class:`~archsearch.core.trial_runner.TrialRunner`: :func:`run_spec` is the one call each makes
(in this process, a worker process or a Ray actor), and the runner's ``needs`` say how to set up
the process it runs in.  No executor imports a runner's package (``archsearch.training``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Protocol

from archsearch.core.trial import TrialOutcome, TrialSpec
from archsearch.core.trial_runner import Reporter, TrialRunner


class ExecutorHandler(Protocol):
    """What the driver does with an executor's news; called from :meth:`Executor.wait` only."""

    def trial_started(self, spec: TrialSpec, worker: str | None) -> None: ...

    def epoch_ended(self, trial_id: int, epoch: int, metrics: Mapping[str, float], value: float | None) -> bool:
        """Record an epoch; True stops (prunes) the trial."""
        ...

    def trial_finished(self, trial_id: int, outcome: TrialOutcome) -> None: ...

    def trial_lost(self, trial_id: int, reason: str) -> None:
        """The worker training ``trial_id`` died; its checkpoint is whatever it last wrote."""
        ...

    def executor_note(self, key: str, value: Mapping[str, object]) -> None:
        """Keep the executor's own record (``gpu_sharing``: how many trials share a GPU, and why) in the
        store's meta; an executor calls it only if the handler has it."""
        ...


class Executor:
    """Base of the executors.  ``slots`` trials can run at once."""

    name: ClassVar[str] = ""

    def __init__(self, slots: int = 1) -> None:
        self.slots = max(1, int(slots))
        self.handler: ExecutorHandler | None = None

    def start(self, handler: ExecutorHandler) -> None:
        self.handler = handler

    @property
    def running(self) -> list[int]:
        """Ids of the trials submitted and not yet finished or lost."""
        raise NotImplementedError

    @property
    def free_slots(self) -> int:
        return self.slots - len(self.running)

    def submit(self, spec: TrialSpec) -> None:
        raise NotImplementedError

    def wait(self) -> None:
        """Block until at least one trial event was handled.

        A user error raised while training (an objective the model does not produce, a builder
        that returns no model, a full disk) is raised from here with a ``trial_id`` attribute.
        """
        raise NotImplementedError

    def interrupt(self) -> None:
        """Stop every running trial at once (Ctrl-C); their last checkpoints stay."""

    def shutdown(self) -> None:
        """Release workers; called once, when the search ends in any way."""

    def describe(self) -> str:
        return f"{self.name}, {self.slots} slot{'s' if self.slots != 1 else ''}"

    def failure_absorbed(self, trial_id: int) -> bool:
        """True when this trial's failure made the executor change how it runs trials (out of GPU memory with
        several trials per GPU: fewer per GPU from now on), so it says nothing about the search's own
        health and does not count toward ``max_consecutive_failed_trials`` / ``max_failed_trials``.

        ``slots`` may drop then: the driver reads ``free_slots`` before each submit, and a slot count below
        the trials running only means no new trial starts until enough of them end."""
        return False


def run_spec(runner: TrialRunner, spec: TrialSpec, reporter: Reporter) -> TrialOutcome:
    """Train one spec with a runner: the one call every executor makes, wherever it runs.

    A define-by-run builder may declare parameters while it builds: the space it grew then comes
    back with the outcome, for the driver's oracle.
    """
    hp = spec.hyperparameters
    declared = set(hp.space.keys())
    outcome = runner.run(spec.trial, hp, reporter=reporter,
                         resume_checkpoint=None if spec.resume_checkpoint is None else Path(spec.resume_checkpoint),
                         initial_epoch=spec.initial_epoch, history=spec.history)
    if set(hp.space.keys()) != declared:
        outcome.space = hp.copy()
    return outcome
