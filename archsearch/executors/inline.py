"""Trials in the search's own process, one at a time: for notebooks, debugging and the Python API.

Exactly the behaviour of a plain loop: the trial trains inside :meth:`InlineExecutor.wait`, and
each epoch's report goes straight to the driver, which may stop it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from archsearch.core.trial import Trial, TrialSpec
from archsearch.core.trial_runner import TrialRunner
from archsearch.errors import ArchsearchError
from archsearch.executors.base import Executor, run_spec


class InlineExecutor(Executor):
    name = "inline"

    def __init__(self, runner: TrialRunner) -> None:
        super().__init__(slots=1)
        self.runner = runner
        self._queue: deque[TrialSpec] = deque()

    @property
    def running(self) -> list[int]:
        return [spec.trial_id for spec in self._queue]

    def submit(self, spec: TrialSpec) -> None:
        self._queue.append(spec)

    def wait(self) -> None:
        spec = self._queue[0]
        handler = self.handler
        assert handler is not None, "start() the executor first"
        handler.trial_started(spec, None)
        try:
            outcome = run_spec(self.runner, spec, _Reporter(handler))
        except ArchsearchError as exc:
            exc.trial_id = spec.trial_id  # type: ignore[attr-defined]
            raise
        finally:
            self._queue.popleft()
        handler.trial_finished(spec.trial_id, outcome)

    def interrupt(self) -> None:
        self._queue.clear()


class _Reporter:
    """The runner's per-epoch reporter, handing each epoch to the driver."""

    def __init__(self, handler) -> None:
        self.handler = handler

    def on_epoch(self, trial: Trial, epoch: int, metrics: Mapping[str, float], value: float | None) -> bool:
        return bool(self.handler.epoch_ended(trial.id, epoch, metrics, value))

