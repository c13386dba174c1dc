"""Hypervolume of archsearch's Pareto searches against Optuna's, side by side in one run (issue 28).

Problems: ``bench/pareto_problems.py`` (ZDT1/2/3 with 30 variables, DTLZ2 with 3 objectives and 12
variables, a conditional NAS-like problem), each with its stated reference point.  Every contender runs
each problem at each budget (50/100/200 trials by default) with each seed (0-9 by default), defaults only,
through its ask/tell API:

* ``archsearch-random``, ``archsearch-nsga2``, ``archsearch-bayesian``: ``create_oracle(name, space,
  ParetoObjective.of(objectives), seed=s, max_trials=n)`` driven by ``archsearch.oracles.driving.drive``.
  ``archsearch-bayesian-ref`` is the same oracle told the problem's reference point
  (``set_reference_point``, as a user sets ``search.reference_point``; Optuna's samplers have no such setting).
  A method ``create_oracle`` refuses in Pareto mode is reported "not available".  Oracles that size
  themselves by ``max_trials`` (nsga2's population, bayesian's initial design) run once per budget where
  that size differs between the budgets; the others (and those where it does not: bayesian's initial
  design is 20 at every budget of these problems) run the largest budget and are measured at its first n;
* ``optuna-nsga2`` (``NSGAIISampler(seed=s)``), ``optuna-tpe`` (``TPESampler(seed=s)``, multi-objective)
  and ``optuna-gp`` (``GPSampler(seed=s)``, needs PyTorch; only up to ``--gp-budget`` trials, as it is slow),
  one study per seed measured at its first n trials (a sampler does not know the budget).

Printed per problem and budget: each contender's median hypervolume over the seeds (on the problem's
normalised costs), then archsearch's best method (best median) against the best peer, seed by seed
(wins / ties within 0.1% / losses).  ``--json`` saves every run's hypervolumes.

Run it with the Python that has Optuna 5.1 (and torch for GP):

    /tmp/gp29venv/bin/python bench/pareto_bench.py --jobs 2 --json /tmp/pareto_bench.json
    /tmp/gp29venv/bin/python bench/pareto_bench.py --problems zdt1 --seeds 100-104 --budgets 100
    /tmp/gp29venv/bin/python bench/pareto_bench.py --merge a.json b.json    # the joint report of runs apart
    /tmp/gp29venv/bin/python bench/pareto_bench.py --check-fronts           # the problems against published maxima
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
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pareto_problems import PROBLEMS, MOProblem  # noqa: E402

from archsearch import HyperParameters  # noqa: E402
from archsearch.core.objective import ParetoObjective  # noqa: E402
from archsearch.core.pareto import hypervolume  # noqa: E402

# "-ref": the method told the problem's reference point, as a user sets search.reference_point (Optuna has no
# such setting); the plain contenders derive it from their trials.
ARCHSEARCH = ("archsearch-random", "archsearch-nsga2", "archsearch-bayesian", "archsearch-bayesian-ref")
PEERS = ("optuna-nsga2", "optuna-tpe", "optuna-gp")
BUDGET_AWARE = {"archsearch-nsga2", "archsearch-bayesian", "archsearch-bayesian-ref"}  # sized by max_trials: one run per budget
TIE = 1e-3  # relative: hypervolumes this close count as a tie


class Unavailable(Exception):
    """A contender that cannot run here (a method without Pareto mode, a missing package)."""


# --------------------------------------------------------------------------- contenders


def run_archsearch(method: str, problem: MOProblem, seed: int, trials: int) -> list[dict[str, float]]:
    """The metrics of every trial, in the order they were asked (failed ones as None); ``method`` ending in
    ``-ref`` is told the problem's reference point (``search.reference_point``)."""
    from archsearch.oracles import create_oracle
    from archsearch.oracles.driving import drive

    told = method.endswith("-ref")
    try:
        oracle = create_oracle(method.removesuffix("-ref"), HyperParameters.from_config(problem.space),
                               ParetoObjective.of(list(problem.objectives)), seed=seed, max_trials=trials)
        oracle.set_reference_point(problem.reference_values() if told else None)
    except Exception as exc:  # noqa: BLE001  (reported, not hidden: "not available: <why>")
        raise Unavailable(f"{type(exc).__name__}: {exc}") from None
    try:
        drive(oracle, problem)
    except Exception as exc:  # noqa: BLE001
        raise Unavailable(f"{type(exc).__name__}: {exc}") from None
    return [dict(t.metrics) if t.status == "completed" else None for t in oracle.trials.values()]


def optuna_suggest(trial: Any, problem: MOProblem) -> dict[str, Any]:
    """Optuna's define-by-run suggestions for the problem's space, conditions included."""
    space = HyperParameters.from_config(problem.space)
    values: dict[str, Any] = {}
    for name, spec in problem.space.items():
        if not space.space[name].is_active(values):
            continue
        kind = spec["type"]
        if kind == "float":
            values[name] = trial.suggest_float(name, spec["min"], spec["max"], log=spec.get("sampling") == "log")
        elif kind == "int":
            values[name] = trial.suggest_int(name, spec["min"], spec["max"], log=spec.get("sampling") == "log")
        elif kind == "choice":
            values[name] = trial.suggest_categorical(name, list(spec["values"]))
        elif kind == "boolean":
            values[name] = trial.suggest_categorical(name, [False, True])
        else:
            raise ValueError(f"{name}: type {kind} has no Optuna counterpart here")
    return values


def run_optuna(kind: str, problem: MOProblem, seed: int, trials: int) -> list[dict[str, float]]:
    import optuna

    # ERROR: GPSampler warns at every conditional parameter it samples at random (its documented fallback).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if kind == "gp":
        try:
            import torch
        except ImportError:
            raise Unavailable("optuna.samplers.GPSampler needs PyTorch, which is not installed") from None
        torch.set_num_threads(1)
        sampler = optuna.samplers.GPSampler(seed=seed)
    elif kind == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    directions = problem.directions
    study = optuna.create_study(directions=directions, sampler=sampler)
    rows = []
    for _ in range(trials):
        trial = study.ask()
        metrics = problem(optuna_suggest(trial, problem))
        study.tell(trial, [metrics[name] for name in problem.names])
        rows.append(metrics)
    return rows


def run(contender: str, problem_name: str, seed: int, trials: int) -> tuple[list, float]:
    """One run: the trials' metrics and the seconds it took (an Unavailable is returned, not raised)."""
    problem = PROBLEMS[problem_name]
    start = time.perf_counter()
    try:
        if contender.startswith("archsearch-"):
            rows = run_archsearch(contender.removeprefix("archsearch-"), problem, seed, trials)
        else:
            rows = run_optuna(contender.removeprefix("optuna-"), problem, seed, trials)
    except Unavailable as exc:
        return [str(exc)], 0.0
    return rows, time.perf_counter() - start


def hv_at(problem: MOProblem, rows: list, n: int) -> float:
    """The hypervolume of the first ``n`` trials' completed points."""
    kept = [r for r in rows[:n] if r is not None]
    if not kept:
        return 0.0
    return hypervolume(problem.costs(kept), problem.reference)


# --------------------------------------------------------------------------- the run


SIZES = {"archsearch-nsga2": lambda oracle: oracle.population,
         "archsearch-bayesian": lambda oracle: oracle.initial_points(),
         "archsearch-bayesian-ref": lambda oracle: oracle.initial_points()}


def run_per_budget(contender: str, problem: str, budgets: list[int]) -> bool:
    """Whether a contender needs a run per budget: it sizes itself by ``max_trials`` and the size differs
    between them (otherwise the first n trials of the largest budget's run are those of a run of n)."""
    if contender not in BUDGET_AWARE:
        return False
    from archsearch.oracles import create_oracle

    spec = PROBLEMS[problem]
    method = contender.removeprefix("archsearch-").removesuffix("-ref")
    sizes = {SIZES[contender](create_oracle(method, HyperParameters.from_config(spec.space),
                                            ParetoObjective.of(list(spec.objectives)), seed=0, max_trials=b))
             for b in budgets}
    return len(sizes) > 1


def plan(problems: list[str], contenders: list[str], seeds: list[int], budgets: list[int], gp_budget: int) -> list:
    jobs = []
    for problem in problems:
        for contender in contenders:
            runs = budgets if run_per_budget(contender, problem, budgets) else [max(budgets)]
            if contender == "optuna-gp":
                runs = [min(max(budgets), gp_budget)] if gp_budget > 0 else []
            jobs += [(contender, problem, seed, n) for n in runs for seed in seeds]
    return jobs


def collect(jobs: list, outputs: list, budgets: list[int]) -> dict:
    """hv[problem][contender][budget][seed], and the contenders that could not run with why."""
    hv: dict = {}
    missing: dict[str, str] = {}
    per_budget_runs = {(c, p): run_per_budget(c, p, budgets) for c, p, _, _ in jobs}
    for (contender, problem, seed, n), (rows, _seconds) in zip(jobs, outputs):
        if rows and isinstance(rows[0], str):
            missing[contender] = rows[0]
            continue
        per_budget = hv.setdefault(problem, {}).setdefault(contender, {})
        targets = [n] if per_budget_runs[(contender, problem)] else [b for b in budgets if b <= n]
        for b in targets:
            per_budget.setdefault(b, {})[seed] = hv_at(PROBLEMS[problem], rows, b)
    return {"hv": hv, "missing": missing}


def compare(ours: Mapping[int, float], theirs: Mapping[int, float]) -> tuple[int, int, int]:
    wins = ties = losses = 0
    for seed in sorted(set(ours) & set(theirs)):
        a, b = ours[seed], theirs[seed]
        if abs(a - b) <= TIE * max(abs(a), abs(b), 1e-12):
            ties += 1
        elif a > b:
            wins += 1
        else:
            losses += 1
    return wins, ties, losses


def report(result: dict, budgets: list[int]) -> list[str]:
    lines = []
    for name, reason in sorted(result["missing"].items()):
        lines.append(f"{name}: not available ({reason})")
    for problem, by_contender in result["hv"].items():
        lines.append(f"\n{problem} (reference {PROBLEMS[problem].reference}): median hypervolume over seeds")
        names = sorted(by_contender)
        lines.append(f"  {'trials':>6} " + " ".join(f"{n:>20}" for n in names) + "   best archsearch vs best peer")
        for b in budgets:
            medians = {n: float(np.median(list(by_contender[n][b].values())))
                       for n in names if b in by_contender[n]}
            cells = [f"{medians[n]:>20.4f}" if n in medians else f"{'-':>20}" for n in names]
            ours = [n for n in medians if n.startswith("archsearch-")]
            peers = [n for n in medians if n.startswith("optuna-")]
            verdict = ""
            if ours and peers:
                best_ours = max(ours, key=medians.get)
                best_peer = max(peers, key=medians.get)
                w, t, lo = compare(by_contender[best_ours][b], by_contender[best_peer][b])
                met = "met" if medians[best_ours] >= medians[best_peer] else "NOT met"
                verdict = f"   {best_ours} vs {best_peer}: {w}/{t}/{lo} (win/tie/loss), target {met}"
            lines.append(f"  {b:>6} " + " ".join(cells) + verdict)
    return lines


def merged(paths: list[str]) -> dict:
    """The union of saved runs (budgets and seeds back to ints, as JSON keeps them as strings)."""
    hv: dict = {}
    missing: dict[str, str] = {}
    for path in paths:
        saved = json.loads(Path(path).read_text())
        missing.update(saved["missing"])
        for problem, by_contender in saved["hv"].items():
            for contender, by_budget in by_contender.items():
                target = hv.setdefault(problem, {}).setdefault(contender, {})
                for budget, by_seed in by_budget.items():
                    target.setdefault(int(budget), {}).update({int(s): v for s, v in by_seed.items()})
    return {"hv": hv, "missing": missing}


def check_fronts() -> list[str]:
    """The problems as implemented against published figures: the true fronts' hypervolumes."""
    from pareto_problems import DTLZ2_MAX_HV, ZDT_MAX_HV, front_hypervolume

    lines = [f"{name}: a 20001-point sample of the analytic front has hypervolume {front_hypervolume(name):.4f}; "
             f"BoTorch's _max_hv {published:.4f}" for name, published in ZDT_MAX_HV.items()]
    return lines + [f"dtlz2: the front's hypervolume is 1.1^3 - pi/6 = {DTLZ2_MAX_HV:.4f} (BoTorch's _max_hv)"]


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--contenders", default=",".join(ARCHSEARCH + PEERS))
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--budgets", default="50,100,200")
    parser.add_argument("--gp-budget", type=int, default=50, help="optuna-gp runs this many trials at most (0: none)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", default=None)
    parser.add_argument("--check-fronts", action="store_true",
                        help="compare the analytic ZDT fronts' hypervolume with BoTorch's published maxima")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="print the joint report of runs saved with --json (e.g. peers and archsearch run apart)")
    args = parser.parse_args(argv)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    if args.merge:
        print("\n".join(report(merged(args.merge), budgets)))  # noqa: T201
        return
    if args.check_fronts:
        print("\n".join(check_fronts()))  # noqa: T201
        return
    jobs = plan(args.problems.split(","), args.contenders.split(","), _seeds(args.seeds), budgets, args.gp_budget)
    start = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            outputs = list(pool.map(run, *zip(*jobs)))
    else:
        outputs = [run(*job) for job in jobs]
    result = collect(jobs, outputs, budgets)
    seconds: dict[str, float] = {}
    for (contender, *_), (_, s) in zip(jobs, outputs):
        seconds[contender] = seconds.get(contender, 0.0) + s
    lines = report(result, budgets)
    lines.append("\nseconds per contender (all runs): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(seconds.items())))
    lines.append(f"wall: {time.perf_counter() - start:.0f} s")
    print("\n".join(lines))  # noqa: T201  (a bench script's report)
    if args.json:
        Path(args.json).write_text(json.dumps({"hv": result["hv"], "missing": result["missing"],
                                               "seconds": seconds}, indent=1))


if __name__ == "__main__":
    main()
