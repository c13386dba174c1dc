"""A small Gaussian process for Bayesian optimisation, on numpy and scipy only.

Why not scikit-learn: we need analytic gradients of the posterior with respect
to the inputs (to refine the acquisition with L-BFGS-B), priors on the kernel
hyperparameters, and cheap "fantasy" updates for running trials, and we must
not pull in another dependency.

Model: ``y = f(x) + noise`` with ``f ~ GP(0, k)`` on *standardised* outputs
(zero mean, unit variance), ``k`` the Matérn-5/2 kernel with automatic
relevance determination (one length scale per input dimension)::

    k(x, x') = s2 * (1 + sqrt(5) r + 5/3 r^2) * exp(-sqrt(5) r),
    r^2 = sum_j (x_j - x'_j)^2 / l_j^2

The hyperparameters ``theta = [log l_1..l_d, log s2, log noise]`` are fitted
by maximising the log marginal likelihood plus log priors (a MAP estimate)
with L-BFGS-B, analytic gradients and a few restarts.  The priors have the
shape of Optuna's ``GPSampler`` (written in ``theta``):

* length scales: ``-w (l^2 / m^2 + m^2 / l^2)`` with ``w = 0.1``, i.e.
  Optuna's ``-(0.1 / lambda + 0.1 lambda)`` on ``lambda = 1 / l^2`` when the
  mode ``m`` is 1 (the default; callers can set ``m`` per column, the
  Bayesian oracle gives one-hot columns their own).  Nearly flat from about
  ``m / 3`` to ``3 m``, exponentially steep outside.  The earlier log-normal
  prior (median ``0.5 * sqrt(d)``, std ``sqrt(3)``) let an unimportant
  column's length scale grow to 5-40: its posterior mean became a slope, the
  acquisition pushed that column to a bound and the search never came back
  (standard Hartmann-6, 50 seeds x 40 trials: mean regret 0.27 -> 0.15,
  seeds above 0.77 5 -> 1; ``bench/RESULTS.md``, issue 29);
* signal variance: ``Gamma(2, k)`` on ``s2`` for ``k`` kernel components
  (the outputs are standardised; mode ``1 / k``);
* noise variance: ``Gamma(1.1, 30)`` (mode about 0.003 of the outputs'
  variance; the data can raise it to the level of a real training's noise),
  bounded below by ``1e-6`` so noise-free data can still be interpolated.

Inputs are expected in the unit cube (see :mod:`archsearch.oracles.encoding`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize

SQRT5 = math.sqrt(5.0)
LOG_2PI = math.log(2.0 * math.pi)
LENGTHSCALE_BOUNDS = (1e-2, 1e3)
SIGNAL_BOUNDS = (5e-2, 2e1)
NOISE_BOUNDS = (1e-6, 1.0)
LENGTHSCALE_PRIOR_MODE = 1.0  # the prior's most likely length scale (unit-cube inputs)
LENGTHSCALE_PRIOR_WEIGHT = 0.1  # log prior -w (l^2/m^2 + m^2/l^2)
SIGNAL_PRIOR_SHAPE = 2.0  # Gamma(shape, rate = number of components) on the signal variance
NOISE_PRIOR = (1.1, 30.0)  # Gamma(shape, rate) on the noise variance
RESTART_SPREAD = (0.9, 0.5, 1.0)  # std of fresh starts around the prior's mode: log l, log s2, log noise
JITTER = 1e-9


@dataclass
class _Factor:
    """The Cholesky factor of the training covariance and what predictions need from it."""

    L: np.ndarray
    alpha: np.ndarray


class GaussianProcess:
    """GP regression with a Matérn-5/2 ARD kernel; see the module docstring.

    ``fit(x, y)`` standardises ``y``, fits the hyperparameters and factorises
    the covariance; ``predict(x)`` returns the latent mean and variance in the
    units of ``y``.  ``theta`` can be given to ``fit`` with ``optimize=False``
    to reuse hyperparameters (e.g. between refits).

    ``components`` (lists of column indices) makes the kernel a sum of
    Matérn kernels, each on its own columns with its own length scales and
    variance: ``[numeric columns, all columns]`` gives a trend shared by every
    category plus a category-specific part (see the Bayesian oracle).
    ``lengthscale_prior_mean`` overrides the prior's mode of ``log l`` per input
    column.
    """

    def __init__(self, restarts: int = 2, maxiter: int = 200, lengthscale_prior_mean: np.ndarray | None = None,
                 components: list[np.ndarray] | None = None, min_noise: float | None = None) -> None:
        self.restarts = int(restarts)
        # The least noise variance the fit may find (standardised units): KerasTuner's ``alpha``, the
        # noise a user expects in the scores; by default as little as lets noise-free data interpolate.
        self.min_noise = NOISE_BOUNDS[0] if min_noise is None else min(max(float(min_noise), NOISE_BOUNDS[0]),
                                                                       NOISE_BOUNDS[1] / 2)
        self.maxiter = int(maxiter)
        self.lengthscale_prior_mean = (None if lengthscale_prior_mean is None
                                       else np.asarray(lengthscale_prior_mean, float))
        self.components = None if components is None else [np.asarray(c, dtype=int) for c in components]
        self.x = np.zeros((0, 0))
        self.y = np.zeros(0)  # standardised
        self.y_mean = 0.0
        self.y_std = 1.0
        self.theta: np.ndarray | None = None
        self._factor: _Factor | None = None
        self._parts: list[np.ndarray] = []

    # ------------------------------------------------------------ hyperparameters
    @property
    def dims(self) -> int:
        return self.x.shape[1]

    def _layout(self, d: int) -> list[np.ndarray]:
        """Column indices of each kernel component (default: one component on every column)."""
        parts = [c for c in (self.components or []) if len(c)]
        return parts or [np.arange(d)]

    def _split(self, theta: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, float]:
        """``theta`` -> (log length scales per component, signal variances, noise variance)."""
        logs, i = [], 0
        for cols in self._parts:
            logs.append(theta[i:i + len(cols)])
            i += len(cols)
        m = len(self._parts)
        return logs, np.exp(theta[i:i + m]), float(np.exp(theta[i + m]))

    @property
    def lengthscales(self) -> np.ndarray:
        """Length scales of the first component (of the only one by default)."""
        return np.exp(self._split(self.theta)[0][0])

    @property
    def signal_variance(self) -> float:
        """Prior variance of ``f`` (all components together), in standardised units."""
        return float(self._split(self.theta)[1].sum())

    @property
    def noise_variance(self) -> float:
        """In standardised units (a fraction of the outputs' variance)."""
        return self._split(self.theta)[2]

    def _bounds(self) -> list[tuple[float, float]]:
        log = lambda b: (math.log(b[0]), math.log(b[1]))  # noqa: E731
        n_ls = sum(len(c) for c in self._parts)
        return ([log(LENGTHSCALE_BOUNDS)] * n_ls + [log(SIGNAL_BOUNDS)] * len(self._parts)
                + [log((self.min_noise, NOISE_BOUNDS[1]))])

    def _modes(self) -> np.ndarray:
        """The prior's mode of each entry of ``theta`` (where fits start)."""
        d = self.dims
        per_column = np.full(d, math.log(LENGTHSCALE_PRIOR_MODE))
        if self.lengthscale_prior_mean is not None and len(self.lengthscale_prior_mean) == d:
            per_column = self.lengthscale_prior_mean
        m = len(self._parts)
        signal = math.log((SIGNAL_PRIOR_SHAPE - 1.0) / m)  # the components share the standardised variance
        noise = math.log((NOISE_PRIOR[0] - 1.0) / NOISE_PRIOR[1])
        return np.concatenate([per_column[c] for c in self._parts] + [[signal] * m, [noise]])

    def _log_prior(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log prior density of ``theta`` (up to a constant) and its gradient; see the module docstring."""
        n_ls = sum(len(c) for c in self._parts)
        m = len(self._parts)
        u = 2.0 * (theta[:n_ls] - self._modes()[:n_ls])
        up, down = np.exp(u), np.exp(-u)
        log_s2, log_noise = theta[n_ls:n_ls + m], float(theta[n_ls + m])
        value = (-LENGTHSCALE_PRIOR_WEIGHT * float((up + down).sum())
                 + float(((SIGNAL_PRIOR_SHAPE - 1.0) * log_s2 - m * np.exp(log_s2)).sum())
                 + (NOISE_PRIOR[0] - 1.0) * log_noise - NOISE_PRIOR[1] * math.exp(log_noise))
        grad = np.concatenate([-2.0 * LENGTHSCALE_PRIOR_WEIGHT * (up - down),
                               (SIGNAL_PRIOR_SHAPE - 1.0) - m * np.exp(log_s2),
                               [(NOISE_PRIOR[0] - 1.0) - NOISE_PRIOR[1] * math.exp(log_noise)]])
        return value, grad

    def default_theta(self) -> np.ndarray:
        """The prior's mode, clipped to the bounds: the starting point of a first fit."""
        lo, hi = np.array(self._bounds()).T
        return np.clip(self._modes(), lo, hi)

    # ------------------------------------------------------------ fitting
    def fit(self, x: np.ndarray, y: np.ndarray, *, rng: np.random.Generator | None = None,
            theta: np.ndarray | None = None, optimize: bool = True) -> GaussianProcess:
        """Condition on ``(x, y)``; with ``optimize`` also fit the hyperparameters (starting at ``theta``)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        y = np.asarray(y, dtype=float).ravel()
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"need as many outputs as inputs (got {len(x)} inputs, {len(y)} outputs)")
        self.x = x
        self._parts = self._layout(x.shape[1])
        self.y_mean = float(np.mean(y))
        std = float(np.std(y))
        self.y_std = std if std > 1e-12 else 1.0
        self.y = (y - self.y_mean) / self.y_std
        default = self.default_theta()
        start = default if theta is None or len(theta) != len(default) else np.asarray(theta, float)
        self.theta = start
        if optimize and len(y) >= 2:
            self.theta = self._optimize(start, rng or np.random.default_rng(0))
        self._factor = self._factorize(self.theta)
        return self

    def _optimize(self, start: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        bounds = self._bounds()
        lo, hi = np.array(bounds).T
        mode = self._modes()
        n_ls = sum(len(c) for c in self._parts)
        spread = np.concatenate([np.full(n_ls, RESTART_SPREAD[0]), np.full(len(self._parts), RESTART_SPREAD[1]),
                                 [RESTART_SPREAD[2]]])
        starts = [np.clip(start, lo, hi)]
        for _ in range(self.restarts):
            starts.append(np.clip(mode + spread * rng.standard_normal(len(mode)), lo, hi))
        sq = [_squared_differences(self.x[:, cols]) for cols in self._parts]
        best_theta, best_value = starts[0], math.inf
        for s in starts:
            try:
                result = minimize(self._objective, s, args=(sq,), jac=True, method="L-BFGS-B", bounds=bounds,
                                  options={"maxiter": self.maxiter})
            except (np.linalg.LinAlgError, ValueError):
                continue
            if np.isfinite(result.fun) and result.fun < best_value:
                best_theta, best_value = np.asarray(result.x, float), float(result.fun)
        return best_theta

    def _objective(self, theta: np.ndarray, sq: list[np.ndarray]) -> tuple[float, np.ndarray]:
        """Negative log posterior (up to a constant) and its gradient."""
        lml, grad = _lml_and_grad(theta, sq, self.y)
        prior, prior_grad = self._log_prior(theta)
        log_posterior = lml + prior
        if not np.isfinite(log_posterior):
            return 1e25, np.zeros_like(theta)
        return -log_posterior, -(grad + prior_grad)

    def log_marginal_likelihood(self, theta: np.ndarray | None = None) -> float:
        """``log p(y | x, theta)`` of the standardised outputs (no prior); default: the fitted ``theta``."""
        theta = self.theta if theta is None else np.asarray(theta, float)
        sq = [_squared_differences(self.x[:, cols]) for cols in self._parts]
        value, _ = _lml_and_grad(theta, sq, self.y, with_grad=False)
        return value

    def _kernel(self, a: np.ndarray, b: np.ndarray, theta: np.ndarray) -> np.ndarray:
        logs, signals, _ = self._split(theta)
        return sum(_matern(a[:, cols], b[:, cols], np.exp(ls), float(s2))
                   for cols, ls, s2 in zip(self._parts, logs, signals))

    def _factorize(self, theta: np.ndarray) -> _Factor:
        K = self._kernel(self.x, self.x, theta)
        K[np.diag_indices_from(K)] += self._split(theta)[2] + JITTER
        L = _cholesky(K)
        return _Factor(L, cho_solve((L, True), self.y))

    # ------------------------------------------------------------ predicting
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent ``f`` at ``x`` (shape ``(m, d)``), in the units of y."""
        mean, var = self._predict_standardised(np.atleast_2d(np.asarray(x, float)))
        return mean * self.y_std + self.y_mean, var * self.y_std**2

    def _predict_standardised(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = self._factor
        ks = self._kernel(x, self.x, self.theta)
        mean = ks @ f.alpha
        v = solve_triangular(f.L, ks.T, lower=True, check_finite=False)
        var = np.maximum(self.signal_variance - np.einsum("ij,ij->j", v, v), 1e-12)
        return mean, var

    def predict_with_gradient(self, x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients with respect to one input ``x`` (shape ``(d,)``), units of y."""
        f = self._factor
        x = np.asarray(x, float).ravel()
        logs, signals, _ = self._split(self.theta)
        k = np.zeros(len(self.x))
        dk = np.zeros((len(self.x), self.dims))
        for cols, ls, s2 in zip(self._parts, logs, signals):
            ls2 = np.exp(2.0 * ls)
            diff = x[cols][None, :] - self.x[:, cols]  # (n, d_c)
            r = np.sqrt(np.maximum((diff**2 / ls2).sum(axis=1), 0.0))
            e = np.exp(-SQRT5 * r)
            k += s2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * e
            dk[:, cols] += (-(5.0 / 3.0) * s2 * (1.0 + SQRT5 * r) * e)[:, None] * diff / ls2
        mean = float(k @ f.alpha)
        dmean = dk.T @ f.alpha
        v = cho_solve((f.L, True), k)
        var = self.signal_variance - float(k @ v)
        dvar = -2.0 * (dk.T @ v)
        if var < 1e-12:
            var, dvar = 1e-12, np.zeros_like(dvar)
        return (mean * self.y_std + self.y_mean, var * self.y_std**2, dmean * self.y_std, dvar * self.y_std**2)

    def with_fantasies(self, x_pending: np.ndarray) -> GaussianProcess:
        """A copy that also "observed" its own mean at ``x_pending`` (kriging believer), same hyperparameters.

        The mean barely moves but the variance collapses around the pending
        points, so the acquisition stops pointing at what is already running.
        """
        x_pending = np.atleast_2d(np.asarray(x_pending, float))
        clone = GaussianProcess(self.restarts, self.maxiter, self.lengthscale_prior_mean, self.components,
                                self.min_noise)
        clone.__dict__.update(self.__dict__)
        if len(x_pending) == 0:
            return clone
        believed, _ = self._predict_standardised(x_pending)
        clone.x = np.vstack([self.x, x_pending])
        clone.y = np.concatenate([self.y, believed])
        clone._factor = clone._factorize(clone.theta)
        return clone


# --------------------------------------------------------------------------- kernel algebra


def _matern(a: np.ndarray, b: np.ndarray, lengthscales: np.ndarray, s2: float) -> np.ndarray:
    """Matérn-5/2 covariance between the rows of ``a`` and ``b``."""
    a = a / lengthscales
    b = b / lengthscales
    r2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    r = np.sqrt(np.maximum(r2, 0.0))
    return s2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * np.exp(-SQRT5 * r)


def _squared_differences(x: np.ndarray) -> np.ndarray:
    """``(d, n, n)`` squared differences per dimension, reused by every likelihood evaluation of a fit."""
    diff = x.T[:, :, None] - x.T[:, None, :]
    return diff * diff


def _cholesky(K: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor, adding jitter if rounding made ``K`` indefinite."""
    jitter = 0.0
    scale = float(np.mean(np.diag(K)))
    for _ in range(6):
        try:
            return cholesky(K + jitter * np.eye(len(K)), lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            jitter = scale * 1e-8 if jitter == 0.0 else jitter * 100
    raise np.linalg.LinAlgError("covariance matrix is not positive definite even with jitter")


def _lml_and_grad(theta: np.ndarray, sq: list[np.ndarray], y: np.ndarray,
                  with_grad: bool = True) -> tuple[float, np.ndarray | None]:
    """Log marginal likelihood of ``y`` and its gradient with respect to ``theta`` (log parameters).

    ``sq`` holds each component's ``(d_c, n, n)`` squared differences; ``theta`` is
    ``[log l of every component, log s2 of every component, log noise]``.
    ``d log p / d theta_j = 0.5 * tr((a a^T - K^-1) dK/d theta_j)`` with ``a = K^-1 y``;
    for a length scale, ``dk/d log l_j = 5/3 s2 (1 + sqrt5 r) exp(-sqrt5 r) (x_j - x'_j)^2 / l_j^2``.
    """
    m = len(sq)
    n = len(y)
    n_ls = sum(s.shape[0] for s in sq)
    signals = np.exp(theta[n_ls:n_ls + m])
    noise = float(np.exp(theta[n_ls + m]))
    K = np.zeros((n, n))
    pieces = []
    i = 0
    for c, s in enumerate(sq):
        d_c = s.shape[0]
        ls2 = np.exp(2.0 * theta[i:i + d_c])
        i += d_c
        scaled = s / ls2[:, None, None]
        r = np.sqrt(scaled.sum(axis=0))
        e = np.exp(-SQRT5 * r)
        kf = signals[c] * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * e
        K += kf
        pieces.append((scaled, r, e, kf))
    K[np.diag_indices(n)] += noise + JITTER
    try:
        L = cholesky(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return -1e25, np.zeros_like(theta)
    alpha = cho_solve((L, True), y, check_finite=False)
    lml = -0.5 * float(y @ alpha) - float(np.log(np.diag(L)).sum()) - 0.5 * n * LOG_2PI
    if not with_grad:
        return lml, None
    k_inv = cho_solve((L, True), np.eye(n), check_finite=False)
    w = np.outer(alpha, alpha) - k_inv
    grad = np.empty(len(theta))
    i = 0
    for c, (scaled, r, e, kf) in enumerate(pieces):
        d_c = scaled.shape[0]
        a = (5.0 / 3.0) * signals[c] * (1.0 + SQRT5 * r) * e
        grad[i:i + d_c] = 0.5 * np.einsum("ij,kij->k", w * a, scaled)
        i += d_c
        grad[n_ls + c] = 0.5 * float((w * kf).sum())
    grad[n_ls + m] = 0.5 * noise * float(np.trace(w))
    return lml, grad
