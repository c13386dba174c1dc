"""The GP against Optuna's GPSampler on standard problems (issue 29): per-seed regrets, side by side.

``bench/quality_bench.py`` compares many methods on generated families; this
bench asks one question: does archsearch's ``bayesian`` oracle reach the
regret of Optuna's ``GPSampler`` on the *standard* smooth test functions, seed
by seed, and on smooth functions nobody developed on?

Problems (all minimised, exact minima known):

* ``branin`` and ``hartmann6``: ``bench/synthetic.py``'s, standard and
  unshifted (Hartmann-6 with the usual A, P, alpha; f* = -3.32237);
  searched with seeds :data:`STANDARD_SEEDS` (0-9, the issue's harness);
* held-out smooth instances, generated per seed from :data:`HELD_OUT_SEEDS`
  (chosen before any run; run once at the end, never while developing):
  ``levy4``/``levy6`` (Levy on [-10, 10]^d) and ``rosenbrock4``/``rosenbrock5``
  (Rosenbrock on [-2, 2]^d, log1p-free, raw values), each with its optimum
  moved to a random point of the inner 60% of the box and the input rotated by
  a random orthogonal matrix (both drawn from the instance seed).

Contenders, defaults only, through their ask/tell APIs: archsearch
``bayesian`` (``create_oracle(..., seed=s, max_trials=n)``) and
``optuna.samplers.GPSampler(seed=s)`` (needs PyTorch), and ``TPESampler(seed=s)`` for reference.  numpy/BLAS and torch
pinned to one thread.  Printed: every seed's regret at the last trial per
contender, the median and the worst, and per seed whether archsearch is
better / within 5% / worse than GPSampler (``--json`` saves the raw values).

    /tmp/gp29venv/bin/python bench/gp_standard_bench.py --problems branin,hartmann6
    /tmp/gp29venv/bin/python bench/gp_standard_bench.py --problems held-out --only archsearch-bayesian
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bayesian_bench  # noqa: E402
from synthetic import PROBLEMS, Problem  # noqa: E402

STANDARD_SEEDS = tuple(range(10))
HELD_OUT_SEEDS = tuple(range(2900, 2905))  # fixed before any run; instance s is searched with seed s
HELD_OUT_FAMILIES = ("levy4", "levy6", "rosenbrock4", "rosenbrock5")
WITHIN = 0.05  # "within 5%" of the peer's regret counts as a tie
STUCK = 0.77  # a Hartmann-6 seed "stuck": 3x GPSampler's worst regret on seeds 0-9 (the bar)


# --------------------------------------------------------------------------- held-out smooth instances


def _levy(z: np.ndarray) -> float:
    w = 1.0 + (z - 1.0) / 4.0
    head = math.sin(math.pi * w[0]) ** 2
    mid = float(np.sum((w[:-1] - 1.0) ** 2 * (1.0 + 10.0 * np.sin(math.pi * w[:-1] + 1.0) ** 2)))
    tail = (w[-1] - 1.0) ** 2 * (1.0 + math.sin(2.0 * math.pi * w[-1]) ** 2)
    return head + mid + tail


def _rosenbrock(z: np.ndarray) -> float:
    return float(np.sum(100.0 * (z[1:] - z[:-1] ** 2) ** 2 + (1.0 - z[:-1]) ** 2))


_BASE = {"levy": (_levy, 10.0), "rosenbrock": (_rosenbrock, 2.0)}  # function, half-width of the box


def held_out(family: str, seed: int) -> Problem:
    """Instance ``seed`` of ``family``: the base function's optimum (z = 1) moved and the input rotated.

    ``f(x) = base(1 + R (x - c))`` with ``c`` uniform in the inner 60% of the box and ``R`` a random
    orthogonal matrix, so the minimum 0 is at ``x = c``, inside the box.
    """
    name = family.rstrip("0123456789")
    dims = int(family[len(name):])
    base, half = _BASE[name]
    rng = np.random.default_rng([29, seed, dims, len(name)])
    centre = rng.uniform(-0.6 * half, 0.6 * half, dims)
    q, r = np.linalg.qr(rng.standard_normal((dims, dims)))
    rotation = q * np.sign(np.diag(r))

    def f(h: Mapping[str, Any]) -> float:
        x = np.array([float(h[f"x{i}"]) for i in range(dims)])
        return base(1.0 + rotation @ (x - centre))

    space = {f"x{i}": {"type": "float", "min": -half, "max": half} for i in range(dims)}
    return Problem(f"{family}#{seed}", space, f, 0.0)


# --------------------------------------------------------------------------- contenders


def run_optuna_gp(problem: Problem, seed: int, trials: int) -> bayesian_bench.Run:
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.GPSampler(seed=seed))
    values, seconds = [], []
    for _ in range(trials):
        start = time.perf_counter()
        trial = study.ask()
        params = bayesian_bench._optuna_suggest(trial, problem.space)
        seconds.append(time.perf_counter() - start)
        value = problem(params)
        study.tell(trial, value)
        values.append(value)
    return values, seconds


CONTENDERS: dict[str, Callable[[Problem, int, int], bayesian_bench.Run]] = {
    "archsearch-bayesian": lambda p, s, n: bayesian_bench.run_archsearch(p, s, n, "bayesian"),
    "optuna-gp": run_optuna_gp,
    "optuna-tpe": lambda p, s, n: bayesian_bench.run_optuna(p, s, n, "tpe"),
}
PEER = "optuna-gp"


# --------------------------------------------------------------------------- tables


def instances(spec: str, seeds: int = len(STANDARD_SEEDS)) -> list[tuple[str, list[tuple[int, Problem]]]]:
    """``(row name, [(seed, problem)])`` for each name in ``spec`` (``held-out`` expands to every family)."""
    out = []
    for name in spec.split(","):
        if name == "held-out":
            out += [(f, [(s, held_out(f, s)) for s in HELD_OUT_SEEDS]) for f in HELD_OUT_FAMILIES]
        elif name in HELD_OUT_FAMILIES:
            out.append((name, [(s, held_out(name, s)) for s in HELD_OUT_SEEDS]))
        else:
            out.append((name, [(s, PROBLEMS[name]) for s in range(seeds)]))
    return out


def compare(mine: list[float], peer: list[float]) -> str:
    """Per seed: better / within WITHIN (relative to the peer's regret) / worse than the peer."""
    better = within = worse = 0
    for a, b in zip(mine, peer):
        if abs(a - b) <= WITHIN * max(abs(b), 1e-12):
            within += 1
        elif a < b:
            better += 1
        else:
            worse += 1
    return f"{better} / {within} / {worse}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default="branin,hartmann6",
                        help="comma-separated: branin, hartmann6, held-out or one held-out family")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=len(STANDARD_SEEDS),
                        help="standard problems: seeds 0..N-1 (default 10, the issue's harness)")
    parser.add_argument("--only", default="", help="comma-separated contenders (default: all)")
    parser.add_argument("--json", default="", help="save {problem: {contender: {seed: values}}} here")
    parser.add_argument("--load", default="", help="earlier --json output: its contenders are not rerun")
    args = parser.parse_args(argv)
    names = [n for n in CONTENDERS if not args.only or n in args.only.split(",")]
    saved: dict = json.loads(Path(args.load).read_text()) if args.load else {}
    results: dict = {}
    for row, runs in instances(args.problems, args.seeds):
        results[row] = {}
        for name in names + [n for n in saved.get(row, {}) if n not in names]:
            if name in saved.get(row, {}) and name not in names:
                results[row][name] = {str(s): saved[row][name][str(s)] for s, _ in runs}
                continue
            per_seed, secs = {}, []
            for seed, problem in runs:
                values, seconds = CONTENDERS[name](problem, seed, args.trials)
                per_seed[str(seed)] = values
                secs += seconds
            results[row][name] = per_seed
            print(f"{row} {name}: median s/suggestion {np.median(secs):.4f}", flush=True)
        print_table(row, dict(runs), results[row], args.trials)
    if args.json:
        Path(args.json).write_text(json.dumps(results))


def print_table(row: str, problems: dict[int, Problem], runs: dict[str, dict[str, list[float]]], trials: int) -> None:
    seeds = sorted(problems)
    stuck = {n: sum(problems[s].regret(min(v[str(s)][:trials])) > STUCK for s in seeds) for n, v in runs.items()}
    regrets = {n: [problems[s].regret(min(v[str(s)][:trials])) for s in seeds] for n, v in runs.items()}
    print(f"\n### {row}: regret@{trials} per seed ({seeds[0]}-{seeds[-1]})\n")
    bar = row == "hartmann6"  # the stuck bar is Hartmann-6's
    print("| method | " + " | ".join(str(s) for s in seeds) + " | median | mean | worst |"
          + (f" seeds > {STUCK} |" if bar else ""))
    print("|---|" + "---|" * (len(seeds) + 3 + bar))
    for name, r in regrets.items():
        print(f"| {name} | " + " | ".join(f"{x:.3g}" for x in r)
              + f" | {np.median(r):.3g} | {np.mean(r):.3g} | {max(r):.3g} |" + (f" {stuck[name]} |" if bar else ""))
    if PEER in regrets:
        for name, r in regrets.items():
            if name != PEER:
                print(f"\n{name} vs {PEER}, seeds better / within {WITHIN:.0%} / worse: "
                      f"{compare(r, regrets[PEER])}")
    print(flush=True)


if __name__ == "__main__":
    main()
