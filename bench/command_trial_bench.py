"""What a command trial costs, and what pruning saves, on the programs of examples/ (issue 26).

Part 1, overhead: the same values run by hand (``python examples/quadratic/train.py --x=...``) and as the
trials of a search (``trial=command``), side by side in one run. A trial's cost is its wall time in the
store (started -> finished: the driver's own bookkeeping, the program's start, its output read and its
metrics recorded); by hand it is the program's wall time from a shell. The difference per trial is the
overhead; the search's one-off start (Python, Hydra, the store) is given apart.

Part 2, pruning: the checkpointing example's learning curve (examples/checkpointing), searched over the same
space by ASHA (27 configurations, rungs 1/3/9 epochs, promotions continue from the program's checkpoint) and
by random search training every configuration to 9 epochs, per seed. Reported: ASHA's best and the epochs
it trained; random search's best after the same number of epochs (trial order), and the epochs random
search needed to match ASHA's best (if it did within 27 full trials).

    python bench/command_trial_bench.py                 # both parts, seeds 0-4
    python bench/command_trial_bench.py --part overhead --epoch-seconds 0.4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from archsearch.core.store import TrialStore  # noqa: E402

PY = sys.executable
QUADRATIC = REPO / "examples" / "quadratic" / "train.py"
CHECKPOINTING = REPO / "examples" / "checkpointing" / "train.py"
ENV = {**os.environ, "ARCHSEARCH_REPORT": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}


def search(run: Path, *args: str) -> float:
    """One CLI search; its wall time."""
    start = time.perf_counter()
    done = subprocess.run([PY, "-m", "archsearch", "trial=command", f"hydra.run.dir={run}", "progress=false", *args],
                          cwd=REPO, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return time.perf_counter() - start


def rows(run: Path) -> list[dict]:
    store = TrialStore(run / "trials.db")
    try:
        return store.rows()
    finally:
        store.close()


def overhead(trials: int, epoch_seconds: float, executor: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        wall = search(run, f"trial.command='{PY} {QUADRATIC} --seconds={epoch_seconds}'", f"executor={executor}",
                      "space={x: {type: float, min: 0, max: 1}, y: {type: float, min: 0.1, max: 1}, kind: [good, bad]}",
                      "objective=loss", f"tuner.max_trials={trials}", "tuner.seed=0")
        in_search = []
        for row in rows(run):
            in_search.append(row["finished_at"] - row["started_at"])
        by_hand = []
        for row in rows(run):  # the same values, by hand, now
            args = [f"--{k}={v!r}" if isinstance(v, float) else f"--{k}={v}" for k, v in row["hparams"].items()]
            start = time.perf_counter()
            subprocess.run([PY, str(QUADRATIC), f"--seconds={epoch_seconds}", *args], check=True, capture_output=True)
            by_hand.append(time.perf_counter() - start)
    per_trial = statistics.mean(in_search) - statistics.mean(by_hand)
    return {"executor": executor, "trials": trials, "by_hand_s": statistics.mean(by_hand),
            "in_search_s": statistics.mean(in_search), "overhead_s": per_trial,
            "overhead_pct": 100 * per_trial / statistics.mean(by_hand), "search_wall_s": wall,
            "start_s": wall - sum(in_search)}


SPACE = "space={lr: {type: float, min: 1e-3, max: 0.3, sampling: log}, l2: {type: float, min: 1e-5, max: 1, sampling: log}}"


def best_so_far(trials: list[dict]) -> list[tuple[int, float]]:
    """(epochs trained so far, best value so far), trial after trial in the order they ran."""
    out, spent, best = [], 0, float("inf")
    for row in sorted(trials, key=lambda r: r["started_at"]):
        spent += max(0, int(row["epochs_done"]) - int(row["initial_budget"] or 0))
        if row["value"] is not None:
            best = min(best, row["value"])
        out.append((spent, best))
    return out


def pruning(seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        asha_run, full_run = Path(tmp) / "asha", Path(tmp) / "full"
        search(asha_run, f"trial.command='{PY} {CHECKPOINTING}'", SPACE, "objective=val_loss", "tuner=asha",
               "tuner.max_trials=27", "tuner.max_epochs=9", "tuner.factor=3", f"tuner.seed={seed}",
               "trial.budget_arg=--epochs", "executor=inline")
        search(full_run, f"trial.command='{PY} {CHECKPOINTING} --epochs=9'", SPACE, "objective=val_loss",
               "tuner=random", "tuner.max_trials=27", f"tuner.seed={seed}", "executor=inline")
        asha, full = rows(asha_run), rows(full_run)
    asha_best = min(r["value"] for r in asha if r["value"] is not None)
    asha_epochs = sum(max(0, int(r["epochs_done"]) - int(r["initial_budget"] or 0)) for r in asha)
    curve = best_so_far(full)
    at_same = min((b for spent, b in curve if spent <= asha_epochs), default=float("inf"))
    to_match = next((spent for spent, b in curve if b <= asha_best), None)
    return {"seed": seed, "asha_best": asha_best, "asha_epochs": asha_epochs, "random_best_same_epochs": at_same,
            "random_epochs_to_match": to_match, "random_best_243": curve[-1][1],
            "promotions_resumed": sum(1 for r in asha if r["parent"] is not None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["overhead", "pruning", "both"], default="both")
    parser.add_argument("--epoch-seconds", type=float, default=0.4)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if args.part in ("overhead", "both"):
        print("| executor | trials | by hand (s) | as a trial (s) | overhead per trial | search start, once (s) |")
        print("|---|---|---|---|---|---|")
        for executor in ("inline", "process"):
            r = overhead(args.trials, args.epoch_seconds, executor)
            print(f"| {r['executor']} | {r['trials']} | {r['by_hand_s']:.3f} | {r['in_search_s']:.3f} | "
                  f"{r['overhead_s'] * 1000:+.0f} ms ({r['overhead_pct']:+.1f}%) | {r['start_s']:.1f} |", flush=True)
    if args.part in ("pruning", "both"):
        print("\n| seed | ASHA best | ASHA epochs | random best at the same epochs | random epochs to match ASHA | "
              "random best, 243 epochs | ASHA wins at equal epochs |")
        print("|---|---|---|---|---|---|---|")
        wins = 0
        for seed in range(args.seeds):
            r = pruning(seed)
            win = r["asha_best"] <= r["random_best_same_epochs"]
            wins += win
            match = r["random_epochs_to_match"] if r["random_epochs_to_match"] is not None else "not within 243"
            print(f"| {seed} | {r['asha_best']:.4f} | {r['asha_epochs']} | {r['random_best_same_epochs']:.4f} | "
                  f"{match} | {r['random_best_243']:.4f} | {'yes' if win else 'no'} |", flush=True)
        print(f"\nASHA at least as good as random search at equal epochs on {wins} of {args.seeds} seeds.")
        print(json.dumps({"wins": wins, "seeds": args.seeds}))


if __name__ == "__main__":
    main()
