"""Trials in threads of the search's own process, ``slots`` at a time, each slot refilled as it frees.

For runners whose trial happens elsewhere and only has to be waited for: a Hydra job handed to the app's
launcher (joblib, submitit, Ray), a remote service.  Such a runner holds objects that cannot travel to a
worker process (the launcher), and waiting needs no process of its own.  The driver stays single-threaded:
each thread posts its news on one queue that :meth:`ThreadExecutor.wait` hands to the driver, and an epoch
waits for the driver's answer (continue or stop), exactly as a worker process does over its pipe.
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Mapping
from typing import Any

from archsearch.core.trial import Trial, TrialSpec
from archsearch.core.trial_runner import TrialRunner
from archsearch.errors import ArchsearchError
from archsearch.executors.base import Executor, run_spec

JOIN_SECONDS = 5.0  # how long shutdown waits for a thread that is still finishing


class ThreadExecutor(Executor):
    name = "threads"

    def __init__(self, runner: TrialRunner, slots: int = 1) -> None:
        super().__init__(slots)
        self.runner = runner
        self._events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._threads: dict[int, threading.Thread] = {}
        self._stopping = threading.Event()
        self._started = 0

    @property
    def running(self) -> list[int]:
        return list(self._threads)

    def submit(self, spec: TrialSpec) -> None:
        self._started += 1
        slot = f"slot-{(self._started - 1) % self.slots}"
        thread = threading.Thread(target=self._train, args=(spec,), name=f"archsearch-trial-{spec.trial_id}",
                                  daemon=True)
        self._threads[spec.trial_id] = thread
        self._events.put(("started", spec, slot))
        thread.start()

    def _train(self, spec: TrialSpec) -> None:
        """One trial, in its thread: everything it has to say goes on the queue."""
        try:
            outcome = run_spec(self.runner, spec, _QueueReporter(self))
        except ArchsearchError as exc:
            self._events.put(("error", spec.trial_id, exc))
            return
        except BaseException:  # noqa: BLE001 - an internal bug: the driver records it with the trial
            self._events.put(("crash", spec.trial_id, traceback.format_exc()))
            return
        self._events.put(("finished", spec.trial_id, outcome))

    def wait(self) -> None:
        handler = self.handler
        assert handler is not None, "start() the executor first"
        event = self._events.get()
        kind = event[0]
        if kind == "started":
            handler.trial_started(event[1], event[2])
        elif kind == "epoch":
            _, trial_id, epoch, metrics, value, answer = event
            answer.put(True if self._stopping.is_set() else bool(handler.epoch_ended(trial_id, epoch, metrics, value)))
        elif kind == "finished":
            self._threads.pop(event[1], None)
            handler.trial_finished(event[1], event[2])
        elif kind == "error":
            self._threads.pop(event[1], None)
            event[2].trial_id = event[1]
            raise event[2]
        else:  # crash
            self._threads.pop(event[1], None)
            handler.trial_lost(event[1], f"the trial's thread raised:\n{event[2]}")

    def interrupt(self) -> None:
        """Every running trial is told to stop at its next epoch; their threads are left to end on their own."""
        self._stopping.set()
        self._drain_epochs()
        self._threads.clear()

    def shutdown(self) -> None:
        self._stopping.set()
        self._drain_epochs()
        for thread in list(self._threads.values()):
            thread.join(JOIN_SECONDS)

    def _drain_epochs(self) -> None:
        """Answer "stop" to every epoch still waiting, so no thread blocks on a driver that is gone."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if event[0] == "epoch":
                event[-1].put(True)


class _QueueReporter:
    """A thread's epochs go to the driver through the executor's queue; the thread waits for the answer."""

    def __init__(self, executor: ThreadExecutor) -> None:
        self.executor = executor

    def on_epoch(self, trial: Trial, epoch: int, metrics: Mapping[str, float], value: float | None) -> bool:
        if self.executor._stopping.is_set():
            return True
        answer: queue.Queue[bool] = queue.Queue(maxsize=1)
        self.executor._events.put(("epoch", trial.id, int(epoch), dict(metrics), value, answer))
        while True:
            try:
                return answer.get(timeout=1.0)
            except queue.Empty:
                if self.executor._stopping.is_set():
                    return True
