"""Which combination of categories a Bayesian ask explores: an upper confidence bound per combination.

Expected improvement alone commits to the first combination of categories (optimizer x activation,
say) whose numbers it has tuned a little: a combination seen once, at a poor learning rate, looks
worse than the incumbent's tuned neighbourhood, and EI prefers the small sure gain (issue 29: 12 and
11 of 40 trials in two wrong pairs, 2 in the best one).  The GP alone cannot tell that a combination
seen once at poor numbers may still hold the best optimum: away from its observations it reverts to
the average of all of them.  So the ask first picks a combination, as a bandit picks an arm, and
then the acquisition picks the point inside it:

* each combination ``c`` among the candidates scores the GP's upper bound ``max(mean + 2 std)``
  over its candidates, plus a bonus for little evidence, ``KAPPA * s * sqrt(ln N) / n_c``: ``n_c``
  its observations, ``N`` all of them, ``s`` their standard deviation (the objective's units);
  untried combinations get the bonus of one observation where the space has at most ``MAX_ARMS``
  combinations, and none in larger spaces (there the GP's own uncertainty must do);
* the combination with the highest score is explored.

A combination seen once at poor numbers keeps a large bonus and is tried again where the GP
predicts its best; once a few observations there stay clearly below the incumbent, the bonus (which
falls as ``1 / n_c``) no longer covers the gap and the search commits.  Deterministic: no draw from
the oracle's generator.
"""

from __future__ import annotations

import math

import numpy as np

from archsearch.oracles.encoding import SpaceEncoder

KAPPA = 2.0  # weight of the bonus for little evidence
MAX_ARMS = 32  # spaces with at most this many combinations give untried ones the bonus too
GP_BETA = 2.0  # the GP's upper bound of a candidate: mean + GP_BETA * std


def combination_keys(encoder: SpaceEncoder, x: np.ndarray) -> np.ndarray:
    """One integer per encoded row naming its combination of categories (largest column of each one-hot block)."""
    keys = np.zeros(len(x), dtype=np.int64)
    for block in encoder.onehot_blocks():
        keys = keys * block.width + np.argmax(x[:, block.columns], axis=1)
    return keys


def ucb_combination(candidate_keys: np.ndarray, candidate_mean: np.ndarray, candidate_std: np.ndarray,
                    observed_keys: np.ndarray, observed: np.ndarray, total_combinations: int) -> int:
    """The combination (a key of ``candidate_keys``) with the highest upper confidence bound (module docstring).

    ``candidate_mean``/``candidate_std``: the GP's posterior at each candidate; ``observed``: the
    values (to maximise) of the observations, whose combinations are ``observed_keys``.
    """
    combos, inverse = np.unique(candidate_keys, return_inverse=True)
    score = np.full(len(combos), -np.inf)
    np.maximum.at(score, inverse, candidate_mean + GP_BETA * candidate_std)
    tried, counts = np.unique(observed_keys, return_counts=True)
    n = np.zeros(len(combos))
    where = np.searchsorted(combos, tried)
    inside = (where < len(combos)) & (combos[np.minimum(where, len(combos) - 1)] == tried)
    n[where[inside]] = counts[inside]
    spread = float(np.std(observed)) if len(observed) > 1 else 0.0
    bonus = KAPPA * spread * math.sqrt(math.log(max(len(observed), 2))) / np.maximum(n, 1.0)
    if total_combinations > MAX_ARMS:  # too many to try each: untried ones rely on the GP's optimism alone
        bonus = np.where(n > 0, bonus, 0.0)
    score += bonus
    return int(combos[int(np.argmax(score))])
