"""Log expected improvement: how much a point may beat the best value so far, under a GP's prediction.

Computed in the numerically stable form of Ament et al. (NeurIPS 2023, "Unexpected improvements to
expected improvement"), so it still ranks candidates far from the incumbent, where plain EI
underflows to 0; :func:`log_ei_and_gradient` gives the derivatives L-BFGS-B refines candidates with.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfcx, log_ndtr

_C1 = 0.5 * math.log(2.0 * math.pi)
_C2 = 0.5 * math.log(math.pi / 2.0)
_EPS_CUTOFF = 1.0 / math.sqrt(np.finfo(float).eps)


def log_h(z: np.ndarray) -> np.ndarray:
    """``log(phi(z) + z Phi(z))`` accurately for every z (Ament et al. 2023, eq. 9)."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    upper = z > -1.0
    zu = z[upper]
    out[upper] = np.log(np.exp(-0.5 * zu * zu - _C1) + zu * np.exp(log_ndtr(zu)))
    mid = (~upper) & (z > -_EPS_CUTOFF)
    zm = z[mid]
    out[mid] = -0.5 * zm * zm - _C1 + log1mexp(np.log(erfcx(-zm / math.sqrt(2.0)) * np.abs(zm)) + _C2)
    low = ~(upper | mid)
    zl = z[low]
    out[low] = -0.5 * zl * zl - _C1 - 2.0 * np.log(np.abs(zl))
    return out


def log1mexp(a: np.ndarray) -> np.ndarray:
    """``log(1 - exp(a))`` for ``a < 0``, stable on both sides of ``-log 2``."""
    a = np.asarray(a, dtype=float)
    out = np.empty_like(a)
    near = a > -math.log(2.0)  # each branch only where it is accurate (and free of warnings)
    out[near] = np.log(-np.expm1(np.minimum(a[near], -1e-300)))
    out[~near] = np.log1p(-np.exp(a[~near]))
    return out


def log_expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """``log E[max(f - best, 0)]`` for ``f ~ N(mean, std^2)``, finite even where EI underflows."""
    std = np.maximum(np.asarray(std, float), 1e-12)
    z = (np.asarray(mean, float) - best) / std
    return log_h(z) + np.log(std)


def log_ei_and_gradient(mean: float, std: float, best: float) -> tuple[float, float, float]:
    """Log EI at one point and its derivatives with respect to ``mean`` and ``std``."""
    std = max(std, 1e-12)
    z = (mean - best) / std
    log_hz = float(log_h(np.array([z]))[0])
    # d log h / dz = Phi(z) / h(z)
    dz = math.exp(float(log_ndtr(z)) - log_hz)
    return log_hz + math.log(std), dz / std, 1.0 / std - dz * z / std
