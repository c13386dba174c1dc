"""BOHB (Falkner, Klein and Hutter, ICML 2018): Hyperband whose new configurations come from a model.

Brackets, budgets, promotions, checkpoints and restore are Hyperband's
(:mod:`archsearch.oracles.hyperband`); only :meth:`_new_configuration` changes.
For each new configuration:

* with probability ``random_fraction`` (default 1/3) it is a plain Hyperband
  draw (Sobol or random), which keeps exploring and keeps the theoretical
  guarantees of Hyperband;
* otherwise the model is a TPE-style pair of kernel density estimates fitted
  on the trials of the *largest budget that has enough observations*
  (``min_points_in_model + 2``; default ``min_points_in_model = d + 1`` for
  ``d`` searched parameters, as in the paper): ``l(x)`` on the best 15% of
  them (at least ``min_points_in_model``), ``g(x)`` on the rest.  64
  candidates are drawn from ``l`` with its bandwidths widened 3 times and the
  one maximising ``l(x) / g(x)`` that was never tried is proposed.  Before any
  budget has enough observations, every draw is random.

``proposals="curve"`` replaces the densities, once a configuration reached ``max_epochs``, by the best
of 64 random draws by the learning-curve model's upper confidence bound on the final score
(:mod:`archsearch.oracles.learning_curves`); the default ``"tpe"`` keeps the paper's densities (the
curve model chases the fast starters of curves that cross late, ``tests/test_bohb.py``'s ladder).

``min_model_budget`` keeps budgets below it out of the model.  The default,
``"auto"``, is the budget one rung below the full one, but never the smallest
(3 epochs for ``max_epochs=9, factor=3``, 9 for ``max_epochs=27``); ``None``
lets any budget in, as in the paper.  BOHB assumes that short trainings rank
configurations roughly as long ones do; where they mislead -- typically high
learning rates that look best after a few epochs and end poorly -- an early
model steers the search towards them, and on strongly crossing curves BOHB
then ends up worse than plain Hyperband.  Waiting for the rung below the
full budget keeps BOHB at least as good as Hyperband seed by seed on the
crossing-curve family of ``bench/quality_bench.py``, at a small early cost
where short budgets do rank well (``bench/RESULTS.md``, issue 15).

The densities are products over parameters of a Gaussian kernel on the
parameter's unit-cube value (``to_unit``: log scales modelled as log) and, for
unordered choices and booleans, an Aitchison-Aitken kernel (keep the category
with probability ``1 - bw``).  Bandwidths follow the normal-reference rule of
the paper's statsmodels KDE, at least ``1e-3``.  A parameter inactive in either
the candidate or the observation contributes a factor 1 (it says nothing about
the other).  Failed and pruned trials count among the bad observations.

In a Pareto search the promotions are Hyperband's MO-ASHA order, and the model's good/bad split
ranks a budget's trials the same way (non-dominated rank, then crowding distance), as multi-objective
TPE (Ozaki et al., GECCO 2020) splits them: ``l(x)`` is fitted on the front first and on its spread.
A random scalarisation per draw (ParEGO, as ``bayesian`` does) would also do, but would throw away at
each draw the part of the front its weights do not point to, where a density model wants all of it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space.categorical import Boolean, Choice, Fixed
from archsearch.space.parameters import HyperParameter
from archsearch.oracles.base import COMPLETED, FAILED, PRUNED, register_oracle
from archsearch.oracles.hyperband import HyperbandOracle
from archsearch.oracles.learning_curves import CANDIDATES

PROPOSALS = ("curve", "tpe")
TOP_FRACTION = 0.15  # the "good" share of observations (the paper's q)
NUM_SAMPLES = 64  # candidates drawn from l(x) per new configuration
BANDWIDTH_FACTOR = 3.0  # widening of l's bandwidths when sampling candidates
MIN_BANDWIDTH = 1e-3


@register_oracle("bohb")
class BOHBOracle(HyperbandOracle):
    """Hyperband with model-based new configurations; see the module docstring."""

    def __init__(self, hyperparameters=None, objective=None, random_fraction: float = 1 / 3,
                 min_points_in_model: int | None = None, min_model_budget: str | int | None = "auto",
                 schedule: str = "archsearch", proposals: str = "tpe", promotion: str = "rank",
                 **kwargs: Any) -> None:
        # The paper's brackets: BOHB is archsearch's own (KerasTuner has none), as its benchmarks measured it.
        # Its other defaults are Hyperband's (kt.Hyperband's max_epochs=100, hyperband_iterations=1);
        # conf/tuner/bohb.yaml runs 2 iterations of max_epochs=9, so that its model has results to fit.
        super().__init__(hyperparameters, objective, schedule=schedule, promotion=promotion, **kwargs)
        if proposals not in PROPOSALS:
            raise ConfigError("tuner.proposals", f"unknown proposal model {proposals!r}",
                              "choose tpe (the paper's densities, the default) or curve (the learning-curve "
                              "model's best upper confidence bound once a configuration reached max_epochs)")
        self.proposals = proposals
        try:
            random_fraction = float(random_fraction)
        except (TypeError, ValueError):
            raise ConfigError("tuner.random_fraction", f"must be a number in [0, 1], got {random_fraction!r}") from None
        if not 0.0 <= random_fraction <= 1.0:
            raise ConfigError("tuner.random_fraction", f"must be in [0, 1], got {random_fraction}",
                              "1/3 (the default) keeps a third of new configurations random")
        if min_points_in_model is not None and (isinstance(min_points_in_model, bool)
                                                or int(min_points_in_model) != min_points_in_model
                                                or int(min_points_in_model) < 1):
            raise ConfigError("tuner.min_points_in_model",
                              f"must be a whole number >= 1 or null, got {min_points_in_model!r}")
        if min_model_budget == "auto":
            # Curves cross early, so short budgets mislead: by default the model starts one rung below the full
            # budget, and never on the smallest one.
            budgets = sorted({r.budget for bracket in self.schedule for r in bracket.rounds})
            min_model_budget = budgets[max(1, len(budgets) - 2)] if len(budgets) > 1 else None
        if min_model_budget is not None and (isinstance(min_model_budget, (bool, str))
                                             or int(min_model_budget) != min_model_budget or int(min_model_budget) < 1):
            raise ConfigError("tuner.min_model_budget",
                              f"must be a whole number of epochs >= 1, auto or null, got {min_model_budget!r}")
        self.random_fraction = random_fraction
        self.min_model_budget = None if min_model_budget is None else int(min_model_budget)
        self.min_points_in_model = None if min_points_in_model is None else int(min_points_in_model)
        self.model_budget: int | None = None  # budget of the last model used (None: random draw)
        self.num_model_configurations = 0

    # ------------------------------------------------------------ proposing
    def _new_configuration(self) -> dict[str, Any] | None:
        self.model_budget = None
        if self.rng.random() < self.random_fraction:
            return super()._new_configuration()
        if self.proposals == "curve" and not self.objective.is_pareto and self.curves.can_propose(self.trials):
            values = self._curve_configuration()
            if values is not None:
                self.model_budget = self.max_epochs
                self.num_model_configurations += 1
                return values
        model = self._fit_model()
        if model is None:
            return super()._new_configuration()
        values = model.propose(self.rng, self.is_new)
        if values is None:
            return super()._new_configuration()
        self.model_budget = model.budget
        self.num_model_configurations += 1
        return values

    def _curve_configuration(self) -> dict[str, Any] | None:
        """The best of :data:`CANDIDATES` random draws by the curve model's upper confidence bound on the final
        score, once a configuration reached ``max_epochs`` (see :mod:`archsearch.oracles.learning_curves`)."""
        candidates = [v for v in (self.hyperparameters.sample(self.rng) for _ in range(CANDIDATES)) if self.is_new(v)]
        best = self.curves.best_candidate(self.trials, candidates)
        return None if best is None else candidates[best]

    def _searched(self) -> list[HyperParameter]:
        return [p for p in self.hyperparameters.space.values() if not _single_valued(p)]

    def _min_points(self) -> int:
        return self.min_points_in_model if self.min_points_in_model is not None else len(self._searched()) + 1

    def _fit_model(self) -> _TPEModel | None:
        """Good/bad densities on the largest budget with at least ``min_points + 2`` observations."""
        by_budget: dict[int, list] = {}
        for t in self.trials.values():
            if t.status not in (COMPLETED, FAILED, PRUNED):
                continue
            budget = int(t.budget if t.budget is not None else self.max_epochs)
            by_budget.setdefault(budget, []).append(t)
        n_min = self._min_points()
        for budget in sorted(by_budget, reverse=True):
            trials = by_budget[budget]
            if len(trials) < n_min + 2 or (self.min_model_budget is not None and budget < self.min_model_budget):
                continue
            # Lower is better; failures, and pruned trials without a value, rank last.
            def loss(t):
                ok = t.status == COMPLETED or (t.status == PRUNED and t.value is not None)
                return (0, -self.objective.sign * t.value, t.id) if ok and t.value is not None else (1, 0.0, t.id)

            ranked = self._pareto_ranked(trials) if self.objective.is_pareto else sorted(trials, key=loss)
            n_good = max(n_min, int(TOP_FRACTION * len(ranked)))
            good, bad = ranked[:n_good], ranked[n_good:]
            return _TPEModel(self._searched(), self.hyperparameters, [t.hparams for t in good],
                             [t.hparams for t in bad], budget)
        return None

    def _pareto_ranked(self, trials: list) -> list:
        """A Pareto search's good-first order (MOTPE's split): non-dominated rank, then crowding distance,
        so ``l(x)`` is fitted on the front and its spread; failed and pruned trials last (oldest first)."""
        from archsearch.core.pareto import ranked_trials  # moocore: loaded by Pareto searches only

        ranked = ranked_trials(trials, self.objective)
        ids = {t.id for t in ranked}
        return ranked + sorted((t for t in trials if t.id not in ids), key=lambda t: t.id)


class _TPEModel:
    """Two product-kernel densities over the searched parameters and sampling from the good one."""

    def __init__(self, parameters: list[HyperParameter], hyperparameters, good: list[dict], bad: list[dict],
                 budget: int) -> None:
        self.parameters = parameters
        self.hyperparameters = hyperparameters
        self.budget = budget
        self.categorical = np.array([_is_categorical(p) for p in parameters], dtype=bool)
        self.sizes = np.array([len(_categories(p)) if c else 0 for p, c in zip(parameters, self.categorical)])
        self.good = self._matrix(good)
        self.bad = self._matrix(bad)
        self.bw_good = self._bandwidths(self.good)
        self.bw_bad = self._bandwidths(self.bad)

    def _matrix(self, configurations: list[dict]) -> np.ndarray:
        """One row per configuration: unit values for numbers, category indices, NaN when inactive."""
        rows = np.full((len(configurations), len(self.parameters)), np.nan)
        for i, values in enumerate(configurations):
            for j, p in enumerate(self.parameters):
                if p.name not in values or not p.is_active(values):
                    continue
                value = values[p.name]
                try:
                    rows[i, j] = _category_index(p, value) if self.categorical[j] else p.to_unit(value)
                except (ValueError, TypeError):
                    pass
        return rows

    def _bandwidths(self, data: np.ndarray) -> np.ndarray:
        """Normal-reference bandwidths (statsmodels' rule, as the paper), per column, ignoring NaN."""
        d = data.shape[1]
        bw = np.empty(d)
        for j in range(d):
            column = data[:, j][~np.isnan(data[:, j])]
            n = len(column)
            std = float(np.std(column)) if n > 1 else 0.0
            bw[j] = 1.06 * std * max(n, 1) ** (-1.0 / (4 + d))
        bw = np.maximum(bw, MIN_BANDWIDTH)
        # Aitchison-Aitken: at most (k-1)/k, where every category is equally likely.
        limit = np.where(self.categorical, (np.maximum(self.sizes, 2) - 1) / np.maximum(self.sizes, 2), np.inf)
        return np.minimum(bw, limit)

    def log_density(self, x: np.ndarray, data: np.ndarray, bw: np.ndarray) -> np.ndarray:
        """``log`` of the KDE of ``data`` at the rows of ``x``."""
        if len(data) == 0:
            return np.zeros(len(x))
        diff = x[:, None, :] - data[None, :, :]  # (m, n, d)
        numeric = -0.5 * (diff / bw) ** 2 - np.log(bw * math.sqrt(2 * math.pi))
        same = np.abs(diff) < 0.5
        k = np.maximum(self.sizes, 2)
        categorical = np.where(same, np.log1p(-bw), np.log(bw / (k - 1)))
        log_k = np.where(self.categorical, categorical, numeric)
        log_k = np.where(np.isnan(diff), 0.0, log_k)  # inactive on either side: no information
        total = log_k.sum(axis=2)  # (m, n)
        top = total.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(total - top).mean(axis=1, keepdims=True))).ravel()

    def propose(self, rng: np.random.Generator, is_new) -> dict[str, Any] | None:
        """The never-tried sample from widened ``l`` with the largest ``l(x) / g(x)``, or None."""
        candidates, rows = [], []
        for _ in range(NUM_SAMPLES):
            datum = self.good[rng.integers(len(self.good))]
            values: dict[str, Any] = {}
            for j, p in enumerate(self.parameters):
                m = datum[j]
                if np.isnan(m):
                    values[p.name] = p.random_sample(rng)
                elif self.categorical[j]:
                    k = self.sizes[j]
                    index = int(m) if rng.random() < 1.0 - self.bw_good[j] else int(rng.integers(k))
                    values[p.name] = _categories(p)[index]
                else:
                    values[p.name] = p.from_unit(_truncated_normal(rng, m, BANDWIDTH_FACTOR * self.bw_good[j]))
            values = self.hyperparameters.active_values(values)
            candidates.append(values)
            rows.append(self._matrix([values])[0])
        x = np.array(rows)
        score = self.log_density(x, self.good, self.bw_good) - self.log_density(x, self.bad, self.bw_bad)
        for i in np.argsort(-score, kind="stable"):
            if is_new(candidates[i]):
                return candidates[i]
        return None


def _truncated_normal(rng: np.random.Generator, mean: float, std: float) -> float:
    """A draw from N(mean, std) restricted to [0, 1] (rejection, then clipping as a last resort)."""
    for _ in range(100):
        u = mean + std * float(rng.standard_normal())
        if 0.0 <= u <= 1.0:
            return u
    return float(np.clip(mean, 0.0, 1.0))


def _single_valued(p: HyperParameter) -> bool:
    if isinstance(p, Fixed):
        return True
    if isinstance(p, Choice):
        return len(p.values) <= 1
    if hasattr(p, "min_value"):
        return p.min_value == p.max_value
    return False


def _is_categorical(p: HyperParameter) -> bool:
    return isinstance(p, Boolean) or (isinstance(p, Choice) and not p.ordered)


def _categories(p: HyperParameter) -> list:
    return [False, True] if isinstance(p, Boolean) else list(p.values)


def _category_index(p: HyperParameter, value: Any) -> int:
    if isinstance(p, Boolean):
        return int(bool(value))
    return p.index(value)
