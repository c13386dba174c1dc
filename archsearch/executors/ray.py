"""Trials as Ray actors: on a running Ray cluster (``executor.address``) or a local Ray started for the run.

Each slot is one Ray actor that asks for ``executor.resources`` (``{num_cpus: 4, num_gpus: 1}``;
fractional GPUs share a device) and trains one trial at a time with a copy of the runner, exactly
as a local worker process does; after ``max_trials_per_worker`` trials it is replaced by a fresh
actor, so memory stays flat.  The driver keeps the oracle, the store, the run folder's lock and
the events; the actors only train.

This module is the driver's side; what runs on the Ray workers is :mod:`archsearch.executors.ray_actor`.

The epoch round-trip.  An actor is *threaded* (several of its methods run at once): ``run(spec)``
trains in one of its threads and, after every epoch, puts ``("epoch", id, epoch, metrics, value)``
on the actor's own outbox and blocks until a decision arrives; the driver always has one
``next_message()`` call outstanding per busy actor, waits on all of them with ``ray.wait``, hands
each epoch to the search (which records it and asks the oracle) and answers with ``decide(stop)``.
So pruning is decided by the driver, one epoch at a time, as with local worker processes, with no
extra actor or queue service: every message is the answer to one Ray call the driver owns (a long
poll: it returns None after 10 s without news, and the driver asks again), and an actor that dies (its process killed, its node lost) fails those calls with ``RayActorError``, which
the driver reports as a lost trial (retried from its last checkpoint by the search).  The actors
are owned by the driver, so they end with it, a ``kill -9`` of the driver included.

Checkpoints and best weights go to ``executor.storage`` (by default the run folder), a folder that
every node must see at the same absolute path: the remote runner writes there and the driver reads
from there.  The run folder keeps ``trials.db``, the lock, the log and the export.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import signal
import sys
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archsearch.core.trial import TrialSpec
from archsearch.core.trial_runner import TrialRunner, needs_of
from archsearch.errors import ConfigError
from archsearch.executors.base import Executor
from archsearch.executors.ray_actor import POLL_SECONDS, ActorSettings, TrialActor, rebuild_error
from archsearch.executors.ray_options import validate_options

log = logging.getLogger("archsearch")

STORAGE_MARKER = "archsearch-storage.txt"
INSTALL_HINT = 'install it with pip install "archsearch[ray]" (or pip install ray), or use executor=process'

_WAIT_SECONDS = 5.0  # how long the driver's ray.wait blocks before wait() returns
_KILL_WAIT_SECONDS = 10.0  # how long interrupt() waits for killed actors to be gone


@dataclass
class _Slot:
    index: int
    actor: Any
    trial: TrialSpec | None = None
    trials_done: int = 0
    node: str = ""
    pid: int | None = None
    run_ref: Any = None
    message_ref: Any = None

    @property
    def name(self) -> str:
        where = f"{self.node}, pid {self.pid}" if self.pid else "not placed yet"
        return f"ray worker {self.index} ({where})"


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, runner: TrialRunner, slots: int = 1, **options: Any) -> None:
        super().__init__(slots=slots)
        settings = validate_options(options)
        self.needs = needs_of(runner)
        if settings["resources"].get("num_gpus") and not self.needs.gpu:
            raise ConfigError("executor.resources.num_gpus", f"asks for {settings['resources']['num_gpus']:g} GPU per "
                                                             f"trial, but {type(runner).__name__} trains without one",
                              "set it to 0 (or leave it out)")
        try:
            importlib.import_module("ray")
        except ImportError:
            raise ConfigError("executor", "the 'ray' executor needs Ray, which is not installed", INSTALL_HINT) from None
        self.runner = runner
        self.address: str | None = settings["address"]
        self.resources: dict[str, float] = settings["resources"]
        self.max_trials_per_worker: int = settings["max_trials_per_worker"]
        self.init_options: dict[str, Any] = settings["init"]
        self.run_folder = Path(runner.files.workdir).resolve()
        storage = settings["storage"]
        self.storage = Path(storage).expanduser().resolve() if storage else self.run_folder
        self._claim_storage()
        # Every trial file is read and written at the storage's absolute path: the remote runner's copy
        # (pickled from this runner) and the driver (Search.files, export, get_best_models: runner.files).
        runner.files.workdir = self.storage
        self.files = runner.files
        self._slots: dict[int, _Slot] = {}
        self._runner_ref = None
        self._owns_ray = False
        self._remote_class = None
        self._started_actors = 0

    # ------------------------------------------------------------ Executor
    def start(self, handler) -> None:
        super().start(handler)
        import ray

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
            if self.address:
                kwargs["address"] = self.address
            kwargs.update(self.init_options)
            with _keep_signal_handlers():
                try:
                    ray.init(**kwargs)
                except ConnectionError as exc:
                    raise ConfigError("executor.address", f"cannot reach a Ray cluster at {self.address} ({exc})",
                                      "start one with `ray start --head`, or set executor.address=null for a "
                                      "local Ray") from None
            self._owns_ray = True
        self._check_resources(ray.cluster_resources())
        try:
            runner_bytes = _dumps(self.runner)
        except Exception as exc:  # a lambda, a notebook function, an unpicklable callback
            raise ConfigError(
                "executor", f"the model builder, data or callbacks cannot be sent to a Ray worker ({exc})",
                "define the builder in an importable module, or run trials in this process with executor=inline",
            ) from None
        self._runner_ref = ray.put(runner_bytes)  # once in the object store, fetched by every node that needs it
        self._remote_class = ray.remote(TrialActor)

    @property
    def running(self) -> list[int]:
        return [s.trial.trial_id for s in self._slots.values() if s.trial is not None]

    def submit(self, spec: TrialSpec) -> None:
        slot = self._idle_slot()
        slot.trial = spec
        slot.run_ref = slot.actor.run.remote(spec)
        slot.message_ref = slot.actor.next_message.remote(POLL_SECONDS)

    def wait(self) -> None:
        import ray

        busy = [s for s in self._slots.values() if s.trial is not None]
        if not busy:
            return
        owner: dict[Any, _Slot] = {}
        for slot in busy:
            for ref in (slot.message_ref, slot.run_ref):
                if ref is not None:
                    owner[ref] = slot
        ready, _ = ray.wait(list(owner), num_returns=1, timeout=_WAIT_SECONDS)
        for ref in ready:
            slot = owner[ref]
            if slot.trial is None:
                continue
            if ref is slot.run_ref:
                self._run_returned(slot)
            elif ref is slot.message_ref:
                self._message_arrived(slot)

    def interrupt(self) -> None:
        self._stop_all()

    def shutdown(self) -> None:
        self._stop_all()
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
        wants = ", ".join(f"{k}={_short(v)}" for k, v in self.resources.items() if v or k == "num_cpus")
        return f"{self.slots} Ray actor{'s' if self.slots != 1 else ''} on {where}, each with {wants}"

    # ------------------------------------------------------------ actors
    def _idle_slot(self) -> _Slot:
        for slot in self._slots.values():
            if slot.trial is None:
                return slot
        if len(self._slots) >= self.slots:
            raise RuntimeError("no free slot: submit() only when free_slots > 0")
        index = next(i for i in range(self.slots) if i not in self._slots)
        return self._create(index)

    def _create(self, index: int) -> _Slot:
        assert self._remote_class is not None, "start() the executor first"
        known = {"num_cpus", "num_gpus", "memory"}
        options: dict[str, Any] = {k: v for k, v in self.resources.items() if k in known}
        custom = {k: v for k, v in self.resources.items() if k not in known}
        if custom:
            options["resources"] = custom
        settings = ActorSettings(storage=str(self.storage), num_cpus=float(self.resources.get("num_cpus", 1)),
                                  num_gpus=float(self.resources.get("num_gpus", 0)),
                                  sys_path=_driver_sys_path(), cwd=os.getcwd(), needs=self.needs)
        try:
            remote = self._remote_class.options(max_concurrency=4, max_restarts=0, max_task_retries=0, **options)
        except ValueError as exc:  # Ray's own checks of the quantities (precision, accelerator rules)
            raise ConfigError("executor.resources", str(exc)) from None
        actor = remote.remote(self._runner_ref, settings)
        self._started_actors += 1
        slot = _Slot(index, actor)
        self._slots[index] = slot
        return slot

    def _message_arrived(self, slot: _Slot) -> None:
        import ray

        try:
            message = ray.get(slot.message_ref)
        except ray.exceptions.RayActorError as exc:
            self._lost(slot, exc)
            return
        slot.message_ref = None
        handler = self.handler
        assert handler is not None and slot.trial is not None
        if message is None:  # nothing yet (the actor is starting, or a long epoch): ask again
            pass
        elif message[0] == "started":
            _, _, slot.node, slot.pid = message
            handler.trial_started(slot.trial, slot.name)
        elif message[0] == "epoch":
            _, trial_id, epoch, metrics, value = message
            stop = handler.epoch_ended(trial_id, epoch, metrics, value)
            slot.actor.decide.remote(bool(stop))
        elif message[0] == "finished":
            _, trial_id, outcome = message
            self._trial_done(slot)
            if slot.trials_done >= self.max_trials_per_worker:
                self._stop(slot)  # recycled: a fresh actor takes the next trial
            handler.trial_finished(trial_id, outcome)
            return
        elif message[0] == "error":
            _, trial_id, cls, args, state = message
            self._trial_done(slot)
            exc = rebuild_error(cls, args, state)
            exc.trial_id = trial_id  # type: ignore[attr-defined]
            raise exc
        elif message[0] == "crash":
            from archsearch.executors.process import InternalWorkerError

            _, trial_id, text = message
            self._trial_done(slot)
            self._stop(slot)
            raise InternalWorkerError(f"a Ray worker failed on trial {trial_id}:\n{text}")
        slot.message_ref = slot.actor.next_message.remote(POLL_SECONDS)

    def _run_returned(self, slot: _Slot) -> None:
        """``run`` ended: its outcome comes as a message; here only an actor that died or a call Ray refused."""
        import ray

        try:
            ray.get(slot.run_ref)
        except ray.exceptions.RayActorError as exc:
            self._lost(slot, exc)
            return
        except ray.exceptions.RayError as exc:  # e.g. the spec could not be sent: a bug, not a lost worker
            from archsearch.executors.process import InternalWorkerError

            trial_id = slot.trial.trial_id if slot.trial else None
            self._trial_done(slot)
            self._stop(slot)
            raise InternalWorkerError(f"a Ray worker failed on trial {trial_id}:\n{exc}") from None
        slot.run_ref = None

    def _trial_done(self, slot: _Slot) -> None:
        slot.trial = None
        slot.run_ref = slot.message_ref = None
        slot.trials_done += 1

    def _lost(self, slot: _Slot, exc: BaseException) -> None:
        spec = slot.trial
        name = slot.name
        self._stop(slot)
        if spec is None:
            return
        if getattr(exc, "actor_init_failed", False):
            from archsearch.executors.process import InternalWorkerError

            raise InternalWorkerError(f"a Ray worker could not start for trial {spec.trial_id}:\n{exc}")
        assert self.handler is not None
        self.handler.trial_lost(spec.trial_id, f"{name} died ({_death_cause(exc)})")

    def _stop_all(self) -> None:
        """Kill every actor and return once they are gone: ``ray.kill`` is asynchronous, and an actor
        still training could write a checkpoint after the driver recorded its trial as interrupted."""
        import ray

        pending = []
        for slot in list(self._slots.values()):
            pending += [ref for ref in (slot.run_ref, slot.message_ref) if ref is not None]
            self._stop(slot)
        if pending:  # the calls of a killed actor fail as soon as it is dead
            try:
                ray.wait(pending, num_returns=len(pending), timeout=_KILL_WAIT_SECONDS)
            except Exception:  # noqa: BLE001 - Ray going down already
                pass

    def _stop(self, slot: _Slot) -> None:
        import ray

        self._slots.pop(slot.index, None)
        slot.trial = None
        slot.run_ref = slot.message_ref = None
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass

    # ------------------------------------------------------------ checks
    def _claim_storage(self) -> None:
        """The storage folder exists and holds this search's trials only."""
        try:
            self.storage.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("executor.storage", f"cannot create {self.storage} ({exc.strerror or exc})",
                              "choose a folder this machine can write, shared by every node") from None
        if self.storage == self.run_folder:
            return
        marker = self.storage / STORAGE_MARKER
        mine = str(self.run_folder)
        if marker.exists():
            owner = marker.read_text().strip()
            if owner and owner != mine:
                raise ConfigError("executor.storage", f"{self.storage} holds the trials of another search ({owner})",
                                  "give each search its own storage folder, e.g. "
                                  "executor.storage=/shared/archsearch/${hydra:run.dir}")
            return
        marker.write_text(mine + "\n")

    def _check_resources(self, cluster: Mapping[str, float]) -> None:
        names = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
        for key, amount in self.resources.items():
            have = float(cluster.get(names.get(key, key), 0))
            if amount <= have:
                continue
            problem = f"asks for {_short(amount)} {names.get(key, key)} per trial; the cluster has {_short(have)}"
            if self._owns_ray and not self.address:
                raise ConfigError("executor.resources", problem,
                                  "ask for less, or run on a cluster that has them (executor.address=auto)")
            log.warning("executor.resources %s: trials wait until a node with them joins", problem)


@contextmanager
def _keep_signal_handlers():
    """ray.init replaces the driver's SIGTERM handler by sys.exit; the search's own one (SIGTERM stops the
    search like Ctrl-C: running trials recorded as interrupted, exit status 130) is put back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)


def _driver_sys_path() -> list[str]:
    return [os.path.abspath(p or os.getcwd()) for p in sys.path if isinstance(p, str)]


def _dumps(runner) -> bytes:
    """By reference where the code is importable, by value for ``__main__`` (a script or a notebook)."""
    try:
        from ray import cloudpickle
    except ImportError:  # pragma: no cover - Ray always ships it
        return pickle.dumps(runner)
    return cloudpickle.dumps(runner)


def _death_cause(exc: BaseException) -> str:
    """A short cause from Ray's long message: the worker's exit detail, a lost node, or the error's name."""
    text = str(exc)
    if getattr(exc, "preempted", False):
        return "its node was preempted"
    if type(exc).__name__ == "ActorUnavailableError":
        return "unreachable: its node or process is gone"
    for marker in ("Worker exit detail: ", "The actor died because "):
        if marker in text:
            detail = text.split(marker, 1)[1].split(". ", 1)[0].strip().rstrip(".")
            return detail[:1].lower() + detail[1:]
    if "node" in text.lower() and "died" in text.lower():
        return "its node died"
    return type(exc).__name__


def _short(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
