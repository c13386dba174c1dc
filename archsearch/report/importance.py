"""Hyperparameter importance by PED-ANOVA, in NumPy alone.

PED-ANOVA (Watanabe, Bansal and Hutter, "PED-ANOVA: Efficiently Quantifying Hyperparameter
Importance in Arbitrary Subspaces", IJCAI 2023; Optuna's ``PedAnovaImportanceEvaluator``, the one Optuna
Dashboard uses, where Optuna's own default is fANOVA on a random forest, slow past 1000 trials)
asks, for each parameter on its own, how differently its values are spread among the best trials
than among all trials.  With ``p`` the distribution of a parameter's values over all completed
trials and ``q`` over the best ``top_quantile`` of them, its importance is the Pearson divergence

    v = (top_quantile)**2 * sum_x p(x) * (q(x) / p(x) - 1)**2

(the paper's closed form for the variance its local functional ANOVA would attribute to that
parameter), normalised so the importances sum to 1.  A parameter the best trials share (a learning
rate they all have near 1e-3) scores high; one whose values among the best look like its values
everywhere (noise) scores near 0.  It needs no surrogate model, so it is fast and deterministic,
but, being one-dimensional, it does not see interactions.

Distributions: numbers are placed on [0, 1] (logarithmically for ``sampling: log``) and smoothed by
a Gaussian kernel (Scott's bandwidth) on a 50-point grid; whole numbers with few values and
categories are counted.  The kernel's width is that of all trials for both distributions, so a
random subset of a noise parameter looks like the whole at the same resolution.

Conditional parameters (absent from the trials whose parent value switched them off) are not
dropped, as Optuna drops every parameter some completed trial lacks, nor filled in: *absent* is one more
value of the parameter, so every parameter is measured on the same trials, and a conditional
parameter scores both for whether it is on among the best trials and for its values when it is.
(Its parent's importance then appears twice, once in the parent and once in the child's
absent/present share; read the child's score with its parent's.)

Robustness: with few trials the top quantile holds few trials and the divergence is noisy.  Each
importance comes with the standard deviation of ``bootstrap`` resamples of the trials, so a bar
shorter than its error bar says "cannot tell yet".  At least 2 trials form the top (Optuna's advice is
5 or more above the baseline, so 50 trials at the 10% quantile); below :data:`MIN_TRIALS` completed
trials nothing is computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

METHOD = "PED-ANOVA (Watanabe et al., IJCAI 2023), top 10% of trials against all, bootstrap error bars"
MIN_TRIALS = 5
ABSENT = "(absent)"
_GRID = 50


@dataclass(frozen=True)
class Importance:
    """One parameter's share of the importance (sums to 1 over the parameters) and its bootstrap spread."""

    name: str
    value: float
    std: float
    conditional: bool


def ped_anova(hparams: Sequence[Mapping[str, Any]], values: Sequence[float], direction: str = "max",
              space: Mapping[str, Mapping[str, Any]] | None = None, top_quantile: float = 0.1,
              bootstrap: int = 30, seed: int = 0) -> list[Importance]:
    """The importance of each parameter, most important first; empty below :data:`MIN_TRIALS` trials.

    ``hparams`` and ``values`` are the completed trials' values and scores; ``space`` (the stored
    ``get_config()`` of the search space) says which parameters are logarithmic and what their ranges
    are, and may be None (ranges then come from the trials).
    """
    keep = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(keep) < MIN_TRIALS:
        return []
    trials = [hparams[i] for i in keep]
    scores = np.array([values[i] for i in keep], dtype=float) * (1.0 if direction == "max" else -1.0)
    names = _ordered_names(trials)
    columns = {n: _encode([t.get(n, ABSENT) for t in trials], (space or {}).get(n) or {}) for n in names}
    columns = {n: c for n, c in columns.items() if len(np.unique(c[0])) > 1}  # a fixed value explains nothing
    if not columns:
        return []
    base = _divergences(columns, scores, top_quantile, np.arange(len(scores)))
    rng = np.random.default_rng(seed)
    resamples = np.array([_divergences(columns, scores, top_quantile, rng.integers(0, len(scores), len(scores)))
                          for _ in range(bootstrap)]) if bootstrap else np.zeros((0, len(columns)))
    shares = _normalise(base)
    spread = (np.apply_along_axis(_normalise, 1, resamples).std(axis=0) if len(resamples)
              else np.zeros(len(columns)))
    conditional = {n for n in columns if any(n not in t for t in trials)}
    out = [Importance(n, float(s), float(d), n in conditional) for n, s, d in zip(columns, shares, spread)]
    return sorted(out, key=lambda imp: -imp.value)


def _ordered_names(trials: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for t in trials:
        names += [n for n in t if n not in names]
    return names


def _encode(column: list[Any], spec: Mapping[str, Any]) -> tuple[np.ndarray, int | None]:
    """A parameter as (codes, number of categories) for counted values, or (positions in [0, 1], None).

    Absent values are category 0 of counted parameters, and -1 (a separate bin) of smoothed ones.
    """
    present = [v for v in column if v is not ABSENT and v != ABSENT]
    numeric = bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    distinct = sorted(set(map(repr, present)))
    if not numeric or (all(float(v).is_integer() for v in present) and len(distinct) <= 12):
        levels = [ABSENT] + (sorted(set(present)) if numeric else sorted(set(map(str, present))))
        # (level 0, absent, stays empty for a parameter every trial has: an empty level adds nothing)
        key = (lambda v: v) if numeric else str
        index = {lv: i for i, lv in enumerate(levels)}
        return np.array([0 if v is ABSENT or v == ABSENT else index[key(v)] for v in column]), len(levels)
    log = spec.get("sampling") == "log" and all(float(v) > 0 for v in present)
    xs = np.array([math.log(v) if log else float(v) for v in present])
    lo, hi = spec.get("min"), spec.get("max")
    lo = (math.log(lo) if log else float(lo)) if isinstance(lo, (int, float)) and (not log or lo > 0) else xs.min()
    hi = (math.log(hi) if log else float(hi)) if isinstance(hi, (int, float)) and (not log or hi > 0) else xs.max()
    span = (hi - lo) or 1.0
    positions = iter(np.clip((xs - lo) / span, 0.0, 1.0))
    return np.array([-1.0 if v is ABSENT or v == ABSENT else next(positions) for v in column]), None


def _divergences(columns: Mapping[str, tuple[np.ndarray, int | None]], scores: np.ndarray, quantile: float,
                 rows: np.ndarray) -> np.ndarray:
    """Each parameter's Pearson divergence between its distribution among the best trials and among all."""
    chosen = scores[rows]
    n_top = max(2, int(math.ceil(quantile * len(rows))))
    top = rows[np.argsort(-chosen, kind="stable")[:n_top]]
    gamma = n_top / len(rows)
    out = []
    for codes, levels in columns.values():
        if levels:
            p, q = _counted(codes[rows], levels), _counted(codes[top], levels)
        else:
            width = _bandwidth(codes[rows])  # one resolution for both, so a subsample of noise looks like the whole
            p, q = _smoothed(codes[rows], width), _smoothed(codes[top], width)
        seen = p > 0  # the best trials are some of all trials: q > 0 only where p > 0
        out.append(gamma ** 2 * float(np.sum(p[seen] * (q[seen] / p[seen] - 1.0) ** 2)))
    return np.array(out)


def _counted(codes: np.ndarray, levels: int) -> np.ndarray:
    return np.bincount(codes.astype(int), minlength=levels).astype(float) / len(codes)


def _bandwidth(positions: np.ndarray) -> float:
    """Scott's rule on the present values, never narrower than one grid step."""
    present = positions[positions >= 0]
    if len(present) < 2:
        return 0.1
    return max(1.06 * (float(present.std()) or 0.1) * len(present) ** -0.2, 1.0 / _GRID)


def _smoothed(positions: np.ndarray, width: float) -> np.ndarray:
    """A distribution over the absent bin and a grid on [0, 1]: a Gaussian kernel density of the present values."""
    present = positions[positions >= 0]
    absent = (len(positions) - len(present)) / len(positions)
    grid = np.linspace(0.0, 1.0, _GRID)
    if len(present) == 0:
        return np.concatenate([[1.0], np.zeros(_GRID)])
    density = np.exp(-0.5 * ((grid[:, None] - present[None, :]) / width) ** 2).sum(axis=1) + 1e-12
    density /= density.sum()
    return np.concatenate([[absent], (1.0 - absent) * density])


def _normalise(divergences: np.ndarray) -> np.ndarray:
    total = float(np.sum(divergences))
    return divergences / total if total > 0 else np.zeros_like(divergences)
