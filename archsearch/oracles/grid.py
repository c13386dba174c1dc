"""Grid search: every combination of the space, each once, in declaration order.

Floats without a step are tried on ``float_points`` values spaced by their
sampling (log-spaced for log sampling).  Conditional parameters only multiply
the grid where their parent activates them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from archsearch.errors import ConfigError
from archsearch.oracles.base import Oracle, Proposal, register_oracle


@register_oracle("grid")
class GridSearchOracle(Oracle):
    """Enumerate the full grid; ``max_trials`` (optional) caps how much of it runs."""

    def __init__(self, hyperparameters=None, objective=None, float_points: int = 5, shuffle: bool = False, **kwargs) -> None:
        super().__init__(hyperparameters, objective, **kwargs)
        if int(float_points) < 2:
            raise ConfigError("tuner.float_points", f"must be at least 2, got {float_points}")
        self.float_points = int(float_points)
        self.shuffle = bool(shuffle)
        self._iterator: Iterator[dict[str, Any]] | None = None
        self._space_size = -1

    def _combinations(self) -> Iterator[dict[str, Any]]:
        combos = self.hyperparameters.grid(self.float_points)
        if not self.shuffle:
            return combos
        combos = list(combos)
        self.rng.shuffle(combos)
        return iter(combos)

    def _propose(self) -> Proposal | None:
        if self._iterator is None or self._space_size != len(self.hyperparameters.space):
            # (Re)start when the space grows; already-tried combinations are skipped below.
            self._iterator = self._combinations()
            self._space_size = len(self.hyperparameters.space)
        for values in self._iterator:
            if self.is_new(values):
                return Proposal(values)
        if self.running:
            return None  # a running trial may still declare parameters (define-by-run): wait, then grow the grid
        self._exhausted = True
        return None

    @property
    def grid_size(self) -> int:
        return self.hyperparameters.grid_size(self.float_points)
