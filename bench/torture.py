"""Kill-and-full-disk torture test of the real CLI: nothing is lost, nothing is half-written.

Kill phase (always): each round starts a tiny search (random or Hyperband) in a fresh run
folder, SIGKILLs it at a random moment (uniformly over a typical run, right after
``trials.db`` appears, or while the best model is being exported), resumes it with
``python -m archsearch resume=<run>`` (killing some resumes too) until a resume exits 0,
and checks the result against an uninterrupted reference run of the same config and seed.

Full-disk phase (``--disk``; needs root for ``mount -t tmpfs``, skipped with a reason
otherwise): the search runs on a small tmpfs that is filled to the brim (or to a few MB)
at a random moment, while it runs or before a resume.  The search must stop with exit
status 2 and ``no space left on ...`` (or finish, exit 0, if it was done first): never a
signal death, never a traceback.  The filler is then deleted and the search resumed.

After every kill, every full-disk exit and every finished round the run folder is checked:

* the store (a copy, so the check changes nothing) is consistent: ``TrialStore.problems() == []``;
* each of ``best/model.keras`` (a zip whose CRCs check), ``best/hparams.yaml`` (trial, score,
  values), ``best/summary.txt`` (non-empty), ``best/conf/model/best.yaml``, ``trials.csv``
  (header, full rows) and the trials' ``*.weights.h5`` (readable HDF5) is absent or complete;
  leftover temporaries (``.<stem>.tmp-<pid><suffix>``, ``*.tmp.weights.h5``) are counted apart;
* at the end of a round: every trial finished, the same trial ids, values, budgets and
  parents as the reference (the plan is there exactly once), the same objective values to
  ``--tolerance`` (else "not reproduced"), ``trials.csv`` has one row per stored trial, and
  trials a full disk stopped (failure_kind ``disk``) were retried.

    python bench/torture.py                        # 8 kill rounds, 3-5 minutes on 2 cores
    python bench/torture.py --kills 20 --seed 0
    sudo python bench/torture.py --kills 0 --disk  # only the full-disk phase (4 rounds)
    python bench/torture.py --kills 4 --disk --fills 3 --keep   # keep the run folders to look at

Exit status 1 when a trial was lost, a file was truncated, a store was inconsistent, or a
search died of a signal, printed a traceback or exited with an unexpected status.
"""

from __future__ import annotations

import argparse
import csv
import errno
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from archsearch.core.store import CSV_COLUMNS, TrialStore  # noqa: E402  (no TensorFlow: a light import)
from archsearch.core.trial import DONE  # noqa: E402

COMMON = ["data.num_samples=160", "data.image_size=16", "trainer.keep_top_models=3"]
TUNERS = {
    "random": ["tuner=random", "tuner.max_trials=4", "trainer.epochs=3"],
    # brackets 3@1 -> 1@3 and 2@3: 6 trials, 11 epochs
    "hyperband": ["tuner=hyperband", "tuner.max_epochs=3", "tuner.factor=3", "tuner.min_epochs=1"],
}
NO_SPACE = "no space left on"
TEMPORARY = re.compile(r"^\..+\.tmp-\d+.*$|.*\.tmp\.weights\.h5$")
EXPORTS = ("best/model.keras", "best/hparams.yaml", "best/summary.txt", "best/conf/model/best.yaml", "trials.csv")


# --------------------------------------------------------------------------- bookkeeping
@dataclass
class Totals:
    rounds: int = 0
    kills: int = 0
    kills_missed: int = 0  # the search finished before the planned kill
    fills: int = 0
    disk_exits: int = 0  # exit 2 with "no space left on"
    resumes: int = 0
    restarts: int = 0  # killed before its config was stored: started again with the original command
    trials: int = 0
    lost: int = 0
    truncated: int = 0
    temporaries_seen: int = 0
    temporaries_left: int = 0
    not_reproduced: int = 0
    plan_differs: int = 0
    store_problems: int = 0
    disk_trials: int = 0
    disk_not_retried: int = 0
    advice_refused: int = 0  # "free space and resume=..." but that resume is refused
    unexpected_exits: int = 0
    signal_deaths: int = 0
    tracebacks: int = 0
    details: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.details.append(text)
        print(f"    ! {text}", flush=True)

    @property
    def failed(self) -> bool:
        return bool(self.lost or self.truncated or self.store_problems or self.unexpected_exits or self.signal_deaths
                    or self.tracebacks or self.plan_differs or self.disk_not_retried)


@dataclass
class Result:
    rc: int | None
    stdout: str
    stderr: str
    wall: float
    killed: bool = False
    filled: bool = False


# --------------------------------------------------------------------------- running the CLI
def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def run_cli(args: list[str], logs: Path, name: str, timeout: float, kill_at: float | None = None,
            kill_when: Callable[[], bool] | None = None,
            trigger: tuple[Callable[[float], bool], Callable[[], None]] | None = None) -> Result:
    """Run ``python -m archsearch args``; SIGKILL it after ``kill_at`` s or as soon as ``kill_when()``;
    ``trigger=(when, action)`` runs ``action()`` once, as soon as ``when(elapsed seconds)`` holds
    (filling the disk), and lets the search go on."""
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"{name}.out", logs / f"{name}.err"
    start = time.monotonic()
    killed = filled = False
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "archsearch", *args], cwd=REPO, env=cli_env(),
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            while proc.poll() is None:
                elapsed = time.monotonic() - start
                if elapsed > timeout:
                    proc.kill()
                    proc.wait()
                    raise TimeoutError(f"{name}: no exit after {timeout:.0f} s (see {err_path})")
                if (kill_at is not None and elapsed >= kill_at) or (kill_when is not None and kill_when()):
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    killed = True
                    break
                if trigger is not None and not filled and trigger[0](elapsed):
                    trigger[1]()
                    filled = True
                time.sleep(0.004 if kill_when is not None or trigger is not None else 0.02)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wall = time.monotonic() - start
    return Result(proc.returncode, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"), wall,
                  killed=killed and proc.returncode == -signal.SIGKILL, filled=filled)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "<no output>"


def traceback_summary(text: str) -> str:
    """Where the first traceback on stderr came from and what it raised, on one line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line)
    context = lines[start - 1].strip() if start and lines[start - 1].startswith("Exception ignored") else ""
    frames = [line.strip() for line in lines[start + 1:] if line.startswith("  File ")]
    error = next((line.strip() for line in lines[start + 1:] if line and not line.startswith(" ")), "?")
    where = frames[-1] if frames else "?"
    return " | ".join(x for x in (context, where, error[:200]) if x) + f" ({text.count('Traceback (most')} in all)"


def judge_exit(res: Result, what: str, totals: Totals, allowed: tuple[int, ...] = (0,),
               message_for_2: str | None = None) -> None:
    """Signal deaths, tracebacks and unexpected exit statuses are engine bugs."""
    if "Traceback (most recent call last)" in res.stderr or "Traceback (most recent call last)" in res.stdout:
        totals.tracebacks += 1
        totals.note(f"{what}: traceback on stderr: {traceback_summary(res.stderr + res.stdout)}")
    if res.killed:
        return
    if res.rc is not None and res.rc < 0:
        totals.signal_deaths += 1
        totals.note(f"{what}: died of signal {-res.rc} ({signal.Signals(-res.rc).name}); its last line on stderr: "
                    f"{last_line(res.stderr)[:200]}")
    elif res.rc not in allowed:
        totals.unexpected_exits += 1
        totals.note(f"{what}: exit status {res.rc}; stderr: {last_line(res.stderr)}")
    elif res.rc == 2 and message_for_2 is not None and message_for_2 not in res.stderr:
        totals.unexpected_exits += 1
        totals.note(f"{what}: exit status 2 without {message_for_2!r}; stderr: {last_line(res.stderr)}")


def needs_restart(folder: Path, stderr: str = "") -> tuple[bool, list[str]]:
    """A search stopped before it stored its config cannot be resumed: its original command starts it
    again (as the engine's own message says).  Returns (restart?, extra overrides)."""
    if not (folder / "trials.db").exists():
        return True, []
    if "holds no stored config" in stderr:
        return True, ["overwrite=true"]
    return False, []


# --------------------------------------------------------------------------- checks
def copy_store(folder: Path, scratch: Path) -> TrialStore | None:
    """A copy of the run's store (and its WAL), so checking it never changes the run folder."""
    db = folder / "trials.db"
    if not db.exists():
        return None
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    for suffix in ("", "-wal"):
        src = folder / f"trials.db{suffix}"
        if src.exists():
            shutil.copyfile(src, scratch / src.name)
    return TrialStore(scratch / "trials.db")


def find_temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and TEMPORARY.match(p.name))


def file_problem(path: Path, rel: str, store_ids: set[int] | None, final: bool) -> str | None:
    """Why ``path`` (which exists) is not a complete file of its kind, or None."""
    try:
        if rel == "best/model.keras":
            if not zipfile.is_zipfile(path):
                return "not a zip file"
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
                names = zf.namelist()
            if bad is not None:
                return f"member {bad} fails its CRC"
            if "config.json" not in names:
                return f"no config.json among {names}"
        elif rel == "best/hparams.yaml":
            import yaml

            data = yaml.safe_load(path.read_text())
            if not isinstance(data, dict) or not {"trial", "score", "values"} <= set(data):
                return f"not a mapping with trial, score and values: {str(data)[:120]!r}"
        elif rel == "best/conf/model/best.yaml":
            import yaml

            data = yaml.safe_load(path.read_text())
            if not isinstance(data, dict) or "space" not in data:
                return "not a mapping with a space"
        elif rel == "best/summary.txt":
            text = path.read_text()
            if not text.strip() or "Parameters:" not in text:
                return f"empty or incomplete ({len(text)} characters)"
        elif rel == "trials.csv":
            with path.open(newline="") as fh:
                rows = list(csv.reader(fh))
            if not rows or tuple(rows[0][: len(CSV_COLUMNS)]) != CSV_COLUMNS:
                return "no header"
            width = len(rows[0])
            short = [i for i, r in enumerate(rows[1:], 1) if len(r) != width]
            if short:
                return f"rows {short} have the wrong number of fields"
            ids = [int(r[0]) for r in rows[1:]]
            if len(ids) != len(set(ids)):
                return "a trial is listed twice"
            if store_ids is not None:
                if not set(ids) <= store_ids:
                    return f"lists trials {sorted(set(ids) - store_ids)} the store does not have"
                if final and set(ids) != store_ids:
                    return f"{len(ids)} rows for {len(store_ids)} stored trials"
        elif rel.endswith(".weights.h5"):
            import h5py

            def read(name, obj):
                if isinstance(obj, h5py.Dataset):
                    obj[()]

            with h5py.File(path, "r") as fh:
                fh.visititems(read)
    except Exception as exc:  # any failure to read it is the finding
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class Snapshot:
    """What the store held at one check: every trial as a dict (``TrialStore.rows``); None if no store."""

    rows: dict[int, dict[str, Any]] | None


def check_folder(folder: Path, scratch: Path, totals: Totals, what: str, final: bool = False) -> Snapshot:
    """Store consistency, export files absent-or-complete, temporaries."""
    store = None
    rows: dict[int, dict[str, Any]] | None = None
    try:
        store = copy_store(folder, scratch)
        if store is not None:
            problems = store.problems()
            if problems:
                totals.store_problems += 1
                totals.note(f"{what}: store problems: {problems}")
            rows = {r["id"]: r for r in store.rows()}
    except sqlite3.DatabaseError as exc:
        totals.store_problems += 1
        totals.note(f"{what}: trials.db cannot be read: {exc}")
    finally:
        if store is not None:
            store.close()
    store_ids = None if rows is None else set(rows)
    files = [(folder / rel, rel) for rel in EXPORTS]
    files += [(p, p.name) for p in sorted(folder.glob("trials/trial_*/*.weights.h5")) if not TEMPORARY.match(p.name)]
    for path, rel in files:
        if path.exists():
            problem = file_problem(path, rel, store_ids, final)
            if problem:
                totals.truncated += 1
                totals.note(f"{what}: {path.relative_to(folder)} is truncated or incomplete: {problem}")
    temporaries = find_temporaries(folder) if folder.exists() else []
    totals.temporaries_seen += len(temporaries)
    if final:
        totals.temporaries_left += len(temporaries)
        if temporaries:
            print(f"    temporaries left in the finished run: {[str(p.relative_to(folder)) for p in temporaries]}")
        completed = rows is not None and any(r["status"] == "completed" for r in rows.values())
        for rel in ("best/model.keras", "best/hparams.yaml", "best/summary.txt", "trials.csv"):
            if completed and not (folder / rel).exists():
                totals.truncated += 1
                totals.note(f"{what}: {rel} is missing after the search finished")
    return Snapshot(rows)


def disk_trial_ids(snap: Snapshot) -> set[int]:
    return {i for i, r in (snap.rows or {}).items() if r.get("failure_kind") == "disk" and r["status"] not in DONE}


def compare_with_reference(snap: Snapshot, ref: dict[str, Any], folder: Path, totals: Totals, what: str,
                           tolerance: float) -> int:
    """Lost trials, a different plan and values that do not repeat; returns the number of trials checked."""
    rows = snap.rows or {}
    lost = not_reproduced = differs = 0
    for tid, want in ref["rows"].items():
        got = rows.get(tid)
        if got is None:
            lost += 1
            totals.note(f"{what}: trial {tid} ({want['status']} in the reference) is missing")
            continue
        if got["status"] not in DONE or (want["status"] == "completed" and got["status"] != "completed"):
            lost += 1
            totals.note(f"{what}: trial {tid} is {got['status']} (failure_kind={got.get('failure_kind')}, "
                        f"error={str(got.get('error'))[:160]!r}); the reference has it {want['status']}")
            continue
        for key in ("hparams", "budget", "parent", "initial_budget"):
            if got[key] != want[key]:
                differs += 1
                totals.note(f"{what}: trial {tid} {key} {got[key]!r} differs from the reference's {want[key]!r}")
                break
        else:
            a, b = got["value"], want["value"]
            if got["status"] != want["status"] or not close(a, b, tolerance):
                not_reproduced += 1
                totals.note(f"{what}: trial {tid} not reproduced: {got['status']} {a!r} vs reference "
                            f"{want['status']} {b!r}")
                continue
            # Every final metric (losses too: far finer than an accuracy on 32 samples) and the epochs trained.
            wrong = {k: (got["metrics"].get(k), v) for k, v in want["metrics"].items()
                     if not close(got["metrics"].get(k), v, tolerance)}
            if got["epochs_done"] != want["epochs_done"]:
                wrong["epochs_done"] = (got["epochs_done"], want["epochs_done"])
            if wrong:
                not_reproduced += 1
                totals.note(f"{what}: trial {tid} not reproduced: (got, reference) {wrong}")
    extra = sorted(set(rows) - set(ref["rows"]))
    if extra:
        differs += len(extra)
        totals.note(f"{what}: trials {extra} are not in the reference's plan")
    best = read_best(folder)
    if ref["best"] is not None and best is not None and (
            best.get("trial") != ref["best"].get("trial") or abs(best.get("score", 0) - ref["best"].get("score", 0))
            > tolerance):
        not_reproduced += 1
        totals.note(f"{what}: best/hparams.yaml names trial {best.get('trial')} ({best.get('score')}); the reference "
                    f"names trial {ref['best'].get('trial')} ({ref['best'].get('score')})")
    totals.lost += lost
    totals.not_reproduced += not_reproduced
    totals.plan_differs += differs
    return len(ref["rows"])


def close(a: Any, b: Any, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=tolerance, abs_tol=tolerance) or (a != a and b != b)


def read_best(folder: Path) -> dict[str, Any] | None:
    import yaml

    try:
        data = yaml.safe_load((folder / "best" / "hparams.yaml").read_text())
        return data if isinstance(data, dict) else None
    except (OSError, yaml.YAMLError):
        return None


# --------------------------------------------------------------------------- references
def reference(tuner: str, seed: int, work: Path, timeout: float, totals: Totals) -> dict[str, Any]:
    folder = work / f"reference-{tuner}"
    res = run_cli(search_args(tuner, seed, folder), work / "logs", f"reference-{tuner}", timeout)
    judge_exit(res, f"reference {tuner}", totals)
    if res.rc != 0:
        raise SystemExit(f"the uninterrupted reference search ({tuner}) failed (exit {res.rc}): "
                         f"{last_line(res.stderr)}")
    store = TrialStore(folder / "trials.db")
    rows = {r["id"]: r for r in store.rows()}
    store.close()
    done = sum(1 for r in rows.values() if r["status"] in DONE)
    print(f"reference {tuner:9s}: {len(rows)} trials ({done} done) in {res.wall:.1f} s", flush=True)
    return {"rows": rows, "wall": res.wall, "best": read_best(folder)}


def search_args(tuner: str, seed: int, folder: Path) -> list[str]:
    return [*TUNERS[tuner], *COMMON, f"tuner.seed={seed}", f"trainer.seed={seed}", f"hydra.run.dir={folder}"]


# --------------------------------------------------------------------------- kill phase
def kill_moment(rng: random.Random, wall: float, folder: Path) -> tuple[str, float | None, Callable[[], bool] | None]:
    mode = rng.choices(["uniform", "store-appears", "exporting"], weights=[7, 2, 1])[0]
    if mode == "uniform":
        return f"after {0:.0f}-{wall:.0f} s", rng.uniform(0.0, wall), None
    if mode == "store-appears":
        delay = rng.choice([0.0, 0.0, 0.01, 0.05])
        seen: list[float] = []

        def store_appeared() -> bool:
            if not seen and (folder / "trials.db").exists():
                seen.append(time.monotonic())
            return bool(seen) and time.monotonic() - seen[0] >= delay

        return f"{delay * 1000:.0f} ms after trials.db appears", None, store_appeared

    def exporting() -> bool:  # a temporary export file exists: the kill lands mid-write
        for sub in (folder, folder / "best"):
            try:
                if any(e.name.startswith(".") and ".tmp-" in e.name for e in os.scandir(sub)):
                    return True
            except OSError:
                pass
        return False

    return "while a best/ or trials.csv file is written", None, exporting


def kill_round(n: int, tuner: str, ref: dict[str, Any], args, rng: random.Random, work: Path, totals: Totals) -> None:
    folder = work / f"kill-{n:02d}-{tuner}"
    logs = work / "logs" / folder.name
    scratch = work / "scratch"
    totals.rounds += 1
    before = (totals.kills, totals.resumes, totals.restarts, totals.lost, totals.truncated, totals.not_reproduced)
    wall = ref["wall"]
    label, at, when = kill_moment(rng, wall, folder)
    first = run_cli(search_args(tuner, args.seed, folder), logs, "start", args.timeout, kill_at=at, kill_when=when)
    judge_exit(first, f"round {n} start", totals)
    story = [f"start killed {label}" + (f" (at {first.wall:.2f} s)" if first.killed else ": finished first")]
    last = first
    if first.killed:
        totals.kills += 1
        check_folder(folder, scratch, totals, f"round {n} after kill 1")
    else:
        totals.kills_missed += 1
    attempt = 0
    resume_kills = 0
    while last.rc != 0:
        attempt += 1
        if attempt > args.max_resumes:
            totals.unexpected_exits += 1
            totals.note(f"round {n}: still not finished after {args.max_resumes} resumes")
            break
        restart, extra = needs_restart(folder, last.stderr)
        cmd = search_args(tuner, args.seed, folder) + extra if restart else [f"resume={folder}"]
        kill_this = resume_kills < args.max_resume_kills and rng.random() < args.resume_kill_probability
        at = rng.uniform(0.0, wall) if kill_this else None
        res = run_cli(cmd, logs, f"resume-{attempt}", args.timeout, kill_at=at)
        if restart:
            totals.restarts += 1
        else:
            totals.resumes += 1
        kind = "restart" if restart else "resume"
        # A resume right after a kill before the config was stored is refused with status 2 (and a hint).
        allowed = (0, 2) if "holds no stored config" in res.stderr else (0,)
        judge_exit(res, f"round {n} {kind} {attempt}", totals, allowed=allowed)
        if res.killed:
            resume_kills += 1
            totals.kills += 1
            story.append(f"{kind} killed at {res.wall:.2f} s")
            check_folder(folder, scratch, totals, f"round {n} after {kind} {attempt} was killed")
        elif res.rc == 0:
            story.append(f"{kind} finished in {res.wall:.1f} s")
        else:
            story.append(f"{kind} exit {res.rc}: {last_line(res.stderr)[:100]}")
            # A crash or a wrong status is counted, and the search resumed like after a kill (what it
            # left must still be whole); the same failure twice in a row ends the round.
            if res.rc not in allowed and last.rc == res.rc and not last.killed:
                break
        last = res
    snap = check_folder(folder, scratch, totals, f"round {n} finished", final=last.rc == 0)
    if last.rc == 0:
        totals.trials += compare_with_reference(snap, ref, folder, totals, f"round {n}", args.tolerance)
    after = (totals.kills, totals.resumes, totals.restarts, totals.lost, totals.truncated, totals.not_reproduced)
    d = [a - b for a, b in zip(after, before)]
    print(f"kill round {n:2d} {tuner:9s}: {'; '.join(story)} | kills {d[0]} resumes {d[1]} restarts {d[2]} "
          f"lost {d[3]} truncated {d[4]} not reproduced {d[5]}", flush=True)
    if not args.keep and not totals.failed:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- full-disk phase
def fill(mount: Path, leave: int = 0) -> int:
    """Write ``mount/filler.bin`` until the device is full, then give back ``leave`` bytes; returns its size."""
    path = mount / "filler.bin"
    size = 0
    with open(path, "ab", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * chunk
            while True:
                try:
                    written = fh.write(block)
                except OSError as exc:
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                        raise
                    break
                size += written or 0
                if not written:
                    break
        if leave:
            size = max(0, fh.tell() - leave)
            fh.truncate(size)
    return size


def unfill(mount: Path) -> None:
    (mount / "filler.bin").unlink(missing_ok=True)


def advised(res: Result | None) -> bool:
    """The search stopped for a full disk and told the user to resume."""
    return res is not None and res.rc == 2 and NO_SPACE in res.stderr and "resume=" in res.stderr


def advice(res: Result) -> str:
    line = next(line for line in res.stderr.splitlines() if NO_SPACE in line)
    return line[line.find("free space"):]


def can_mount(size: str) -> tuple[bool, str]:
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return False, "not a POSIX system"
    if os.geteuid() != 0:
        return False, "not root (mount -t tmpfs needs root; run with sudo)"
    if shutil.which("mount") is None:
        return False, "no mount command"
    probe = Path(tempfile.mkdtemp(prefix="archsearch-tmpfs-probe-"))
    try:
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(probe)], capture_output=True,
                             text=True)
        if res.returncode != 0:
            return False, f"mount -t tmpfs failed: {' '.join(res.stderr.split()) or res.returncode}"
        subprocess.run(["umount", str(probe)], check=False)
        return True, ""
    finally:
        probe.rmdir()


def disk_round(n: int, tuner: str, ref: dict[str, Any], args, rng: random.Random, work: Path, totals: Totals) -> None:
    mount = Path(tempfile.mkdtemp(prefix=f"archsearch-tmpfs-{n:02d}-"))
    logs = work / "logs" / f"disk-{n:02d}-{tuner}"
    scratch = work / "scratch"
    totals.rounds += 1
    before = (totals.fills, totals.disk_exits, totals.resumes, totals.lost, totals.truncated, totals.not_reproduced)
    story: list[str] = []
    mounted = False
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.tmpfs_size}", "tmpfs", str(mount)], check=True,
                       capture_output=True, text=True)
        mounted = True
        folder = mount / "run"
        wall = ref["wall"]
        seen_disk: set[int] = set()
        fills_left = args.fills_per_round
        last: Result | None = None
        attempt = 0
        while last is None or last.rc != 0:
            attempt += 1
            if attempt > args.max_resumes:
                totals.unexpected_exits += 1
                totals.note(f"disk round {n}: still not finished after {args.max_resumes} runs")
                break
            restart, extra = needs_restart(folder, last.stderr if last else "")
            if last is not None and advised(last) and not (folder / "trials.db").exists():
                totals.advice_refused += 1
                totals.note(f"disk round {n}: the search said {advice(last)!r}, but the run folder "
                            f"{'is gone' if not folder.exists() else 'holds no trials.db'}")
            cmd = search_args(tuner, args.seed, folder) + extra if (last is None or restart) else [f"resume={folder}"]
            kind = "start" if last is None else ("restart" if restart else "resume")
            if last is not None:
                totals.restarts += restart
                totals.resumes += not restart
            trigger = None
            leave = 0
            when = "none"
            if fills_left > 0:
                fills_left -= 1
                leave = rng.choice([0, 0, rng.randrange(1 << 20, 3 << 20), rng.randrange(3 << 20, 8 << 20)])
                mode = rng.choices(["before", "uniform", "mid-write"], weights=[0 if last is None else 3, 4, 3])[0]
                if mode == "before":
                    fill(mount, leave)  # the disk is already full when the resume starts
                    totals.fills += 1
                    when = "before the resume"
                elif mode == "uniform":
                    at = rng.uniform(0.0, wall)
                    trigger = (lambda elapsed, at=at: elapsed >= at, lambda leave=leave: fill(mount, leave))
                    when = f"at {at:.1f} s"
                else:  # while a checkpoint or an export file is being written: the write itself meets ENOSPC
                    leave = 0
                    skip = rng.randrange(0, 4)
                    state = {"previous": set(), "appeared": 0}

                    def writing(elapsed: float, skip=skip, state=state) -> bool:
                        try:
                            names = {str(p) for p in folder.rglob("*") if TEMPORARY.match(p.name)}
                        except OSError:
                            return False
                        state["appeared"] += len(names - state["previous"])
                        state["previous"] = names
                        return bool(names) and state["appeared"] > skip

                    trigger = (writing, lambda leave=leave: fill(mount, leave))
                    when = f"while temporary file {skip + 1} is written"
            res = run_cli(cmd, logs, f"{kind}-{attempt}", args.timeout, trigger=trigger)
            if res.filled:
                totals.fills += 1
            judge_exit(res, f"disk round {n} {kind} {attempt}", totals, allowed=(0, 2), message_for_2=NO_SPACE
                       if "holds no stored config" not in res.stderr else None)
            if res.rc == 2 and NO_SPACE in res.stderr:
                totals.disk_exits += 1
            if kind == "resume" and advised(last) and "holds no stored config" in res.stderr:
                totals.advice_refused += 1
                totals.note(f"disk round {n}: the search said {advice(last)!r}, but that resume is refused: "
                            f"{last_line(res.stderr)[last_line(res.stderr).find('holds'):][:90]}...")
            free = shutil.disk_usage(mount).free
            story.append(f"{kind} (fill {when}, {leave >> 10} KiB left) exit {res.rc} in {res.wall:.1f} s")
            snap = check_folder(folder, scratch, totals, f"disk round {n} after {kind} {attempt} (free {free} B)")
            seen_disk |= disk_trial_ids(snap)
            unfill(mount)
            if res.rc not in (0, 2) and last is not None and last.rc == res.rc:
                break  # the same crash or wrong status twice in a row (each was counted, the folder checked)
            last = res
        finished = last is not None and last.rc == 0
        snap = check_folder(folder, scratch, totals, f"disk round {n} finished", final=finished)
        if last is not None and last.rc == 0:
            totals.trials += compare_with_reference(snap, ref, folder, totals, f"disk round {n}", args.tolerance)
            rows = snap.rows or {}
            totals.disk_trials += len(seen_disk)
            for tid in sorted(seen_disk):
                r = rows.get(tid)
                if r is None or r["status"] not in DONE or (r["status"] == "failed" and r["failure_kind"] == "disk"):
                    totals.disk_not_retried += 1
                    totals.note(f"disk round {n}: trial {tid}, stopped by the full disk, was not retried: "
                                f"{None if r is None else r['status']}")
            if any(r["status"] == "failed" and r["failure_kind"] == "disk" for r in rows.values()):
                totals.disk_not_retried += 1
                totals.note(f"disk round {n}: a trial is recorded failed because of the disk")
        if (args.keep or totals.failed) and folder.exists():  # the tmpfs goes away: keep a copy to look at
            shutil.copytree(folder, work / f"disk-{n:02d}-{tuner}", dirs_exist_ok=True)
    except subprocess.CalledProcessError as exc:
        totals.note(f"disk round {n}: mount failed: {exc.stderr.strip()}")
    finally:
        if mounted:
            unfill(mount)
            subprocess.run(["umount", str(mount)], check=False)
        try:
            mount.rmdir()
        except OSError:
            pass
    after = (totals.fills, totals.disk_exits, totals.resumes, totals.lost, totals.truncated, totals.not_reproduced)
    d = [a - b for a, b in zip(after, before)]
    print(f"disk round {n:2d} {tuner:9s}: {'; '.join(story)} | fills {d[0]} disk-full exits {d[1]} resumes {d[2]} "
          f"lost {d[3]} truncated {d[4]} not reproduced {d[5]}", flush=True)


# --------------------------------------------------------------------------- main
def table(rows: list[tuple[str, Totals]]) -> str:
    columns = [("rounds", "rounds"), ("kills (SIGKILL)", "kills"), ("kills missed (finished first)", "kills_missed"),
               ("disk fills", "fills"), ("exits 2 'no space left on'", "disk_exits"), ("resumes", "resumes"),
               ("restarts (stopped before its config was stored)", "restarts"), ("trials checked", "trials"),
               ("trials lost (must be 0)", "lost"), ("truncated files (must be 0)", "truncated"),
               ("leftover temporaries seen", "temporaries_seen"),
               ("temporaries left in finished runs", "temporaries_left"),
               ("not reproduced", "not_reproduced"), ("plan differs (must be 0)", "plan_differs"),
               ("store problems (must be 0)", "store_problems"), ("trials stopped by a full disk", "disk_trials"),
               ("  of those not retried (must be 0)", "disk_not_retried"),
               ("'resume=' advice that then fails", "advice_refused"),
               ("unexpected exits (must be 0)", "unexpected_exits"), ("signal deaths (must be 0)", "signal_deaths"),
               ("tracebacks (must be 0)", "tracebacks")]
    head = ["", *(name for name, _ in rows)]
    body = [[label, *(str(getattr(t, a)) for _, t in rows)] for label, a in columns]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = lambda r: "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--kills", type=int, default=8, help="kill rounds (each: one killed start, then resumes)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments and of the searches")
    p.add_argument("--tuners", default="random,hyperband", help="comma-separated, from: " + ", ".join(TUNERS))
    p.add_argument("--disk", action="store_true", help="also run the full-disk phase (root, tmpfs)")
    p.add_argument("--fills", type=int, default=4, help="full-disk rounds (with --disk)")
    p.add_argument("--fills-per-round", type=int, default=2, help="times the disk fills up in one round")
    p.add_argument("--tmpfs-size", default="64m", help="size of the tmpfs of each full-disk round")
    p.add_argument("--max-resume-kills", type=int, default=2, help="resumes killed at most per round")
    p.add_argument("--resume-kill-probability", type=float, default=0.4)
    p.add_argument("--max-resumes", type=int, default=8, help="give up a round after this many resumes")
    p.add_argument("--tolerance", type=float, default=1e-6, help="objective values must repeat to this")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one search process may take")
    p.add_argument("--workdir", type=Path, help="where the run folders go (default: a new temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the run folders and logs")
    args = p.parse_args(argv)

    tuners = [t.strip() for t in args.tuners.split(",") if t.strip()]
    unknown = [t for t in tuners if t not in TUNERS]
    if unknown or not tuners:
        p.error(f"unknown tuners {unknown}; choose from {', '.join(TUNERS)}")
    disk_ok, why = can_mount(args.tmpfs_size) if args.disk else (False, "")
    if args.disk and not disk_ok:
        print(f"full-disk phase skipped: {why}", flush=True)
    if args.kills <= 0 and not disk_ok:
        print("nothing to do")
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="archsearch-torture-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    print(f"archsearch torture: seed {args.seed}, work folder {work}", flush=True)
    started = time.monotonic()
    ref_totals = Totals()
    refs = {t: reference(t, args.seed, work, args.timeout, ref_totals) for t in tuners}
    results: list[tuple[str, Totals]] = []
    if args.kills > 0:
        kills = Totals()
        kills.tracebacks, kills.signal_deaths = ref_totals.tracebacks, ref_totals.signal_deaths
        for n in range(1, args.kills + 1):
            tuner = rng.choice(tuners)
            kill_round(n, tuner, refs[tuner], args, rng, work, kills)
        results.append(("kill", kills))
    if disk_ok and args.fills > 0:
        disk = Totals()
        for n in range(1, args.fills + 1):
            tuner = rng.choice(tuners)
            disk_round(n, tuner, refs[tuner], args, rng, work, disk)
        results.append(("full disk", disk))
    elif args.disk:
        results.append(("full disk (skipped)", Totals()))
    print(f"\nfinished in {time.monotonic() - started:.0f} s\n")
    print(table(results))
    failed = any(t.failed for _, t in results)
    findings = [d for _, t in results for d in t.details]
    if findings:
        print("\nfindings:")
        for d in findings:
            print(f"  - {d}")
    if failed or args.keep:
        print(f"\nrun folders and logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("\nFAILED: see the findings above" if failed else "\nOK: no trial lost, no truncated file")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
