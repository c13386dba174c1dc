"""A search space as numeric vectors, for models of the objective (the GP of Bayesian optimisation).

Every searched parameter becomes one or more columns in ``[0, 1]``:

* ``Int`` and ``Float``: one column, the parameter's own ``to_unit`` warp, so
  log and reverse-log scales are modelled in the space they are sampled in.
  Decoding goes back through ``from_unit``, which rounds integers and snaps
  values with a ``step`` to their grid: a model may optimise these columns
  continuously and still produce valid values.
* ``Choice`` with ``ordered`` values (numeric choices by default): one column,
  like an integer.
* unordered ``Choice`` and ``Boolean``: one-hot, one column per value, so the
  model never assumes that "relu" lies between "elu" and "tanh".  Decoding
  takes the largest column (so a relaxed, non-binary block decodes too).
* ``Fixed`` parameters and single-valued ones: no column.

A parameter without a value in a configuration -- inactive because its
``when`` condition fails, or declared by a define-by-run builder only after
that trial ran -- gets a constant *neutral* encoding: ``0.5`` for a numeric
column (the middle, as close to any active value as possible, so it does not
pose as an extreme) and ``1/k`` in every column of a one-hot block
(equidistant from every category).  Every configuration where the parameter
is inactive then shares the same coordinates in those columns, and the
kernel sees them as alike there instead of inventing a value they never used.

The space can grow between calls (define-by-run): build a new encoder when
:meth:`SpaceEncoder.matches` says the space changed.

Why :meth:`SpaceEncoder.encode_units`: a model-based suggestion scores
hundreds of candidates, and building each as a dict of values and encoding it
cost most of a suggestion (about 0.35 s of 0.7 s at 100 observations in a
10-parameter space).  When no parameter has a condition, a candidate's
encoding is a function of its unit coordinates alone, column by column, so
the candidates are encoded as one array and only the few an optimiser keeps
are turned into values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.space.categorical import Boolean, Choice, Fixed
from archsearch.space.hyperparameters import HyperParameters
from archsearch.space.numeric import Float, Int
from archsearch.space.parameters import HyperParameter
from archsearch.space.values import values_key

# Integers (or stepped values) with fewer values than this are left to the candidate search:
# refining them continuously cannot do better than trying their values.
MIN_VALUES_TO_REFINE = 5


@dataclass(frozen=True)
class Block:
    """The columns ``start:start+width`` of one parameter; ``kind`` is ``numeric`` or ``onehot``."""

    name: str
    kind: str
    start: int
    width: int
    parameter: HyperParameter

    @property
    def columns(self) -> slice:
        return slice(self.start, self.start + self.width)


class SpaceEncoder:
    """Encode configurations of ``hyperparameters`` as vectors in the unit cube and back."""

    def __init__(self, hyperparameters: HyperParameters) -> None:
        self.hyperparameters = hyperparameters
        self.names: tuple[str, ...] = tuple(hyperparameters.space.keys())
        self.blocks: list[Block] = []
        start = 0
        for name, p in hyperparameters.space.items():
            kind, width = _layout(p)
            if width == 0:
                continue
            self.blocks.append(Block(name, kind, start, width, p))
            start += width
        self.dims = start
        self._tables: dict[str, np.ndarray | None] = {}  # encode_units' per-parameter lookup tables
        self._neutral = np.empty(self.dims)
        for b in self.blocks:
            self._neutral[b.columns] = 0.5 if b.kind == "numeric" else 1.0 / b.width

    def matches(self, hyperparameters: HyperParameters) -> bool:
        """Whether this encoder still describes ``hyperparameters`` (False once the space has grown)."""
        return hyperparameters is self.hyperparameters and tuple(hyperparameters.space.keys()) == self.names

    @property
    def num_searched(self) -> int:
        """Parameters that get columns (the space's dimension as far as a model is concerned)."""
        return len(self.blocks)

    # ------------------------------------------------------------ values -> vectors
    def encode(self, values: Mapping[str, Any]) -> np.ndarray:
        """One configuration as a vector; missing or inactive parameters get the neutral encoding."""
        x = self._neutral.copy()
        for b in self.blocks:
            p = b.parameter
            if b.name not in values or not p.is_active(values):
                continue
            value = values[b.name]
            try:
                if b.kind == "numeric":
                    x[b.start] = p.to_unit(value)
                else:
                    x[b.columns] = 0.0
                    x[b.start + _category_index(p, value)] = 1.0
            except (ValueError, TypeError):
                x[b.columns] = self._neutral[b.columns]  # a value the space no longer has: unknown
        return x

    def encode_many(self, configurations: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not configurations:
            return np.zeros((0, self.dims))
        return np.stack([self.encode(v) for v in configurations])

    # ------------------------------------------------------------ unit coordinates -> vectors
    @property
    def unconditional(self) -> bool:
        """Whether every parameter is always active (no conditions, one declaration per name)."""
        hp = self.hyperparameters
        return all(not p.conditions and len(hp.declarations(name)) == 1 for name, p in hp.space.items())

    def encode_units(self, units: np.ndarray) -> np.ndarray:
        """``encode(hyperparameters.sample(unit=u))`` for every row ``u`` of ``units``, as one array.

        ``units`` has one column per parameter of the space (in its order, fixed ones included), as
        ``HyperParameters.sample`` takes them.  Only for :attr:`unconditional` spaces, where which
        parameters are active does not depend on the values.
        """
        if not self.unconditional:
            raise ValueError("encode_units needs a space without conditions; use encode_many")
        units = np.clip(np.atleast_2d(np.asarray(units, dtype=float)), 0.0, 1.0)
        column_of = {name: j for j, name in enumerate(self.names)}
        x = np.empty((len(units), self.dims))
        for b in self.blocks:
            u = units[:, column_of[b.name]]
            if b.name not in self._tables:
                self._tables[b.name] = _encoding_table(b)
            table = self._tables[b.name]
            if table is None:  # a continuous number: its own warp of the value from_unit gives
                p = b.parameter
                x[:, b.start] = [p.to_unit(p.from_unit(float(v))) for v in u]
            else:  # finitely many values: from_unit's bin, then that value's encoding
                index = np.minimum(len(table) - 1, np.floor(u * len(table)).astype(int))
                x[:, b.columns] = table[index]
        return x

    # ------------------------------------------------------------ vectors -> values
    def decode(self, vector: Sequence[float]) -> dict[str, Any]:
        """The active values a vector stands for (integers rounded, steps snapped, one-hot by largest column)."""
        x = np.asarray(vector, dtype=float)
        full: dict[str, Any] = {}
        by_name = {b.name: b for b in self.blocks}
        for name, p in self.hyperparameters.space.items():
            b = by_name.get(name)
            if b is None:
                full[name] = p.from_unit(0.5)  # fixed or single-valued
            elif b.kind == "numeric":
                full[name] = p.from_unit(float(np.clip(x[b.start], 0.0, 1.0)))
            else:
                full[name] = _categories(p)[int(np.argmax(x[b.columns]))]
        return self.hyperparameters.active_values(full)

    def project(self, vector: Sequence[float]) -> np.ndarray:
        """The encoding of the configuration a (possibly relaxed) vector decodes to."""
        return self.encode(self.decode(vector))

    # ------------------------------------------------------------ for optimisers
    def refinable_blocks(self, values: Mapping[str, Any]) -> list[Block]:
        """Blocks a continuous optimiser may move for this configuration.

        Those of active ``Int``/``Float`` parameters with many (or continuous)
        values; categories, small integer ranges and inactive parameters stay
        as the configuration has them.
        """
        blocks = []
        for b in self.blocks:
            p = b.parameter
            if b.kind != "numeric" or not isinstance(p, (Int, Float)) or b.name not in values:
                continue
            discrete = p._discrete_values()
            if discrete is None or len(discrete) >= MIN_VALUES_TO_REFINE:
                blocks.append(b)
        return blocks

    def refinable_columns(self, values: Mapping[str, Any]) -> np.ndarray:
        """The columns of :meth:`refinable_blocks`."""
        return np.array([b.start for b in self.refinable_blocks(values)], dtype=int)

    def discrete_key(self, values: Mapping[str, Any]) -> str:
        """What a continuous optimiser cannot change: the values of every non-refinable parameter."""
        moving = {b.name for b in self.refinable_blocks(values)}
        return values_key({k: v for k, v in values.items() if k not in moving})

    def onehot_blocks(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "onehot"]


def _layout(p: HyperParameter) -> tuple[str, int]:
    """How many columns a parameter takes and of which kind."""
    if isinstance(p, Fixed):
        return "none", 0
    if isinstance(p, Boolean):
        return "onehot", 2
    if isinstance(p, Choice):
        if len(p.values) <= 1:
            return "none", 0
        return ("numeric", 1) if p.ordered else ("onehot", len(p.values))
    if isinstance(p, (Int, Float)):
        return ("none", 0) if p.min_value == p.max_value else ("numeric", 1)
    return "numeric", 1  # an unknown type: trust its to_unit/from_unit


def _encoding_table(b: Block) -> np.ndarray | None:
    """Row i: the encoding of the parameter's i-th value in unit order; None for a continuous number.

    ``from_unit(u)`` of a parameter with k values is its value ``min(k - 1, floor(u * k))`` (Booleans:
    False below 0.5, True from it), so a unit coordinate maps to a row without building the value.
    """
    p = b.parameter
    if b.kind == "onehot":
        return np.eye(b.width)
    if isinstance(p, Choice):
        values = list(p.values)
    elif isinstance(p, (Int, Float)):
        values = p._discrete_values()
        if values is None:
            return None
    else:
        return None
    # to_unit of a value on a grid is its bin centre, the first bin holding it (rounding can repeat one).
    first: dict[Any, int] = {}
    for i, v in enumerate(values):
        first.setdefault(v, i)
    return np.array([[(first[v] + 0.5) / len(values)] for v in values], dtype=float)


def _categories(p: HyperParameter) -> list:
    return [False, True] if isinstance(p, Boolean) else list(p.values)


def _category_index(p: HyperParameter, value: Any) -> int:
    if isinstance(p, Boolean):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{value!r} is not a boolean")
        return int(bool(value))
    return p.index(value)
