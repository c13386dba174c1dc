"""Generated problem families (issue 15): random instances nobody tuned a search algorithm on.

A single benchmark function rewards whatever was tuned on it; a *family*
draws a new instance per seed, so a change must help on instances it never
saw.  The seeds are split in advance, before any search algorithm was run on
them: :data:`DEVELOPMENT_SEEDS` (0-9) are the ones to look at while changing
an optimiser, :data:`HELD_OUT_SEEDS` (1000-1009) are the ones results are
reported on.  Instance ``seed`` is searched with oracle seed ``seed``.

Families (every function is *minimised*; :class:`Instance` carries its exact
minimum, so ``regret = best value found - minimum``):

* ``deceptive``: a log-scale ``lr``, a float ``x``, an int ``n``, a boolean
  ``flag`` and a categorical ``cat`` of 3-5 values.  Every category opens its
  own basin in (lr, x, n) with its own random centre, widths and depth (a
  Gaussian core with 80% of the depth on a Gaussian shoulder three times
  wider with 20%: sharp optima are rarely without a slope around them);
  the *best* basin (depth 1) is narrow (core widths 0.08-0.16 of each
  unit axis), one *decoy* is broad (widths 0.3-0.5, depth 0.7-0.8: the best
  average, so it attracts every model), the rest lie between.  ``flag`` has
  a best value per category (the wrong one keeps 70% of the depth).  A
  search *found the best basin* when its best value beats the decoy's
  deepest point (``value < -decoy depth``).
* ``conditional``: a categorical ``model`` (linear / tree / net) whose
  parameters exist only under it (``when``), plus a shared float ``scale``;
  each branch has its own basin over its own parameters; one branch holds
  the minimum (-1), the others 0.55-0.85, the best one not always the
  broadest.
* ``curves``: learning curves on ``bench/curves.py``'s space with a random
  crossing strength ``c`` in [0, 1]: the time constant grows with
  ``c * slowness`` (slowness: how small the learning rate is), and the
  learning-rate optimum is drawn low, so at ``c`` near 1 the best
  configurations look worse than fast mediocre ones for the first epochs
  (short-horizon bias) and at ``c = 0`` curves hardly cross.
* ``branin`` and ``hartmann6``: the fixed functions of ``bench/synthetic.py``
  (one instance, searched with every seed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curves import LR_MAX, LR_MIN, UNITS_MAX, CurveProblem
from synthetic import PROBLEMS, Problem

DEVELOPMENT_SEEDS = tuple(range(10))
HELD_OUT_SEEDS = tuple(range(1000, 1010))
SINGLE_FIDELITY = ("branin", "hartmann6", "deceptive", "conditional")
MULTI_FIDELITY = ("curves",)


@dataclass(frozen=True)
class Instance(Problem):
    """One generated problem: synthetic.py's Problem (space, function, minimum) and how success is judged."""

    # A value below which the search counts as having found the best basin (None: not tracked).
    success_below: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- deceptive mixed spaces

N_MAX = 32  # the int parameter's range 1..N_MAX
SHOULDER = 3.0  # a basin is a core plus a shoulder this many times wider holding a fifth of its depth


def _deceptive_units(h: Mapping[str, Any]) -> np.ndarray:
    """(lr, x, n) in the unit cube, lr on a log axis: the space the basins live in."""
    return np.array([(math.log10(float(h["lr"])) + 5.0) / 5.0, float(h["x"]), (int(h["n"]) - 1) / (N_MAX - 1)])


def deceptive(seed: int) -> Instance:
    rng = np.random.default_rng([int(seed), 15, 1])
    k = int(rng.integers(3, 6))
    cats = [f"c{i}" for i in range(k)]
    roles = rng.permutation(k)  # roles[i] == 0: best basin, 1: decoy, else ordinary
    basins = {}
    for i, cat in enumerate(cats):
        centre = rng.uniform(0.1, 0.9, 3)
        centre[2] = (round(centre[2] * (N_MAX - 1))) / (N_MAX - 1)  # an int value: the minimum is reachable
        if roles[i] == 0:
            width, depth = rng.uniform(0.08, 0.16, 3), 1.0
        elif roles[i] == 1:
            width, depth = rng.uniform(0.3, 0.5, 3), float(rng.uniform(0.7, 0.8))
        else:
            width, depth = rng.uniform(0.12, 0.3, 3), float(rng.uniform(0.3, 0.6))
        basins[cat] = (centre, width, depth, bool(rng.integers(2)))
    decoy_depth = next(b[2] for i, b in enumerate(basins.values()) if roles[i] == 1)
    best_cat = cats[int(np.argmin(roles))]

    def f(h: Mapping[str, Any]) -> float:
        centre, width, depth, flag = basins[str(h["cat"])]
        d = (_deceptive_units(h) - centre) / width
        keep = 1.0 if bool(h["flag"]) == flag else 0.7
        r2 = float(d @ d)
        return -depth * keep * (0.8 * math.exp(-0.5 * r2) + 0.2 * math.exp(-0.5 * r2 / SHOULDER**2))

    space = {
        "lr": {"type": "float", "min": 1e-5, "max": 1.0, "sampling": "log"},
        "x": {"type": "float", "min": 0.0, "max": 1.0},
        "n": {"type": "int", "min": 1, "max": N_MAX},
        "flag": {"type": "boolean"},
        "cat": {"type": "choice", "values": cats},
    }
    return Instance(f"deceptive[{seed}]", space, f, -1.0, success_below=-decoy_depth,
                    info={"best_category": best_cat, "categories": k})


# --------------------------------------------------------------------------- conditional parameters

_BRANCHES = {  # each branch's own parameters, as unit-axis maps
    "linear": {"l2": {"type": "float", "min": 1e-6, "max": 1.0, "sampling": "log"}},
    "tree": {"depth": {"type": "int", "min": 1, "max": 16},
             "subsample": {"type": "float", "min": 0.3, "max": 1.0}},
    "net": {"net_lr": {"type": "float", "min": 1e-5, "max": 1e-1, "sampling": "log"},
            "units": {"type": "int", "min": 8, "max": 256, "step": 8},
            "dropout": {"type": "float", "min": 0.0, "max": 0.6}},
}


def _unit(spec: dict[str, Any], value: Any) -> float:
    lo, hi = float(spec["min"]), float(spec["max"])
    if spec.get("sampling") == "log":
        return (math.log(float(value)) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (float(value) - lo) / (hi - lo)


def _from_unit(spec: dict[str, Any], u: float) -> float:
    """The parameter value at unit coordinate ``u`` (ints and steps on their grid)."""
    lo, hi = float(spec["min"]), float(spec["max"])
    if spec.get("sampling") == "log":
        v = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    else:
        v = lo + u * (hi - lo)
    if spec["type"] == "int":
        step = spec.get("step", 1)
        v = lo + round((v - lo) / step) * step
    return v


def conditional(seed: int) -> Instance:
    rng = np.random.default_rng([int(seed), 15, 2])
    names = list(_BRANCHES)
    best = names[int(rng.integers(len(names)))]
    scale_opt = float(rng.uniform(0.1, 0.9))
    branches = {}
    for name in names:
        params = _BRANCHES[name]
        centre = {}
        for p, spec in params.items():  # a centre on the parameter's grid: the minimum is reachable
            centre[p] = _unit(spec, _from_unit(spec, float(rng.uniform(0.1, 0.9))))
        if name == best:
            width, depth = rng.uniform(0.08, 0.2, len(params)), 1.0
        else:
            width, depth = rng.uniform(0.2, 0.45, len(params)), float(rng.uniform(0.55, 0.85))
        branches[name] = (centre, width, depth)

    def f(h: Mapping[str, Any]) -> float:
        model = str(h["model"])
        centre, width, depth = branches[model]
        d = np.array([(_unit(_BRANCHES[model][p], h[p]) - c) for p, c in centre.items()]) / width
        ds = (float(h["scale"]) - scale_opt) / 0.3
        return -depth * math.exp(-0.5 * float(d @ d)) * (0.8 + 0.2 * math.exp(-0.5 * ds * ds))

    space: dict[str, dict[str, Any]] = {"model": {"type": "choice", "values": names},
                                        "scale": {"type": "float", "min": 0.0, "max": 1.0}}
    for name, params in _BRANCHES.items():
        for p, spec in params.items():
            space[p] = dict(spec, when={"model": [name]})
    # The decoy's best point scaled by the best scale: beating it means the best branch was found.
    second = max(b[2] for n, b in branches.items() if n != best)
    return Instance(f"conditional[{seed}]", space, f, -1.0, success_below=-second, info={"best_branch": best})


# --------------------------------------------------------------------------- learning curves


class CrossingCurves(CurveProblem):
    """``bench/curves.py``'s curves with a random crossing strength (see the module docstring)."""

    def __init__(self, seed: int = 0, noise: float = 0.01) -> None:
        super().__init__(seed, noise=noise)
        rng = np.random.default_rng([int(seed), 15, 3])
        self.crossing = float(rng.uniform(0.0, 1.0))
        # Strong short-horizon bias goes with a low learning-rate optimum, as in real sweeps.
        self.lr_opt = 10 ** float(rng.uniform(-3.6, -2.2) - 0.4 * self.crossing)

    def tau(self, values: Mapping[str, Any]) -> float:
        lr, units = float(values["learning_rate"]), int(values["units"])
        slowness = (math.log10(LR_MAX) - math.log10(lr)) / (math.log10(LR_MAX) - math.log10(LR_MIN))
        tau = 2.0 + 16.0 * self.crossing * slowness
        tau *= 0.8 if bool(values["batchnorm"]) else 1.0
        return tau * (0.9 + 0.2 * units / UNITS_MAX)


def curves(seed: int) -> CrossingCurves:
    return CrossingCurves(seed)


def single_fidelity(family: str, seed: int) -> Instance:
    """Instance ``seed`` of a single-fidelity family."""
    if family in ("branin", "hartmann6"):
        p = PROBLEMS[family]
        return Instance(family, p.space, p.function, p.minimum)
    if family == "deceptive":
        return deceptive(seed)
    if family == "conditional":
        return conditional(seed)
    raise KeyError(family)
