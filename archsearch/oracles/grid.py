"""Grid search in KerasTuner's order: the same trials, in the same order, as a migrating user expects.

Each parameter's values are tried default first, then the others in grid order; floats without a
step (and log-sampled integers without one) are tried at the default and ``float_points`` bin
centres of their range (KerasTuner's 10).  The first trial takes every default; each later one is
the *successor* of a finished trial: the last declared parameter varies fastest, as an odometer,
and a conditional parameter is reset when its parent moves.

Parameters declared while a trial runs (define-by-run) join the grid from then on: a trial's
successor is computed when it finishes, in the space known at that moment, so combinations of a new
name with values tried before it existed are not revisited (KerasTuner's behaviour).  While the
successors run out but trials still run, the oracle waits (they may declare more names).

``shuffle=True`` instead tries the whole grid of the space known at the start in a seeded random order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

from archsearch.errors import ConfigError
from archsearch.space.parameters import HyperParameter
from archsearch.space.values import same_value
from archsearch.oracles.base import Oracle, Proposal, register_oracle


class LinkedList:
    """Trial ids in grid order; a successor is inserted right after the trial it follows.

    KerasTuner's ``gridsearch.LinkedList`` protocol: ``insert(data, data_pre=None)`` (at the end
    without ``data_pre``) and ``next(data)`` (None at the end).
    """

    def __init__(self) -> None:
        self._next: dict[Hashable, Hashable | None] = {}
        self._last: Hashable | None = None

    def insert(self, data: Hashable, data_pre: Hashable | None = None) -> None:
        if data_pre is None:
            if self._last is not None:
                self._next[self._last] = data
            self._next[data] = None
            self._last = data
            return
        self._next[data] = self._next[data_pre]
        self._next[data_pre] = data
        if self._last == data_pre:
            self._last = data

    def next(self, data: Hashable) -> Hashable | None:
        return self._next[data]


@register_oracle("grid")
class GridSearchOracle(Oracle):
    """Enumerate the grid in KerasTuner's order; ``max_trials`` (optional) caps how much of it runs."""

    # A finished trial's successor is the next combination after it: with a fixed space, the same
    # combinations in the same order whichever trial finishes first (Oracle.repeats_in_parallel).
    proposals_ignore_results = True

    def __init__(self, hyperparameters=None, objective=None, float_points: int = 10, shuffle: bool = False,
                 **kwargs) -> None:
        super().__init__(hyperparameters, objective, **kwargs)
        if int(float_points) < 2:
            raise ConfigError("tuner.float_points", f"must be at least 2, got {float_points}")
        self.float_points = int(float_points)
        self.shuffle = bool(shuffle)
        self._order = LinkedList()
        self._pending: deque[int] = deque()  # finished (or first) trials whose successor is still to propose
        self._shuffled: Iterator[dict[str, Any]] | None = None

    def values_of(self, parameter: HyperParameter) -> list:
        """One parameter's values in the order they are tried (the default first)."""
        return parameter.grid_order(self.float_points)

    # ------------------------------------------------------------ proposing
    def _propose(self) -> Proposal | None:
        if self.shuffle:
            return self._propose_shuffled()
        trial_id = self._next_id
        if not self.trials:
            self._order.insert(trial_id)
            self._pending.append(trial_id)  # so parallel workers get its successor before it ends
            return Proposal(self.hyperparameters.active_values({}))
        while self._pending:
            previous = self._pending.popleft()
            if previous not in self.trials:
                continue
            candidate = self.successor(self.trials[previous].hparams)
            if candidate is None:
                continue
            following = self._order.next(previous)
            if following is not None and following in self.trials:
                if self.compare(candidate, self.trials[following].hparams) >= 0:
                    continue  # already tried (or passed) between these two trials
            self._order.insert(trial_id, previous)
            return Proposal(candidate)
        if self.running:
            return None  # a running trial may still declare parameters: wait for it
        self._exhausted = True
        return None

    def _on_result(self, trial) -> None:
        self._pending.append(trial.id)  # its successor, in the space as it is now

    def successor(self, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The combination after ``values`` (the last parameter fastest), or None after the last one."""
        space = self.hyperparameters
        current = space.active_values(values)
        for name in reversed(list(space.space.keys())):
            parameter = space._active_declaration(name, current)
            if parameter is not None and name in current:
                order = self.values_of(parameter)
                index = _index(order, current[name])
                if index + 1 < len(order):
                    current[name] = order[index + 1]
                    return space.active_values(current)
                current[name] = order[0]
            else:
                current.pop(name, None)
        return None

    def compare(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
        """-1, 0 or 1 as ``a`` comes before, with or after ``b`` in grid order (the first differing name decides)."""
        space = self.hyperparameters
        a, b = space.active_values(a), space.active_values(b)
        for name in space.space.keys():
            if name not in a or name not in b or same_value(a[name], b[name]):
                continue
            parameter = space._active_declaration(name, a) or space.space[name]
            order = self.values_of(parameter)
            return -1 if _index(order, a[name]) < _index(order, b[name]) else 1
        return 0

    def _propose_shuffled(self) -> Proposal | None:
        if self._shuffled is None:
            combos = list(self.hyperparameters.grid(order=self.values_of))
            self.rng.shuffle(combos)
            self._shuffled = iter(combos)
        for values in self._shuffled:
            if self.is_new(values):
                return Proposal(values)
        self._exhausted = True
        return None

    @property
    def grid_size(self) -> int:
        """The number of combinations of the space known now."""
        return self.hyperparameters.grid_size(order=self.values_of)


def _index(order: list, value: Any) -> int:
    """Position of ``value`` in ``order``; a value off the grid (a hand-made trial) counts as the last."""
    return next((i for i, v in enumerate(order) if same_value(v, value)), len(order) - 1)
