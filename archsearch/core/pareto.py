"""Pareto fronts of costs: dominance ranks, crowding, the knee and hypervolume.

Every function takes *costs*: one row per trial, one column per objective, each to minimise
(:meth:`ParetoObjective.costs_from` negates the maximised ones).  Ranks and hypervolume come from
``moocore`` (exact hypervolume in any dimension, fast non-dominated sorting); crowding distance and
the knee are NSGA-II's and a few lines each.  Kept apart from the oracles because the oracles, the
results table, the report and the export all ask the same questions of the same trials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    """The front point closest to the ideal once each cost is scaled to [0, 1] over the front (callers pass
    the costs in each objective's scale: a ``scale: log`` one by its logarithm, as the hypervolume counts it).

    The ideal is every cost's best; the scale makes a cost in millions (params) weigh as much as
    one in [0, 1] (an accuracy).  Ties: the earlier row.
    """
    array = as_costs(costs)
    if len(array) == 0:
        raise ValueError("no trial on the front")
    return int(knee_order(array)[0])


def knee_order(costs: Any) -> np.ndarray:
    """Row indices from the knee outwards: by distance to the ideal after :func:`knee_index`'s scaling
    (ties: the earlier row).  Where the knee cannot be used (its model is broken), the next one is."""
    array = as_costs(costs)
    low, high = array.min(axis=0), array.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = (array - low) / span
    return np.argsort(np.linalg.norm(scaled, axis=1), kind="stable")


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


def full_budget_mask(budgets: Sequence[int | None]) -> np.ndarray:
    """Which trials a front compares: those trained to the largest budget any of them reached (a trial
    without a budget trained the trainer's full epochs).  A multi-fidelity search's trial stopped at a
    lower rung is left out, as Optuna leaves pruned trials out of ``best_trials``: its few epochs would
    put a small, barely trained model on the front of accuracy against size."""
    given = [int(b) for b in budgets if b is not None]
    top = max(given, default=None)
    return np.array([b is None or top is None or int(b) >= top for b in budgets], dtype=bool)


def at_full_budget(trials: Iterable[Trial]) -> list[Trial]:
    """The trials of :func:`full_budget_mask`, among the completed ones (their budgets decide)."""
    done = [t for t in trials if t.status == COMPLETED]
    return [t for t, keep in zip(done, full_budget_mask([t.budget for t in done])) if keep]


def front(trials: Iterable[Trial], objective: Any) -> list[Trial]:
    """The completed trials on the Pareto front (among those :func:`at_full_budget`), ordered by the first
    objective (best first), then id."""
    kept, costs = scored_trials(at_full_budget(trials), objective)
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


def derived_reference(objective: Any, costs: Any) -> np.ndarray:
    """:func:`default_reference_point` taken in each objective's scale (a ``scale: log`` one by its logarithm:
    10% of its range in decades), as plain costs: the reference the results and the report derive."""
    return unscaled_costs(objective, default_reference_point(objective.scaled_costs(costs)))


def unscaled_costs(objective: Any, scaled: Any) -> np.ndarray:
    """:meth:`~archsearch.core.objective.ParetoObjective.scaled_costs` undone (a point derived in the scales)."""
    array = np.array(scaled, dtype=float)
    rows = array.reshape(-1, len(objective.components))
    for j in objective.log_columns:
        sign = objective.components[j].sign
        rows[:, j] = -sign * np.exp(-sign * rows[:, j])
    return rows.reshape(array.shape)


def reference_values(reference_point: Any, names: Sequence[str], field: str = "search.reference_point") -> list[float]:
    """A reference point (one number per objective, by name or in objective order) as finite numbers in that
    order: the one reader of ``search.reference_point`` (the settings, the results table and the report)."""
    from archsearch.errors import ConfigError

    names = list(names)
    if isinstance(reference_point, Mapping):
        values = [reference_point.get(n) for n in names]
        fits = set(reference_point) == set(names)
    else:
        values = list(reference_point) if isinstance(reference_point, (list, tuple)) else []
        fits = len(values) == len(names)
    try:
        numbers = [float(v) for v in values] if fits and not any(isinstance(v, bool) for v in values) else []
    except (TypeError, ValueError):
        numbers = []
    if not numbers or not all(np.isfinite(numbers)):
        raise ConfigError(field, f"{reference_point!r} is not one number for each objective {names}",
                          f"e.g. {{{names[0]}: ..., {names[1]}: ...}} (or a list in objective order), each in "
                          "the objective's own units")
    return numbers


def reference_costs(objective: Any, reference_point: Any, field: str = "reference_point") -> np.ndarray:
    """``search.reference_point`` (a value per objective, in its own units, by name or in order) as costs."""
    from archsearch.core.objective import LOG
    from archsearch.errors import ConfigError

    parts = list(objective.components)
    values = reference_values(reference_point, [p.name for p in parts], field)
    for part, value in zip(parts, values):
        if part.scale == LOG and value <= 0:
            raise ConfigError(field, f"{part.name}={value:g}, but {part.name} is counted by its log (scale: log), "
                              "which a value at 0 or below has not", f"give {part.name} a reference above 0, or "
                              "scale: linear")
    return np.asarray([-p.sign * v for p, v in zip(parts, values)], dtype=float)


def as_values(objective: Any, costs: Sequence[float]) -> list[float]:
    """Costs back in each objective's own units (maximised objectives negated again)."""
    return [float(-p.sign * c) for p, c in zip(objective.components, costs)]


@dataclass
class FrontView:
    """What the results show of a Pareto search: every scored trial's rank, the front and its knee.

    ``trials``/``costs``/``ranks`` cover the completed trials with every objective that trained to the full
    budget (:func:`at_full_budget`; same row order), ``lower_budget`` the others, stopped at a lower rung;
    ``front`` is the front ordered as :func:`front` orders it and ``knee`` the id of its knee point.
    """

    trials: list[Trial]
    costs: np.ndarray
    ranks: np.ndarray
    front: list[Trial]
    knee: int | None
    lower_budget: list[Trial] = field(default_factory=list)
    objective: Any = None  # the ParetoObjective, whose scales the hypervolume counts in

    @classmethod
    def of(cls, trials: Iterable[Trial], objective: Any) -> FrontView:
        everything = scored_trials(trials, objective)[0]
        kept, costs = scored_trials(at_full_budget(everything), objective)
        ranks = nondominated_ranks(costs)
        on_front = [t for t, r in zip(kept, ranks) if r == 0]
        ordered = front(on_front, objective)
        knee = None
        if ordered:
            by_id = {t.id: row for t, row in zip(kept, costs)}
            knee = ordered[knee_index(objective.scaled_costs(np.asarray([by_id[t.id] for t in ordered])))].id
        compared = {t.id for t in kept}
        return cls(kept, costs, ranks, ordered, knee, [t for t in everything if t.id not in compared], objective)

    def knee_first(self) -> list[Trial]:
        """The front from its knee outwards (see :func:`knee_order`)."""
        by_id = {t.id: row for t, row in zip(self.trials, self.costs)}
        order = knee_order(self.objective.scaled_costs(np.asarray([by_id[t.id] for t in self.front]))) \
            if self.front else []
        return [self.front[i] for i in order]

    def rank_of(self) -> dict[int, int]:
        return {t.id: int(r) for t, r in zip(self.trials, self.ranks)}

    def hypervolume(self, reference: Any = None) -> tuple[float, np.ndarray] | None:
        """(hypervolume of the trials, the reference in costs): ``reference`` in costs, else the default.
        Counted in each objective's scale (a ``scale: log`` one by its logarithm), as the oracles count it."""
        if not self.trials:
            return None
        scales = self.objective
        ref = derived_reference(scales, self.costs) if reference is None else np.asarray(reference, dtype=float)
        return hypervolume(scales.scaled_costs(self.costs), scales.scaled_costs(ref)), ref


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
    """The completed trials with every objective in :func:`selection_order` (ties: the older trial first), the
    crowding taken in each objective's scale (``scale: log`` by its logarithm), as the hypervolume is."""
    kept, costs = scored_trials(sorted(trials, key=lambda t: t.id), objective)
    return [kept[i] for i in selection_order(objective.scaled_costs(costs))] if kept else []
