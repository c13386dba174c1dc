"""Expected hypervolume improvement: the Bayesian oracle's acquisition in a Pareto search.

One Gaussian process per objective (:mod:`archsearch.oracles.gp`, each fitted to that objective's
costs: every objective minimised) predicts a candidate's costs as independent normals.  A candidate's
*hypervolume improvement* is the volume its costs would add to what the current front dominates, up
to a reference point; the acquisition is the log of its expectation under the prediction (EHVI,
Emmerich et al. 2006), exact in any number of objectives:

* the region the front does not dominate (below the reference) is cut into disjoint boxes
  ``[l, u]`` (:func:`nondominated_boxes`: a grid on the front's coordinates of every objective but the
  last, the last one's extent in each cell given by the front points below that cell);
* within one box, the volume a point ``y`` dominates is ``prod_j (u_j - max(l_j, y_j))^+``, whose
  expectation under independent normals is a product of one-dimensional terms
  ``s (h((u - m)/s) - h((l - m)/s))`` with ``h(z) = phi(z) + z Phi(z)``;
* EHVI is their sum over the boxes, computed as a log-sum-exp of logs
  (:func:`archsearch.oracles.acquisition.log_h`, Ament et al. 2023's stable ``log h``), so candidates
  far behind the front are still ranked where the plain value underflows to 0 (as the Bayesian
  oracle's log EI; BoTorch's qLogEHVI does the same by sampling).

Two objectives give ``k + 1`` boxes for a front of ``k`` points; three give at most ``(k + 1)^2``
(cells with the same extent are merged), so a front large enough to pass :data:`MAX_CELLS` is first
reduced to its points of largest hypervolume contribution (the acquisition then slightly overrates
the gaps they leave).

What the oracle feeds it (:func:`pareto_training_data`): completed trials with every objective, by
their costs; failed ones (infeasible ones included), pruned ones and those with a
``constraint_violation`` above 0 at the worst cost observed of each objective, so each model steers
away from them and they never join the front.  Each objective is modelled and weighed in its ``scale``
(:meth:`archsearch.core.objective.ParetoObjective.scaled_costs`): ``scale: log`` (say it of a size
spanning decades) by its logarithm, the default ``linear`` as it is, so the improvement is the one the
report's hypervolume counts.  The reference point is ``search.reference_point`` when the config sets one
(``Oracle.set_reference_point``, or ``hydra.sweeper.reference_point``): the improvement then counts only
below it, so the search spends its trials on the region the user scores (with the observed nadir, a
problem whose early costs are far above that region, such as DTLZ2, spreads its trials over the whole
trade-off seen so far).  Getting into that region first is the Bayesian oracle's *approach*
(:mod:`archsearch.oracles.bayesian`), by :func:`reference_excess`, how far a trial is from it: EHVI with
no data there sends its trials where its models know least.  Otherwise the reference is the observed
nadir plus a tenth of each cost's range (:func:`archsearch.core.pareto.default_reference_point`, the
report's default); the ranking EHVI gives does not depend on each cost's units otherwise.  Running
trials count as *kriging believers*: each GP pretends it observed its mean there (variance collapses
around them) and those means join the front, so parallel workers are sent to other parts of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import moocore
import numpy as np
from scipy.special import log_ndtr, logsumexp

from archsearch.core.measures import VIOLATION
from archsearch.core.pareto import default_reference_point, front_mask
from archsearch.core.trial import COMPLETED, FAILED, PRUNED, RUNNING
from archsearch.oracles.acquisition import log1mexp, log_h
from archsearch.oracles.gp import GaussianProcess

REOPTIMISE_GROWTH = 1.05  # kernel hyperparameters optimised again once the observations grew by 5% ...
RESTART_GROWTH = 1.25  # ... and from fresh random starts too once they grew by 25%
MAX_CELLS = 4096  # grid cells of the box decomposition; past it the front is reduced (module docstring)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- the box decomposition


def nondominated_boxes(front: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint boxes ``(lower, upper)`` (rows; ``lower`` may be ``-inf``) that cover exactly the region
    below ``reference`` that no row of ``front`` (costs, minimised) weakly dominates."""
    ref = np.asarray(reference, dtype=float)
    points = np.asarray(front, dtype=float).reshape(-1, len(ref))
    points = points[np.all(points < ref, axis=1)]
    if len(points):
        points = np.unique(points[front_mask(points)], axis=0)
    points = _reduced(points, ref)
    m = len(ref)
    if len(points) == 0:
        return np.full((1, m), -np.inf), ref[None, :].copy()
    lows = [np.concatenate([[-np.inf], np.unique(points[:, j])]) for j in range(m - 1)]
    highs = [np.concatenate([np.unique(points[:, j]), [ref[j]]]) for j in range(m - 1)]
    index = np.stack([g.ravel() for g in np.meshgrid(*[np.arange(len(g)) for g in lows], indexing="ij")], axis=1)
    corner = np.stack([lows[j][index[:, j]] for j in range(m - 1)], axis=1)
    below = np.all(points[None, :, :m - 1] <= corner[:, None, :], axis=2)  # cell x point: the point is below it
    extent = np.minimum(np.where(below, points[None, :, m - 1], np.inf).min(axis=1), ref[m - 1])
    # Merge runs of cells along the last grid axis (it varies fastest) that share the last cost's extent.
    last = m - 2
    starts = (index[:, last] == 0) | np.concatenate([[True], extent[1:] != extent[:-1]])
    first = np.flatnonzero(starts)
    final = np.concatenate([first[1:], [len(extent)]]) - 1
    lower = np.column_stack([corner[first], np.full(len(first), -np.inf)])
    upper = np.column_stack([np.stack([highs[j][index[first, j]] for j in range(m - 1)], axis=1),
                             extent[first]])
    upper[:, last] = highs[last][index[final, last]]
    return lower, upper


def _reduced(points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The front's points of largest hypervolume contribution, few enough for :data:`MAX_CELLS` cells."""
    m = len(ref)
    if m <= 2 or (len(points) + 1) ** (m - 1) <= MAX_CELLS:
        return points
    keep = max(1, int(MAX_CELLS ** (1.0 / (m - 1))) - 1)
    contributions = np.asarray(moocore.hv_contributions(points, ref=ref), dtype=float)
    return points[np.sort(np.argsort(-contributions, kind="stable")[:keep])]


# --------------------------------------------------------------------------- log EHVI


def log_ehvi(mean: np.ndarray, std: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``log E[hypervolume improvement]`` of candidates (rows of ``mean``/``std``, one column per cost)
    over the boxes of :func:`nondominated_boxes`; finite even where the plain value underflows."""
    mean = np.atleast_2d(np.asarray(mean, dtype=float))
    std = np.maximum(np.atleast_2d(np.asarray(std, dtype=float)), 1e-12)
    total = np.zeros((len(mean), len(lower)))
    for j in range(mean.shape[1]):
        # Each cost's boxes share few distinct sides: score those once per candidate, then gather.
        sides, inverse = np.unique(np.column_stack([lower[:, j], upper[:, j]]), axis=0, return_inverse=True)
        logs = _log_side(mean[:, j:j + 1], std[:, j:j + 1], sides[None, :, 0], sides[None, :, 1])
        total += logs[:, np.asarray(inverse).reshape(-1)]
    return logsumexp(total, axis=1)


def _log_side(mean: np.ndarray, std: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``log E[(high - max(low, Y))^+]`` for ``Y ~ N(mean, std^2)``: ``log(s (h(z_high) - h(z_low)))``."""
    upper = log_h((high - mean) / std)
    lower = np.where(np.isfinite(low), log_h(np.where(np.isfinite(low), (low - mean) / std, 0.0)), -np.inf)
    return np.log(std) + upper + log1mexp(np.minimum(lower - upper, -1e-300))


def log_ehvi_and_gradient(mean: np.ndarray, std: np.ndarray, lower: np.ndarray,
                          upper: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log EHVI of one candidate (``mean``, ``std``: one entry per cost) and its derivatives with
    respect to each cost's mean and std.

    Per box and cost, ``T = s (h(z_u) - h(z_l))`` with ``z = (a - m) / s``: ``dT/dm = -(Phi(z_u) - Phi(z_l))``
    and ``dT/ds = phi(z_u) - phi(z_l)``; the log-sum-exp weighs each box by its share of the sum.
    """
    mean = np.asarray(mean, dtype=float).ravel()
    std = np.maximum(np.asarray(std, dtype=float).ravel(), 1e-12)
    m = len(mean)
    logs = np.empty((len(lower), m))
    log_cdf_gap = np.empty((len(lower), m))
    pdf_u = np.empty((len(lower), m))
    pdf_l = np.empty((len(lower), m))
    for j in range(m):
        finite = np.isfinite(lower[:, j])
        zu = (upper[:, j] - mean[j]) / std[j]
        zl = np.where(finite, (lower[:, j] - mean[j]) / std[j], 0.0)
        logs[:, j] = _log_side(mean[j], std[j], np.where(finite, lower[:, j], -np.inf), upper[:, j])
        cdf_u, cdf_l = log_ndtr(zu), np.where(finite, log_ndtr(zl), -np.inf)
        log_cdf_gap[:, j] = cdf_u + log1mexp(np.minimum(cdf_l - cdf_u, -1e-300))
        pdf_u[:, j] = -0.5 * zu * zu - _LOG_SQRT_2PI
        pdf_l[:, j] = np.where(finite, -0.5 * zl * zl - _LOG_SQRT_2PI, -np.inf)
    per_box = logs.sum(axis=1)
    value = float(logsumexp(per_box))
    # A box's weight in the sum times one side's derivative over that side's value, taken in logs: a box
    # whose side is tiny next to its derivative (a thin box far from the mean) would overflow otherwise.
    others = (per_box - value)[:, None] - logs
    d_mean = -np.exp(others + log_cdf_gap).sum(axis=0)
    d_std = np.exp(others + pdf_u).sum(axis=0) - np.exp(others + pdf_l).sum(axis=0)
    return value, d_mean, d_std


# --------------------------------------------------------------------------- the model an ask maximises


@dataclass
class ParetoData:
    """A Pareto search's training data for :class:`HypervolumeModel`: encoded inputs, their (warped)
    costs (failed trials at the worst), and the front and reference point the improvement is over."""

    x: np.ndarray
    costs: np.ndarray
    front: np.ndarray
    reference: np.ndarray
    ranks: dict[int, float]  # trial id -> how good a base for local candidates (higher: better); rows' order
    inside: int  # completed trials whose every cost lies below the reference point


class HypervolumeModel:
    """One GP per objective and the boxes of the front: what the Bayesian oracle maximises in a Pareto
    search.  Quacks as its single GP does where the oracle needs it (``predict``), and scores candidates
    by :meth:`acquisition` and, for L-BFGS-B, :meth:`acquisition_and_gradient`."""

    def __init__(self, gps: Sequence[GaussianProcess], front: np.ndarray, reference: np.ndarray) -> None:
        self.gps = list(gps)
        self.front = np.asarray(front, dtype=float).reshape(-1, len(self.gps))
        self.reference = np.asarray(reference, dtype=float)
        self.lower, self.upper = nondominated_boxes(self.front, self.reference)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every objective's predicted cost and variance at ``x``: two ``(m, objectives)`` arrays."""
        parts = [gp.predict(x) for gp in self.gps]
        return np.column_stack([p[0] for p in parts]), np.column_stack([p[1] for p in parts])

    def acquisition(self, x: np.ndarray) -> np.ndarray:
        mean, var = self.predict(x)
        return log_ehvi(mean, np.sqrt(var), self.lower, self.upper)

    def acquisition_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log EHVI at one input ``x`` and its gradient with respect to ``x``."""
        parts = [gp.predict_with_gradient(x) for gp in self.gps]
        mean = np.array([p[0] for p in parts])
        std = np.sqrt(np.array([p[1] for p in parts]))
        value, d_mean, d_std = log_ehvi_and_gradient(mean, std, self.lower, self.upper)
        grad = sum(d_mean[j] * p[2] + d_std[j] * p[3] / (2.0 * std[j]) for j, p in enumerate(parts))
        return value, np.asarray(grad, dtype=float)

    def with_pending(self, x_pending: np.ndarray) -> HypervolumeModel:
        """Kriging believers: every GP observed its own mean at the running trials, whose predicted
        costs join the front (see the module docstring)."""
        if len(x_pending) == 0:
            return self
        believed, _ = self.predict(x_pending)
        return HypervolumeModel([gp.with_fantasies(x_pending) for gp in self.gps],
                                np.vstack([self.front, believed]), self.reference)


@dataclass(frozen=True)
class Fits:
    """The GPs' last kernel hyperparameters, and on how many observations they were last optimised
    (and optimised from fresh starts): when :func:`fit_model` fits them again."""

    thetas: tuple[np.ndarray, ...]
    optimised_at: int
    restarted_at: int


def fit_model(data: ParetoData, make_gp: Callable[[int], GaussianProcess], rng: np.random.Generator,
              previous: Fits | None, restarts: int) -> tuple[HypervolumeModel, Fits]:
    """One GP per objective on ``data``; ``make_gp(restarts)`` makes an unfitted one.

    Fitting the kernels is most of an ask's cost, times the objectives: they are optimised again
    (from the previous fit) only once the observations grew by :data:`REOPTIMISE_GROWTH` since the
    last time, and from ``restarts`` fresh starts too once they grew by :data:`RESTART_GROWTH`; in
    between, the previous hyperparameters are kept and only the new observations are conditioned on.
    """
    n = len(data.x)
    fresh = previous is None or len(previous.thetas) != data.costs.shape[1]
    optimise = fresh or n >= previous.optimised_at * REOPTIMISE_GROWTH
    restart = fresh or n >= previous.restarted_at * RESTART_GROWTH
    gps = []
    for j in range(data.costs.shape[1]):
        gp = make_gp(restarts if restart else 0)
        gp.fit(data.x, data.costs[:, j], rng=rng, theta=None if fresh else previous.thetas[j], optimize=optimise)
        gps.append(gp)
    fits = Fits(tuple(gp.theta for gp in gps), n if optimise else previous.optimised_at,
                n if restart else previous.restarted_at)
    return HypervolumeModel(gps, data.front, data.reference), fits


def pareto_training_data(trials: Sequence[Any], objective: Any, encode: Callable[[list], np.ndarray],
                         reference: np.ndarray | None = None) -> ParetoData | None:
    """The model's data from the oracle's trials (see the module docstring); None until two trials have costs.

    ``reference``: the configured reference point as costs (``Oracle.reference_costs``); None derives it."""
    good, rows, bad = [], [], []
    for t in sorted(trials, key=lambda t: t.id):
        vector = objective.costs_from(t.metrics) if t.status == COMPLETED else None
        if vector is not None and not _violates(t):
            good.append(t)
            rows.append(vector)
        elif t.status in (FAILED, PRUNED) or (t.status == COMPLETED and _violates(t)):
            bad.append(t)
    if len(good) < 2:
        return None
    costs = objective.scaled_costs(np.asarray(rows, dtype=float))
    worst = costs.max(axis=0)
    x = encode([t.hparams for t in good] + [t.hparams for t in bad])
    y = np.vstack([costs, np.tile(worst, (len(bad), 1))])
    on_front = front_mask(costs)
    reference = default_reference_point(costs) if reference is None else objective.scaled_costs(reference)
    contributions = _contributions(costs[on_front], reference)
    ranks = {t.id: (float(c) if on else -1.0) for t, on, c in
             zip(good, on_front, _spread(on_front, contributions))}
    inside = int(np.sum(np.all(costs < reference, axis=1)))
    return ParetoData(x, y, costs[on_front], reference, ranks, inside)


def reference_excess(costs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each row's largest excess over ``reference``, every cost in units of its observed range: negative
    exactly for the rows inside the box the reference bounds, and smallest along its diagonal.

    A Chebyshev scalarisation centred on the reference with equal weights: minimising it leads into the
    scored box at its deepest, where one point dominates the most of it."""
    costs = np.asarray(costs, dtype=float)
    span = np.ptp(costs, axis=0)
    span = np.where(span > 0, span, 1.0)
    return np.max((costs - np.asarray(reference, dtype=float)) / span, axis=1)


def pending_inputs(trials: Sequence[Any], encode: Callable[[list], np.ndarray]) -> np.ndarray:
    """Encoded configurations of the running trials (the believers of :meth:`HypervolumeModel.with_pending`)."""
    running = [t.hparams for t in sorted(trials, key=lambda t: t.id) if t.status == RUNNING]
    return encode(running) if running else np.zeros((0, 0))


def _contributions(front: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each front point's exclusive hypervolume: its part in the front, where local candidates look first."""
    if len(front) == 0:
        return np.zeros(0)
    inside = np.all(front < reference, axis=1)
    out = np.zeros(len(front))
    if inside.any():
        out[inside] = np.asarray(moocore.hv_contributions(front[inside], ref=reference), dtype=float)
    return out


def _spread(mask: np.ndarray, values: np.ndarray) -> list[float]:
    """``values`` (one per True of ``mask``) spread over every row of ``mask`` (0 where False)."""
    out = np.zeros(len(mask))
    out[np.flatnonzero(mask)] = values
    return list(out)


def _violates(trial: Any) -> bool:
    value = trial.metrics.get(VIOLATION) if trial.metrics else None
    try:
        return value is not None and float(value) > 0
    except (TypeError, ValueError):
        return False
