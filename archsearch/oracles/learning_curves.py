"""A learning-curve model for multi-fidelity promotions (issue 29): rank by the predicted *final* score.

Successive halving (ASHA, Hyperband, BOHB) promotes the best ``1/factor`` of a rung by the score the
trials have *now*.  When curves cross -- high learning rates look best after an epoch and end poorly,
the short-horizon bias of learning-rate sweeps -- that promotes the fast starters and drops the slow
configurations that end best.  :class:`CurveModel` predicts, for every trial of a rung, its score at
``max_epochs`` from what every trial of the search has reported so far, so a rung can promote by
that prediction instead.

The model is a small Gaussian process over (configuration, epoch), in the spirit of freeze-thaw and
DyHPO: inputs are the configuration in the unit cube (:class:`~archsearch.oracles.encoding.SpaceEncoder`)
plus ``log(epoch) / log(max_epochs)``; outputs the reported scores (maximised), less a linear trend in
that epoch coordinate (scores rise with training; without the trend an unexplored corner would be
predicted at the average of all epochs).  Each configuration contributes its curve -- merged over the
trials that continued it (``resume_from``) -- at the rung budgets it reached and at its last epoch.  The
prediction at ``(configuration, max_epochs)`` then combines the configuration's own curve (when the
epochs correlate, a trial that leads now is predicted to lead at the end) with how *similar*
configurations ended (when they do not: the slow starter next to configurations that ended well is
predicted to end well too), and the fitted length scales decide which of the two counts.

A rung is ranked by the model only once it knows something beyond the rung: at least
:data:`MIN_CONFIGURATIONS_ABOVE` configurations reported an epoch past the rung's budget.  Before that,
and for trials without a score, the rank by current score stays.

Everything is a pure function of the done trials (running ones are left out until they report their
end), so a restored search that replays the same asks and tells makes the same promotions, and the fit
starts from the prior's mode with no random restarts (deterministic, no seed needed).  Kernel
hyperparameters are fitted on at most :data:`FIT_POINTS` evenly spaced points, then the model is
conditioned on all of them (up to :data:`MAX_CONFIGURATIONS` configurations' points, below): a fit costs a
few tens of milliseconds at hundreds of configurations.
In a Pareto search :mod:`archsearch.oracles.pareto_curves` keeps one model per objective that moves with
epochs (``metric`` names the ones other than the value epochs report) and takes model measures such as
``params``, which do not move, as they are.  A search of thousands of short trials conditions the model on
at most :data:`MAX_CONFIGURATIONS` configurations (every one that went past the first budget first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from archsearch.oracles.base import COMPLETED, PRUNED, Trial
from archsearch.oracles.encoding import SpaceEncoder
from archsearch.oracles.gp import GaussianProcess

MIN_CONFIGURATIONS_ABOVE = 3  # configurations seen past a rung's budget before the model ranks the rung
FIT_POINTS = 60  # points the kernel's hyperparameters are fitted on (all points condition the model)
FIT_ITERATIONS = 60  # L-BFGS-B iterations of that fit
MAX_CONFIGURATIONS = 500  # configurations the model is conditioned on at most (see CurveModel._conditioned)
PROMOTIONS = ("curve", "rank")
CANDIDATES = 64  # random configurations the model scores for each model-based new configuration
_DONE = frozenset((COMPLETED, PRUNED))  # a set: statuses are the same objects, found without comparing text
UCB_KAPPA = 1.0  # standard deviations added to the predicted final score when choosing among candidates


def lineage(trial: Trial, trials: Mapping[int, Trial]) -> list[Trial]:
    """The trial and the trials it continued (``resume_from``), oldest first."""
    chain = [trial]
    seen = {trial.id}
    while chain[0].resume_from is not None and int(chain[0].resume_from) in trials:
        parent = trials[int(chain[0].resume_from)]
        if parent.id in seen:  # a malformed history: never loop
            break
        seen.add(parent.id)
        chain.insert(0, parent)
    return chain


def merged_curve(chain: Sequence[Trial], metric: str | None = None) -> dict[int, float]:
    """Epoch -> reported value over a chain of continued trials (a child's epochs win); a trial that
    reported no epoch contributes its final value at its budget.

    ``metric`` names another objective than the one epochs report (a Pareto search's second metric, such
    as ``val_loss`` next to ``val_accuracy``): its curve is each completed trial's value at its budget,
    what a restored search still knows."""
    if metric is not None:
        return {int(t.budget): float(t.metrics[metric]) for t in chain
                if t.status == COMPLETED and t.budget is not None and _finite(t.metrics.get(metric))}
    curve: dict[int, float] = {}
    for t in chain:
        for epoch, value in t.intermediate.items():
            if value is not None and math.isfinite(value):
                curve[int(epoch)] = float(value)
        if t.status == COMPLETED and t.value is not None and t.budget is not None and int(t.budget) not in curve:
            curve[int(t.budget)] = float(t.value)
    return curve


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fit_on_a_subset(x: np.ndarray, y: np.ndarray) -> GaussianProcess | None:
    """A GP whose kernel is fitted on at most :data:`FIT_POINTS` evenly spaced rows, then conditioned on all
    (deterministic: the prior's mode, no restarts); None when the fit fails."""
    subset = np.unique(np.round(np.linspace(0, len(y) - 1, min(len(y), FIT_POINTS))).astype(int))
    gp = GaussianProcess(restarts=0, maxiter=FIT_ITERATIONS)
    try:
        gp.fit(x[subset], y[subset])
        gp.fit(x, y, theta=gp.theta, optimize=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    return gp


class CurveModel:
    """Predicts each trial's score at ``max_epochs`` from every curve seen so far (see the module docstring).

    ``objective`` gives the direction; ``metric`` (None: the value epochs report) which metric is modelled."""

    def __init__(self, hyperparameters, objective, budgets: Sequence[int], max_epochs: int,
                 metric: str | None = None) -> None:
        self.hyperparameters = hyperparameters
        self.objective = objective
        self.metric = metric
        self.budgets = sorted({int(b) for b in budgets})
        self.max_epochs = int(max_epochs)
        self._encoder: SpaceEncoder | None = None
        self._codes: dict[tuple[int, int], np.ndarray] = {}
        self._cache: tuple[tuple, _Fitted | None] | None = None
        self._reach_cache: tuple[tuple, dict[int, int]] | None = None
        self._curves_cache: tuple[tuple, dict] | None = None

    # ------------------------------------------------------------ the data
    def _coordinate(self, epoch: int) -> float:
        """``log(epoch) / log(max_epochs)``: 0 at one epoch, 1 at the full budget."""
        if self.max_epochs <= 1:
            return 1.0
        return math.log(max(1, epoch)) / math.log(self.max_epochs)

    def _curves(self, trials: Mapping[int, Trial]) -> dict[int, tuple[dict, dict[int, float]]]:
        """Root id -> (values, merged curve) of every configuration with a done, scored trial."""
        out: dict[int, tuple[dict, dict[int, float]]] = {}
        for t in sorted(trials.values(), key=lambda t: t.id):
            if t.status not in _DONE:
                continue
            chain = lineage(t, trials)
            chain = [c for c in chain if c.status in _DONE]
            curve = merged_curve(chain, self.metric)
            if not curve:
                continue
            root = chain[0].id
            values, known = out.get(root, (dict(t.hparams), {}))
            out[root] = (values, {**known, **curve})
        return out

    def _points(self, curves: dict[int, tuple[dict, dict[int, float]]]) -> tuple[np.ndarray, np.ndarray]:
        rows, ys = [], []
        for root in self._conditioned(curves):
            values, curve = curves[root]
            last = max(curve)
            x = self._encoded(root, values)
            for epoch in sorted({e for e in curve if e in self.budgets} | {last}):
                rows.append(np.append(x, self._coordinate(epoch)))
                ys.append(self.objective.sign * curve[epoch])
        return np.array(rows), np.array(ys)

    def _conditioned(self, curves: dict[int, tuple[dict, dict[int, float]]]) -> list[int]:
        """The configurations the model is conditioned on, at most :data:`MAX_CONFIGURATIONS`: every one that
        went past the first budget, then the newest of the others (a fit's cost grows with the cube of its
        points, and a search of thousands of one-epoch trials says little more with all of them)."""
        roots = sorted(curves)
        if len(roots) <= MAX_CONFIGURATIONS:
            return roots
        first = self.budgets[0]
        beyond = [r for r in roots if max(curves[r][1]) > first]
        if len(beyond) >= MAX_CONFIGURATIONS:
            return beyond[-MAX_CONFIGURATIONS:]
        rest = [r for r in roots if max(curves[r][1]) <= first]
        return sorted(beyond + rest[len(rest) - (MAX_CONFIGURATIONS - len(beyond)):])

    def _encoder_for(self) -> SpaceEncoder:
        if self._encoder is None or not self._encoder.matches(self.hyperparameters):
            self._encoder = SpaceEncoder(self.hyperparameters)
            self._codes = {}
        return self._encoder

    def _encoded(self, trial_id: int, values: Mapping) -> np.ndarray:
        """A trial's configuration in the unit cube, encoded once (encoding is most of a fit's Python time)."""
        encoder = self._encoder_for()
        key = (trial_id, len(values))  # a define-by-run space may add values to a trial: encode it again
        if key not in self._codes:
            self._codes[key] = encoder.encode(values)
        return self._codes[key]

    # ------------------------------------------------------------ fitting and predicting
    def _key(self, trials: Mapping[int, Trial]) -> tuple:
        return tuple((t.id, t.status, len(t.intermediate)) for t in trials.values() if t.status in _DONE)

    def _curves_now(self, trials: Mapping[int, Trial], key: tuple) -> dict[int, tuple[dict, dict[int, float]]]:
        """:meth:`_curves` of this state of the search, gathered once for the reach and the fit."""
        if self._curves_cache is None or self._curves_cache[0] != key:
            self._curves_cache = (key, self._curves(trials))
        return self._curves_cache[1]

    def _reached(self, trials: Mapping[int, Trial]) -> dict[int, int]:
        """Root id -> the last epoch each configuration reached (cheap: no model is fitted)."""
        key = self._key(trials)
        if self._reach_cache is None or self._reach_cache[0] != key:
            self._reach_cache = (key, {root: max(curve) for root, (_, curve) in self._curves_now(trials, key).items()})
        return self._reach_cache[1]

    def _fitted(self, trials: Mapping[int, Trial]) -> _Fitted | None:
        """The model of the done trials, fitted once per state of the search."""
        key = self._key(trials)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        fitted = self._fit(self._curves_now(trials, key))
        self._cache = (key, fitted)
        return fitted

    def _fit(self, curves: dict[int, tuple[dict, dict[int, float]]]) -> _Fitted | None:
        if len(curves) < MIN_CONFIGURATIONS_ABOVE + 1:
            return None
        x, y = self._points(curves)
        if len(y) < 4 or not np.all(np.isfinite(y)) or float(np.ptp(y)) <= 0.0:
            return None
        trend = np.polyfit(x[:, -1], y, 1) if float(np.ptp(x[:, -1])) > 0 else np.array([0.0, float(np.mean(y))])
        residual = y - np.polyval(trend, x[:, -1])
        gp = fit_on_a_subset(x, residual)
        return None if gp is None else _Fitted(gp, trend)

    def predict_final(self, trials: Mapping[int, Trial], members: Sequence[Trial], budget: int) -> dict[int, float] | None:
        """Each member's predicted score at ``max_epochs`` (to maximise: the objective's sign applied), or
        None while the model knows too little past ``budget`` to rank a rung of that budget."""
        if sum(e > int(budget) for e in self._reached(trials).values()) < MIN_CONFIGURATIONS_ABOVE:
            return None
        fitted = self._fitted(trials)
        if fitted is None:
            return None
        if not members:
            return {}
        x = np.stack([np.append(self._encoded(t.id, t.hparams), 1.0) for t in members])
        mean, _ = fitted.gp.predict(x)
        mean = mean + np.polyval(fitted.trend, 1.0)
        return {t.id: float(m) for t, m in zip(members, mean)}

    def can_propose(self, trials: Mapping[int, Trial], min_full: int = 1) -> bool:
        """Whether :meth:`best_candidate` would choose: ``min_full`` configurations reached ``max_epochs``."""
        return (sum(e >= self.max_epochs for e in self._reached(trials).values()) >= min_full
                and self._fitted(trials) is not None)

    def best_candidate(self, trials: Mapping[int, Trial], candidates: Sequence[Mapping], kappa: float = UCB_KAPPA,
                       min_full: int = 1) -> int | None:
        """Index of the candidate configuration with the largest upper confidence bound on its final score
        (mean + ``kappa`` standard deviations at ``max_epochs``), or None while fewer than ``min_full``
        configurations were trained to the full budget (the model would only extrapolate)."""
        predicted = self.predict_candidates(trials, candidates, min_full)
        if predicted is None:
            return None
        mean, var = predicted
        return int(np.argmax(mean + kappa * np.sqrt(var)))

    def predict_candidates(self, trials: Mapping[int, Trial], candidates: Sequence[Mapping],
                           min_full: int = 1) -> tuple[np.ndarray, np.ndarray] | None:
        """Predicted final score (mean, variance; the objective's sign applied: to maximise) of candidate
        configurations at ``max_epochs``, or None while the model cannot say (see :meth:`can_propose`)."""
        if not candidates or not self.can_propose(trials, min_full):
            return None
        fitted = self._fitted(trials)
        x = np.column_stack([self._encoder_for().encode_many(list(candidates)), np.ones(len(candidates))])
        mean, var = fitted.gp.predict(x)
        return mean + np.polyval(fitted.trend, 1.0), var

    def rank(self, trials: Mapping[int, Trial], ranked: list[Trial], budget: int) -> list[Trial]:
        """``ranked`` (best first by current score) reordered by predicted final score where the model can
        say; trials without a score keep their place at the end."""
        scored = [t for t in ranked if t.status == COMPLETED and t.value is not None]
        if len(scored) < 2:
            return ranked
        predicted = self.predict_final(trials, scored, budget)
        if predicted is None:
            return ranked
        ids = {t.id for t in scored}
        return sorted(scored, key=lambda t: (-predicted[t.id], t.id)) + [t for t in ranked if t.id not in ids]


class _Fitted:
    """A fitted model: the GP on residuals and the trend in the epoch coordinate."""

    def __init__(self, gp: GaussianProcess, trend: np.ndarray) -> None:
        self.gp = gp
        self.trend = trend


def check_promotion(promotion: str) -> str:
    """``promotion`` if it is a known rule; a ConfigError naming the choices otherwise."""
    from archsearch.errors import ConfigError

    if not isinstance(promotion, str) or promotion not in PROMOTIONS:
        raise ConfigError("tuner.promotion", f"unknown promotion rule {promotion!r}",
                          "choose curve (rank a rung by the learning-curve model's predicted final score) or "
                          "rank (by the current score, as successive halving was published)")
    return promotion


def check_random_fraction(value) -> float:
    """A share in [0, 1]; a ConfigError naming ``tuner.random_fraction`` otherwise."""
    from archsearch.errors import ConfigError

    try:
        share = float(value)
    except (TypeError, ValueError):
        share = math.nan
    if isinstance(value, bool) or not 0.0 <= share <= 1.0:
        raise ConfigError("tuner.random_fraction", f"must be a number in [0, 1], got {value!r}",
                          "1/3 (the default) keeps a third of new configurations random; 1 = all random")
    return share
