"""Learning curves in a Pareto search (MO-ASHA, issue 28): predicted final cost vectors, and EHVI over them.

A single-objective ASHA ranks a rung by each trial's predicted score at ``max_epochs``
(:class:`~archsearch.oracles.learning_curves.CurveModel`) and proposes new configurations by the model.
A Pareto search has a vector per trial, whose parts behave differently over epochs:

* an objective epochs report (``val_error``, ``val_loss``) moves with training: one
  :class:`CurveModel` per such objective predicts its value at ``max_epochs`` (the first from the curves
  the trials report every epoch, the others from their values at the rungs they reached);
* a model measure (``params``, ``flops``, latency: :data:`~archsearch.core.measures.MEASURES`, and the
  run figures) does not: a trial's own value is its final one, and a new configuration's is predicted
  by a Gaussian process over the configuration alone, fitted to its costs in the objective's scale (by
  their logarithm for ``scale: log``, :meth:`~archsearch.core.objective.Objective.scaled_costs`), on the
  first :data:`MEASURE_POINTS` configurations measured (a measure does not move, so the model stops
  changing once they are in).

:meth:`ParetoCurves.rank` orders a rung's trials by the non-dominated rank (then crowding) of their
*predicted final* vectors, so a fast starter that a slow configuration will overtake is not promoted
ahead of it.  :meth:`ParetoCurves.best_candidate` scores candidate configurations by the log of their
expected hypervolume improvement (:func:`~archsearch.oracles.hypervolume_acquisition.log_ehvi`) over the
front of the trials trained to ``max_epochs``, the costs a user can take, with the reference point
``search.reference_point`` when the config sets one (as the Bayesian oracle's EHVI), else the nadir of
those trials plus a tenth of each cost's range.  Each objective counts in its scale there, as in the
Bayesian oracle's EHVI and the report's hypervolume: with ``scale: log`` halving a small model weighs as
much as halving a large one; a curve-modelled objective of ``scale: log`` has its predicted value's
logarithm (mean ``log m``, standard deviation ``s / m``, the first-order rule).  Promotions' crowding
tie-breaks are taken in the scales too.

Everything is a pure function of the done trials, fitted once per state of the search (the curve
models' own cache), so a restored search that replays the same asks and tells proposes alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from archsearch.core.measures import MEASURES, RUN_FIGURES
from archsearch.core.objective import LOG
from archsearch.core.pareto import default_reference_point, selection_order
from archsearch.oracles.base import COMPLETED, Trial
from archsearch.oracles.encoding import SpaceEncoder
from archsearch.oracles.gp import GaussianProcess
from archsearch.oracles.hypervolume_acquisition import log_ehvi, nondominated_boxes
from archsearch.oracles.learning_curves import CurveModel, fit_on_a_subset, lineage

PARETO_CANDIDATES = 256  # random configurations scored for each model-based one (64 gave less on the bench)
MEASURE_POINTS = 256  # configurations a measure's GP is fitted on at most: the first ones measured


def is_measure(name: str) -> bool:
    """Whether an objective is a property of the model (the same at every epoch), not a training metric."""
    return name in MEASURES or name in RUN_FIGURES


class ParetoCurves:
    """Predicted final cost vectors of a Pareto search's trials and candidates (see the module docstring)."""

    candidates = PARETO_CANDIDATES

    def __init__(self, hyperparameters, objective, budgets: Sequence[int], max_epochs: int) -> None:
        self.objective = objective
        self.max_epochs = int(max_epochs)
        self.parts = list(objective.components)
        main = objective.main
        self.curves: dict[int, CurveModel] = {
            j: CurveModel(hyperparameters, part, budgets, max_epochs, metric=None if part is main else part.name)
            for j, part in enumerate(self.parts) if not is_measure(part.name)}
        self._measures: dict[int, _MeasureModel] = {
            j: _MeasureModel(hyperparameters, part) for j, part in enumerate(self.parts) if is_measure(part.name)}

    # ------------------------------------------------------------ promotions
    def rank(self, trials: Mapping[int, Trial], ranked: list[Trial], budget: int) -> list[Trial]:
        """``ranked`` (MO-ASHA's order by current vectors) reordered by the selection order of the predicted
        final vectors where every curve model can say; trials without a vector keep their place at the end."""
        vectors = {t.id: self.objective.costs_from(t.metrics) for t in ranked if t.status == COMPLETED}
        scored = [t for t in ranked if vectors.get(t.id) is not None]
        if len(scored) < 2:
            return ranked
        costs = self.objective.scaled_costs(np.array([vectors[t.id] for t in scored], dtype=float))
        for j, model in self.curves.items():
            predicted = model.predict_final(trials, scored, budget)
            if predicted is None:
                return ranked
            signed = np.array([predicted[t.id] for t in scored])  # the model maximises sign * value
            costs[:, j] = _in_scale(self.parts[j], signed, np.zeros(len(signed)))[0]
        order = selection_order(costs)
        ids = {t.id for t in scored}
        return [scored[i] for i in order] + [t for t in ranked if t.id not in ids]

    # ------------------------------------------------------------ new configurations
    def can_propose(self, trials: Mapping[int, Trial]) -> bool:
        """Whether :meth:`best_candidate` would choose: every curve model can, and two trials reached the end."""
        return (len(self._full_budget_costs(trials)) >= 2
                and all(model.can_propose(trials) for model in self.curves.values()))

    def best_candidate(self, trials: Mapping[int, Trial], candidates: Sequence[Mapping],
                       reference: np.ndarray | None = None) -> int | None:
        """Index of the candidate of largest expected hypervolume improvement of its predicted final costs
        over the front of the trials trained to ``max_epochs``; None while the models cannot say.
        ``reference``: ``search.reference_point`` as costs (``Oracle.reference_costs``); None derives it."""
        if not candidates or not self.can_propose(trials):
            return None
        predicted = self.predict_costs(trials, candidates)
        if predicted is None:
            return None
        mean, std = predicted
        scaled = self.objective.scaled_costs(self._full_budget_costs(trials))
        reference = (default_reference_point(scaled) if reference is None
                     else self.objective.scaled_costs(np.asarray(reference, dtype=float)))
        lower, upper = nondominated_boxes(scaled, reference)
        return int(np.argmax(log_ehvi(mean, std, lower, upper)))

    def predict_costs(self, trials: Mapping[int, Trial],
                      candidates: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray] | None:
        """Each candidate's predicted final costs in each objective's scale (mean, standard deviation): two
        ``(candidates, objectives)`` arrays, or None while a model cannot say."""
        mean = np.zeros((len(candidates), len(self.parts)))
        std = np.zeros_like(mean)
        for j, model in self.curves.items():
            out = model.predict_candidates(trials, candidates)
            if out is None:
                return None
            mean[:, j], std[:, j] = _in_scale(self.parts[j], out[0], np.sqrt(out[1]))  # out: sign * value
        for j, measure in self._measures.items():
            out = measure.predict(trials, candidates)
            if out is None:
                return None
            mean[:, j], std[:, j] = out
        return mean, std

    def _full_budget_costs(self, trials: Mapping[int, Trial]) -> np.ndarray:
        rows = [self.objective.costs_from(t.metrics) for t in trials.values()
                if t.status == COMPLETED and t.budget is not None and int(t.budget) >= self.max_epochs]
        return np.array([r for r in rows if r is not None], dtype=float).reshape(-1, len(self.parts))


def _in_scale(part, signed: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A curve model's prediction of ``sign * value`` at the end (mean, standard deviation; the model
    maximises) as a cost in the objective's scale: for ``scale: log`` by the first-order rule (a mean at 0
    or below counts at the smallest positive one)."""
    if part.scale != LOG:
        return -signed, std
    positive = np.maximum(part.sign * signed, np.finfo(float).tiny)
    return part.scaled_costs(-part.sign * positive), std / positive


class _MeasureModel:
    """A GP over the configuration alone for one model measure, as a cost in the objective's scale."""

    def __init__(self, hyperparameters, part) -> None:
        self.hyperparameters = hyperparameters
        self.part = part
        self._encoder: SpaceEncoder | None = None
        self._cache: tuple[tuple, GaussianProcess | None] | None = None

    def _data(self, trials: Mapping[int, Trial]) -> dict[int, tuple[dict, float]]:
        """Root id -> (values, cost) of the first :data:`MEASURE_POINTS` configurations a completed trial
        measured (a measure does not move with epochs: a few hundred configurations describe it, and the
        model is no longer refitted once they are in)."""
        out: dict[int, tuple[dict, float]] = {}
        for t in sorted(trials.values(), key=lambda t: t.id):
            value = t.metrics.get(self.part.name) if t.status == COMPLETED else None
            if value is None or not np.isfinite(float(value)):
                continue
            root = lineage(t, trials)[0].id
            if root not in out and len(out) >= MEASURE_POINTS:
                break
            out[root] = (dict(t.hparams), float(self.part.scaled_costs(-self.part.sign * float(value))))
        return out

    def _fitted(self, trials: Mapping[int, Trial]) -> GaussianProcess | None:
        data = self._data(trials)
        key = tuple(data)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._fit(data))
        return self._cache[1]

    def _fit(self, data: dict[int, tuple[dict, float]]) -> GaussianProcess | None:
        if len(data) < 2:
            return None
        roots = sorted(data)
        return fit_on_a_subset(self._encode([data[r][0] for r in roots]), np.array([data[r][1] for r in roots]))

    def _encode(self, values: list[dict]) -> np.ndarray:
        if self._encoder is None or not self._encoder.matches(self.hyperparameters):
            self._encoder = SpaceEncoder(self.hyperparameters)
        return self._encoder.encode_many(values)

    def predict(self, trials: Mapping[int, Trial],
                candidates: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray] | None:
        """Predicted cost in the objective's scale (mean, standard deviation) of candidate configurations."""
        fitted = self._fitted(trials)
        if fitted is None:
            return None
        mean, var = fitted.predict(self._encode([dict(c) for c in candidates]))
        return mean, np.sqrt(var)
