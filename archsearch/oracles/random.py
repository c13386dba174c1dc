"""Random search: independent draws from the space, optionally quasi-random (Sobol).

Sobol points cover the unit cube more evenly than pseudo-random ones, which
helps small budgets; both streams are seeded, so a search is reproducible.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from archsearch.oracles.base import Oracle, Proposal, register_oracle

MAX_DRAWS_PER_ASK = 1000


@register_oracle("random")
class RandomSearchOracle(Oracle):
    """Draw configurations at random, never the same one twice.

    ``sampler="sobol"`` uses scrambled Sobol points (scipy) instead of
    pseudo-random numbers.  When ``MAX_DRAWS_PER_ASK`` draws in a row are all
    repeats, the space is taken as exhausted and the search ends.
    """

    def __init__(self, hyperparameters, objective, sampler: str = "random", **kwargs) -> None:
        super().__init__(hyperparameters, objective, **kwargs)
        from archsearch.errors import ConfigError

        if sampler not in ("random", "sobol"):
            raise ConfigError("tuner.sampler", f"unknown sampler {sampler!r}", "use random or sobol")
        self.sampler = sampler
        self._sobol: qmc.Sobol | None = None
        self._sobol_dims = 0

    def _unit_point(self) -> np.ndarray:
        dims = max(1, len(self.hyperparameters.space))
        if self.sampler == "random":
            return self.rng.random(dims)
        if self._sobol is None or dims != self._sobol_dims:
            # The space can grow (define-by-run); restart the sequence for the new dimension.
            self._sobol = qmc.Sobol(d=dims, scramble=True, seed=self.seed + 1000 * dims)
            self._sobol.fast_forward(len(self.trials))
            self._sobol_dims = dims
        return self._sobol.random(1)[0]

    def _propose(self) -> Proposal | None:
        for _ in range(MAX_DRAWS_PER_ASK):
            values = self.hyperparameters.sample(self.rng, unit=self._unit_point())
            if self.is_new(values):
                return Proposal(values)
        self._exhausted = True
        return None
