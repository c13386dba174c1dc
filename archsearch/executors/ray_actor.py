"""The actor side of the Ray executor: what runs on a Ray worker, one trial at a time.

A :class:`TrialActor` (made a Ray actor by ``ray.remote`` in the driver, :mod:`archsearch.executors.ray`)
sets up its process (GPU, threads, the runner's own ``worker_setup``), unpickles the runner once and
trains the specs it is given with :func:`~archsearch.executors.base.run_spec`.  It is *threaded*: ``run``
trains in one thread and, after every epoch, posts ``("epoch", id, epoch, metrics, value)`` to its
outbox and blocks until the driver's ``decide(stop)`` arrives; ``next_message`` hands the outbox to the
driver (a long poll).  Nothing here raises into Ray: every outcome is a message.  Kept apart from the
driver so a worker node imports only this, never the driver's bookkeeping.
"""

from __future__ import annotations

import math
import os
import pickle
import queue
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.core.trial import TrialSpec
from archsearch.core.trial_runner import NO_NEEDS, RunnerNeeds, call_worker_setup
from archsearch.errors import ArchsearchError, ConfigError
from archsearch.executors.base import run_spec
from archsearch.executors.gpu_sharing import ray_actor_env
from archsearch.executors.worker import limit_threads

POLL_SECONDS = 10.0  # how long one next_message() call waits inside the actor before returning None


@dataclass
class ActorSettings:
    """What an actor sets up before it loads the runner (and with it what the runner trains with, e.g. Keras)."""

    storage: str
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    sys_path: list[str] = field(default_factory=list)
    cwd: str = ""
    needs: RunnerNeeds = NO_NEEDS  # the runner's: its worker_setup runs here, before it is unpickled


class TrialActor:
    """A Ray actor (made one by ``ray.remote`` in the driver) that trains the trials it is given.

    Threaded: ``run`` trains in one thread while ``next_message`` and ``decide`` answer the
    driver from others.  Nothing here raises into Ray: every outcome is a message.
    """

    def __init__(self, runner_bytes: bytes, settings: ActorSettings) -> None:
        self._outbox: queue.Queue = queue.Queue()
        self._decisions: queue.Queue = queue.Queue()
        self._settings = settings
        self._runner = None
        self._broken: tuple[str, Any] | None = None
        prepare_process(settings)
        try:
            self._runner = pickle.loads(runner_bytes)
        except (ImportError, AttributeError) as exc:  # the builder's module is not on this node
            self._broken = ("error", ConfigError(
                "executor", f"a Ray worker on {node_address()} cannot load the model builder, data or callbacks "
                            f"({type(exc).__name__}: {exc})",
                "every node needs archsearch and the builder's module: install them there, or keep them in a "
                "folder all nodes share and put it on PYTHONPATH"))
        except BaseException:  # noqa: BLE001 - shown by the driver
            self._broken = ("crash", traceback.format_exc())

    def run(self, spec: TrialSpec) -> None:
        post = self._outbox.put
        trial_id = spec.trial_id
        if self._broken is not None:
            kind, detail = self._broken
            post(error_message(trial_id, detail) if kind == "error" else ("crash", trial_id, detail))
            return
        post(("started", trial_id, node_address(), os.getpid()))
        storage = Path(self._settings.storage)
        if not storage.is_dir():
            post(error_message(trial_id, ConfigError(
                "executor.storage", f"{storage} does not exist on the Ray node {node_address()}",
                "storage must be a folder that every node mounts at the same path (a shared file system)")))
            return
        try:
            outcome = run_spec(self._runner, spec, DecisionReporter(post, self._decisions))
        except ArchsearchError as exc:
            post(error_message(trial_id, exc))
            return
        except BaseException:  # noqa: BLE001 - an internal bug: the driver shows it
            post(("crash", trial_id, traceback.format_exc()))
            return
        post(("finished", trial_id, outcome))

    def next_message(self, timeout: float = POLL_SECONDS):
        """The next message of the trial in training, or None if there was none for ``timeout`` seconds."""
        try:
            return self._outbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def decide(self, stop: bool) -> None:
        self._decisions.put(bool(stop))


class DecisionReporter:
    """Each epoch goes to the driver, and training waits for its answer (continue or stop)."""

    def __init__(self, post, decisions: queue.Queue) -> None:
        self.post = post
        self.decisions = decisions

    def on_epoch(self, trial, epoch, metrics, value) -> bool:
        self.post(("epoch", trial.id, int(epoch), dict(metrics), value))
        return bool(self.decisions.get())


def error_message(trial_id: int, exc: BaseException) -> tuple:
    """An ArchsearchError as plain parts: ConfigError & co. take several __init__ arguments, which
    pickle cannot give back, so the driver rebuilds the instance from its class, args and state."""
    state = {}
    for key, value in vars(exc).items():
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - drop what cannot travel
            continue
        state[key] = value
    return ("error", trial_id, type(exc), tuple(str(a) for a in exc.args), state)


def rebuild_error(cls: type, args: tuple, state: dict) -> BaseException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


def node_address() -> str:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001
        import socket

        return socket.gethostname()


def prepare_process(settings: ActorSettings) -> None:
    """Environment first (GPUs, threads), then the driver's import path and folder where this node has them."""
    if settings.num_gpus > 0:
        # Ray set CUDA_VISIBLE_DEVICES to this actor's GPU(s); a fraction (num_gpus: 0.5) shares a device, so its
        # memory is bounded to num_gpus x 0.9 of it, as a process worker's sharing a GPU is.
        os.environ.update(ray_actor_env(settings.num_gpus))
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # no GPU was asked for: do not take one Ray did not give
    for entry in settings.sys_path:  # the builder's module, where the driver found it (a shared path)
        if entry not in sys.path and os.path.isdir(entry):
            sys.path.append(entry)
    if settings.cwd and os.path.isdir(settings.cwd):
        os.chdir(settings.cwd)  # relative data paths resolve as in the driver
    threads = max(1, int(math.floor(settings.num_cpus))) if settings.num_gpus <= 0 else None
    limit_threads(threads)
    call_worker_setup(settings.needs, threads)
