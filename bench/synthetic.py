"""Cheap test functions with known minima, for benchmarking search algorithms without training anything.

Each :class:`Problem` has a search space in archsearch's declarative form
(``conf/model/*.yaml`` syntax), a function of a configuration's values to
*minimise*, and its exact minimum, so the simple regret of a search is
``best value found - minimum``.

* ``branin`` (2-D, continuous): the classic Branin-Hoo function, three global
  minima of 0.397887.
* ``hartmann6`` (6-D, continuous, unit cube): one narrow global minimum of
  -3.32237 among several local ones.
* ``mixed`` (5 parameters of every kind): a log-scale learning rate whose best
  value depends on a categorical ``optimizer`` (the categorical *moves* the
  optimum), an integer ``units`` whose best value depends on a boolean
  ``batchnorm``, and a linear ``dropout``; minimum 0 at optimizer=adam,
  batchnorm=true, learning_rate=1e-3, units=96, dropout=0.15.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Problem:
    name: str
    space: dict[str, dict[str, Any]]
    function: Callable[[Mapping[str, Any]], float]
    minimum: float

    def __call__(self, values: Mapping[str, Any]) -> float:
        return float(self.function(values))

    def regret(self, value: float) -> float:
        return float(value) - self.minimum


def branin(h: Mapping[str, Any]) -> float:
    x1, x2 = float(h["x1"]), float(h["x2"])
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5.0 / math.pi
    r, s, t = 6.0, 10.0, 1.0 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]], dtype=float)
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]], dtype=float)


def hartmann6(h: Mapping[str, Any]) -> float:
    x = np.array([float(h[f"x{i}"]) for i in range(1, 7)])
    return float(-(_H6_ALPHA * np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(axis=1))).sum())


_LR_OPT = {"adam": -3.0, "sgd": -1.3, "rmsprop": -2.3}  # log10 of the best learning rate per optimizer
_OPT_COST = {"adam": 0.0, "sgd": 0.08, "rmsprop": 0.04}


def mixed(h: Mapping[str, Any]) -> float:
    opt, bn = str(h["optimizer"]), bool(h["batchnorm"])
    d_lr = (math.log10(float(h["learning_rate"])) - _LR_OPT[opt]) / 0.6
    d_units = (math.log2(int(h["units"])) - math.log2(96 if bn else 32)) / 1.2
    d_drop = (float(h["dropout"]) - 0.15) / 0.25
    shape = 1.0 - math.exp(-0.5 * (d_lr**2 + d_units**2 + 0.3 * d_drop**2 + 0.5 * d_lr * d_drop))
    return shape + _OPT_COST[opt] + (0.0 if bn else 0.05)


PROBLEMS: dict[str, Problem] = {
    "branin": Problem(
        "branin",
        {"x1": {"type": "float", "min": -5.0, "max": 10.0}, "x2": {"type": "float", "min": 0.0, "max": 15.0}},
        branin,
        0.39788735772973816,
    ),
    "hartmann6": Problem(
        "hartmann6",
        {f"x{i}": {"type": "float", "min": 0.0, "max": 1.0} for i in range(1, 7)},
        hartmann6,
        -3.3223680114155147,
    ),
    "mixed": Problem(
        "mixed",
        {
            "learning_rate": {"type": "float", "min": 1e-5, "max": 1.0, "sampling": "log"},
            "units": {"type": "int", "min": 8, "max": 256, "step": 8},
            "optimizer": {"type": "choice", "values": ["sgd", "rmsprop", "adam"]},
            "batchnorm": {"type": "boolean"},
            "dropout": {"type": "float", "min": 0.0, "max": 0.6},
        },
        mixed,
        0.0,
    ),
}
