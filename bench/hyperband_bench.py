"""Hyperband benchmark: best final score against epochs spent, on synthetic learning curves.

Contenders, each run on the same seeded problems (``bench/curves.py``,
max_epochs = 27) until it has spent ``--cap`` epochs:

* archsearch Hyperband (factor 3, min_epochs 1, Sobol draws; as many
  hyperband_iterations as the epoch cap allows), promoted trials resuming
  from their parent; also with ``sampler="random"``, and with KerasTuner's
  bracket plan (``schedule="keras_tuner"``, what ``archsearch.Hyperband`` runs);
* archsearch random search, every trial trained to 27 epochs;
* archsearch random search with the median pruner;
* KerasTuner's ``HyperbandOracle`` driven through its oracle API
  (``create_trial`` / ``update_trial`` every epoch / ``end_trial``), promoted
  trials training from ``tuner/initial_epoch`` to ``tuner/epochs`` as its
  Tuner does after loading the parent's checkpoint;
* Optuna's TPE sampler with its ``HyperbandPruner`` (trials train epoch by
  epoch from scratch and stop when pruned).

Score of a method after E epochs: among its trials trained to the full 27
epochs within those E epochs, take the one with the best *observed* final
value (what a user would pick) and report that configuration's noise-free
final score.  The table gives the median over seeds at several budgets and
the epochs each method needs before its median reaches random search's
median at 600 epochs.

    pip install ".[bench]"
    python bench/hyperband_bench.py                 # 200 seeds, about three minutes on 1 core
    python bench/hyperband_bench.py --seeds 10 --only archsearch-hyperband,random
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curves import ACTIVATIONS, LR_MAX, LR_MIN, MAX_EPOCHS, SPACE, UNITS_MAX, UNITS_MIN, UNITS_STEP, CurveProblem  # noqa: E402

from archsearch import HyperParameters  # noqa: E402
from archsearch.oracles import PRUNED, create_oracle  # noqa: E402
from archsearch.oracles.driving import drive  # noqa: E402

FACTOR = 3
BUDGETS = (100, 200, 300, 400, 600)
TARGET_BUDGET = 600
PEERS = ("random", "kerastuner-hyperband", "optuna-tpe+hyperband-pruner")  # the target compares these

# A run is a list of (epochs spent so far, observed final value, true final score) for every
# trial that finished at the full budget, in the order they finished.
Run = tuple[list[tuple[int, float, float]], int]


# --------------------------------------------------------------------------- contenders


def run_archsearch(problem: CurveProblem, seed: int, cap: int, tuner: str, pruner=None, sampler="sobol",
                   min_epochs: int = 1, schedule: str = "archsearch") -> Run:
    space = HyperParameters.from_config(SPACE)
    if tuner == "hyperband":
        # As many iterations as the epoch cap can use (the search stops at the cap anyway).
        options = dict(max_epochs=MAX_EPOCHS, factor=FACTOR, min_epochs=min_epochs, sampler=sampler,
                       schedule=schedule)
        per_iteration = create_oracle("hyperband", space, "score", **options).total_epochs
        oracle = create_oracle("hyperband", space, "score", seed=seed,
                               hyperband_iterations=math.ceil(cap / per_iteration), **options)
    else:
        oracle = create_oracle("random", space, "score", seed=seed, pruner=pruner)
    done = drive(oracle, curve=problem.score, epochs=MAX_EPOCHS, max_epochs_trained=cap)
    finals = [(spent, trial.value, problem.true_score(trial.hparams)) for trial, spent in zip(done.told, done.epochs_at)
              if trial.status != PRUNED and (trial.budget or MAX_EPOCHS) == MAX_EPOCHS]
    return finals, len(oracle.trials)


def run_keras_tuner(problem: CurveProblem, seed: int, cap: int) -> Run:
    import keras_tuner as kt

    class QuietOracle(kt.oracles.HyperbandOracle):
        """Its algorithm untouched; only the per-call JSON files are skipped to keep the bench fast."""

        def _save_trial(self, trial):
            pass

        def save(self):
            pass

    hps = kt.HyperParameters()
    hps.Float("learning_rate", LR_MIN, LR_MAX, sampling="log")
    hps.Int("units", UNITS_MIN, UNITS_MAX, step=UNITS_STEP)
    hps.Choice("activation", list(ACTIVATIONS))
    hps.Boolean("batchnorm")
    oracle = QuietOracle(objective=kt.Objective("score", "max"), max_epochs=MAX_EPOCHS, factor=FACTOR,
                         hyperband_iterations=100, seed=seed + 1, hyperparameters=hps)
    oracle.verbose = 0
    with tempfile.TemporaryDirectory() as tmp:
        oracle._set_project_dir(tmp, f"kt_{seed}")
        spent, finals = 0, []
        while spent < cap:
            trial = oracle.create_trial("bench")
            if trial.status != "RUNNING":
                break
            values = trial.hyperparameters.values
            epochs, initial = int(values["tuner/epochs"]), int(values["tuner/initial_epoch"])
            value = None
            for epoch in range(initial + 1, epochs + 1):
                spent += 1
                value = problem.score(values, epoch)
                oracle.update_trial(trial.trial_id, {"score": value}, step=epoch)
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
            if epochs == MAX_EPOCHS:
                finals.append((spent, value, problem.true_score(values)))
        return finals, len(oracle.trials)


def run_optuna(problem: CurveProblem, seed: int, cap: int, run: int = 0) -> Run:
    """TPE + HyperbandPruner; ``run`` > 0 renames the study (``bench_<seed>_run<run>``): the pruner assigns
    trials to brackets by hashing the study name, so another name is another, equally valid run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"bench_{seed}" if not run else f"bench_{seed}_run{run}",
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_EPOCHS, reduction_factor=FACTOR),
    )
    spent, finals, trials = 0, [], 0
    while spent < cap:
        trial = study.ask()
        trials += 1
        values = {
            "learning_rate": trial.suggest_float("learning_rate", LR_MIN, LR_MAX, log=True),
            "units": trial.suggest_int("units", UNITS_MIN, UNITS_MAX, step=UNITS_STEP),
            "activation": trial.suggest_categorical("activation", list(ACTIVATIONS)),
            "batchnorm": trial.suggest_categorical("batchnorm", [False, True]),
        }
        pruned, value = False, None
        for epoch in range(1, MAX_EPOCHS + 1):
            spent += 1
            value = problem.score(values, epoch)
            trial.report(value, epoch)
            if epoch < MAX_EPOCHS and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
            finals.append((spent, value, problem.true_score(values)))
    return finals, trials


CONTENDERS: dict[str, Callable[[CurveProblem, int, int], Run]] = {
    "archsearch-hyperband": lambda p, s, c: run_archsearch(p, s, c, "hyperband"),
    "archsearch-hyperband-random-draws": lambda p, s, c: run_archsearch(p, s, c, "hyperband", sampler="random"),
    "archsearch-hyperband-keras-tuner-plan": lambda p, s, c: run_archsearch(p, s, c, "hyperband",
                                                                            schedule="keras_tuner"),
    "random": lambda p, s, c: run_archsearch(p, s, c, "random"),
    "random+median-pruner": lambda p, s, c: run_archsearch(p, s, c, "random", pruner="median"),
    "kerastuner-hyperband": run_keras_tuner,
    "optuna-tpe+hyperband-pruner": run_optuna,
}
LABELS = {
    "archsearch-hyperband": "archsearch Hyperband",
    "archsearch-hyperband-random-draws": "archsearch Hyperband, sampler=random",
    "archsearch-hyperband-keras-tuner-plan": "archsearch Hyperband, schedule=keras_tuner",
    "random": "archsearch random (27 epochs each)",
    "random+median-pruner": "archsearch random + median pruner",
    "kerastuner-hyperband": "KerasTuner HyperbandOracle",
    "optuna-tpe+hyperband-pruner": "Optuna TPE + HyperbandPruner",
}


# --------------------------------------------------------------------------- scoring


def best_at(finals: list[tuple[int, float, float]], epochs: int) -> float:
    """True score of the best-observed full-budget trial finished within ``epochs`` (-inf: none yet)."""
    done = [(observed, true) for spent, observed, true in finals if spent <= epochs]
    if not done:
        return -math.inf
    return max(done)[1]


def median_curve(runs: list[Run], cap: int) -> np.ndarray:
    """Median over seeds of best_at(E) for E = 0..cap."""
    grid = np.array([[best_at(finals, e) for e in range(cap + 1)] for finals, _ in runs])
    return np.median(grid, axis=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--cap", type=int, default=700, help="epochs each contender may spend per seed")
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--only", default="", help="comma-separated contender names")
    args = parser.parse_args(argv)

    names = [n for n in CONTENDERS if not args.only or n in args.only.split(",")]
    runs: dict[str, list[Run]] = {}
    seconds: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        runs[name] = [CONTENDERS[name](CurveProblem(seed, noise=args.noise), seed, args.cap)
                      for seed in range(args.seeds)]
        seconds[name] = time.perf_counter() - start

    curves = {name: median_curve(runs[name], args.cap) for name in names}
    target = curves["random"][TARGET_BUDGET] if "random" in curves else None
    header = ["method"] + [f"@{b}" for b in BUDGETS] + ["epochs to random@600", "trials@cap", "time s"]
    rows = []
    for name in names:
        row = [LABELS[name]] + [_fmt(curves[name][b]) for b in BUDGETS]
        if target is not None:
            reached = np.nonzero(curves[name] >= target)[0]
            row.append(str(int(reached[0])) if len(reached) else f">{args.cap}")
        else:
            row.append("-")
        row.append(str(int(np.median([trials for _, trials in runs[name]]))))
        row.append(f"{seconds[name]:.1f}")
        rows.append(row)

    print(f"Synthetic learning curves, max_epochs={MAX_EPOCHS}, factor={FACTOR}, {args.seeds} seeds, "
          f"noise={args.noise}: median over seeds of the best final score after E epochs")
    if target is not None:
        print(f"random search's median at {TARGET_BUDGET} epochs: {target:.4f}")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if "archsearch-hyperband" in curves:
        ours = curves["archsearch-hyperband"]
        peers = [n for n in PEERS if n in curves]
        for b in BUDGETS:
            better = [LABELS[n] for n in peers if curves[n][b] > ours[b]]
            print(f"@{b}: archsearch Hyperband >= {', '.join(LABELS[n] for n in peers)}: "
                  f"{'yes' if not better else 'no, better: ' + ', '.join(better)}")


def _fmt(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.4f}"


if __name__ == "__main__":
    main()
