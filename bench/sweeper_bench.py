"""Idle slots: archsearch's steady-state Hydra sweeper against batch mode, on jobs of random durations (issue 27).

The same 16 jobs (by default) of the example Hydra app (examples/hydra_app), whose durations are drawn at random
(seeded, 1-6 s: ``trainer.seconds_per_epoch`` x 4 epochs), run with 4 slots in two ways, one after the other:

(a) batch mode: Hydra's basic sweeper with the joblib launcher, ``hydra.sweeper.max_batch_size=4
    hydra.launcher.n_jobs=4``. It launches 4 jobs and waits for the slowest before the next 4, which is what
    every other sweeper plugin does (Optuna's, Ax's, Nevergrad's: the Launcher API takes a batch);
(b) steady state: ``hydra/sweeper=archsearch hydra.sweeper.parallel_trials=4`` through the same joblib launcher,
    ``tuner={name: grid, shuffle: true}`` over the same durations (each once), each slot refilled the moment its job ends.

Measured from the jobs' own wall-clock timestamps (``job_times.json`` in each job folder): the sweep's span
(first job start to last job end), the busy slot time (the jobs' durations summed) and the idle slot fraction
``1 - busy / (slots x span)``. The sweep process's own wall time (Python, Hydra, the launcher's workers, the
sweeper's bookkeeping) is given apart. Two rows are computed, not measured, from the requested durations with no
overhead at all: batch mode (each batch lasts its longest job) and perfect refill (greedy list scheduling), the
floor a steady-state sweeper can reach.

    python bench/sweeper_bench.py                    # both, seed 0: about a minute
    python bench/sweeper_bench.py --mode batch --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "examples" / "hydra_app" / "train.py"
EPOCHS = 4


@dataclass
class Result:
    mode: str
    seed: int
    jobs: int
    busy_s: float
    span_s: float
    idle_fraction: float
    process_wall_s: float | None  # None for the computed rows


def draw_durations(seed: int, jobs: int, low: float, high: float) -> list[float]:
    """``jobs`` distinct durations in [low, high] seconds, to 10 ms, in random order (drawn without replacement,
    so a grid tuner's one trial per value runs them all)."""
    grid = np.arange(round(low * 100), round(high * 100) + 1) / 100
    return [float(d) for d in np.random.default_rng(seed).choice(grid, size=jobs, replace=False)]


def duration_override(durations: list[float]) -> str:
    """One sweep over ``trainer.seconds_per_epoch``: a job per duration (the basic sweeper) or a choice each
    value of which a grid tuner runs once (archsearch)."""
    return "trainer.seconds_per_epoch=choice(" + ",".join(f"{d / EPOCHS:.4f}" for d in durations) + ")"


def job_env() -> dict[str, str]:
    """A user's shell: none of a search's variables, this checkout's archsearch (and its Hydra plugin) first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSEARCH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def sweeper_missing() -> str | None:
    """Why Hydra cannot use ``hydra/sweeper=archsearch`` with the app (None: it can), asked the way a user
    would find out: the app's composed sweeper config."""
    done = subprocess.run([sys.executable, str(APP), "hydra/sweeper=archsearch", "--cfg", "hydra", "-p",
                           "hydra.sweeper"], cwd=REPO, env=job_env(), capture_output=True, text=True)
    return None if done.returncode == 0 else done.stderr.strip()[-1500:]


def mode_overrides(mode: str, slots: int, jobs: int, seed: int) -> list[str]:
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={slots}"]
    if mode == "batch":
        return [*launcher, f"hydra.sweeper.max_batch_size={slots}"]
    # shuffle: the whole grid at once, in a seeded order (KerasTuner's grid order proposes a trial's successor
    # only when it ends, which would keep most slots empty)
    return [*launcher, "hydra/sweeper=archsearch", "hydra.sweeper.tuner={name: grid, shuffle: true}",
            f"hydra.sweeper.max_trials={jobs}",
            f"hydra.sweeper.parallel_trials={slots}", "hydra.sweeper.objective=val_loss", f"hydra.sweeper.seed={seed}"]


def run_sweep(mode: str, durations: list[float], slots: int, seed: int, folder: Path) -> tuple[list[dict], float]:
    """The multirun as a user types it; each job's start/end and the process's wall time."""
    command = [sys.executable, str(APP), "-m", *mode_overrides(mode, slots, len(durations), seed),
               f"trainer.epochs={EPOCHS}", duration_override(durations), f"hydra.sweep.dir={folder}"]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=job_env(), capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{mode} sweep failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    times = [json.loads(path.read_text()) for path in sorted(folder.rglob("job_times.json"))]
    if len(times) != len(durations) or any(t["status"] != "completed" for t in times):
        raise SystemExit(f"{mode} sweep: expected {len(durations)} completed jobs, found "
                         f"{[t['status'] for t in times]} in {folder}")
    return times, wall


def measured(mode: str, seed: int, times: list[dict], slots: int, wall: float) -> Result:
    busy = sum(t["end"] - t["start"] for t in times)
    span = max(t["end"] for t in times) - min(t["start"] for t in times)
    return Result(mode, seed, len(times), busy, span, 1 - busy / (slots * span), wall)


def computed(mode: str, seed: int, durations: list[float], slots: int) -> Result:
    """Batch mode's and perfect refill's span for ``durations`` in this order, with no overhead."""
    if mode == "batch (computed)":
        span = sum(max(durations[i:i + slots]) for i in range(0, len(durations), slots))
    else:
        free = [0.0] * slots  # each slot's next free moment; a job starts on the earliest
        for duration in durations:
            heapq.heappush(free, heapq.heappop(free) + duration)
        span = max(free)
    busy = sum(durations)
    return Result(mode, seed, len(durations), busy, span, 1 - busy / (slots * span), None)


def table(results: list[Result], slots: int) -> str:
    rows = [f"| mode | seed | jobs | busy slot s | span s | idle slot fraction ({slots} slots) | sweep process s |",
            "|---|---|---|---|---|---|---|"]
    for r in results:
        wall = "-" if r.process_wall_s is None else f"{r.process_wall_s:.1f}"
        rows.append(f"| {r.mode} | {r.seed} | {r.jobs} | {r.busy_s:.1f} | {r.span_s:.1f} | "
                    f"{100 * r.idle_fraction:.1f}% | {wall} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["both", "batch", "steady"], default="both")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=6.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    modes = ["batch", "steady"] if args.mode == "both" else [args.mode]
    missing = sweeper_missing() if "steady" in modes else None
    if missing:
        raise SystemExit(f"steady-state mode needs archsearch's Hydra sweeper (hydra/sweeper=archsearch, the "
                         f"hydra_plugins.archsearch_sweeper package), which Hydra cannot use here: install "
                         f"archsearch with it (pip install -e .), or run batch mode alone with --mode batch.\n"
                         f"Hydra said:\n{missing}")
    results = []
    for seed in args.seeds:
        durations = draw_durations(seed, args.jobs, args.min_seconds, args.max_seconds)
        results += [computed("batch (computed)", seed, durations, args.slots),
                    computed("perfect refill (computed)", seed, durations, args.slots)]
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                times, wall = run_sweep(mode, durations, args.slots, seed, Path(tmp) / "sweep")
            label = "batch: basic sweeper + joblib" if mode == "batch" else "steady: archsearch sweeper + joblib"
            results.append(measured(label, seed, times, args.slots, wall))
    print(table(results, args.slots))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
