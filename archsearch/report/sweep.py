"""The table of a sweep: every job of a Hydra multirun compared, best first, in ``<sweep dir>/sweep.csv``
and as text.

``python -m archsearch -m model=mlp,cnn tuner=random,hyperband`` runs each combination as its own
search in its own job folder; :func:`summarise` reads them all back from the sweep folder (see
:mod:`archsearch.report.sweep_jobs`), ranks the finished jobs among those with the same objective
(Pareto searches by the hypervolume of their fronts, over one reference point for all of them),
and flags the jobs whose budgets differ, since their comparison is not fair.  Nothing is taken from
the launcher's in-memory return values, so jobs that ran in other processes or on other machines
are summarised the same way.

``python -m archsearch.report.sweep <sweep dir>`` (re)writes the summary of any sweep folder, for
instance one whose sweep was stopped, or one that is still running.  Its :func:`main` is the only
place here that writes to the terminal (a command's front, as ``python -m archsearch.report``'s);
the Hydra callback prints the same table through :mod:`archsearch.cli.console`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.report.sweep_jobs import (
    DONE,
    FAILED,
    INTERRUPTED,
    NO_STORE,
    NO_TRIALS,
    RUNNING,
    STOPPED,
    UNREADABLE,
    Job,
    find_job_folders,
    read_job,
    read_records,
    relative_path,
)

SWEEP_CSV = "sweep.csv"
# Jobs whose epochs spent differ from their group's median by more than this are flagged.
EPOCHS_TOLERANCE = 0.10

CSV_COLUMNS = ("rank", "job", "overrides", "status", "objective", "direction", "best_score", "trials_done",
               "trials_completed", "trials_failed", "trials_pruned", "trials_running", "epochs_spent", "wall_s",
               "job_wall_s", "max_trials", "epochs_per_trial", "executions_per_trial", "budget_flag", "error",
               "folder", "front_size")



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
                "front_size": "" if job.front_size is None else job.front_size,
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

    def write(self) -> str:
        """Write ``sweep.csv``; return what to show: the table and where the CSV went."""
        path = self.write_csv()
        return self.table() + f"\nSweep summary written to {path}"

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
                   "score": _score_text(job),
                   "trials": (f"{job.counts.get('done', 0)}/{job.counts.get('completed', 0)}/"
                              f"{job.counts.get('failed', 0)}") if job.has_trials else "",
                   "epochs": str(job.epochs_spent) if job.has_trials else "",
                   "wall": _duration(job.wall_s if job.wall_s is not None else job.job_wall_s),
                   "budget": "; ".join(job.flags),
                   "folder": relative_path(job.run_folder, self.sweep_dir) if job.run_folder.is_dir() else "(removed)"}
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
    records = read_records(sweep_dir)
    jobs = []
    for folder in find_job_folders(sweep_dir):
        jobs.append(read_job(folder, records.pop(relative_path(folder, sweep_dir), None), ended=ended))
    for relative, record in records.items():  # a job folder without .hydra/, or one its job removed
        jobs.append(read_job(sweep_dir / relative, record, ended=ended))
    jobs.sort(key=lambda j: (j.num is None, j.num if j.num is not None else 0, str(j.folder)))
    common = _common_overrides(jobs)
    notes: list[str] = []
    if stopped_early:
        notes.append("Note: the sweep stopped before all its jobs ended (a job exited with an error, or Ctrl-C); "
                     "jobs that never started are not listed.")

    notes += _score_pareto_jobs(jobs)
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


def _score_pareto_jobs(jobs: list[Job]) -> list[str]:
    """A Pareto job's score is its hypervolume (higher is better), over one reference point shared by every
    job with the same objectives, so that the jobs compare: the one their configs all fix, else one derived
    from all their trials together (:func:`archsearch.core.pareto.derived_reference`); an objective of
    ``scale: log`` counts by its logarithm.  Returns the notes saying which."""
    from archsearch.core.pareto import derived_reference, front_mask, hypervolume, reference_values

    groups: dict[str, list[Job]] = {}
    for job in jobs:
        if job.pareto:
            groups.setdefault(job.objective or "", []).append(job)
    notes = []
    for name, members in groups.items():
        scored = [j for j in members if j.costs]
        if not scored:
            continue
        names = [n for n, _ in members[0].pareto]
        signs = np.array([-1.0 if d == "max" else 1.0 for _, d in members[0].pareto])
        fixed = {json.dumps(j.reference_point, sort_keys=True, default=str) for j in scored}
        reference, source = None, ""
        if len(fixed) == 1 and scored[0].reference_point is not None:
            try:
                reference = signs * np.asarray(reference_values(scored[0].reference_point, names), dtype=float)
                source = "search.reference_point, which every job sets alike"
            except Exception:  # noqa: BLE001 - the job's own config error: derive one instead
                reference = None
        scales = members[0].pareto_objective  # every job of the group counts its objectives alike (the group's name)
        if reference is None:
            reference = derived_reference(scales, np.vstack([np.asarray(j.costs, dtype=float) for j in scored]))
            source = ("derived from every job's trials: each objective's worst value plus 10% of its range; "
                      "give the jobs one search.reference_point to fix it")
        for job in scored:
            costs = np.asarray(job.costs, dtype=float)
            job.best = hypervolume(scales.scaled_costs(costs), scales.scaled_costs(reference))
            job.front_size = int(front_mask(costs).sum())
        point = ", ".join(f"{n}={v:.6g}" for n, v in zip(names, signs * reference))
        notes.append(f"Pareto jobs {name} are ranked by hypervolume (higher is better), each over its trials "
                     f"trained to the full budget, with one reference point ({point}; {source}).")
    return notes


def _score_key(job: Job) -> float:
    """Smaller is better, whatever the job's direction; no score is worst."""
    if job.best is None:
        return math.inf
    return -job.best if job.direction == "max" else job.best



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



def _common_overrides(jobs: list[Job]) -> list[str]:
    if len(jobs) < 2:
        return []
    shared = set(jobs[0].overrides).intersection(*(j.overrides for j in jobs[1:]))
    return [o for o in jobs[0].overrides if o in shared]


def _describe(job: Job, common: list[str]) -> str:
    varying = " ".join(o for o in job.overrides if o not in common)
    return f"{job.label} ({varying})" if varying else job.label


def _score_text(job: Job) -> str:
    if job.best is None:
        return ""
    if job.pareto:
        return f"HV {job.best:.4g}, front {job.front_size}"
    return f"{job.best:.4f}"


def _objective_text(job: Job) -> str:
    if job.pareto:
        return f"{job.objective} (Pareto: hypervolume, higher is better)"
    return f"{job.objective} ({job.direction})"


def _ordered_unique(items) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out



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


# ---------------------------------------------------------------- python -m archsearch.report.sweep
def main(argv: list[str] | None = None) -> int:
    """``python -m archsearch.report.sweep <sweep dir>``: print the summary and (re)write sweep.csv."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m archsearch.report.sweep <sweep dir>   (writes <sweep dir>/sweep.csv)", file=sys.stderr)
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
    print(summary.write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
