"""Multi-fidelity Pareto search (issue 28): MO-ASHA against full-budget searches on a learning-curve problem.

The issue's target: MO-ASHA (``tuner=asha`` with ``search.mode=pareto``) reaches the best peer's
200-trial hypervolume (Optuna's multi-objective TPE here; NSGA-II's is lower) with half the epochs.  Optuna
cannot prune a multi-objective study (optuna/optuna #3450), so its trials all train to the full budget.

Problem: ``bench/curves.py``'s learning curves (27 epochs, a log learning rate, ``units``, an activation
and batchnorm; curves that cross), with two objectives to minimise:

* ``val_error`` = 1 - the validation score after the trial's epochs (seeded noise 0.01), reported every epoch;
* ``params``: a one-hidden-layer MLP's count on 784 inputs and 10 classes, ``795 * units + 10``
  (``+ 4 * units`` with batchnorm), known before training and reported with every epoch.

More units score better (diminishing returns), so the front trades error against size; the learning
rate has to be found for every size, and short trainings mislead (fast, poor learning rates look best
after one epoch).

What is compared: the trials trained to the full 27 epochs (a model a user can take); their front by
the *observed* values (what a search reports), scored by the hypervolume of those trials' noise-free
vectors, with ``params`` divided by the largest possible count and the reference point
(error 0.6, params 1.0) -- fixed before any run.  Epochs are counted as trained (a promotion trains only
its extra epochs; Optuna's trials train 27 each).

Contenders, defaults unless said:

* ``asha``: archsearch's MO-ASHA, ``max_epochs=27, factor=3, min_epochs=1``, stopped by
  ``max_epochs_total`` at 1350, 2700 and 5400 epochs (a quarter, half and all of 200 full trials);
* ``hyperband`` and ``bohb``: archsearch's Hyperband and BOHB in Pareto mode (the paper's brackets), as many
  iterations as the epochs allow;
* ``random`` and ``nsga2`` (when registered): archsearch's full-budget searches, 50/100/200 trials;
* ``optuna-nsga2`` and ``optuna-tpe``: Optuna's ``NSGAIISampler(seed=s)`` and ``TPESampler(seed=s)`` (its
  multi-objective TPE), 50/100/200 full trials, through ask/tell.

Sequential (one worker), 10 seeds; the problem instance is the seed's.  Run with the peer venv
(Optuna 5), from the repository root::

    /tmp/gp29venv/bin/python bench/pareto_mf_bench.py                   # 10 seeds, everything
    /tmp/gp29venv/bin/python bench/pareto_mf_bench.py --seeds 2 --only asha,optuna-nsga2

Development seeds, to choose settings on (seeds 0-9 are the held-out ones the RESULTS tables report):
``--seeds 5 --seeds-from 100``; ``--epochs 2700`` runs one budget, ``--options promotion=rank,random_fraction=1``
passes tuner options to the multi-fidelity contenders (that one: the paper's MO-ASHA), ``--profile`` prints
each of their runs' asks, configurations and CPU seconds per ask.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curves import ACTIVATIONS, LR_MAX, LR_MIN, MAX_EPOCHS, SPACE, UNITS_MAX, UNITS_MIN, UNITS_STEP  # noqa: E402
from curves import CurveProblem  # noqa: E402

from archsearch import HyperParameters  # noqa: E402
from archsearch.core.objective import ParetoObjective  # noqa: E402
from archsearch.core.pareto import front_mask, hypervolume  # noqa: E402
from archsearch.oracles import available_oracles, create_oracle  # noqa: E402
from archsearch.oracles.driving import drive  # noqa: E402

OBJECTIVE = ParetoObjective.of(["val_error:min", "params:min"])
REFERENCE = (0.6, 1.0)  # error, params / PARAMS_MAX: fixed before any run
FULL_TRIALS = (50, 100, 200)  # the budgets of full-budget searches; 200 is the issue's
EPOCHS = tuple(n * MAX_EPOCHS for n in FULL_TRIALS)  # 1350, 2700, 5400: the same epochs for everyone
TARGET_TRIALS = 200
PROFILE = False  # --profile: each multi-fidelity run's asks, configurations and CPU per ask
TOLD_REFERENCE = False  # --told-reference: search.reference_point set to REFERENCE
SEEDS = tuple(range(10))


def params_of(values: Mapping[str, Any]) -> float:
    units = int(values["units"])
    return 795.0 * units + 10.0 + (4.0 * units if bool(values["batchnorm"]) else 0.0)


PARAMS_MAX = params_of({"units": UNITS_MAX, "batchnorm": True})


class Problem:
    """One seed's curves as the metrics a trial reports, and the noise-free vector it is judged by."""

    def __init__(self, seed: int) -> None:
        self.curves = CurveProblem(seed)

    def metrics(self, values: Mapping[str, Any], epoch: int) -> dict[str, float]:
        return {"val_error": 1.0 - self.curves.score(values, epoch), "params": params_of(values)}

    def true_costs(self, values: Mapping[str, Any]) -> tuple[float, float]:
        return 1.0 - self.curves.true_score(values, MAX_EPOCHS), params_of(values) / PARAMS_MAX


def score(problem: Problem, finished: list[tuple[Mapping[str, Any], tuple[float, float]]]) -> float:
    """Hypervolume of the noise-free vectors of the front the observed full-budget results give."""
    if not finished:
        return 0.0
    observed = np.array([(err, p / PARAMS_MAX) for _, (err, p) in finished])
    chosen = [values for (values, _), on in zip(finished, front_mask(observed)) if on]
    return hypervolume(np.array([problem.true_costs(v) for v in chosen]), REFERENCE)


# --------------------------------------------------------------------------- archsearch


def full_budget_trials(oracle) -> list[tuple[Mapping[str, Any], tuple[float, float]]]:
    return [(t.hparams, (t.metrics["val_error"], t.metrics["params"])) for t in oracle.trials.values()
            if t.status == "completed" and (t.budget or MAX_EPOCHS) == MAX_EPOCHS and "val_error" in t.metrics]


def run_multi_fidelity(name: str, problem: Problem, seed: int, epochs: int,
                       extra: Mapping[str, Any] | None = None) -> float:
    options: dict[str, Any] = dict(max_epochs=MAX_EPOCHS, factor=3, min_epochs=1, seed=seed, **(extra or {}))
    if name == "asha":
        options["max_epochs_total"] = epochs
    else:
        options["hyperband_iterations"] = 100  # more than any budget here uses: the epochs stop it
    oracle = create_oracle(name, HyperParameters.from_config(SPACE), OBJECTIVE, **options)
    if TOLD_REFERENCE:  # as a user who scores against REFERENCE sets search.reference_point
        oracle.set_reference_point({"val_error": REFERENCE[0], "params": REFERENCE[1] * PARAMS_MAX})
    start = time.process_time()
    done = drive(oracle, curve=problem.metrics, max_epochs_trained=None if name == "asha" else epochs)
    cpu = time.process_time() - start
    finished = full_budget_trials(oracle)
    if PROFILE:
        configurations = sum(t.resume_from is None for t in oracle.trials.values())
        print(f"# {name} seed {seed} {epochs} epochs: {len(done.asked)} asks, {configurations} configurations "
              f"({getattr(oracle, 'num_model_configurations', 0)} by a model), {len(finished)} at {MAX_EPOCHS} "
              f"epochs; {cpu:.1f} s CPU, {1000 * cpu / max(1, len(done.asked)):.0f} ms an ask", file=sys.stderr)
    return score(problem, finished)


def run_full_budget(name: str, problem: Problem, seed: int, trials: int) -> float:
    oracle = create_oracle(name, HyperParameters.from_config(SPACE), OBJECTIVE, max_trials=trials, seed=seed)
    drive(oracle, lambda values: problem.metrics(values, MAX_EPOCHS))
    return score(problem, full_budget_trials(oracle))


# --------------------------------------------------------------------------- Optuna


def run_optuna(sampler_name: str, problem: Problem, seed: int, trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = {"optuna-nsga2": optuna.samplers.NSGAIISampler, "optuna-tpe": optuna.samplers.TPESampler}[sampler_name]
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler(seed=seed))
    finished = []
    for _ in range(trials):
        trial = study.ask()
        values = {
            "learning_rate": trial.suggest_float("learning_rate", LR_MIN, LR_MAX, log=True),
            "units": trial.suggest_int("units", UNITS_MIN, UNITS_MAX, step=UNITS_STEP),
            "activation": trial.suggest_categorical("activation", list(ACTIVATIONS)),
            "batchnorm": trial.suggest_categorical("batchnorm", [False, True]),
        }
        metrics = problem.metrics(values, MAX_EPOCHS)
        study.tell(trial, [metrics["val_error"], metrics["params"]])
        finished.append((values, (metrics["val_error"], metrics["params"])))
    return score(problem, finished)


# --------------------------------------------------------------------------- the table

MULTI_FIDELITY = ("asha", "hyperband", "bohb")
FULL_BUDGET = ("random", "nsga2", "optuna-nsga2", "optuna-tpe")


def contenders(only: list[str] | None) -> list[str]:
    names = [n for n in MULTI_FIDELITY + FULL_BUDGET if not n.startswith("optuna") and n not in available_oracles()]
    for missing in names:
        print(f"# {missing}: not a registered oracle here, skipped")
    chosen = [n for n in MULTI_FIDELITY + FULL_BUDGET if n not in names]
    return [n for n in chosen if only is None or n in only]


def run(name: str, seed: int, epochs: int, extra: Mapping[str, Any] | None = None) -> float:
    problem = Problem(seed)
    if name in MULTI_FIDELITY:
        return run_multi_fidelity(name, problem, seed, epochs, extra)
    trials = epochs // MAX_EPOCHS
    if name.startswith("optuna"):
        return run_optuna(name, problem, seed, trials)
    return run_full_budget(name, problem, seed, trials)


def _option(item: str) -> tuple[str, Any]:
    key, _, text = item.partition("=")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError:
        return key, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--seeds-from", type=int, default=0,
                        help="first seed (development seeds: 100 and up; 0-9 are the held-out ones)")
    parser.add_argument("--epochs", default=None, help="comma-separated epoch budgets (default 1350,2700,5400)")
    parser.add_argument("--only", default=None, help="comma-separated contenders")
    parser.add_argument("--json", default=None, help="save every seed's hypervolume here")
    parser.add_argument("--options", default=None,
                        help="tuner options of the multi-fidelity contenders, e.g. promotion=rank,random_fraction=1")
    parser.add_argument("--profile", action="store_true",
                        help="print each multi-fidelity run's asks, configurations and CPU seconds per ask")
    parser.add_argument("--told-reference", action="store_true",
                        help="the multi-fidelity contenders are told the scoring reference point "
                             "(search.reference_point)")
    args = parser.parse_args(argv)
    global PROFILE, TOLD_REFERENCE
    PROFILE, TOLD_REFERENCE = args.profile, args.told_reference
    extra = dict(_option(item) for item in args.options.split(",")) if args.options else {}
    seeds = list(range(args.seeds_from, args.seeds_from + args.seeds))
    budgets = tuple(int(e) for e in args.epochs.split(",")) if args.epochs else EPOCHS
    names = contenders(args.only.split(",") if args.only else None)
    results: dict[str, dict[int, list[float]]] = {}
    for name in names:
        results[name] = {}
        for epochs in budgets:
            start = time.perf_counter()
            results[name][epochs] = [run(name, s, epochs, extra if name in MULTI_FIDELITY else None)
                                     for s in seeds]
            print(f"# {name} at {epochs} epochs: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print(f"hypervolume (reference error {REFERENCE[0]}, params/max {REFERENCE[1]}), {len(seeds)} seeds: "
          "median [quartiles]")
    print(f"{'contender':<14}" + "".join(f"{f'{e} epochs':>26}" for e in budgets))
    for name in names:
        cells = []
        for epochs in budgets:
            q1, q2, q3 = np.percentile(results[name][epochs], [25, 50, 75])
            cells.append(f"{q2:.4f} [{q1:.4f}, {q3:.4f}]")
        print(f"{name:<14}" + "".join(f"{c:>26}" for c in cells))
    half = EPOCHS[FULL_TRIALS.index(TARGET_TRIALS // 2)]
    full = EPOCHS[FULL_TRIALS.index(TARGET_TRIALS)]
    if "asha" in results and half in budgets and full in budgets:
        mine = results["asha"][half]
        for peer in ("optuna-nsga2", "optuna-tpe"):
            if peer in results:
                theirs = results[peer][full]
                wins = sum(a >= b for a, b in zip(mine, theirs))
                met = np.median(mine) >= np.median(theirs)
                print(f"target vs {peer}: MO-ASHA at {half} epochs median {np.median(mine):.4f} against "
                      f"{TARGET_TRIALS} trials ({full} epochs) {np.median(theirs):.4f}: "
                      f"{'met' if met else 'NOT met'}; seeds at least as good: {wins}/{len(seeds)}")
    if args.json:
        Path(args.json).write_text(json.dumps({n: {str(e): v for e, v in r.items()} for n, r in results.items()},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
