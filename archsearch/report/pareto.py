"""What the report shows of a Pareto search: the front, the infeasible trials and the hypervolume's growth.

The hypervolume is measured against one reference point for the whole curve: ``search.reference_point``
from the stored config, or, when the config names none, :func:`archsearch.core.pareto.default_reference_point`
of every completed trial (the nadir plus 10% of each objective's range), derived once and said so on the
page.  Each objective is normalised by two fixed bounds, the reference point and the ideal (each objective's
best value over all the trials in the store)::

    normalised = (cost - ideal) / (reference - ideal)        # costs: maximised objectives negated

so the ideal is 0, the reference 1 and the hypervolume is the share of the box between them that the
trials dominate (1.0: one trial best at everything).  Both bounds are fixed for the whole curve, so it
never decreases; a report written later of a running search may find a better ideal and rescale the
curve (not change its shape).  The raw hypervolume, in the objectives' own units, is in the hover text.
An objective of ``scale: log`` counts by its logarithm in both (cost, ideal and reference alike), as the
oracles count it (:meth:`archsearch.core.objective.ParetoObjective.scaled_costs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.core.measures import BEFORE_TRAINING
from archsearch.core.objective import ParetoObjective
from archsearch.core.pareto import (derived_reference, front_mask, full_budget_mask, hypervolume, knee_index,
                                    reference_values)
from archsearch.report.data import RunRecord, finite

INFEASIBLE = "infeasible"
COLOURS = {"front": "#1f77b4", "dominated": "#b0b0b0", "infeasible": "#d62728", "knee": "#e6a800",
           "lower_budget": "#e4e4e4"}
ENDED = ("completed", "failed", "pruned")  # statuses of a trial that ended (running/interrupted did not)
NORMALISATION = ("each objective (by its log where its scale is log) is scaled to [0, 1] between the ideal (its best "
                 "value over all trials, 0) and the reference point (1), maximised objectives negated; the "
                 "hypervolume is the share of that "
                 "box the trials dominate (1 = one trial best at everything). Both bounds are fixed for the "
                 "whole curve, so it never decreases.")


@dataclass(frozen=True)
class HypervolumePoint:
    """The hypervolume once a trial ended: its id, how many trials had ended, when, and the volume."""

    trial: int
    ended: int
    seconds: float
    normalised: float
    raw: float


@dataclass
class ParetoView:
    """A Pareto search's trials as costs (every objective to minimise), its front and its hypervolume bounds."""

    names: list[str]
    directions: list[str]
    scored: list[dict[str, Any]]  # completed trials with every objective, in id order
    costs: np.ndarray  # one row per scored trial
    on_front: np.ndarray  # the front of every objective (equal points all kept)
    infeasible: list[dict[str, Any]]  # refused by a constraint (status failed, failure_kind infeasible)
    reference: np.ndarray | None  # costs; None when no trial has every objective yet
    derived: bool  # the reference was derived from the trials (the config names none)
    ideal: np.ndarray | None
    curve: list[HypervolumePoint] = field(default_factory=list)  # :meth:`hypervolume_curve` of the run's trials
    # Completed with every objective but stopped at a lower budget than ``scored``'s (a multi-fidelity search's
    # lower rungs): left out of the front and the hypervolume (:func:`archsearch.core.pareto.full_budget_mask`).
    lower_budget: list[dict[str, Any]] = field(default_factory=list)
    setting: str = "search.reference_point"  # where the run's config fixes the reference (a sweep: hydra.sweeper's)
    objective: ParetoObjective | None = None  # the objectives' scales, which the hypervolume counts in

    def log_axis(self, k: int, values: Sequence[float]) -> bool:
        """Objective ``k`` on a log axis: a size measure (:func:`log_axis`), or one counted by its logarithm."""
        logged = self.objective is not None and k in self.objective.log_columns
        return log_axis(self.names[k], values) or (logged and bool(values) and all(v > 0 for v in values))

    def scaled(self, costs: np.ndarray) -> np.ndarray:
        """Costs as the hypervolume counts them: a ``scale: log`` objective by its logarithm."""
        return costs if self.objective is None else self.objective.scaled_costs(costs)

    @property
    def signs(self) -> np.ndarray:
        """+1 for a maximised objective: cost = -sign * value."""
        return np.array([1.0 if d == "max" else -1.0 for d in self.directions])

    def values(self, trial: Mapping[str, Any]) -> list[float | None]:
        """The trial's value of each objective (None where it has none)."""
        metrics = trial.get("metrics") or {}
        return [float(metrics[n]) if finite(metrics.get(n)) else None for n in self.names]

    def reference_values(self) -> dict[str, float]:
        """The reference point in the objectives' own units (what the config's ``search.reference_point`` says)."""
        if self.reference is None:
            return {}
        return {n: float(v) for n, v in zip(self.names, -self.signs * self.reference)}

    def front(self) -> list[dict[str, Any]]:
        """The front's trials, best first by the first objective (then by id), as the results list them."""
        order = sorted(np.flatnonzero(self.on_front), key=lambda i: (tuple(self.costs[i]), self.scored[i]["id"]))
        return [self.scored[i] for i in order]

    def knee(self) -> int | None:
        """The id of the front's knee (:func:`archsearch.core.pareto.knee_index`), None without a front."""
        front = np.flatnonzero(self.on_front)
        return int(self.scored[front[knee_index(self.scaled(self.costs[front]))]]["id"]) if len(front) else None

    def front_of_two(self, x: int, y: int) -> list[dict[str, Any]]:
        """The front of objectives ``x`` and ``y`` alone, in increasing ``x``: the scatter's step line."""
        if not self.scored:
            return []
        pair = self.costs[:, [x, y]]
        mask = front_mask(pair)
        order = sorted(np.flatnonzero(mask), key=lambda i: (-self.signs[x] * pair[i, 0], self.scored[i]["id"]))
        return [self.scored[i] for i in order]

    def out_of_box(self) -> list[str]:
        """Objectives on which no trial is better than the reference point: the hypervolume stays 0."""
        if self.reference is None or self.ideal is None:
            return []
        return [n for n, lo, ref in zip(self.names, self.ideal, self.reference) if not lo < ref]

    def hypervolume_curve(self, trials: Sequence[Mapping[str, Any]]) -> list[HypervolumePoint]:
        """The hypervolume of the trials ended so far, after each trial's end (in the order they ended)."""
        if self.reference is None or self.ideal is None:
            return []
        reference, ideal = self.scaled(self.reference), self.scaled(self.ideal)
        span = np.where(reference > ideal, reference - ideal, 1.0)
        box = (reference - ideal) / span
        row = {t["id"]: i for i, t in enumerate(self.scored)}
        starts = [t["started_at"] for t in trials if finite(t.get("started_at"))]
        start = min(starts) if starts else 0.0
        ended = sorted((t for t in trials if t["status"] in ENDED and finite(t.get("finished_at"))),
                       key=lambda t: (t["finished_at"], t["id"]))
        kept: list[np.ndarray] = []
        points, normalised, raw = [], 0.0, 0.0
        for count, trial in enumerate(ended, start=1):
            if trial["id"] in row:
                kept.append(self.costs[row[trial["id"]]])
                costs = self.scaled(np.asarray(kept))
                normalised = hypervolume((costs - ideal) / span, box)
                raw = hypervolume(costs, reference)
            points.append(HypervolumePoint(int(trial["id"]), count, float(trial["finished_at"]) - start,
                                           normalised, raw))
        return points


def pareto_view(run: RunRecord) -> ParetoView:
    """The Pareto view of ``run`` (a Pareto search: ``run.pareto``)."""
    names = [n for n, _ in run.objectives]
    directions = [d for _, d in run.objectives]
    signs = np.array([1.0 if d == "max" else -1.0 for d in directions])
    scored, rows = [], []
    for trial in run.trials:
        values = [trial["metrics"].get(n) for n in names]
        if trial["status"] == "completed" and all(finite(v) for v in values):
            scored.append(trial)
            rows.append(-signs * np.asarray(values, dtype=float))
    full = full_budget_mask([t.get("budget") for t in scored])
    lower = [t for t, keep in zip(scored, full) if not keep]
    scored = [t for t, keep in zip(scored, full) if keep]
    rows = [row for row, keep in zip(rows, full) if keep]
    costs = np.asarray(rows, dtype=float).reshape(len(rows), len(names))
    configured = configured_reference(run.config, names)
    reference = None if configured is None else -signs * np.asarray(configured, dtype=float)
    derived = reference is None
    objective = run.pareto_objective()
    if reference is None and len(costs):
        reference = derived_reference(objective, costs)
    view = ParetoView(names, directions, scored, costs, front_mask(costs), infeasible_trials(run),
                      reference, derived, costs.min(axis=0) if len(costs) else None)
    view.lower_budget = lower
    view.setting = reference_setting(run.config)
    view.objective = objective
    view.curve = view.hypervolume_curve(run.trials)
    return view


def infeasible_trials(run: RunRecord) -> list[dict[str, Any]]:
    return [t for t in run.trials if t["status"] == "failed" and t.get("failure_kind") == INFEASIBLE]


def configured_reference(config: Mapping[str, Any], names: Sequence[str]) -> list[float] | None:
    """``search.reference_point`` of the stored config (a sweep's: :func:`reference_setting`), in objective order
    (a mapping by name or a list), or None.

    The search validated it when it started (:class:`archsearch.engine.settings.ObjectiveSettings`); a stored
    value that does not fit the objectives anyway (an edited store) is an error, never quietly replaced.
    """
    setting = reference_setting(config)
    section = config.get("sweeper" if setting.startswith("hydra.") else "search") or {}
    value = section.get("reference_point")
    return None if value is None else reference_values(value, names, setting)


def reference_setting(config: Mapping[str, Any]) -> str:
    """Where a stored config fixes the reference point: ``search.reference_point``, or in a Hydra sweep's
    (stored as ``{sweeper: ..., params: ...}``, archsearch/sweeper) ``hydra.sweeper.reference_point``."""
    return "hydra.sweeper.reference_point" if isinstance(config.get("sweeper"), Mapping) else "search.reference_point"


def log_axis(name: str, values: Sequence[float]) -> bool:
    """Model sizes and FLOPs span decades: a log axis, when every value is positive."""
    return name in BEFORE_TRAINING and bool(values) and all(v > 0 for v in values)


def step_shape(direction_x: str) -> str:
    """How the front's step line turns between two points so that it bounds the dominated region: across
    then up/down ("hv") when less of ``x`` is better, up/down then across ("vh") when more is."""
    return "hv" if direction_x == "min" else "vh"


def time_unit(span: float) -> tuple[str, float]:
    """Seconds, minutes or hours, whichever reads best for a span of ``span`` seconds."""
    return ("h", 3600.0) if span >= 3 * 3600 else ("min", 60.0) if span >= 180 else ("s", 1.0)
