"""Bayesian optimisation: a Gaussian process of the objective proposes where to look next.

One piece though past 400 lines: the training data (one objective, or a Pareto search's costs or ParEGO
scalarisation), the candidates and the acquisition's optimiser share one encoding and one seeded
generator, whose order of draws a restored search must repeat.

Each ``ask`` after the initial design:

1. encodes every finished trial (:mod:`archsearch.oracles.encoding`: warped
   numbers, one-hot categories, neutral values for inactive parameters) and
   fits the GP of :mod:`archsearch.oracles.gp` to the objective, turned into
   something to maximise (``sign * value``).  Failed trials, and pruned ones
   without a value, are given the worst value observed so far: the model
   learns that their region is bad without being thrown off by an invented
   number.  With nothing completed yet they are left out.  Pruned trials
   with a value count with it (their best value before being stopped).
   When the space has categories (one-hot columns), the kernel is a sum of
   a Matérn on the numeric columns only -- a trend shared by every category
   -- and a Matérn on all columns -- what is specific to a combination --
   whose one-hot length scales start short (``ONEHOT_LENGTHSCALE``).
   The kernel fit starts from the previous ask's; only every
   ``FULL_FIT_EVERY``-th model ask adds fresh random starts, which keeps a
   suggestion in a running search under 0.1 s at 100 observations;
2. adds the running trials as *fantasies* (kriging believer: the GP pretends
   it observed its own mean there, same hyperparameters), so the variance
   and hence the acquisition collapse around them and parallel workers are
   sent elsewhere;
3. maximises the acquisition -- log expected improvement
   (:mod:`archsearch.oracles.acquisition`, in the numerically stable form of
   Ament et al., NeurIPS 2023, so it still ranks candidates where plain EI
   underflows to 0) or, with ``acquisition="ucb"``,
   ``mean + beta * std`` -- over random, Sobol and local candidates (small
   perturbations of the best trials; scored as one encoded array, and made
   into values only when picked, in spaces without conditions), then refines the best few with
   L-BFGS-B.  Only continuous-ish columns are refined (active ints and floats
   with many values); categories, booleans and small integer ranges stay as
   in the candidate, so one-hot blocks are never relaxed.  Refined vectors
   are decoded (rounding ints and steps) and scored again as decoded;
   In a space with categories (and booleans), the candidates include the top
   trials' numbers under fresh categories and each combination's best trial
   with its numbers moved, and the combination to explore is picked first, by
   an upper confidence bound per combination that favours combinations with
   little evidence (:mod:`archsearch.oracles.category_choice`); the
   acquisition then picks and refines the point inside it;
4. returns the best-scoring configuration never tried before, falling back
   to the next candidate and finally to random draws.  When that pick says the
   model has converged -- it lies within ``DUPLICATE_DISTANCE`` of an
   observation, or its EI is below ``NEGLIGIBLE_IMPROVEMENT`` of the observed
   range -- the ask is an exploration step instead: the highest
   ``mean + beta * std`` among the candidates the model knows least about.
   EI would otherwise creep along in tiny steps inside whatever basin it
   converged in (Branin seed 26 proposed one bound point 27 times).  And when
   the last ``PIN_ASKS`` model picks all held a numeric column at the same
   bound, the next ask looks only at candidates with that column inside (and
   L-BFGS-B leaves it there): a posterior mean sloping towards a bound is
   never tested otherwise (Hartmann-6 seed 5 kept x6 = 1.0, optimum 0.66).

In a Pareto search (``search.mode=pareto``), by default (``pareto_acquisition="ehvi"``), one GP per
objective models its costs and the acquisition is the log expected hypervolume improvement over the front
of the completed trials (:mod:`archsearch.oracles.hypervolume_acquisition`: exact in any number of
objectives, failed and infeasible trials at every objective's worst cost, running trials as kriging
believers, each objective in its scale: ``scale: log`` by its logarithm); steps 3 and 4 are the same, the
local candidates perturbing the front's trials of largest hypervolume contribution.
With ``search.reference_point`` set,
the model first *approaches* the box it bounds: while fewer trials than objectives lie inside it, steps
1 to 4 run on one GP of minus each trial's largest excess over the reference (each cost in units of its
observed range: :func:`~archsearch.oracles.hypervolume_acquisition.reference_excess`), which leads to
the box's diagonal, where a point dominates the most of it.  EHVI alone, with no data there, spends
those trials where its models know least: on DTLZ2 (``bench/pareto_bench.py``) the corners of the
12-dimensional cube, 8 of 10 seeds still outside the box at 50 trials.  Leaving the approach after
one trial per objective was chosen on development seeds (``bench/RESULTS.md``): later (after 5 or 10)
gains little more on DTLZ2 and costs a low-dimensional problem, whose EHVI finds the box at once, its
spread.  ``pareto_acquisition="parego"`` keeps ParEGO (Knowles, IEEE TEC 2006), the one GP of a
scalarisation: every model ask draws a weight vector uniformly on the simplex (from the seeded
generator), scales each cost (objectives to minimise;
maximised ones negated) to [0, 1] over the completed trials that have every objective, and scores a
trial by the augmented Chebyshev function ``max_j w_j f_j + 0.05 * sum_j w_j f_j``, to minimise; steps 1
to 4 then run on minus that score.  EHVI found the larger front on ``bench/pareto_bench.py`` (see
``bench/RESULTS.md``, issue 28); ParEGO stays for two reasons: it fits one GP whatever the number of
objectives, where EHVI fits one per objective and its box decomposition grows as the front's size to the
power (objectives - 1) (past 3 objectives the front is thinned for it), and it is the Pareto form of
``acquisition="ucb"``, which EHVI refuses.

The first ``num_initial_points`` trials are scrambled Sobol points.  Default:
``2 * d`` for ``d`` searched parameters, at least 5 and at most 20 (at most 10
with EHVI, as Optuna's GPSampler: on the development seeds 100-102 of
``bench/pareto_bench.py`` at 50 trials, 10 gave ZDT1 and ZDT3 fronts larger by 1%
and 3.5% on average than 20, the NAS problem's alike), and at most half of
``max_trials`` when that is set (so a short search still uses the model).
Everything is drawn from the oracle's seeded generator, so a search is
reproducible and ``restore`` replays it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from archsearch.errors import ConfigError
from archsearch.space.categorical import Boolean, Choice
from archsearch.space.values import values_key
from archsearch.oracles.acquisition import log_ei_and_gradient, log_expected_improvement
from archsearch.oracles.category_choice import combination_keys, ucb_combination
from archsearch.oracles.base import COMPLETED, FAILED, PRUNED, RUNNING, Oracle, Proposal, register_oracle
from archsearch.oracles.encoding import SpaceEncoder
from archsearch.oracles.gp import LENGTHSCALE_PRIOR_MODE, GaussianProcess
from archsearch.oracles.hypervolume_acquisition import (Fits, HypervolumeModel, ParetoData, fit_model,
                                                        pareto_training_data, pending_inputs, reference_excess)
from archsearch.oracles.random import MAX_DRAWS_PER_ASK
from archsearch.oracles.unit_points import UnitPoints

ACQUISITIONS = ("ei", "ucb")
NUM_RANDOM = 256  # candidates per ask, of each kind
NUM_SOBOL = 256
NUM_LOCAL = 256
NUM_REFINE = 5  # best candidates refined with L-BFGS-B
LOCAL_TOP = 5  # local candidates perturb the best few trials
# Candidates looked at for the best of each discrete combination: each is decoded to be looked at, and in a
# space without categories every candidate is one combination, so scanning all ~768 cost ~0.2 s per ask.
COMBINATION_SCAN = 128
GP_RESTARTS = 2  # random starts of a full kernel fit, besides the previous fit
FULL_FIT_EVERY = 5  # model asks per full kernel fit; the others only continue from the previous fit
# Prior mode of the length scale of one-hot columns: a change of category moves two columns by 1, so at 0.5
# the prior correlation between categories is about 0.04 -- categories (optimizers, activations) are
# presumed to behave differently until the data show a shared trend.  With the GP's default (long)
# length scales, a category whose best learning rate differs from the incumbent's was predicted
# as bad as the incumbent's category at that learning rate, and hardly ever explored.
ONEHOT_LENGTHSCALE = 0.5
# Add a component on the numeric columns alone, shared by every category (as BoTorch's mixed GP
# does): a good region of learning rate or width found with one optimizer then guides the others.
SHARED_TREND = True
# Pick the combination of categories to explore by its upper confidence bound (module category_choice), not by EI alone.
CATEGORY_UCB = True
NUM_TRANSPLANT = 64  # candidates with a top trial's numbers and every category drawn afresh
# A model pick closer than this (encoded unit cube, Euclidean) to an observation counts as a repeat.
# 1e-3 stopped a smooth 2-D problem's refinement early (Branin: regret 1e-4 needs steps of ~4e-4).
DUPLICATE_DISTANCE = 1e-4
PIN_ASKS = 5  # model picks in a row with a column at one bound before an ask tries it inside
PIN_MARGIN = 0.05  # "inside": this far from both bounds (unit cube)
# EI below this fraction of the observed range of values counts as the model having converged.
NEGLIGIBLE_IMPROVEMENT = 1e-5
PAREGO_RHO = 0.05  # weight of the sum in ParEGO's augmented Chebyshev function (Knowles 2006)
PARETO_ACQUISITIONS = ("ehvi", "parego")  # a Pareto search's model: see the module docstring
PARETO_INITIAL_POINTS = 10  # EHVI's largest automatic initial design (see the module docstring)


@register_oracle("bayesian")
class BayesianOptimizationOracle(Oracle):
    """GP-based Bayesian optimisation over a mixed space; see the module docstring."""

    def __init__(
        self,
        hyperparameters=None,
        objective=None,
        num_initial_points: int | None = None,
        acquisition: str = "ei",
        beta: float = 2.0,
        alpha: float | None = None,
        pareto_acquisition: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(hyperparameters, objective, **kwargs)
        acquisition = str(acquisition).lower()
        if acquisition not in ACQUISITIONS:
            raise ConfigError("tuner.acquisition", f"unknown acquisition {acquisition!r}",
                              f"use one of {', '.join(ACQUISITIONS)}")
        if num_initial_points is not None and (isinstance(num_initial_points, bool)
                                               or int(num_initial_points) != num_initial_points
                                               or int(num_initial_points) < 1):
            raise ConfigError("tuner.num_initial_points",
                              f"must be a whole number >= 1 or null, got {num_initial_points!r}")
        try:
            beta_ok = float(beta) >= 0
        except (TypeError, ValueError):
            beta_ok = False
        if not beta_ok:
            raise ConfigError("tuner.beta", f"must be a number >= 0, got {beta!r}")
        if alpha is not None:
            try:
                alpha_ok = 0 < float(alpha) < 0.5 and not isinstance(alpha, bool)
            except (TypeError, ValueError):
                alpha_ok = False
            if not alpha_ok:
                raise ConfigError("tuner.alpha", f"must be a noise variance between 0 and 0.5 (a fraction of the "
                                  f"scores' variance), got {alpha!r}", "e.g. 1e-4 (KerasTuner's default), or null")
        # KerasTuner's alpha: the noise the user expects in the scores, the least the GP's fit may find.
        self.alpha = None if alpha is None else float(alpha)
        self.num_initial_points = None if num_initial_points is None else int(num_initial_points)
        self.acquisition = acquisition
        self.beta = float(beta)
        self.gp: GaussianProcess | None = None
        self._encoder: SpaceEncoder | None = None
        self._theta: np.ndarray | Fits | None = None  # the last kernel fit (EHVI: every objective's)
        self._model_asks = 0  # model-based suggestions so far: when to refit the kernel from fresh starts
        self._initial_points = UnitPoints("sobol", self.seed, self.rng)
        self._scalars: dict[int, float] = {}  # a Pareto search's trials, best first for local candidates
        self.pareto_acquisition = _pareto_acquisition(pareto_acquisition, self.objective.is_pareto, acquisition)

    # ------------------------------------------------------------ settings
    @property
    def encoder(self) -> SpaceEncoder:
        """The space's encoding, rebuilt when a define-by-run builder has added parameters."""
        if self._encoder is None or not self._encoder.matches(self.hyperparameters):
            self._encoder = SpaceEncoder(self.hyperparameters)
            self._theta = None  # a new dimension: the old kernel fit does not apply
        return self._encoder

    def initial_points(self) -> int:
        """How many Sobol points start the search (see the module docstring for the default)."""
        if self.num_initial_points is not None:
            return self.num_initial_points
        most = PARETO_INITIAL_POINTS if self._ehvi else 20
        n = min(most, max(5, 2 * self.encoder.num_searched))
        if self.max_trials is not None:
            n = min(n, max(2, self.max_trials // 2))
        return n

    @property
    def _ehvi(self) -> bool:
        return self.objective.is_pareto and self.pareto_acquisition == "ehvi"

    # ------------------------------------------------------------ proposing
    def _propose(self) -> Proposal | None:
        data = self._pareto_data() if self.objective.is_pareto else self._training_data()
        if len(self.trials) < self.initial_points() or data is None or self.encoder.dims == 0:
            values = self._sobol_configuration()
            return None if values is None else Proposal(values, info={"source": "initial"})
        x, y, best = data
        try:
            values = self._model_configuration(x, y, best)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            values = None  # a numerically hopeless model must not end the search
        if values is not None:
            return Proposal(values, info={"source": "model"})
        values = self._random_configuration()
        return None if values is None else Proposal(values, info={"source": "random"})

    def _training_data(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Encoded inputs, values to maximise, and the best one; None until two trials have values."""
        good, bad = [], []
        for t in self.trials.values():
            if t.status in (COMPLETED, PRUNED) and t.value is not None:
                good.append((t.hparams, self.objective.sign * t.value))
            elif t.status in (FAILED, PRUNED):
                bad.append(t.hparams)
        if len(good) < 2:
            return None
        ys = np.array([v for _, v in good])
        worst = float(ys.min())
        configs = [h for h, _ in good] + bad
        y = np.concatenate([ys, np.full(len(bad), worst)])
        return self.encoder.encode_many(configs), y, float(ys.max())

    def _pareto_data(self) -> tuple[np.ndarray, Any, Any] | None:
        """EHVI's data (per-objective costs, :mod:`archsearch.oracles.hypervolume_acquisition`) or ParEGO's."""
        if self.pareto_acquisition != "ehvi":
            return self._pareto_training_data()
        if len(self.trials) < self.initial_points():
            return None
        data = pareto_training_data(list(self.trials.values()), self.objective, self.encoder.encode_many,
                                    self.reference_costs)
        if data is None:
            return None
        if self.reference_costs is not None and data.inside < len(self.objective.components):
            return self._approach_data(data)
        self._scalars = data.ranks
        return data.x, data, None

    def _approach_data(self, data: ParetoData) -> tuple[np.ndarray, np.ndarray, float]:
        """The approach's training data (module docstring): minus each trial's excess over the reference;
        failed and infeasible trials are at every cost's worst in ``data``, hence the largest excess."""
        y = -reference_excess(data.costs, data.reference)
        self._scalars = dict(zip(data.ranks, y.tolist()))  # ranks: the completed trials, the rows' first
        return data.x, y, float(y.max())

    def _pareto_training_data(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """ParEGO's training data (see the module docstring): a fresh random weighting of the costs each ask.

        Only once the model is used (after the initial design): a weight is drawn from the seeded
        generator per model ask, so a restored search draws the same weights.
        """
        if len(self.trials) < self.initial_points():
            return None
        good, costs, bad = [], [], []
        for t in self.trials.values():
            vector = self.objective.costs_from(t.metrics) if t.status == COMPLETED else None
            if vector is not None:
                good.append(t)
                costs.append(vector)
            elif t.status in (FAILED, PRUNED):
                bad.append(t)
        if len(good) < 2:
            return None
        weights = self.rng.dirichlet(np.ones(len(self.objective.components)))
        ys = -chebyshev(self.objective.scaled_costs(np.asarray(costs, dtype=float)), weights)
        self._scalars = {t.id: float(y) for t, y in zip(good, ys)}
        worst = float(ys.min())
        configs = [t.hparams for t in good] + [t.hparams for t in bad]
        y = np.concatenate([ys, np.full(len(bad), worst)])
        return self.encoder.encode_many(configs), y, float(ys.max())

    def _model_configuration(self, x: np.ndarray, y: Any, best: Any) -> dict[str, Any] | None:
        # Warm start: most asks refit the kernel from the previous fit alone (one more observation barely
        # moves it); every FULL_FIT_EVERY-th also tries fresh starts, so a fit cannot stay stuck in a poor optimum.
        full = self._theta is None or self._model_asks % FULL_FIT_EVERY == 0
        self._model_asks += 1
        make_gp = lambda restarts: GaussianProcess(  # noqa: E731
            restarts=restarts, lengthscale_prior_mean=self._lengthscale_prior(),
            components=self._components(), min_noise=self.alpha)
        if isinstance(y, ParetoData):  # EHVI: one GP per objective, refitted on its own schedule
            previous = self._theta if isinstance(self._theta, Fits) else None  # not the approach's one GP
            gp, self._theta = fit_model(y, make_gp, self.rng, previous, GP_RESTARTS)
            gp = gp.with_pending(pending_inputs(list(self.trials.values()), self.encoder.encode_many))
        else:
            gp = make_gp(GP_RESTARTS if full else 0)
            gp.fit(x, y, rng=self.rng, theta=self._theta if isinstance(self._theta, np.ndarray) else None)
            self._theta = gp.theta
            pending = [t.hparams for t in self.trials.values() if t.status == RUNNING]
            if pending:
                gp = gp.with_fantasies(self.encoder.encode_many(pending))
        self.gp = gp
        encoder = self.encoder

        cx, values_of = self._candidates()
        ehvi = isinstance(gp, HypervolumeModel)
        mean, var = gp.predict(cx)  # EHVI: one column per objective
        std = np.sqrt(var)
        scores = gp.acquisition(cx) if ehvi else self._acquisition_of(mean, std, best)
        order = np.argsort(-scores, kind="stable")
        decoded: dict[int, dict[str, Any]] = {}

        def candidate(i: int) -> dict[str, Any]:
            if i not in decoded:
                decoded[i] = values_of(i)
            return decoded[i]

        # (score, index, values or None while not decoded): candidates are turned into values only when looked at.
        pool: list[tuple[float, int, dict[str, Any] | None]] = [(float(scores[i]), int(i), None) for i in order]
        # With categories, an upper confidence bound picks the combination to explore (module category_choice);
        # the acquisition then picks the point inside it, and the other combinations are the fallback.
        rest: list[tuple[float, int, dict[str, Any] | None]] = []
        if CATEGORY_UCB and encoder.onehot_blocks() and not ehvi:  # one number per trial: not EHVI's
            keys = combination_keys(encoder, cx)
            if len(np.unique(keys)) > 1:
                chosen = ucb_combination(keys, mean, std, combination_keys(encoder, x), y,
                                         math.prod(b.width for b in encoder.onehot_blocks()))
                rest = [item for item in pool if keys[item[1]] != chosen]
                pool = [item for item in pool if keys[item[1]] == chosen]

        # Refine the best few candidates on their continuous columns: first the best of each
        # discrete combination (categories, booleans, small integer ranges), so that a combination
        # whose continuous optimum lies elsewhere than the incumbent's still gets a fair chance,
        # then the next best candidates whatever their combination.
        pinned = self._pinned_columns()
        if len(pinned):
            # The last model picks all held these columns at one bound: try them inside this time.
            inside = np.all(np.abs(cx[:, pinned] - 0.5) < 0.5 - PIN_MARGIN, axis=1)
            if any(inside[i] for _, i, _ in pool):
                rest = [item for item in pool if not inside[item[1]]] + rest
                pool = [item for item in pool if inside[item[1]]]
        starts: list[int] = []
        combos: set[str] = set()
        for _, i, _ in pool[:COMBINATION_SCAN]:
            if len(starts) >= NUM_REFINE:
                break
            key = encoder.discrete_key(candidate(i))
            if key not in combos and len(encoder.refinable_columns(candidate(i))):
                combos.add(key)
                starts.append(i)
        for _, i, _ in pool:
            if len(starts) >= NUM_REFINE:
                break
            if i not in starts and len(encoder.refinable_columns(candidate(i))):
                starts.append(i)
        for k, i in enumerate(starts):
            z = self._refine(gp, cx[i], np.setdiff1d(encoder.refinable_columns(candidate(i)), pinned), best)
            if z is None:
                continue
            better = encoder.decode(z)
            new_score = float(self._acquisition(gp, encoder.encode(better)[None, :], best)[0])
            pool.append((new_score, -1 - k, better))

        pool.sort(key=lambda item: (-item[0], item[1]))
        for score, i, values in pool + rest:
            values = candidate(i) if values is None else values
            if not self.is_new(values):
                continue
            if not ehvi and self._converged(score, encoder.encode(values), y):
                return self._exploration_step(mean, std, candidate) or values
            return values
        return None

    def _pinned_columns(self) -> np.ndarray:
        """Numeric columns the last ``PIN_ASKS`` model picks all held at the same bound (0 or 1).

        A column pinned there by a posterior mean that slopes towards the bound is never tried
        inside again, however good the inside is (Hartmann-6 seed 5: x6 = 1.0 in 27 picks, its
        optimum 0.66): every ``PIN_ASKS + 1``-th such ask looks only inside.
        """
        recent = [t for t in self.trials.values() if t.info.get("source") == "model"][-PIN_ASKS:]
        if len(recent) < PIN_ASKS or self.objective.is_pareto:
            return np.zeros(0, dtype=int)
        x = self.encoder.encode_many([t.hparams for t in recent])
        numeric = np.array([b.start for b in self.encoder.blocks if b.kind == "numeric"], dtype=int)
        if len(numeric) == 0:
            return numeric
        cols = x[:, numeric]
        at_bound = np.all(cols <= 1e-9, axis=0) | np.all(cols >= 1.0 - 1e-9, axis=0)
        return numeric[at_bound]

    def _converged(self, score: float, pick: np.ndarray, y: np.ndarray) -> bool:
        """Whether the model's pick says it has converged: it repeats an observation, or (EI) expects
        next to no improvement.  EI would then creep along in tiny steps (Branin seed 26: one bound
        point proposed 27 times, moved by 1e-3 each time), wherever the basin it converged in is."""
        if _nearest_distance(pick[None, :], self.gp.x)[0] < DUPLICATE_DISTANCE:
            return True
        spread = float(np.ptp(y)) if len(y) else 0.0
        return self.acquisition == "ei" and spread > 0 and score < math.log(NEGLIGIBLE_IMPROVEMENT * spread)

    def _exploration_step(self, mean: np.ndarray, std: np.ndarray,
                          candidate: Callable[[int], dict[str, Any]]) -> dict[str, Any] | None:
        """The new candidate with the highest ``mean + beta * std`` among those the model knows least
        about (posterior std at least half the largest): a step out of the basin it converged in."""
        bound = np.where(std >= 0.5 * float(std.max()), mean + self.beta * std, -np.inf)
        for i in np.argsort(-bound, kind="stable")[:NUM_REFINE]:
            if np.isfinite(bound[i]) and self.is_new(candidate(int(i))):
                return candidate(int(i))
        return None

    def _lengthscale_prior(self) -> np.ndarray:
        """Prior mode of the log length scale per column: the GP's default, ``ONEHOT_LENGTHSCALE`` for one-hot ones."""
        encoder = self.encoder
        mean = np.full(encoder.dims, math.log(LENGTHSCALE_PRIOR_MODE))
        for block in encoder.onehot_blocks():
            mean[block.columns] = math.log(ONEHOT_LENGTHSCALE)
        return mean

    def _components(self) -> list[np.ndarray] | None:
        """Kernel components: with categories, a trend shared by all of them plus a category-specific part."""
        if not SHARED_TREND:
            return None
        encoder = self.encoder
        onehot = {c for b in encoder.onehot_blocks() for c in range(b.start, b.start + b.width)}
        numeric = np.array([c for c in range(encoder.dims) if c not in onehot], dtype=int)
        if not onehot or len(numeric) == 0:
            return None
        return [numeric, np.arange(encoder.dims)]

    # ------------------------------------------------------------ acquisition
    def _acquisition(self, gp: GaussianProcess | HypervolumeModel, x: np.ndarray, best: float) -> np.ndarray:
        if isinstance(gp, HypervolumeModel):
            return gp.acquisition(x)
        mean, var = gp.predict(x)
        return self._acquisition_of(mean, np.sqrt(var), best)

    def _acquisition_of(self, mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
        if self.acquisition == "ucb":
            return mean + self.beta * std
        return log_expected_improvement(mean, std, best)

    def _refine(self, gp: GaussianProcess, start: np.ndarray, columns: np.ndarray, best: float) -> np.ndarray | None:
        """L-BFGS-B on ``columns`` of ``start`` (the rest held fixed); None if it did not improve."""
        x = start.copy()

        def negative(z: np.ndarray) -> tuple[float, np.ndarray]:
            x[columns] = z
            if isinstance(gp, HypervolumeModel):
                value, grad = gp.acquisition_and_gradient(x)
                return -value, -grad[columns]
            mean, var, dmean, dvar = gp.predict_with_gradient(x)
            std = math.sqrt(var)
            dstd = dvar / (2.0 * std)
            if self.acquisition == "ucb":
                return -(mean + self.beta * std), -(dmean + self.beta * dstd)[columns]
            value, d_mean, d_std = log_ei_and_gradient(mean, std, best)
            return -value, -(d_mean * dmean + d_std * dstd)[columns]

        z0 = start[columns].copy()
        f0, _ = negative(z0)
        try:
            result = minimize(negative, z0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(columns),
                              options={"maxiter": 50})
        except (ValueError, np.linalg.LinAlgError):
            return None
        if not np.isfinite(result.fun) or result.fun >= f0:
            return None
        out = start.copy()
        out[columns] = np.clip(result.x, 0.0, 1.0)
        return out

    # ------------------------------------------------------------ candidates
    def _candidates(self) -> tuple[np.ndarray, Callable[[int], dict[str, Any]]]:
        """Random, Sobol and local candidates without duplicates: their encodings, and each one's values.

        In a space without conditions the candidates stay unit rows until one is picked
        (:meth:`SpaceEncoder.encode_units`); the draws are the same either way.
        """
        hp = self.hyperparameters
        names = list(hp.space.keys())
        dims = max(1, len(names))
        fast = self.encoder.unconditional
        # hp.sample(rng) draws one number per active parameter: all of them, in order, without conditions.
        units = [self.rng.random((NUM_RANDOM, len(names)))] if fast else []
        configs = [] if fast else [hp.sample(self.rng) for _ in range(NUM_RANDOM)]
        units.append(qmc.Sobol(d=dims, scramble=True, seed=self.rng).random(NUM_SOBOL))
        local = self._local_units(names, dims)
        if local:
            units.append(np.array(local))
        if fast:
            u = np.vstack(units)
            x = self.encoder.encode_units(u)
            _, first = np.unique(x, axis=0, return_index=True)
            keep = np.sort(first)
            rows = u[keep]
            return x[keep], lambda i: hp.sample(self.rng, unit=rows[i])
        configs += [hp.sample(self.rng, unit=row) for block in units for row in block]
        unique: dict[str, dict[str, Any]] = {}
        for c in configs:
            unique.setdefault(values_key(c), c)
        kept = list(unique.values())
        return self.encoder.encode_many(kept), kept.__getitem__

    def _local_units(self, names: list[str], dims: int) -> list[np.ndarray]:
        """Unit coordinates around the best trials: numbers moved by a random scale, each category or
        boolean re-drawn with probability 1/d."""
        hp = self.hyperparameters
        if self.objective.is_pareto:  # the best under this ask's weighting
            finished = sorted((self.trials[i] for i in self._scalars), key=lambda t: (-self._scalars[t.id], t.id))
        else:
            finished = [t for t in self.trials.values() if t.status in (COMPLETED, PRUNED) and t.value is not None]
            finished.sort(key=lambda t: (-self.objective.sign * t.value, t.id))
        top = finished[:LOCAL_TOP]
        out = []
        # Each incumbent's coordinates once; NaN where it has none (inactive), drawn afresh per candidate.
        bases = [np.array([_unit_of(hp.space[n], t.hparams.get(n)) for n in names]) for t in top]
        if top:
            for k in range(NUM_LOCAL):
                u = bases[k % len(top)].copy()
                for j in np.flatnonzero(np.isnan(u)):
                    u[j] = self.rng.random()
                scale = 10.0 ** self.rng.uniform(-2.5, -0.5)
                for j, n in enumerate(names):
                    p = hp.space[n]
                    if _is_categorical(p):
                        if self.rng.random() < 1.0 / dims:
                            u[j] = self.rng.random()
                    else:
                        u[j] = float(np.clip(u[j] + scale * self.rng.standard_normal(), 0.0, 1.0))
                out.append(u)
            out += self._transplants(names, bases, finished)
        return out

    def _transplants(self, names: list[str], bases: list[np.ndarray], finished: list) -> list[np.ndarray]:
        """Candidates for every combination of categories, not only the incumbents': the top trials'
        numbers under fresh categories (a combination's optimum is often near another's), and the
        best trial of each combination with its numbers moved (its own neighbourhood, where the
        acquisition optimiser then starts from)."""
        hp = self.hyperparameters
        categorical = [j for j, n in enumerate(names) if _is_categorical(hp.space[n])]
        if not CATEGORY_UCB or not categorical:
            return []
        out = []
        for k in range(NUM_TRANSPLANT):
            u = bases[k % len(bases)].copy()
            u[np.isnan(u)] = 0.5
            u[categorical] = self.rng.random(len(categorical))
            out.append(u)
        seen: set[tuple] = set()
        combo_best = []
        for t in finished:  # best first: the first trial of each combination is its best
            key = tuple(repr(t.hparams.get(names[j])) for j in categorical)
            if key not in seen:
                seen.add(key)
                combo_best.append(np.array([_unit_of(hp.space[n], t.hparams.get(n)) for n in names]))
        numeric = [j for j in range(len(names)) if j not in categorical]
        for k in range(NUM_TRANSPLANT if len(combo_best) > 1 else 0):
            u = combo_best[k % len(combo_best)].copy()
            u[np.isnan(u)] = 0.5
            scale = 10.0 ** self.rng.uniform(-2.0, -0.5)
            u[numeric] = np.clip(u[numeric] + scale * self.rng.standard_normal(len(numeric)), 0.0, 1.0)
            out.append(u)
        return out

    def _sobol_configuration(self) -> dict[str, Any] | None:
        """The next point of the initial design that was never tried (random draws if Sobol repeats itself)."""
        hp = self.hyperparameters
        for _ in range(MAX_DRAWS_PER_ASK):
            values = hp.sample(self.rng, unit=self._initial_points.next(len(hp.space)))
            if self.is_new(values):
                return values
        return self._random_configuration()

    def _random_configuration(self) -> dict[str, Any] | None:
        for _ in range(MAX_DRAWS_PER_ASK):
            values = self.hyperparameters.sample(self.rng)
            if self.is_new(values):
                return values
        self._exhausted = True
        return None


def _pareto_acquisition(value: Any, pareto: bool, acquisition: str) -> str:
    """``tuner.pareto_acquisition`` checked against the search it is given to (see the module docstring)."""
    if value is None:
        chosen = PARETO_ACQUISITIONS[0]
    else:
        chosen = str(value).lower()
        if chosen not in PARETO_ACQUISITIONS:
            raise ConfigError("tuner.pareto_acquisition", f"unknown Pareto acquisition {value!r}",
                              f"use one of {', '.join(PARETO_ACQUISITIONS)} (or null: ehvi)")
        if not pareto:
            raise ConfigError("tuner.pareto_acquisition", f"{value!r} is for a Pareto search, and this one has one "
                              "objective", "set search.mode=pareto with two or more objectives, or leave it null")
    if pareto and chosen == "ehvi" and acquisition != "ei":
        raise ConfigError("tuner.acquisition", f"{acquisition!r} has no form for several objectives: a Pareto "
                          "search maximises expected hypervolume improvement", "leave tuner.acquisition=ei, or "
                          "set tuner.pareto_acquisition=parego to apply it to ParEGO's one score")
    return chosen


def chebyshev(costs: np.ndarray, weights: np.ndarray, rho: float = PAREGO_RHO) -> np.ndarray:
    """ParEGO's augmented Chebyshev scalarisation of costs (rows) after min-max scaling per objective.

    ``max_j w_j f_j + rho * sum_j w_j f_j``: the max term reaches every point of a front, concave
    parts included, that a weighted sum misses; the small sum term breaks the max's ties (weakly
    dominated points score worse).  An objective with one observed value scales to 0.
    """
    low, high = costs.min(axis=0), costs.max(axis=0)
    scaled = (costs - low) / np.where(high > low, high - low, 1.0)
    weighted = scaled * weights
    return weighted.max(axis=1) + rho * weighted.sum(axis=1)


def _nearest_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each row of ``a``'s Euclidean distance to its nearest row of ``b``."""
    if len(b) == 0:
        return np.full(len(a), np.inf)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq.min(axis=1), 0.0))


def _unit_of(p, value) -> float:
    """A parameter's unit coordinate for ``value``; NaN when it has none (inactive, or no longer valid)."""
    if value is None:
        return math.nan
    try:
        return float(p.to_unit(value))
    except (ValueError, TypeError):
        return math.nan


def _is_categorical(p) -> bool:
    return isinstance(p, Boolean) or (isinstance(p, Choice) and not p.ordered)
