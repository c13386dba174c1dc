"""Categories explored before committing (issue 29): does the GP find the best category pair?

A generated family of mixed spaces, ``pairs``: two categorical parameters
(``opt`` and ``act``, three values each: nine pairs) and three numbers (a
log-scale ``lr``, a float ``x``, an int ``units``).  Every pair has the same
broad basin shape over the numbers (Gaussian, widths 0.2-0.35 of each unit
axis, shared by all pairs) but its own centre -- a shared centre moved by a
shift per ``opt`` value, one per ``act`` value and a small one per pair -- and
its own floor: ``offset[i, j] = a[i] + b[j] + e[i, j]``, the best pair's 0 and
every other pair's at least 0.05 higher.  The best pair is also best *on
average* over the numbers (checked on 4096 Sobol points per pair, the instance
redrawn otherwise): a fair family, unlike ``bench/problem_families.py``'s
``deceptive``, where no observation points to the best category.  Finding
the best pair takes exploring the pairs until their values separate, and then
optimising the numbers inside the best one: a well-optimised runner-up beats a
poorly optimised best pair.

A run "found the best pair" when its best trial is in it.  Reported per
contender: that count over the seeds, the median regret (best value - 0), the
trials spent in the best pair, and per seed better / within 5% / worse than
Optuna's GPSampler on regret.

Seeds: :data:`DEVELOPMENT_SEEDS` (0-9) while developing; :data:`HELD_OUT_SEEDS`
(2910-2919, fixed before any run) run once at the end.  Instance ``s`` is
searched with seed ``s``.  Contenders with their defaults: archsearch
``bayesian``, Optuna ``GPSampler`` and ``TPESampler``; numpy/BLAS and torch on
one thread.

    /tmp/gp29venv/bin/python bench/category_bench.py --split dev --json pairs_dev.json
    python bench/category_bench.py --split dev --only archsearch-bayesian --load pairs_dev.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import qmc  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bayesian_bench  # noqa: E402
from gp_standard_bench import compare  # noqa: E402  (per seed: better / within 5% / worse than the peer)
from problem_families import Instance  # noqa: E402

DEVELOPMENT_SEEDS = tuple(range(10))
HELD_OUT_SEEDS = tuple(range(2910, 2920))  # fixed before any run; run once at the end
OPTS = ("o0", "o1", "o2")
ACTS = ("a0", "a1", "a2")
LR = (1e-4, 1e-1)
UNITS = (8, 256)
MIN_GAP = 0.05  # every other pair's floor lies at least this much above the best pair's


def _units(h: Mapping[str, Any]) -> np.ndarray:
    """(lr, x, units) in the unit cube, lr on a log axis."""
    lr = (math.log10(float(h["lr"])) - math.log10(LR[0])) / (math.log10(LR[1]) - math.log10(LR[0]))
    return np.array([lr, float(h["x"]), (int(h["units"]) - UNITS[0]) / (UNITS[1] - UNITS[0])])


def _draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (3, 3, 3), floors (3, 3) and the shared widths (3,) of one candidate instance."""
    base = rng.uniform(0.3, 0.7, 3)
    s, t = rng.normal(0.0, 0.15, (3, 3)), rng.normal(0.0, 0.15, (3, 3))
    centres = np.clip(base + s[:, None, :] + t[None, :, :] + rng.normal(0.0, 0.05, (3, 3, 3)), 0.1, 0.9)
    offsets = rng.uniform(0.0, 0.3, 3)[:, None] + rng.uniform(0.0, 0.3, 3)[None, :] + rng.uniform(0.0, 0.1, (3, 3))
    offsets -= offsets.min()
    offsets[offsets > 0] += MIN_GAP
    return centres, offsets, rng.uniform(0.2, 0.35, 3)


def _value(u: np.ndarray, centre: np.ndarray, offset: float, width: np.ndarray) -> np.ndarray:
    d = (np.atleast_2d(u) - centre) / width
    return offset + 1.0 - np.exp(-0.5 * np.sum(d * d, axis=1))


def pairs(seed: int) -> Instance:
    """Instance ``seed`` of the family (see the module docstring)."""
    rng = np.random.default_rng([int(seed), 29, 4])
    grid = qmc.Sobol(d=3, scramble=True, seed=0).random(4096)
    while True:
        centres, offsets, width = _draw(rng)
        best = np.unravel_index(int(np.argmin(offsets)), offsets.shape)
        means = np.array([[_value(grid, centres[i, j], offsets[i, j], width).mean() for j in range(3)]
                          for i in range(3)])
        if np.unravel_index(int(np.argmin(means)), means.shape) == best:
            break

    def f(h: Mapping[str, Any]) -> float:
        i, j = OPTS.index(str(h["opt"])), ACTS.index(str(h["act"]))
        return float(_value(_units(h), centres[i, j], offsets[i, j], width)[0])

    space = {
        "opt": {"type": "choice", "values": list(OPTS)},
        "act": {"type": "choice", "values": list(ACTS)},
        "lr": {"type": "float", "min": LR[0], "max": LR[1], "sampling": "log"},
        "x": {"type": "float", "min": 0.0, "max": 1.0},
        "units": {"type": "int", "min": UNITS[0], "max": UNITS[1]},
    }
    # The minimum: the best pair's floor at its centre, up to the int grid (regret stays >= 0 to ~1e-4).
    return Instance(f"pairs[{seed}]", space, f, 0.0, info={"best": (OPTS[best[0]], ACTS[best[1]])})


# --------------------------------------------------------------------------- contenders

CONTENDERS: dict[str, Callable[[Any, int, int], bayesian_bench.Run]] = {
    "archsearch-bayesian": lambda p, s, n: bayesian_bench.run_archsearch(p, s, n, "bayesian"),
    "optuna-gp": lambda p, s, n: bayesian_bench.run_optuna(p, s, n, "gp"),
    "optuna-tpe": lambda p, s, n: bayesian_bench.run_optuna(p, s, n, "tpe"),
}
PEER = "optuna-gp"


class Recording:
    """A problem that remembers each evaluated configuration's pair (the runners only keep values)."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.space = instance.space
        self.pairs: list[tuple[str, str]] = []

    def __call__(self, h: Mapping[str, Any]) -> float:
        self.pairs.append((str(h["opt"]), str(h["act"])))
        return self.instance(h)


def run(name: str, seed: int, trials: int) -> dict[str, Any]:
    instance = pairs(seed)
    problem = Recording(instance)
    values, seconds = CONTENDERS[name](problem, seed, trials)
    best = tuple(instance.info["best"])
    k = int(np.argmin(values))
    return {"regret": float(values[k]) - instance.minimum, "found": problem.pairs[k] == best,
            "in_best": sum(p == best for p in problem.pairs), "seconds": float(np.median(seconds))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("dev", "held-out"), default="dev")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--only", default="", help="comma-separated contenders (default: all)")
    parser.add_argument("--json", default="", help="save {contender: {seed: result}} here")
    parser.add_argument("--load", default="", help="earlier --json output: its contenders are not rerun")
    args = parser.parse_args(argv)
    seeds = DEVELOPMENT_SEEDS if args.split == "dev" else HELD_OUT_SEEDS
    names = [n for n in CONTENDERS if not args.only or n in args.only.split(",")]
    results: dict[str, dict[str, Any]] = json.loads(Path(args.load).read_text()) if args.load else {}
    for name in names:
        results[name] = {str(s): run(name, s, args.trials) for s in seeds}
        print(f"{name}: done", flush=True)
    print_table(results, seeds, args.trials)
    if args.json:
        Path(args.json).write_text(json.dumps(results))


def print_table(results: dict[str, dict[str, Any]], seeds: tuple[int, ...], trials: int) -> None:
    print(f"\n### pairs, seeds {seeds[0]}-{seeds[-1]}, {trials} trials: regret per seed (* = best pair found)\n")
    print("| method | " + " | ".join(str(s) for s in seeds) + " | best pair found | median regret "
          "| median trials in the best pair | s/suggestion | vs GPSampler (better / within 5% / worse) |")
    print("|---|" + "---|" * (len(seeds) + 5))
    peer = results.get(PEER)
    for name, per in results.items():
        rs = [per[str(s)] for s in seeds]
        cells = [f"{r['regret']:.3g}{'*' if r['found'] else ''}" for r in rs]
        vs = ""
        if peer is not None and name != PEER:
            vs = compare([r["regret"] for r in rs], [peer[str(s)]["regret"] for s in seeds])
        print(f"| {name} | " + " | ".join(cells) + f" | {sum(r['found'] for r in rs)}/{len(rs)} "
              f"| {np.median([r['regret'] for r in rs]):.3g} | {np.median([r['in_best'] for r in rs]):.0f} "
              f"| {np.median([r['seconds'] for r in rs]):.3f} | {vs} |")
    print(flush=True)




if __name__ == "__main__":
    main()
