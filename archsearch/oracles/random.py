"""Random search: independent draws from the space, optionally quasi-random (Sobol).

Sobol points cover the unit cube more evenly than pseudo-random ones, which
helps small budgets; both streams are seeded, so a search is reproducible.
"""

from __future__ import annotations

from archsearch.oracles.base import Oracle, Proposal, register_oracle
from archsearch.oracles.unit_points import UnitPoints

MAX_DRAWS_PER_ASK = 1000


@register_oracle("random")
class RandomSearchOracle(Oracle):
    """Draw configurations at random, never the same one twice.

    ``sampler="sobol"`` uses scrambled Sobol points (scipy) instead of
    pseudo-random numbers.  When ``MAX_DRAWS_PER_ASK`` draws in a row are all
    repeats, the space is taken as exhausted and the search ends.
    """

    proposals_ignore_results = True  # so parallel trials repeat exactly (Oracle.repeats_in_parallel)

    def __init__(self, hyperparameters=None, objective=None, sampler: str = "random", **kwargs) -> None:
        super().__init__(hyperparameters, objective, **kwargs)
        self.points = UnitPoints(sampler, self.seed, self.rng)

    def _propose(self) -> Proposal | None:
        for _ in range(MAX_DRAWS_PER_ASK):
            values = self.hyperparameters.sample(self.rng, unit=self.points.next(len(self.hyperparameters.space)))
            if self.is_new(values):
                return Proposal(values)
        self._exhausted = True
        return None
