"""U-Net benchmark: the val_f1 the default search reaches on ``documents``, and the time per epoch.

Runs the real command line, ``python -m archsearch tuner=hyperband model=unet``
(plus any Hydra overrides given after the options), in a fresh run folder, then
reads its trial store and prints:

* the best trial's val_f1 (the objective of ``model=unet``), its values and budget;
* the trials by status and the epochs trained in all (and the Hyperband plan);
* the wall-clock time of the whole command (start-up, data, search, export);
* seconds per epoch: the median of the *steady* epochs (time between two
  consecutive epochs of one trial, from the store's ``recorded_at``), and the
  mean over all epochs including each trial's model building and first-epoch
  tracing (the sum of trial durations divided by the epochs trained).

    python bench/unet_bench.py                                   # the defaults, as a user runs them
    python bench/unet_bench.py --json unet.json                  # also write the figures as JSON
    python bench/unet_bench.py -- data.num_samples=48 tuner.max_epochs=3   # any overrides, after --

The run folder is kept (``--run-dir``, default a temporary folder that is
printed), so ``best/predictions.png`` can be looked at afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_search(run_dir: Path, overrides: list[str], timeout: float | None) -> tuple[float, int, str]:
    """Run the CLI; returns (wall seconds, exit status, output tail)."""
    command = [sys.executable, "-m", "archsearch", "tuner=hyperband", "model=unet", *overrides,
               f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    print("$ " + " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        status, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        status, output = 124, f"timed out after {timeout} s\n{exc.stdout or ''}"
    return time.perf_counter() - start, status, output


def read_store(run_dir: Path) -> dict:
    """Figures from ``trials.db``: best trial, statuses, epochs, seconds per epoch."""
    from archsearch.core.store import TrialStore

    with TrialStore.open_read_only(run_dir) as store:
        trials, epochs, meta = store.rows(), store.epoch_records(), store.meta()

    statuses: dict[str, int] = {}
    for t in trials:
        statuses[t["status"]] = statuses.get(t["status"], 0) + 1
    completed = [t for t in trials if t["status"] == "completed" and t["value"] is not None]
    best = max(completed, key=lambda t: (t["value"], -t["id"])) if completed else None

    steady: list[float] = []  # seconds between consecutive epochs of one trial
    by_trial: dict[int, list[dict]] = {}
    for e in epochs:
        by_trial.setdefault(e["trial_id"], []).append(e)
    for rows in by_trial.values():
        steady += [b["recorded_at"] - a["recorded_at"] for a, b in zip(rows, rows[1:]) if b["epoch"] == a["epoch"] + 1]
    durations = sum(t["duration"] or 0.0 for t in trials)
    config = meta.get("config") or {}
    return {
        "trials": len(trials),
        "statuses": statuses,
        "epochs_trained": len(epochs),
        "best": None if best is None else {
            "trial": best["id"],
            "val_f1": best["value"],
            "budget": best["budget"],
            "values": best["hparams"],
            "metrics": best["metrics"],
        },
        "median_steady_epoch_s": statistics.median(steady) if steady else None,
        "steady_epochs_measured": len(steady),
        "mean_epoch_s_with_overhead": durations / len(epochs) if epochs else None,
        "trial_seconds_total": durations,
        "data": config.get("data"),
        "space": (config.get("model") or {}).get("space"),
        "tuner": config.get("tuner"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="run folder (must not hold a search; default: a new temporary folder)")
    parser.add_argument("--timeout", type=float, default=None, help="stop the search after this many seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the search, e.g. data.num_samples=48")
    args = parser.parse_args(argv)

    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="unet_bench_")) / "run"
    if (run_dir / "trials.db").exists():
        parser.error(f"{run_dir} already holds a search; choose another --run-dir")
    wall, status, output = run_search(run_dir, list(args.overrides), args.timeout)
    if status != 0:
        print(output[-4000:])
        print(f"the search exited with status {status}")
        if not (run_dir / "trials.db").exists():
            return 1
    figures = read_store(run_dir)
    figures.update({
        "command": "python -m archsearch tuner=hyperband model=unet " + " ".join(args.overrides),
        "exit_status": status,
        "wall_s": wall,
        "run_dir": str(run_dir),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores",
    })
    plan = next((line for line in output.splitlines() if line.startswith("Search plan:")), None)

    best = figures["best"]
    print(f"run folder: {run_dir}")
    if plan:
        print(plan)
    print(f"trials: {figures['trials']} ({', '.join(f'{n} {s}' for s, n in sorted(figures['statuses'].items()))}), "
          f"epochs trained: {figures['epochs_trained']}")
    if best is not None:
        values = " ".join(f"{k}={v}" for k, v in best["values"].items())
        print(f"best val_f1: {best['val_f1']:.4f} (trial {best['trial']}, {best['budget']} epochs; {values})")
        extra = {k: round(v, 4) for k, v in best["metrics"].items() if k.startswith("val_") and k != "val_f1"}
        print(f"  its other validation metrics: {extra}")
    else:
        print("best val_f1: - (no trial completed)")
    print(f"total time: {wall:.0f} s ({wall / 60:.1f} min) for the whole command")
    if figures["median_steady_epoch_s"] is not None:
        print(f"seconds per epoch: median {figures['median_steady_epoch_s']:.2f} s over "
              f"{figures['steady_epochs_measured']} steady epochs; "
              f"{figures['mean_epoch_s_with_overhead']:.2f} s on average with model building and tracing")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
