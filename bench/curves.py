"""A synthetic learning-curve problem for budget-aware search (Hyperband, pruners).

Each configuration of a mixed space -- a log-scale learning rate, an int
``units``, a choice ``activation`` and a boolean ``batchnorm`` -- has

* a final score (an accuracy-like number in about [0.45, 0.95]): best near a
  learning-rate optimum that depends on the problem seed, better with more
  units (diminishing returns), shifted by the activation and batchnorm, plus a
  per-configuration quirk no model of the space can predict;
* a convergence speed: high learning rates converge fast (but mostly to a
  poor score), low ones slowly; batchnorm speeds up, more units slow down.

The score after ``e`` epochs rises from 0.1 towards the final score with time
constant ``tau`` and carries seeded noise.  Curves therefore cross: after one
epoch, fast mediocre configurations often look better than slow good ones,
which is exactly what makes low-budget rounds imperfect.

Everything is a pure function of (problem seed, configuration, epoch), so a
promoted trial that resumes at epoch ``k`` sees the same curve as one trained
from scratch, and different tuners proposing the same configuration see the
same numbers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

MAX_EPOCHS = 27
LR_MIN, LR_MAX = 1e-4, 1e-1
UNITS_MIN, UNITS_MAX, UNITS_STEP = 16, 512, 16
ACTIVATIONS = ("relu", "elu", "tanh", "sigmoid")

SPACE = {
    "learning_rate": {"type": "float", "min": LR_MIN, "max": LR_MAX, "sampling": "log"},
    "units": {"type": "int", "min": UNITS_MIN, "max": UNITS_MAX, "step": UNITS_STEP},
    "activation": {"type": "choice", "values": list(ACTIVATIONS)},
    "batchnorm": {"type": "boolean"},
}


class CurveProblem:
    """Learning curves of one seeded problem instance."""

    def __init__(self, seed: int = 0, noise: float = 0.01, max_epochs: int = MAX_EPOCHS) -> None:
        self.seed = int(seed)
        self.noise = float(noise)
        self.max_epochs = int(max_epochs)
        rng = np.random.default_rng([self.seed, 7919])
        self.lr_opt = 10 ** rng.uniform(-3.3, -2.2)
        offsets = rng.permutation([0.02, 0.0, -0.02, -0.06])
        self.activation_offset = dict(zip(ACTIVATIONS, offsets.tolist()))
        self.batchnorm_offset = 0.015

    # ------------------------------------------------------------ the curve
    def final_score(self, values: Mapping[str, Any]) -> float:
        """The score this configuration converges to (noise-free)."""
        lr, units, act, bn = _unpack(values)
        d = (math.log10(lr) - math.log10(self.lr_opt)) / 0.7
        q_lr = math.exp(-d * d)
        q_units = 1.0 - math.exp(-units / 128.0)
        quirk = 0.015 * float(self._rng(values, "quirk").standard_normal())
        return (0.45 + 0.45 * q_lr * (0.55 + 0.45 * q_units) + self.activation_offset[act]
                + (self.batchnorm_offset if bn else 0.0) + quirk)

    def tau(self, values: Mapping[str, Any]) -> float:
        """Epochs to cover 63% of the way to the final score."""
        lr, units, _, bn = _unpack(values)
        slowness = (math.log10(LR_MAX) - math.log10(lr)) / (math.log10(LR_MAX) - math.log10(LR_MIN))
        tau = 1.0 + 9.0 * slowness
        tau *= 0.7 if bn else 1.0
        return tau * (0.8 + 0.4 * units / UNITS_MAX)

    def true_score(self, values: Mapping[str, Any], epoch: int | None = None) -> float:
        """Noise-free score after ``epoch`` epochs (default: max_epochs)."""
        epoch = self.max_epochs if epoch is None else int(epoch)
        final = self.final_score(values)
        return 0.1 + (final - 0.1) * (1.0 - math.exp(-epoch / self.tau(values)))

    def score(self, values: Mapping[str, Any], epoch: int) -> float:
        """What a validation run would report after ``epoch`` epochs (seeded noise)."""
        noise = self.noise * float(self._rng(values, f"epoch{int(epoch)}").standard_normal())
        return self.true_score(values, epoch) + noise

    def _rng(self, values: Mapping[str, Any], what: str) -> np.random.Generator:
        digest = hashlib.blake2b(f"{self.seed}|{config_key(values)}|{what}".encode(), digest_size=8).digest()
        return np.random.default_rng(int.from_bytes(digest, "little"))


def config_key(values: Mapping[str, Any]) -> str:
    """The same string for the same configuration, whichever tuner proposed it."""
    lr, units, act, bn = _unpack(values)
    return f"{lr:.8g}|{units}|{act}|{bn}"


def _unpack(values: Mapping[str, Any]) -> tuple[float, int, str, bool]:
    return (float(values["learning_rate"]), int(values["units"]), str(values["activation"]),
            bool(values["batchnorm"]))
