"""Hydra multirun: one table that compares the searches of a sweep.

``python -m archsearch -m model=mlp,cnn tuner=random,hyperband`` runs each combination as its own
search in its own job folder, through whichever Hydra launcher is configured (basic, joblib,
submitit, ray).  At the end of the sweep :class:`SweepSummary` (a Hydra callback) reads every job's
folder back from the sweep folder -- its ``.hydra/overrides.yaml`` and its ``trials.db`` -- and
writes ``<sweep dir>/sweep.csv`` plus a printed table: one row per job, best first.  Nothing is
taken from the launcher's in-memory return values, so jobs that ran in other processes or on other
machines are summarised the same way, and a job that failed, or left no ``trials.db``, is a row
with its status instead of an error.

The callback also runs inside each job's process (``on_job_start`` / ``on_job_end``):

* it writes ``<sweep dir>/.archsearch_jobs/job_<num>.json`` (started, finished, or failed with its
  error), so the summary can tell a job that is still running from one that stopped -- even one that
  stopped before its first trial and removed its own folder -- and time the job;
* in a worker process that was not started by ``python -m archsearch`` (joblib's loky workers,
  submitit, ray) it installs the entry point's Ctrl-C/SIGTERM handlers, and puts back a standard
  ``multiprocessing`` start method: loky sets its own (``loky``), which the processes that train
  the trials (``executor=process``, started with ``spawn``) cannot find, so they died at start-up.

``python -m archsearch.cli.sweep <sweep dir>`` (re)writes the summary of any sweep folder, for
instance one whose sweep was stopped, or one that is still running.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import math
import os
import signal
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - Hydra < 1.1
    Callback = object  # type: ignore[assignment,misc]

from archsearch.core.store import STORE_FILE, TrialStore

SWEEP_CSV = "sweep.csv"
# Each job's record (started, finished or failed, and how): <sweep dir>/.archsearch_jobs/job_<num>.json.
# It lives beside the job folders, not in them: a job that stops before its first trial removes its folder.
JOBS_DIR = ".archsearch_jobs"
# Jobs whose epochs spent differ from their group's median by more than this are flagged.
EPOCHS_TOLERANCE = 0.10

CSV_COLUMNS = ("rank", "job", "overrides", "status", "objective", "direction", "best_score", "trials_done",
               "trials_completed", "trials_failed", "trials_pruned", "trials_running", "epochs_spent", "wall_s",
               "job_wall_s", "max_trials", "epochs_per_trial", "executions_per_trial", "budget_flag", "error",
               "folder")

# Job statuses (the jobs that are not ranked are listed in this order).
DONE, RUNNING, INTERRUPTED, STOPPED, FAILED, NO_TRIALS, NO_STORE, UNREADABLE = (
    "done", "running", "interrupted", "stopped", "failed", "no trials", f"no {STORE_FILE}", "unreadable")


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
            print(f"archsearch: could not write the job record ({exc})", file=sys.stderr, flush=True)

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        if not _is_multirun(config):
            return
        update: dict[str, Any] = {"finished_at": time.time()}
        status = getattr(getattr(job_return, "status", None), "name", "COMPLETED")
        if status == "FAILED":
            exc = getattr(job_return, "_return_value", None)
            update.update(status=FAILED, error=_one_line(f"{type(exc).__name__}: {exc}") if exc else "failed")
        else:
            update["status"] = DONE
        try:
            _write_record(config, update)
        except Exception as exc:  # noqa: BLE001
            print(f"archsearch: could not write the job record ({exc})", file=sys.stderr, flush=True)


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
        summary = summarise(sweep_dir, ended=ended, stopped_early=stopped_early)
        summary.write_csv()
        print("\n" + summary.table() + f"\nSweep summary written to {summary.sweep_dir / SWEEP_CSV}", flush=True)
    except Exception as exc:  # noqa: BLE001
        print(f"archsearch: could not write the sweep summary of {sweep_dir}: {exc}", file=sys.stderr, flush=True)


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
        # left signals alone); importing the entry point installs its handlers: the first Ctrl-C or
        # SIGTERM stops the search cleanly (trial recorded as interrupted, results exported).
        import archsearch.__main__  # noqa: F401


def _write_record(config: Any, update: dict[str, Any], fresh: bool = False) -> None:
    """Create (``fresh``: the job starts) or update the job's record, atomically."""
    from archsearch.core.atomic import write_text

    folder = Path(str(config.hydra.runtime.output_dir)).absolute()
    sweep_dir = _sweep_dir_of(config, folder)
    num = _int_or_none(config.hydra.job.get("num"))
    relative = _relative(folder, sweep_dir)
    path = sweep_dir / JOBS_DIR / _record_name(num, relative)
    record = {} if fresh else _read_json(path) or {}
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


# ---------------------------------------------------------------- reading a sweep folder
@dataclass
class Job:
    """One job of a sweep, as read back from its folder."""

    folder: Path                      # the job's output folder (holds .hydra/)
    run_folder: Path                  # where its search lives (the job folder, or resume=<folder>)
    overrides: list[str]
    num: int | None = None
    status: str = DONE
    error: str | None = None
    objective: str | None = None
    direction: str | None = None
    best: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    epochs_spent: int = 0
    wall_s: float | None = None       # from its trials: last finish - first start
    job_wall_s: float | None = None   # the job itself, as its record measured it
    max_trials: Any = None
    epochs_per_trial: Any = None
    executions: Any = None
    flags: list[str] = field(default_factory=list)
    rank: int | None = None

    @property
    def has_trials(self) -> bool:
        return sum(self.counts.values()) > 0

    @property
    def label(self) -> str:
        return f"job {self.num}" if self.num is not None else self.folder.name


@dataclass
class SweepResult:
    sweep_dir: Path
    jobs: list[Job]                   # table order: best first
    common: list[str]                 # overrides every job shares
    notes: list[str]

    # -------------------------------------------------------- outputs
    def rows(self) -> list[dict[str, Any]]:
        out = []
        for job in self.jobs:
            out.append({
                "rank": job.rank if job.rank is not None else "",
                "job": job.num if job.num is not None else "",
                "overrides": " ".join(job.overrides),
                "status": job.status,
                "objective": job.objective or "",
                "direction": job.direction or "",
                "best_score": "" if job.best is None else repr(float(job.best)),
                "trials_done": job.counts.get("done", 0),
                "trials_completed": job.counts.get("completed", 0),
                "trials_failed": job.counts.get("failed", 0),
                "trials_pruned": job.counts.get("pruned", 0),
                "trials_running": job.counts.get("running", 0) + job.counts.get("interrupted", 0),
                "epochs_spent": job.epochs_spent if job.has_trials else "",
                "wall_s": "" if job.wall_s is None else round(job.wall_s, 3),
                "job_wall_s": "" if job.job_wall_s is None else round(job.job_wall_s, 3),
                "max_trials": "" if job.max_trials is None else job.max_trials,
                "epochs_per_trial": "" if job.epochs_per_trial is None else job.epochs_per_trial,
                "executions_per_trial": "" if job.executions is None else job.executions,
                "budget_flag": "; ".join(job.flags),
                "error": job.error or "",
                "folder": str(job.run_folder),
            })
        return out

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return buffer.getvalue()

    def write_csv(self) -> Path:
        from archsearch.core.atomic import write_text

        return write_text(self.sweep_dir / SWEEP_CSV, self.csv_text())

    def table(self) -> str:
        """The plain-text table, in the style of the search's own results summary."""
        lines = [f"Sweep summary ({self.sweep_dir})"]
        objectives = _ordered_unique(_objective_text(j) for j in self.jobs if j.objective)
        if len(objectives) == 1:
            lines.append(f"Objective: {objectives[0]}")
        statuses: dict[str, int] = {}
        for job in self.jobs:
            statuses[job.status] = statuses.get(job.status, 0) + 1
        lines.append("Jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
        if self.common:
            lines.append("Common overrides: " + " ".join(self.common))
        if not self.jobs:
            lines.append("No job folder (.hydra/overrides.yaml) found.")
            return "\n".join(lines + self.notes)
        columns = ["rank", "job", "overrides", "status"]
        if len(objectives) > 1:
            columns.append("objective")
        columns += ["score", "trials", "epochs", "wall", "budget", "folder"]
        rows = []
        for job in self.jobs:
            varying = [o for o in job.overrides if o not in self.common]
            row = {"rank": "-" if job.rank is None else str(job.rank),
                   "job": "" if job.num is None else str(job.num),
                   "overrides": " ".join(varying) or "(none)",
                   "status": job.status,
                   "objective": _objective_text(job) if job.objective else "",
                   "score": "" if job.best is None else f"{job.best:.4f}",
                   "trials": (f"{job.counts.get('done', 0)}/{job.counts.get('completed', 0)}/"
                              f"{job.counts.get('failed', 0)}") if job.has_trials else "",
                   "epochs": str(job.epochs_spent) if job.has_trials else "",
                   "wall": _duration(job.wall_s if job.wall_s is not None else job.job_wall_s),
                   "budget": "; ".join(job.flags),
                   "folder": _relative(job.run_folder, self.sweep_dir) if job.run_folder.is_dir() else "(removed)"}
            rows.append([row[c] for c in columns])
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        lines.append("trials: done/completed/failed; epochs: trained in all (a continued trial counts its extra "
                     "epochs only); wall: first trial start to last trial end")
        return "\n".join(lines + self.notes)


def summarise(sweep_dir: str | Path, ended: bool = True, stopped_early: bool = False) -> SweepResult:
    """Read every job folder under ``sweep_dir`` and compare the jobs.

    ``ended``: the sweep is over, so a job that never recorded its end has stopped (an exit status
    other than 0, a kill) rather than still running.
    """
    sweep_dir = Path(sweep_dir).absolute()
    records = _read_records(sweep_dir)
    jobs = []
    for folder in find_job_folders(sweep_dir):
        jobs.append(read_job(folder, records.pop(_relative(folder, sweep_dir), None), ended=ended))
    for relative, record in records.items():  # a job folder without .hydra/, or one its job removed
        jobs.append(read_job(sweep_dir / relative, record, ended=ended))
    jobs.sort(key=lambda j: (j.num is None, j.num if j.num is not None else 0, str(j.folder)))
    common = _common_overrides(jobs)
    notes: list[str] = []
    if stopped_early:
        notes.append("Note: the sweep stopped before all its jobs ended (a job exited with an error, or Ctrl-C); "
                     "jobs that never started are not listed.")

    # Finished jobs are ranked, best first, among the jobs with the same objective; the others
    # (failed, stopped, interrupted, running) follow, by status, with whatever score they reached.
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        if job.status == DONE and job.objective and job.best is not None:
            groups.setdefault((job.objective, job.direction or "max"), []).append(job)
    ordered_groups = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    if len(ordered_groups) > 1:
        notes.append("Note: the jobs optimise different objectives (" + ", ".join(
            f"{name} ({direction}): {len(members)} job{'s' if len(members) != 1 else ''}"
            for (name, direction), members in ordered_groups) + "); each job is ranked only among the jobs "
            "with the same objective.")
    ranked: list[Job] = []
    for _, members in ordered_groups:
        members.sort(key=lambda j: (_score_key(j), j.num or 0))
        for rank, job in enumerate(members, 1):
            job.rank = rank
        ranked += members
    order = {DONE: 0, RUNNING: 1, INTERRUPTED: 2, STOPPED: 3, NO_TRIALS: 4, FAILED: 5, NO_STORE: 6, UNREADABLE: 7}
    unranked = sorted((j for j in jobs if j.rank is None),
                      key=lambda j: (order.get(j.status, 9), _score_key(j), j.num or 0))

    comparable: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        if job.status == DONE and job.has_trials and job.objective:
            comparable.setdefault((job.objective, job.direction or "max"), []).append(job)
    for members in comparable.values():
        notes += _flag_budgets(members, common)

    for job in [*ranked, *unranked]:
        if job.status == DONE:
            continue
        text = f"{_describe(job, common)} {job.status}" + (f": {job.error}" if job.error else "")
        if job.status in (INTERRUPTED, STOPPED) and job.has_trials:
            text += f" (continue it with resume={job.run_folder})"
        if job.error or job.status in (INTERRUPTED, STOPPED):
            notes.append(text)
    return SweepResult(sweep_dir, [*ranked, *unranked], common, notes)


def _score_key(job: Job) -> float:
    """Smaller is better, whatever the job's direction; no score is worst."""
    if job.best is None:
        return math.inf
    return -job.best if job.direction == "max" else job.best


def find_job_folders(sweep_dir: Path) -> list[Path]:
    """Every job folder under ``sweep_dir``, whatever ``hydra.sweep.subdir`` names them.

    A job folder holds ``.hydra/overrides.yaml``; the search below a job folder stops at it, so its
    trials/ and best/ folders are never walked.
    """
    found: list[Path] = []
    if not sweep_dir.is_dir():
        return found
    for dirpath, dirnames, _ in os.walk(sweep_dir):
        here = Path(dirpath)
        if ".hydra" in dirnames and _overrides_file(here) is not None:
            found.append(here)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return found


def _overrides_file(folder: Path) -> Path | None:
    hydra_dir = folder / ".hydra"
    if (hydra_dir / "overrides.yaml").is_file():
        return hydra_dir / "overrides.yaml"
    resumed = sorted(hydra_dir.glob("resume_*/overrides.yaml"))  # a job that resumed a search
    return resumed[-1] if resumed else None


def _read_records(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """The job records of the sweep, by job folder (relative to the sweep folder)."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted((sweep_dir / JOBS_DIR).glob("*.json")):
        record = _read_json(path)
        if record and isinstance(record.get("folder"), str):
            records[record["folder"]] = record
    return records


def read_job(folder: Path, record: dict[str, Any] | None = None, ended: bool = True) -> Job:
    """One job: its folder's overrides and search, and its record (never raises for a broken folder)."""
    record = record or {}
    state = record.get("status")
    run_folder = Path(record["run_folder"]) if record.get("run_folder") else folder
    job = Job(folder=folder, run_folder=run_folder, overrides=_read_overrides(folder, record),
              num=_int_or_none(record["num"]) if record.get("num") is not None else _job_num(folder))
    started, finished = record.get("started_at"), record.get("finished_at")
    if isinstance(started, (int, float)) and isinstance(finished, (int, float)):
        job.job_wall_s = max(0.0, float(finished) - float(started))
    store_path = run_folder / STORE_FILE
    has_store = store_path.is_file()
    alive = state == RUNNING and not ended and folder.is_dir() and (not has_store or _lock_held(run_folder))

    unreadable = None
    if has_store:
        try:
            _read_store(job, store_path, _hydra_job_config(folder))
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: say so, go on
            unreadable = _one_line(f"{STORE_FILE}: {getattr(exc, 'reason', exc)}")
            _read_settings(job, _hydra_job_config(folder))
    else:
        _read_settings(job, _hydra_job_config(folder))

    if state == FAILED:
        job.status, job.error = FAILED, record.get("error") or _last_error(folder)
    elif alive:
        job.status = RUNNING
    elif not folder.is_dir():
        job.status, job.error = STOPPED, ("stopped before its first trial and removed its folder (its error is "
                                          "on the console)")
    elif unreadable:
        job.status, job.error = UNREADABLE, unreadable
    elif not has_store:
        job.status = STOPPED if state == RUNNING else NO_STORE
        job.error = _last_error(folder) or ("stopped before its first trial" if state == RUNNING else None)
    elif job.counts.get("interrupted", 0) or job.counts.get("running", 0):
        job.status, job.error = INTERRUPTED, _last_error(folder)
    elif state == RUNNING:
        job.status, job.error = STOPPED, _last_error(folder) or "the job ended without reporting its end"
    elif not job.has_trials:
        job.status, job.error = NO_TRIALS, _last_error(folder)
    else:
        job.status = DONE
    return job


def _read_store(job: Job, path: Path, fallback_config: dict[str, Any]) -> None:
    from archsearch.core.objective import Objective, is_finite

    with TrialStore.open_read_only(path) as store:
        config = store.get_meta("config") or fallback_config
        rows = store.rows()
    _read_settings(job, config)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    counts["done"] = sum(counts.get(s, 0) for s in ("completed", "failed", "pruned"))
    job.counts = counts
    job.epochs_spent = sum(max(0, int(r["epochs_done"] or 0) - int(r["initial_budget"] or 0)) for r in rows)
    starts = [r["started_at"] for r in rows if r.get("started_at") is not None]
    ends = [r["finished_at"] for r in rows if r.get("finished_at") is not None]
    if starts and ends:
        job.wall_s = max(0.0, max(ends) - min(starts))
    if job.objective:
        objective = Objective(job.objective, job.direction)
        job.best = objective.best(r["value"] for r in rows if r["status"] == "completed" and is_finite(r["value"]))


def _read_settings(job: Job, config: dict[str, Any]) -> None:
    """The objective and the budget settings a job ran with."""
    from archsearch.core.objective import Objective

    if not config:
        return
    spec = config.get("objective")
    try:
        objective = Objective.create(spec) if spec is not None else None
    except Exception:  # noqa: BLE001 - an unreadable objective (the job's own config error)
        objective = None
    if objective is not None:
        job.objective, job.direction = objective.name, objective.direction
    tuner = config.get("tuner") or {}
    trainer = config.get("trainer") or {}
    job.max_trials = tuner.get("max_trials")
    job.epochs_per_trial = tuner.get("max_epochs") if "max_epochs" in tuner else trainer.get("epochs")
    job.executions = trainer.get("executions_per_trial", 1)


def _flag_budgets(jobs: list[Job], common: list[str]) -> list[str]:
    """Flag the jobs whose budgets differ from the others' (same objective); return the notes."""
    if len(jobs) < 2:
        return []
    notes: list[str] = []
    for key, what in (("max_trials", "tuner.max_trials"), ("epochs_per_trial", "epochs per trial"),
                      ("executions", "trainer.executions_per_trial")):
        values = [getattr(j, key) for j in jobs]
        if len({json.dumps(v, default=str) for v in values}) <= 1:
            continue
        odd = _odd_ones(jobs, values)
        for job in odd:
            job.flags.append(f"{key}={_plain(getattr(job, key))}")
        notes.append(f"Note: {what} differs ("
                     + ", ".join(f"{_describe(j, common)}: {_plain(getattr(j, key))}" for j in jobs) + ").")
    spent = [j.epochs_spent for j in jobs]
    median = statistics.median(spent)
    off = [j for j in jobs if abs(j.epochs_spent - median) > EPOCHS_TOLERANCE * max(median, 1)]
    for job in off:
        change = (job.epochs_spent - median) / median if median else math.inf
        job.flags.append(f"epochs {'+' if change >= 0 else ''}{change:.0%}" if median else "epochs")
    if off:
        notes.append(f"Note: the epochs spent differ by more than {EPOCHS_TOLERANCE:.0%} (median {median:g}: "
                     + ", ".join(f"{_describe(j, common)}: {j.epochs_spent}" for j in jobs) + ").")
    if any(j.flags for j in jobs):
        notes.append("Budgets differ for the jobs flagged in 'budget', so their comparison is not fair: give them "
                     "the same tuner.max_trials and epochs (trainer.epochs, or tuner.max_epochs), or compare them "
                     "at equal epochs spent.")
    return notes


def _odd_ones(jobs: list[Job], values: list[Any]) -> list[Job]:
    """The jobs whose value differs from the most common one; every job when no value is most common."""
    keys = [json.dumps(v, default=str) for v in values]
    tally = {k: keys.count(k) for k in keys}
    top = max(tally.values())
    if top < 2 or list(tally.values()).count(top) > 1:
        return list(jobs)
    usual = next(k for k, n in tally.items() if n == top)
    return [j for j, k in zip(jobs, keys) if k != usual]


# ---------------------------------------------------------------- small readers
def _read_overrides(folder: Path, record: dict[str, Any]) -> list[str]:
    import yaml

    path = _overrides_file(folder)
    if path is not None and path.name == "overrides.yaml":
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            if isinstance(data, list):
                return [str(o) for o in data]
        except (OSError, yaml.YAMLError):
            pass
    return [str(o) for o in record.get("overrides") or []]


def _hydra_job_config(folder: Path) -> dict[str, Any]:
    """The job's composed config (``.hydra/config.yaml``), for a job whose store holds none."""
    import yaml

    try:
        data = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _job_num(folder: Path) -> int | None:
    """``hydra.job.num`` from ``.hydra/hydra.yaml`` (a folder written before job records existed)."""
    import yaml

    try:
        data = yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text(encoding="utf-8"))
        return _int_or_none(data["hydra"]["job"]["num"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return _int_or_none(folder.name)


def _last_error(folder: Path) -> str | None:
    """The last error line the job logged (``archsearch: error: ...`` goes to its archsearch.log too)."""
    for log in sorted(folder.glob("*.log")):
        try:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in reversed(lines):
            if "][ERROR] - " in line:
                text = line.split("][ERROR] - ", 1)[1]
                return _one_line(text[len("error: "):] if text.startswith("error: ") else text)
    return None


def _lock_held(folder: Path) -> bool:
    """Whether a process holds the run folder's lock (its search is still running)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    path = folder / ".archsearch.lock"
    if not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _common_overrides(jobs: list[Job]) -> list[str]:
    if len(jobs) < 2:
        return []
    shared = set(jobs[0].overrides).intersection(*(j.overrides for j in jobs[1:]))
    return [o for o in jobs[0].overrides if o in shared]


def _describe(job: Job, common: list[str]) -> str:
    varying = " ".join(o for o in job.overrides if o not in common)
    return f"{job.label} ({varying})" if varying else job.label


def _objective_text(job: Job) -> str:
    return f"{job.objective} ({job.direction})"


def _ordered_unique(items) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base)) or "."
    except ValueError:
        return str(path)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _plain(value: Any) -> str:
    return "null" if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _one_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return (lines[0] if lines else "").strip()[:300]


# ---------------------------------------------------------------- python -m archsearch.cli.sweep
def main(argv: list[str] | None = None) -> int:
    """``python -m archsearch.cli.sweep <sweep dir>``: print the summary and (re)write sweep.csv."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m archsearch.cli.sweep <sweep dir>   (writes <sweep dir>/sweep.csv)", file=sys.stderr)
        return 2
    sweep_dir = Path(args[0])
    if not sweep_dir.exists():
        print(f"archsearch: error: {sweep_dir} does not exist (give the sweep's folder: the multirun's "
              "hydra.sweep.dir, e.g. multirun/2024-01-01/12-00-00)", file=sys.stderr)
        return 2
    if not sweep_dir.is_dir():
        print(f"archsearch: error: {sweep_dir} is a file, not a folder (give the sweep's folder)", file=sys.stderr)
        return 2
    summary = summarise(sweep_dir, ended=False)
    if not summary.jobs:
        print(summary.table(), file=sys.stderr)
        return 2
    summary.write_csv()
    print(summary.table() + f"\nSweep summary written to {summary.sweep_dir / SWEEP_CSV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
