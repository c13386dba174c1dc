"""Pareto fronts of costs: dominance ranks, crowding, the knee and hypervolume.

Every function takes *costs*: one row per trial, one column per objective, each to minimise
(:meth:`ParetoObjective.costs_from` negates the maximised ones).  Ranks and hypervolume come from
``moocore`` (exact hypervolume in any dimension, fast non-dominated sorting); crowding distance and
the knee are NSGA-II's and a few lines each.  Kept apart from the oracles because the oracles, the
results table, the report and the export all ask the same questions of the same trials.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import moocore
import numpy as np

from archsearch.core.trial import COMPLETED, Trial


def as_costs(costs: Any) -> np.ndarray:
    array = np.asarray(costs, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"costs must be a 2-d array (trials x objectives), got shape {array.shape}")
    return array


def nondominated_ranks(costs: Any) -> np.ndarray:
    """0 for the front, 1 for the front once it is removed, and so on (NSGA-II's sorting)."""
    array = as_costs(costs)
    if len(array) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(moocore.pareto_rank(array), dtype=int)


def front_mask(costs: Any) -> np.ndarray:
    """True for the rows no other row dominates; equal rows are all kept (Optuna's ``best_trials``)."""
    array = as_costs(costs)
    if len(array) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(array, keep_weakly=True), dtype=bool)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse than ``b`` on every cost and better on one."""
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a_ <= b_) and np.any(a_ < b_))


def crowding_distance(costs: Any) -> np.ndarray:
    """NSGA-II's crowding distance within one front: the ends are infinite, the rest sum their gaps."""
    array = as_costs(costs)
    n, k = array.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(array[:, j], kind="stable")
        column = array[order, j]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def hypervolume(costs: Any, reference: Sequence[float]) -> float:
    """The volume the costs dominate up to ``reference`` (points not better than it add nothing)."""
    array = as_costs(costs)
    ref = np.asarray(reference, dtype=float)
    if array.shape[1:] != ref.shape:
        raise ValueError(f"reference has {ref.size} objectives, the costs {array.shape[1]}")
    inside = array[np.all(array < ref, axis=1)] if len(array) else array
    if len(inside) == 0:
        return 0.0
    return float(moocore.hypervolume(inside, ref=ref))


def knee_index(costs: Any) -> int:
    """The front point closest to the ideal once each cost is scaled to [0, 1] over the front.

    The ideal is every cost's best; the scale makes a cost in millions (params) weigh as much as
    one in [0, 1] (an accuracy).  Ties: the earlier row.
    """
    array = as_costs(costs)
    if len(array) == 0:
        raise ValueError("no trial on the front")
    low, high = array.min(axis=0), array.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = (array - low) / span
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))


def scored_trials(trials: Iterable[Trial], objective: Any) -> tuple[list[Trial], np.ndarray]:
    """The completed trials that have every objective, and their costs (rows in the same order)."""
    kept, rows = [], []
    for trial in trials:
        if trial.status != COMPLETED:
            continue
        costs = objective.costs_from(trial.metrics)
        if costs is not None:
            kept.append(trial)
            rows.append(costs)
    return kept, np.asarray(rows, dtype=float).reshape(len(rows), len(objective.components))


def front(trials: Iterable[Trial], objective: Any) -> list[Trial]:
    """The completed trials on the Pareto front, ordered by the first objective (best first), then id."""
    kept, costs = scored_trials(trials, objective)
    if not kept:
        return []
    mask = front_mask(costs)
    on_front = [(tuple(costs[i]), t) for i, t in enumerate(kept) if mask[i]]
    on_front.sort(key=lambda item: (item[0], item[1].id))
    return [t for _, t in on_front]


def default_reference_point(costs: np.ndarray) -> np.ndarray:
    """The hypervolume's reference when the config names none: the nadir plus 10% of each cost's range.

    The margin lets the front's extreme points add volume (at the nadir itself they would add none);
    a cost every trial shares (zero range) gets 10% of its magnitude, or 1 when it is 0.
    """
    array = as_costs(costs)
    if len(array) == 0:
        raise ValueError("no trial has every objective: there is no reference point to derive")
    low, high = array.min(axis=0), array.max(axis=0)
    span = np.where(high > low, high - low, np.where(high != 0, np.abs(high), 1.0))
    return high + 0.1 * span


def selection_order(costs: Any) -> np.ndarray:
    """Row indices best first, as NSGA-II selects: by non-dominated rank, then within a rank by crowding
    distance (the most isolated first, so the chosen points spread along the front), then by row."""
    array = as_costs(costs)
    ranks = nondominated_ranks(array)
    crowding = np.zeros(len(array))
    for rank in np.unique(ranks):
        rows = np.flatnonzero(ranks == rank)
        crowding[rows] = crowding_distance(array[rows])
    return np.array(sorted(range(len(array)), key=lambda i: (ranks[i], -crowding[i], i)), dtype=int)


def ranked_trials(trials: Iterable[Trial], objective: Any) -> list[Trial]:
    """The completed trials with every objective in :func:`selection_order` (ties: the older trial first)."""
    kept, costs = scored_trials(sorted(trials, key=lambda t: t.id), objective)
    return [kept[i] for i in selection_order(costs)] if kept else []
