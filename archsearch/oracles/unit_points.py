"""Seeded streams of points in the unit cube, the raw material of every sampler.

Oracles draw new configurations as points of ``[0, 1]^d`` and let
:meth:`HyperParameters.sample` map them to values.  Scrambled Sobol points
(scipy) cover the cube more evenly than pseudo-random ones, which helps small
budgets.  A define-by-run space can grow while a search runs, so the stream
restarts in the new dimension and skips the points already drawn, keeping a
replayed search (resume) identical to the original.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from archsearch.errors import ConfigError

SAMPLERS = ("random", "sobol")


def check_sampler(sampler: str, field: str = "tuner.sampler") -> str:
    if sampler not in SAMPLERS:
        raise ConfigError(field, f"unknown sampler {sampler!r}", f"use one of {', '.join(SAMPLERS)}")
    return sampler


class UnitPoints:
    """The next point of the unit cube, pseudo-random (from ``rng``) or Sobol (seeded by ``seed``)."""

    def __init__(self, sampler: str, seed: int, rng: np.random.Generator) -> None:
        self.sampler = check_sampler(sampler)
        self.seed = int(seed)
        self.rng = rng
        self.draws = 0
        self._sobol: qmc.Sobol | None = None
        self._dims = 0

    def next(self, dims: int) -> np.ndarray:
        dims = max(1, int(dims))
        self.draws += 1
        if self.sampler == "random":
            return self.rng.random(dims)
        if self._sobol is None or dims != self._dims:
            self._sobol = qmc.Sobol(d=dims, scramble=True, seed=self.seed + 1000 * dims)
            if self.draws > 1:  # scipy's fast_forward(0) overflows
                self._sobol.fast_forward(self.draws - 1)
            self._dims = dims
        return self._sobol.random(1)[0]
