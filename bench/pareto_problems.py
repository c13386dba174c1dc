"""Multi-objective test problems for ``bench/pareto_bench.py`` and ``tests/test_nsga2.py`` (issue 28).

Every problem is a search space (archsearch's config form, which the bench also turns into Optuna's
``suggest_*`` calls), a function of a configuration returning its metrics, the objectives (name and
direction) and the reference point its hypervolume is measured against, on its *costs*: every objective
to minimise, in the problem's own normalisation (:meth:`MOProblem.costs`).

* ``zdt1``, ``zdt2``, ``zdt3``: Zitzler, Deb & Thiele (2000), the standard definitions with n = 30
  variables in [0, 1]; two objectives ``f1``, ``f2``, minimised.  Reference point (11, 11), BoTorch's
  for the ZDT family (``botorch.test_functions.multi_objective.ZDT*._ref_point``); the true fronts'
  hypervolumes are 120 + 2/3, 120 + 1/3 and 128.77811613069076 (BoTorch's ``_max_hv``), checked by
  :func:`front_hypervolume` against a dense sample of each analytic front.
* ``dtlz2``: Deb, Thiele, Laumanns & Zitzler (2002) with M = 3 objectives and n = M + k - 1 = 12
  variables (k = 10, the paper's); reference point (1.1, 1.1, 1.1) (BoTorch's); the front is the
  positive octant of the unit sphere, hypervolume 1.1^3 - pi/6 = 0.80740.
* ``nas``: a mixed, conditional architecture search, deterministic: a block type (``mlp``, ``conv`` or
  ``resnet``) with its own width and depth parameters (log-scaled integers, a choice of kernel, a
  boolean bottleneck), and a log learning rate, a dropout, a weight decay and an activation shared by
  all.  ``accuracy`` (a proxy: capacity helps with diminishing returns, each block type has its own
  best learning rate, dropout helps big models and hurts small ones) is maximised and ``params`` (the
  parameter count of the network for a 32x32x3 input and 10 classes) minimised, scored by its log
  (``params:min:log``, as a user who scores it so says).  Costs: (1 - accuracy,
  (log10 params - 3) / 5), so that 1e3..1e8 parameters map to [0, 1]; reference point (1.1, 1.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Metrics = dict[str, float]


@dataclass(frozen=True)
class MOProblem:
    """A multi-objective benchmark problem; see the module docstring."""

    name: str
    space: dict[str, dict[str, Any]]
    evaluate: Callable[[Mapping[str, Any]], Metrics]
    objectives: tuple[str, ...]  # "name:min" / "name:max" (":log" after: scored by its log), as ParetoObjective.of takes them
    reference: tuple[float, ...]
    normalise: Callable[[np.ndarray], np.ndarray] = lambda costs: costs
    # ``reference`` in the objectives' own units (what a user writes as search.reference_point); None: the
    # costs are not normalised, so it is ``reference`` with each maximised objective's sign turned back.
    reference_point: tuple[float, ...] | None = None

    def __call__(self, values: Mapping[str, Any]) -> Metrics:
        return self.evaluate(values)

    @property
    def names(self) -> list[str]:
        return [spec.split(":")[0] for spec in self.objectives]

    @property
    def signs(self) -> np.ndarray:
        """+1 for a minimised objective, -1 for a maximised one (cost = sign * value)."""
        return np.array([-1.0 if spec.split(":")[1] == "max" else 1.0 for spec in self.objectives])

    @property
    def directions(self) -> list[str]:
        """Optuna's directions, in objective order."""
        return ["maximize" if spec.split(":")[1] == "max" else "minimize" for spec in self.objectives]

    def reference_values(self) -> list[float]:
        """The reference point as each objective's value (``search.reference_point``), by objective order."""
        if self.reference_point is not None:
            return list(self.reference_point)
        return [float(sign * r) for sign, r in zip(self.signs, self.reference)]

    def costs(self, metrics: Sequence[Mapping[str, float]]) -> np.ndarray:
        """The normalised costs (every objective minimised) of evaluated configurations, one row each."""
        raw = np.array([[m[n] for n in self.names] for m in metrics], dtype=float).reshape(len(metrics), -1)
        return self.normalise(raw * self.signs)


# --------------------------------------------------------------------------- ZDT (n = 30)

ZDT_VARIABLES = 30


def _x(values: Mapping[str, Any], n: int) -> np.ndarray:
    return np.array([float(values[f"x{i:02d}"]) for i in range(n)])


def _zdt(shape: Callable[[float, float], float]) -> Callable[[Mapping[str, Any]], Metrics]:
    def evaluate(values: Mapping[str, Any]) -> Metrics:
        x = _x(values, ZDT_VARIABLES)
        f1 = float(x[0])
        g = 1.0 + 9.0 * float(np.mean(x[1:]))
        return {"f1": f1, "f2": g * shape(f1, g)}

    return evaluate


ZDT_SHAPES: dict[str, Callable[[float, float], float]] = {
    "zdt1": lambda f1, g: 1.0 - math.sqrt(f1 / g),
    "zdt2": lambda f1, g: 1.0 - (f1 / g) ** 2,
    "zdt3": lambda f1, g: 1.0 - math.sqrt(f1 / g) - (f1 / g) * math.sin(10.0 * math.pi * f1),
}
ZDT_MAX_HV = {"zdt1": 120.0 + 2.0 / 3.0, "zdt2": 120.0 + 1.0 / 3.0, "zdt3": 128.77811613069076}


def unit_box(n: int) -> dict[str, dict[str, Any]]:
    return {f"x{i:02d}": {"type": "float", "min": 0.0, "max": 1.0} for i in range(n)}


# --------------------------------------------------------------------------- DTLZ2 (M = 3, n = 12)

DTLZ_OBJECTIVES = 3
DTLZ_VARIABLES = DTLZ_OBJECTIVES + 10 - 1


def _dtlz2(values: Mapping[str, Any]) -> Metrics:
    x = _x(values, DTLZ_VARIABLES)
    m = DTLZ_OBJECTIVES
    g = float(np.sum((x[m - 1:] - 0.5) ** 2))
    angles = x[: m - 1] * math.pi / 2
    f = []
    for i in range(m):
        value = 1.0 + g
        value *= float(np.prod(np.cos(angles[: m - 1 - i])))
        if i > 0:
            value *= math.sin(angles[m - 1 - i])
        f.append(value)
    return {f"f{i + 1}": f[i] for i in range(m)}


DTLZ2_MAX_HV = 1.1 ** 3 - math.pi / 6


# --------------------------------------------------------------------------- a conditional NAS-like problem

NAS_SPACE: dict[str, dict[str, Any]] = {
    "block": {"type": "choice", "values": ["mlp", "conv", "resnet"]},
    "mlp_layers": {"type": "int", "min": 1, "max": 6, "when": {"block": ["mlp"]}},
    "mlp_units": {"type": "int", "min": 16, "max": 2048, "sampling": "log", "when": {"block": ["mlp"]}},
    "conv_stages": {"type": "int", "min": 1, "max": 4, "when": {"block": ["conv"]}},
    "conv_filters": {"type": "int", "min": 8, "max": 256, "sampling": "log", "when": {"block": ["conv"]}},
    "conv_kernel": {"type": "choice", "values": [3, 5, 7], "when": {"block": ["conv"]}},
    "res_blocks": {"type": "int", "min": 1, "max": 8, "when": {"block": ["resnet"]}},
    "res_width": {"type": "int", "min": 16, "max": 512, "sampling": "log", "when": {"block": ["resnet"]}},
    "res_bottleneck": {"type": "boolean", "when": {"block": ["resnet"]}},
    "lr": {"type": "float", "min": 1e-5, "max": 1e-1, "sampling": "log"},
    "dropout": {"type": "float", "min": 0.0, "max": 0.6},
    "weight_decay": {"type": "float", "min": 1e-6, "max": 1e-2, "sampling": "log"},
    "activation": {"type": "choice", "values": ["relu", "gelu", "tanh"]},
}
NAS_CEILING = {"mlp": 0.62, "conv": 0.86, "resnet": 0.93}  # the best accuracy each block type reaches
NAS_BEST_LR = {"mlp": 3e-3, "conv": 1e-3, "resnet": 3e-4}
NAS_HALF_CAPACITY = {"mlp": 5.0, "conv": 4.3, "resnet": 5.0}  # log10 params at half the reachable gain


def nas_params(v: Mapping[str, Any]) -> float:
    """The parameter count for a 32x32x3 input and 10 classes (weights and biases)."""
    block = v["block"]
    if block == "mlp":
        units, layers = int(v["mlp_units"]), int(v["mlp_layers"])
        return 3072 * units + units + (layers - 1) * (units * units + units) + units * 10 + 10
    if block == "conv":
        filters, stages, k = int(v["conv_filters"]), int(v["conv_stages"]), int(v["conv_kernel"])
        total, channels = 0, 3
        for s in range(stages):  # two convolutions per stage, width doubling each stage
            width = filters * 2 ** s
            total += k * k * channels * width + width + k * k * width * width + width
            channels = width
        return total + channels * 10 + 10
    width, blocks = int(v["res_width"]), int(v["res_blocks"])
    per_block = (width * width // 4 * 2 + 9 * (width // 4) ** 2 + 3 * width) if v["res_bottleneck"] \
        else 2 * (9 * width * width + width)
    return 27 * width + width + blocks * per_block + width * 10 + 10


def nas_accuracy(v: Mapping[str, Any], params: float) -> float:
    """A smooth, deterministic accuracy proxy with interactions (see the module docstring)."""
    block = v["block"]
    capacity = math.log10(params)
    gain = 1.0 / (1.0 + math.exp(-1.6 * (capacity - NAS_HALF_CAPACITY[block])))
    lr_miss = (math.log10(float(v["lr"])) - math.log10(NAS_BEST_LR[block])) ** 2
    size_factor = max(0.0, capacity - 5.0)  # dropout and weight decay help big models, hurt small ones
    regular = -0.25 * (float(v["dropout"]) - 0.1 * size_factor) ** 2
    decay = -0.01 * (math.log10(float(v["weight_decay"])) + 4.0 + 0.3 * size_factor) ** 2
    act = {"relu": 0.0, "gelu": 0.01, "tanh": -0.03}[v["activation"]]
    depth = {"mlp": -0.02 * max(0, int(v.get("mlp_layers", 1)) - 3),
             "conv": 0.01 * (int(v.get("conv_kernel", 3)) == 5),
             "resnet": 0.015 * bool(v.get("res_bottleneck"))}[block]
    accuracy = 0.1 + (NAS_CEILING[block] - 0.1) * gain * math.exp(-0.35 * lr_miss) + regular + decay + act + depth
    return float(min(1.0, max(0.0, accuracy)))


def _nas(values: Mapping[str, Any]) -> Metrics:
    params = float(nas_params(values))
    return {"accuracy": nas_accuracy(values, params), "params": params}


def _nas_normalise(costs: np.ndarray) -> np.ndarray:
    out = costs.copy()
    out[:, 0] = 1.0 + costs[:, 0]  # cost -accuracy -> error = 1 - accuracy
    out[:, 1] = (np.log10(costs[:, 1]) - 3.0) / 5.0
    return out


# --------------------------------------------------------------------------- the set


PROBLEMS: dict[str, MOProblem] = {
    **{name: MOProblem(name, unit_box(ZDT_VARIABLES), _zdt(shape), ("f1:min", "f2:min"), (11.0, 11.0))
       for name, shape in ZDT_SHAPES.items()},
    "dtlz2": MOProblem("dtlz2", unit_box(DTLZ_VARIABLES), _dtlz2, ("f1:min", "f2:min", "f3:min"), (1.1, 1.1, 1.1)),
    # The bench scores params by its log (_nas_normalise), and says so as a user would: params:min:log.
    "nas": MOProblem("nas", NAS_SPACE, _nas, ("accuracy:max", "params:min:log"), (1.1, 1.1), _nas_normalise,
                     (1.0 - 1.1, 10.0 ** (3.0 + 5.0 * 1.1))),  # the inverse of _nas_normalise
}


def front_hypervolume(name: str, points: int = 20001) -> float:
    """The hypervolume of a dense sample of a ZDT problem's analytic front (x2..xn = 0), for checking."""
    from archsearch.core.pareto import front_mask, hypervolume

    problem = PROBLEMS[name]
    rows = []
    for f1 in np.linspace(0.0, 1.0, points):
        values = {f"x{i:02d}": 0.0 for i in range(ZDT_VARIABLES)}
        values["x00"] = float(f1)
        rows.append(problem(values))
    costs = problem.costs(rows)
    return hypervolume(costs[front_mask(costs)], problem.reference)
