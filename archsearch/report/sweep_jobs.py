"""One job of a sweep, read back from its folder: its overrides, its search (``trials.db``, read-only)
and its record, and from them its status (done, running, interrupted, stopped, failed ...).

Each job's record is ``<sweep dir>/.archsearch_jobs/job_<num>.json``, which the Hydra callback
(:class:`archsearch.cli.sweep.SweepSummary`) writes as the job starts and ends.  It lives beside the
job folders, not in them: a job that stops before its first trial removes its folder.  Nothing here
raises for a broken folder: a job that cannot be read is a row with its status.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.core.store import STORE_FILE, TrialStore

JOBS_DIR = ".archsearch_jobs"

# Job statuses (the jobs that are not ranked are listed in this order).
DONE, RUNNING, INTERRUPTED, STOPPED, FAILED, NO_TRIALS, NO_STORE, UNREADABLE = (
    "done", "running", "interrupted", "stopped", "failed", "no trials", f"no {STORE_FILE}", "unreadable")


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
    # A Pareto search (search.mode=pareto): its objectives, (name, direction) in order, the costs (every
    # objective minimised) of its completed trials at the full budget, its reference point if the config
    # fixed one, and, once the sweep compared it with the others, its front's size (``best``: hypervolume).
    pareto: list[tuple[str, str]] = field(default_factory=list)
    pareto_objective: Any = None  # the ParetoObjective, whose scales the hypervolume counts in
    costs: list[list[float]] = field(default_factory=list)
    reference_point: Any = None
    front_size: int | None = None

    @property
    def has_trials(self) -> bool:
        return sum(self.counts.values()) > 0

    @property
    def label(self) -> str:
        return f"job {self.num}" if self.num is not None else self.folder.name




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


def read_records(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """The job records of the sweep, by job folder (relative to the sweep folder)."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted((sweep_dir / JOBS_DIR).glob("*.json")):
        record = read_json(path)
        if record and isinstance(record.get("folder"), str):
            records[record["folder"]] = record
    return records


def read_job(folder: Path, record: dict[str, Any] | None = None, ended: bool = True) -> Job:
    """One job: its folder's overrides and search, and its record (never raises for a broken folder)."""
    record = record or {}
    state = record.get("status")
    run_folder = Path(record["run_folder"]) if record.get("run_folder") else folder
    job = Job(folder=folder, run_folder=run_folder, overrides=_read_overrides(folder, record),
              num=int_or_none(record["num"]) if record.get("num") is not None else _job_num(folder))
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
            unreadable = one_line(f"{STORE_FILE}: {getattr(exc, 'reason', exc)}")
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
    if job.pareto:
        job.costs = _pareto_costs(job.pareto, rows)
    elif job.objective:
        objective = Objective(job.objective, job.direction)
        job.best = objective.best(r["value"] for r in rows if r["status"] == "completed" and is_finite(r["value"]))


def _pareto_costs(objectives: list[tuple[str, str]], rows: list[dict[str, Any]]) -> list[list[float]]:
    """Every objective as a cost (maximised ones negated) of the completed trials that have them all and
    trained to the full budget (:func:`archsearch.core.pareto.full_budget_mask`), as the search's front does."""
    from archsearch.core.objective import is_finite
    from archsearch.core.pareto import full_budget_mask

    scored = [r for r in rows if r["status"] == "completed"
              and all(is_finite((r.get("metrics") or {}).get(n)) for n, _ in objectives)]
    kept = [r for r, keep in zip(scored, full_budget_mask([r.get("budget") for r in scored])) if keep]
    return [[(-1.0 if d == "max" else 1.0) * float(r["metrics"][n]) for n, d in objectives] for r in kept]


def _read_settings(job: Job, config: dict[str, Any]) -> None:
    """The objective and the budget settings a job ran with."""
    from archsearch.core.objective import Objective

    if not config:
        return
    spec = config.get("objective")
    search = config.get("search") if isinstance(config.get("search"), dict) else {}
    try:
        if search.get("mode") == "pareto" and spec is not None:
            from archsearch.core.objective import ParetoObjective

            objective = ParetoObjective.of(spec)
        else:
            objective = Objective.create(spec) if spec is not None else None
    except Exception:  # noqa: BLE001 - an unreadable objective (the job's own config error)
        objective = None
    if objective is not None and objective.is_pareto:
        job.pareto = [(p.name, p.direction) for p in objective.components]
        job.pareto_objective = objective
        job.objective = "[" + ", ".join(f"{p.name}:{p.direction}" + (f":{p.scale}" if p.scale != "linear" else "")
                                        for p in objective.components) + "]"
        job.direction = "max"  # the jobs are compared by hypervolume
        job.reference_point = search.get("reference_point")
    elif objective is not None:
        job.objective, job.direction = objective.name, objective.direction
    tuner = config.get("tuner") or {}
    trainer = config.get("trainer") or {}
    job.max_trials = tuner.get("max_trials")
    job.epochs_per_trial = tuner.get("max_epochs") if "max_epochs" in tuner else trainer.get("epochs")
    job.executions = trainer.get("executions_per_trial", 1)



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
        return int_or_none(data["hydra"]["job"]["num"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return int_or_none(folder.name)


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
                return one_line(text[len("error: "):] if text.startswith("error: ") else text)
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


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None



def relative_path(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base)) or "."
    except ValueError:
        return str(path)



def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def one_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return (lines[0] if lines else "").strip()[:300]

