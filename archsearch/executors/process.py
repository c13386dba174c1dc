"""Trials in local worker processes: N per GPU (or a share of the CPU cores each), recycled.

Each worker is a long-lived ``spawn``-ed process that trains one trial at a time; after
``max_trials_per_worker`` trials it is replaced by a fresh one, which returns every byte
TensorFlow kept from the traced functions of earlier models (about 7-10 MB per trial otherwise),
so memory stays flat however long the search runs.  A worker that dies (killed, segfault, out of
host memory) is reported to the driver as a lost trial, and a new worker takes its slot.

Starting a worker takes seconds (Python, TensorFlow, the runner unpickled), so it is kept off the
critical path: the replacement of a worker is started as soon as that worker takes its last trial
(it imports while the trial trains), and a retiring worker is never waited for on the driver's
thread (it is reaped later), so no other worker's epoch report waits behind a recycle.

On GPUs, ``trials_per_gpu`` workers share each one, each with its memory bounded before its library
starts (:mod:`archsearch.executors.gpu_sharing`); ``auto`` measures how many pay off over the first
trials.  A trial that runs out of GPU memory with several per GPU lowers that number by one for the
rest of the search: the executor's ``slots`` shrink, and the driver starts trials only while
``free_slots`` is positive, so the surplus workers retire as their trials end.

One piece though past 400 lines: spawning, recycling, the GPU share and the reaping all read and change
the one table of workers (busy, idle, spare, retiring), and split apart they would pass it around.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for_any
from typing import Any

from archsearch.core.checks import whole_number
from archsearch.errors import ArchsearchError, ConfigError
from archsearch.executors import gpu_sharing as sharing
from archsearch.executors.base import Executor
from archsearch.executors.worker import WorkerSettings, worker_main
from archsearch.core.interrupts import wakeup_handle
from archsearch.core.console import say
from archsearch.core.trial import FAILED, TrialSpec
from archsearch.core.trial_runner import TrialRunner, needs_of

log = logging.getLogger("archsearch")

# Measured in bench/executor_bench.py (bench/RESULTS.md, "Start-up cost"): a worker grows by ~7 MB
# a trial, +8% from its first to its tenth trial (inside the 10% memory target; 20 would be ~18%),
# and costs ~6-7 s to start and exit on a 2-core machine; that start is now overlapped with the
# worker's last trial, so recycling every 10 trials costs little wall time where a core or GPU is free.
DEFAULT_MAX_TRIALS_PER_WORKER = 10
# How long a retiring or stopping worker gets to exit on its own before it is killed.
EXIT_TIMEOUT_SECONDS = 10.0
# A worker that has not said it is ready by then (stuck importing, a broken environment) is given up.
STARTUP_TIMEOUT_SECONDS = 300.0


class InternalWorkerError(RuntimeError):
    """A bug inside a worker (not the user's input): shown with the worker's traceback."""


@dataclass
class _Worker:
    index: int
    process: multiprocessing.Process
    conn: object
    trial: TrialSpec | None = None
    trials_done: int = 0
    ready: bool = False
    started_at: float = 0.0
    memory_fraction: float | None = None  # its GPU memory share, set when it was spawned (None: no GPU)
    per_gpu: int = 1  # the workers per GPU when its current trial started

    @property
    def name(self) -> str:
        return f"worker {self.index} (pid {self.process.pid})"


class ProcessExecutor(Executor):
    name = "process"

    def __init__(self, runner: TrialRunner, slots: int = 1, *,
                 max_trials_per_worker: int = DEFAULT_MAX_TRIALS_PER_WORKER, gpus: list[str] | None = None,
                 threads: int | str | None = "auto", trials_per_gpu: int | str = 1,
                 gpu_memory_fraction: float | str = "auto") -> None:
        super().__init__(slots=slots)
        self.runner = runner
        self.needs = needs_of(runner)
        self.max_trials_per_worker = max(1, int(max_trials_per_worker))
        if gpus and not self.needs.gpu:
            raise ConfigError("executor.gpus", f"{list(gpus)} are given, but {type(runner).__name__} trains "
                                               "without a GPU", "leave executor.gpus out")
        self.gpus = [str(g) for g in (visible_gpus() if gpus is None and self.needs.gpu else gpus or [])]
        self.threads = _threads_per_worker(threads, self.slots, bool(self.gpus))
        self._init_sharing(sharing.trials_per_gpu_setting(trials_per_gpu),
                           sharing.memory_fraction_setting(gpu_memory_fraction))
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._spares: dict[int, _Worker] = {}  # started early, each to replace its slot's retiring worker
        self._retiring: list[tuple[_Worker, float]] = []  # asked to exit, not yet reaped (and since when)
        self._runner_bytes: bytes | None = None
        self._started_workers = 0

    def _init_sharing(self, per_gpu: int | str, fraction: float | str) -> None:
        """Workers per GPU: as set (``tuner.parallel_trials`` over the GPUs when that asks for more), or
        ``auto``: 1 to start with, then the probe's levels; ``slots`` follow it, up to the slots given."""
        self.max_slots = self.slots
        self.memory_setting = fraction
        self.reductions: list[dict[str, int]] = []
        self.probe: sharing.SharingProbe | None = None
        self._absorbed: set[int] = set()
        if not self.gpus:
            if per_gpu not in (1, sharing.AUTO):
                raise sharing.no_gpu_error(per_gpu, "" if self.needs.gpu else
                                           f" ({type(self.runner).__name__} trains without one)")
            if fraction != sharing.AUTO:
                raise ConfigError("executor.gpu_memory_fraction", f"{fraction} is set, but no GPU is visible",
                                  "leave it at auto, or name the GPUs in executor.gpus")
            self.per_gpu, self.sharing_how = 1, "no GPU"
            return
        if per_gpu == sharing.AUTO and self.max_slots > len(self.gpus):
            self.probe = sharing.SharingProbe(sharing.probe_levels(self.max_slots // len(self.gpus)), len(self.gpus),
                                              self.max_slots)
            self.per_gpu, self.sharing_how = 1, "auto (probing)"
        else:
            self.per_gpu = -(-self.max_slots // len(self.gpus))  # parallel_trials over the GPUs, rounded up
            self.sharing_how = "auto (one slot per GPU)" if per_gpu == sharing.AUTO else "set"
        self.slots = min(self.max_slots, self.per_gpu * len(self.gpus))

    @property
    def memory_fraction(self) -> float:
        """Each worker's share of its GPU's memory now."""
        return sharing.memory_fraction(self.memory_setting, self.per_gpu)

    # ------------------------------------------------------------ Executor
    def start(self, handler) -> None:
        super().start(handler)
        if self.probe is not None:
            say(f"Note: trials_per_gpu auto: measuring {', '.join(map(str, self.probe.levels))} trials per GPU "
                "over the first trials, to keep the number whose throughput stops growing.")
        self._note_sharing()
        try:
            self._runner_bytes = pickle.dumps(self.runner)
        except Exception as exc:  # a lambda, a notebook function, an unpicklable callback
            raise ConfigError(
                "executor", f"the model builder, data or callbacks cannot be sent to a worker process ({exc})",
                "define the builder in an importable module, or run trials in this process with executor=inline",
            ) from None

    @property
    def running(self) -> list[int]:
        return [w.trial.trial_id for w in self._workers.values() if w.trial is not None]

    def submit(self, spec: TrialSpec) -> None:
        worker = self._idle_worker()
        try:
            worker.conn.send(("run", spec))
        except OSError:  # an idle worker died meanwhile: a fresh one takes the trial
            self._stop(worker, kill=True)
            worker = self._idle_worker()
            worker.conn.send(("run", spec))
        worker.trial = spec
        worker.per_gpu = self.per_gpu
        if self.probe is not None:
            self.probe.trial_started(spec.trial_id, time.monotonic())
        assert self.handler is not None
        self.handler.trial_started(spec, worker.name)
        if worker.trials_done + 1 >= self.max_trials_per_worker and worker.index not in self._spares:
            # Its last trial: the replacement imports TensorFlow while this one trains.
            self._spares[worker.index] = self._spawn(worker.index, register=False)

    def wait(self) -> None:
        self._reap()
        busy = [w for w in self._workers.values() if w.trial is not None]
        if not busy:
            return
        by_conn = {id(w.conn): w for w in busy}
        by_sentinel = {w.process.sentinel: w for w in busy}
        ctrl_c = wakeup_handle()  # the Python API's first Ctrl-C ends the wait: the driver stops at once
        ready = wait_for_any([*(w.conn for w in busy), *by_sentinel, *([ctrl_c] if ctrl_c else [])], timeout=5.0)
        for item in ready:
            worker = by_conn.get(id(item))
            if worker is not None:
                self._receive(worker)
        for item in ready:
            worker = by_sentinel.get(item) if isinstance(item, int) else None
            if worker is None or self._workers.get(worker.index) is not worker or worker.trial is None:
                continue  # already handled through its pipe
            self._receive(worker)  # what it sent before it died counts
            if worker.trial is not None:
                self._lost(worker)
        now = time.monotonic()
        for worker in busy:
            if (self._workers.get(worker.index) is worker and worker.trial is not None and not worker.ready
                    and now - worker.started_at > STARTUP_TIMEOUT_SECONDS):
                log.warning("%s did not start within %.0f s", worker.name, STARTUP_TIMEOUT_SECONDS)
                self._lost(worker)

    def interrupt(self) -> None:
        self._stop_all(kill_idle=True)

    def shutdown(self) -> None:
        if self.probe is not None and self.probe.running:
            self.probe.stop()
            self.sharing_how = f"auto ({self.probe.ended_by})"
            say(f"Note: trials_per_gpu auto: the search ended during the probe, at {self.per_gpu} per GPU "
                f"(throughput per level: {self.probe.figures()}).")
            self._note_sharing()
        self._stop_all(kill_idle=False)

    def describe(self) -> str:
        if self.gpus:
            share = (f"trials_per_gpu auto: probing {', '.join(map(str, self.probe.levels))} per GPU"
                     if self.probe is not None and self.probe.running else f"{self.per_gpu} per GPU")
            where = f"GPU{'s' if len(self.gpus) != 1 else ''} {', '.join(self.gpus)}, {share}"
        else:
            where = f"{self.threads} CPU thread{'s' if self.threads != 1 else ''} each" if self.threads else "CPU"
        return f"{self.slots} worker process{'es' if self.slots != 1 else ''}, {where}"

    def failure_absorbed(self, trial_id: int) -> bool:
        return trial_id in self._absorbed

    # ------------------------------------------------------------ sharing a GPU
    def _out_of_memory(self, trial_id: int, worker: _Worker) -> None:
        """A trial ran out of GPU memory: with several workers per GPU, one fewer from now on (once for
        the trials that crowded the GPU together: a trial started before the last reduction lowers nothing)."""
        self._retire(worker)  # a fresh process for its slot: what the failed one held is given back
        if self.probe is not None and self.probe.running and self.probe.level > 1:
            before = self.per_gpu
            self._set_per_gpu(self.probe.out_of_memory())
            self.sharing_how = f"auto ({self.probe.ended_by})"
            self._reduced(trial_id, before)
            return
        if self.per_gpu <= 1 or worker.per_gpu < self.per_gpu:
            return  # alone on its GPU it is too large; or the reduction it calls for was made already
        before = self.per_gpu
        self._set_per_gpu(self.per_gpu - 1)
        self._reduced(trial_id, before)

    def _reduced(self, trial_id: int, before: int) -> None:
        self._absorbed.add(trial_id)
        self.reductions.append({"trial": trial_id, "from": before, "to": self.per_gpu})
        log.warning("trial %s ran out of GPU memory: trials_per_gpu %s -> %s for the rest of the search",
                    trial_id, before, self.per_gpu)
        self._note_sharing()

    def _probe_epoch(self, trial_id: int, metrics: Any) -> None:
        probe = self.probe
        if probe is None or not probe.running or not probe.epoch(trial_id, metrics, time.monotonic()):
            return
        self._set_per_gpu(probe.level)
        if not probe.running:
            self.sharing_how = "auto (measured)"
            say(f"Note: trials_per_gpu auto: {probe.level} trial{'s' if probe.level != 1 else ''} per GPU "
                f"(throughput per level: {probe.figures()}).")
            self._note_sharing()

    def _set_per_gpu(self, per_gpu: int) -> None:
        """Change the workers per GPU: the slots follow; idle workers that no longer fit, or whose memory
        share is not the new one, retire now, busy ones when their trials end."""
        self.per_gpu = max(1, per_gpu)
        self.slots = min(self.max_slots, self.per_gpu * len(self.gpus))
        for worker in [w for w in self._workers.values() if w.trial is None and not self._fits(w)]:
            self._retire(worker)
        for index, spare in list(self._spares.items()):
            if not self._fits(spare):
                del self._spares[index]
                self._stop(spare, kill=True)  # never ran a trial: nothing to lose

    def _fits(self, worker: _Worker) -> bool:
        """Whether a worker may take the next trial: its slot still exists and its memory share is current."""
        return worker.index < self.slots and (not self.gpus or worker.memory_fraction == self.memory_fraction)

    def _note_sharing(self) -> None:
        """The GPU sharing in the store's meta (``gpu_sharing``): the N chosen, how, the probe's figures."""
        note = getattr(self.handler, "executor_note", None)  # a bare handler (a test's) keeps no meta
        if self.gpus and note is not None:
            note(sharing.META_KEY, sharing.sharing_record(self.gpus, self.per_gpu, self.memory_setting,
                                                          self.sharing_how, self.probe, self.reductions))

    # ------------------------------------------------------------ workers
    def _idle_worker(self) -> _Worker:
        for worker in list(self._workers.values()):
            if worker.trial is None:
                if self._fits(worker):
                    return worker
                self._retire(worker)
        index = next((i for i in range(self.slots) if i not in self._workers), None)
        if index is None:
            raise RuntimeError("no free worker: submit() only when free_slots > 0")
        spare = self._spares.pop(index, None)
        if spare is not None:
            if self._fits(spare):
                self._workers[index] = spare
                return spare
            self._stop(spare, kill=True)
        return self._spawn(index)

    def _spawn(self, index: int, register: bool = True) -> _Worker:
        env = {} if self.needs.gpu else {"CUDA_VISIBLE_DEVICES": ""}  # a runner without GPU use takes none
        fraction = self.memory_fraction if self.gpus else None
        if self.gpus:  # its GPU and its memory share, before its library is imported
            env.update(sharing.worker_gpu_env(self.gpus[index % len(self.gpus)], self.per_gpu, self.memory_fraction))
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        settings = WorkerSettings(env=env, threads=self.threads, parent_pid=os.getpid(), needs=self.needs)
        process = self._context.Process(target=worker_main, args=(child_conn, self._runner_bytes, settings),
                                        name=f"archsearch-worker-{index}", daemon=True)
        # The worker must not take the driver's Ctrl-C: ignore SIGINT while it starts (it inherits that).
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        child_conn.close()
        self._started_workers += 1
        worker = _Worker(index, process, parent_conn, started_at=time.monotonic(), memory_fraction=fraction)
        if register:
            self._workers[index] = worker
        return worker

    def _receive(self, worker: _Worker) -> None:
        """Handle every message the worker has sent so far."""
        handler = self.handler
        assert handler is not None
        while worker.trial is not None and worker.conn.poll():
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                self._lost(worker)
                return
            kind = message[0]
            if kind == "ready":
                worker.ready = True
                if self.probe is not None:  # a fresh worker's start-up is not its trial's training time
                    self.probe.restart_clock(worker.trial.trial_id, time.monotonic())
            elif kind == "epoch":
                _, trial_id, epoch, metrics, value = message
                stop = handler.epoch_ended(trial_id, epoch, metrics, value)
                worker.conn.send(("decision", bool(stop)))
                self._probe_epoch(trial_id, metrics)
            elif kind == "finished":
                _, trial_id, outcome = message
                worker.trial = None
                worker.trials_done += 1
                if self.gpus and outcome.status == FAILED and outcome.failure_kind == "oom":
                    self._out_of_memory(trial_id, worker)
                elif worker.trials_done >= self.max_trials_per_worker or not self._fits(worker):
                    self._retire(worker)  # recycled: a fresh process takes the next trial
                handler.trial_finished(trial_id, outcome)
                return
            elif kind == "error":
                _, trial_id, exc = message
                worker.trial = None
                if isinstance(exc, ArchsearchError):
                    exc.trial_id = trial_id  # type: ignore[attr-defined]
                raise exc
            elif kind == "crash":
                _, trial_id, text = message
                worker.trial = None
                self._stop(worker, kill=True)
                raise InternalWorkerError(f"a worker failed on trial {trial_id}:\n{text}")

    def _lost(self, worker: _Worker) -> None:
        spec, worker.trial = worker.trial, None
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        self._stop(worker, kill=True)
        if spec is None:
            return
        assert self.handler is not None
        self.handler.trial_lost(spec.trial_id, f"{worker.name} died ({_describe_exit(code)})")

    def _retire(self, worker: _Worker) -> None:
        """Ask a worker to exit without waiting for it: :meth:`_reap` joins it later."""
        if self._workers.get(worker.index) is worker:
            del self._workers[worker.index]
        self._ask_to_exit(worker)
        self._retiring.append((worker, time.monotonic()))

    def _reap(self) -> None:
        """Join the retired workers that have exited; kill one that takes too long."""
        now, still = time.monotonic(), []
        for worker, since in self._retiring:
            if worker.process.is_alive() and now - since < EXIT_TIMEOUT_SECONDS:
                still.append((worker, since))
                continue
            if worker.process.is_alive():
                log.warning("%s did not exit within %.0f s of its last trial: killed", worker.name,
                            EXIT_TIMEOUT_SECONDS)
                worker.process.kill()
            self._close(worker, timeout=5)
        self._retiring = still

    def _stop(self, worker: _Worker, kill: bool) -> None:
        if self._workers.get(worker.index) is worker:
            del self._workers[worker.index]
        if kill:
            if worker.process.is_alive():
                worker.process.kill()
        else:
            self._ask_to_exit(worker)
        self._close(worker, timeout=5 if kill else EXIT_TIMEOUT_SECONDS)

    def _stop_all(self, kill_idle: bool) -> None:
        """Every worker (busy, idle, spare, retiring) told at once, then joined: one exit's time, not N."""
        everyone = [(w, kill_idle or w.trial is not None) for w in self._workers.values()]
        everyone += [(w, True) for w in self._spares.values()]  # never ran a trial: nothing to lose
        everyone += [(w, kill_idle) for w, _ in self._retiring]
        self._workers, self._spares, self._retiring = {}, {}, []
        for worker, kill in everyone:
            if kill:
                if worker.process.is_alive():
                    worker.process.kill()
            else:
                self._ask_to_exit(worker)
        deadline = time.monotonic() + EXIT_TIMEOUT_SECONDS
        for worker, _ in everyone:
            self._close(worker, timeout=max(0.0, deadline - time.monotonic()))

    @staticmethod
    def _ask_to_exit(worker: _Worker) -> None:
        if worker.process.is_alive():
            try:
                worker.conn.send(("exit",))
            except (OSError, ValueError):
                worker.process.kill()

    @staticmethod
    def _close(worker: _Worker, timeout: float) -> None:
        """Join (killing it after ``timeout``) and release the worker's pipe."""
        worker.process.join(timeout=timeout)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)
        try:
            worker.conn.close()
        except OSError:
            pass


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def visible_gpus() -> list[str]:
    """The GPUs this machine shows, without importing a deep-learning library.

    ``CUDA_VISIBLE_DEVICES`` wins when set (an empty value means none); otherwise ``nvidia-smi -L``.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(ln for ln in listing.splitlines() if ln.startswith("GPU "))]


def parallel_trials(value, field: str = "tuner.parallel_trials", executor: Mapping[str, Any] | None = None) -> int:
    """``auto`` is ``executor.trials_per_gpu`` trials on each GPU (given in ``executor.gpus``, else the visible
    ones; with ``trials_per_gpu=auto``, the most its probe may try), 1 without a GPU; otherwise a whole
    number >= 1, which an explicit ``trials_per_gpu`` > 1 must agree with."""
    options = executor or {}
    per_gpu = sharing.trials_per_gpu_setting(options.get("trials_per_gpu", 1))
    auto = value is None or (isinstance(value, str) and value.strip().lower() == "auto")
    if auto or per_gpu != 1:
        gpus = len(options["gpus"]) if options.get("gpus") else len(visible_gpus())
        if not gpus and per_gpu not in (1, sharing.AUTO):
            raise sharing.no_gpu_error(per_gpu)  # said before the data loads
    if auto:
        return max(1, gpus * (sharing.MAX_AUTO_TRIALS_PER_GPU if per_gpu == sharing.AUTO else int(per_gpu)))
    slots = int(whole_number(value, field, 1))
    if per_gpu != 1:
        sharing.check_parallel_trials(slots, per_gpu, gpus, field)
    return slots


def _threads_per_worker(threads, slots: int, on_gpus: bool) -> int | None:
    """``auto``: with several CPU workers, each gets ``cores // workers`` threads; else no limit."""
    if threads in (None, "none", "null"):
        return None
    if isinstance(threads, str) and threads.strip().lower() == "auto":
        if slots <= 1 or on_gpus:
            return None
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores // slots)
    return int(whole_number(threads, "executor.threads", 1))
