"""Hydra multirun: the callback that compares the searches of a sweep when it ends.

``python -m archsearch -m model=mlp,cnn tuner=random,hyperband`` runs each combination as its own
search in its own job folder, through whichever Hydra launcher is configured (basic, joblib,
submitit, ray).  At the end of the sweep :class:`SweepSummary` writes ``<sweep dir>/sweep.csv`` and
prints the table of :mod:`archsearch.report.sweep`: one row per job, best first.  A job that failed,
or left no ``trials.db``, is a row with its status instead of an error.

The callback also runs inside each job's process (``on_job_start`` / ``on_job_end``):

* it writes ``<sweep dir>/.archsearch_jobs/job_<num>.json`` (started, finished, or failed with its
  error), so the summary can tell a job that is still running from one that stopped -- even one that
  stopped before its first trial and removed its own folder -- and time the job;
* in a worker process that was not started by ``python -m archsearch`` (joblib's loky workers,
  submitit, ray) it installs the entry point's Ctrl-C/SIGTERM handlers, and puts back a standard
  ``multiprocessing`` start method: loky sets its own (``loky``), which the processes that train
  the trials (``executor=process``, started with ``spawn``) cannot find, so they died at start-up.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - Hydra < 1.1
    Callback = object  # type: ignore[assignment,misc]

from archsearch.cli import console
from archsearch.report.sweep import summarise
from archsearch.report.sweep_jobs import DONE, FAILED, JOBS_DIR, RUNNING, int_or_none, one_line, read_json, relative_path


# ---------------------------------------------------------------- the Hydra callback
class SweepSummary(Callback):
    """Hydra callback: ``sweep.csv`` and a table at the end of a multirun (see the module's docstring)."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        self._sweep_dir = sweep_dir  # as it resolved at the start (${now:...} is not evaluated again)
        _PENDING.add(str(sweep_dir))
        global _ATEXIT_REGISTERED
        if not _ATEXIT_REGISTERED:
            # A job that exits (a config error: status 2; Ctrl-C: 130) or fails stops the whole sweep
            # before Hydra calls on_multirun_end: summarise what there is as the process ends.
            atexit.register(_summarise_pending)
            _ATEXIT_REGISTERED = True

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = getattr(self, "_sweep_dir", None) or Path(str(config.hydra.sweep.dir)).absolute()
        _PENDING.discard(str(sweep_dir))
        _report(sweep_dir, ended=True)

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        if not _is_multirun(config):
            return
        _prepare_worker_process()
        try:
            _write_record(config, {"status": RUNNING, "started_at": time.time()}, fresh=True)
        except Exception as exc:  # noqa: BLE001 - the record is a convenience; the search must run anyway
            console.problem(f"archsearch: could not write the job record ({exc})")

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        if not _is_multirun(config):
            return
        update: dict[str, Any] = {"finished_at": time.time()}
        status = getattr(getattr(job_return, "status", None), "name", "COMPLETED")
        if status == "FAILED":
            exc = getattr(job_return, "_return_value", None)
            update.update(status=FAILED, error=one_line(f"{type(exc).__name__}: {exc}") if exc else "failed")
        else:
            update["status"] = DONE
        try:
            _write_record(config, update)
        except Exception as exc:  # noqa: BLE001
            console.problem(f"archsearch: could not write the job record ({exc})")


def _is_multirun(config: Any) -> bool:
    """Whether this job is one of a sweep's (a single run keeps its folder as it was)."""
    try:
        mode = config.hydra.mode
    except Exception:  # noqa: BLE001 - an older Hydra without hydra.mode
        return False
    return "MULTIRUN" in str(getattr(mode, "name", mode))


_PENDING: set[str] = set()
_ATEXIT_REGISTERED = False


def _summarise_pending() -> None:
    for sweep_dir in sorted(_PENDING):
        _report(Path(sweep_dir), ended=True, stopped_early=True)
    _PENDING.clear()


def _report(sweep_dir: Path, ended: bool, stopped_early: bool = False) -> None:
    """Write sweep.csv and print the table; a problem here is one line, never the sweep's failure."""
    try:
        text = summarise(sweep_dir, ended=ended, stopped_early=stopped_early).write()
    except Exception as exc:  # noqa: BLE001
        console.problem(f"archsearch: could not write the sweep summary of {sweep_dir}: {exc}")
        return
    console.result("\n" + text)


def _prepare_worker_process() -> None:
    """Make a launcher's worker process behave like ``python -m archsearch`` for the job it runs."""
    import multiprocessing

    method = multiprocessing.get_start_method(allow_none=True)
    if method is not None and method not in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method(None, force=True)  # e.g. loky's: back to the platform's default
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler and \
            signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        # Python's own handlers: this process was not started by our entry point (and its launcher
        # left signals alone); the entry point's handlers make the first Ctrl-C or SIGTERM stop the
        # search cleanly (trial recorded as interrupted, results exported).
        from archsearch.cli.signals import install

        install()


def _write_record(config: Any, update: dict[str, Any], fresh: bool = False) -> None:
    """Create (``fresh``: the job starts) or update the job's record, atomically."""
    from archsearch.core.atomic import write_text

    folder = Path(str(config.hydra.runtime.output_dir)).absolute()
    sweep_dir = _sweep_dir_of(config, folder)
    num = int_or_none(config.hydra.job.get("num"))
    relative = relative_path(folder, sweep_dir)
    path = sweep_dir / JOBS_DIR / _record_name(num, relative)
    record = {} if fresh else read_json(path) or {}
    if record.get("folder") != relative:
        resume = config.get("resume")
        run_folder = Path(str(resume)).expanduser().absolute() if resume not in (None, "", "None", "null") \
            else folder
        record = {"num": num, "folder": relative, "run_folder": str(run_folder),
                  "overrides": [str(o) for o in config.hydra.overrides.task], "host": socket.gethostname(),
                  "pid": os.getpid()}
    record.update(update)
    write_text(path, json.dumps(record, indent=1) + "\n")


def _sweep_dir_of(config: Any, folder: Path) -> Path:
    """The sweep folder, as the job folder's parent(s): ``hydra.sweep.subdir`` may have several parts."""
    try:
        parts = len(Path(str(config.hydra.sweep.subdir)).parts)
    except Exception:  # noqa: BLE001
        parts = 0
    if parts >= 1 and len(folder.parents) >= parts:
        return folder.parents[parts - 1]
    return Path(str(config.hydra.sweep.dir)).absolute()


def _record_name(num: int | None, relative: str) -> str:
    if num is not None:
        return f"job_{num}.json"
    return "job_" + "".join(c if c.isalnum() or c in "-_.=," else "_" for c in relative)[:150] + ".json"
