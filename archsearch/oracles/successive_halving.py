"""Hyperband's bracket arithmetic (Li et al., JMLR 2018), as pure functions.

Budgets are in epochs.  With ``R = max_epochs``, ``eta = factor`` and
``r = min_epochs``, Hyperband runs ``s_max + 1`` brackets where ``s_max`` is
the largest ``s`` with ``r * eta**s <= R``.  Bracket ``s`` starts
``n = ceil((s_max + 1) / (s + 1) * eta**s)`` configurations at
``R / eta**s`` epochs and runs ``s`` rounds of successive halving: round ``i``
trains ``floor(n / eta**i)`` configurations to ``R / eta**(s - i)`` epochs,
the best ``1/eta`` of each round going on to the next.  Bracket ``s_max`` is
the most exploratory; bracket 0 is plain random search at the full budget.

Budgets are rounded to whole epochs (half up) and clipped to
``[min_epochs, max_epochs]``; the last round of every bracket trains to
exactly ``max_epochs``.  The paper's table for ``R = 81, eta = 3``::

    s=4: 81@1  27@3  9@9  3@27  1@81
    s=3: 34@3  11@9  3@27 1@81
    s=2: 15@9   5@27 1@81
    s=1:  8@27  2@81
    s=0:  5@81

Everything is integer arithmetic (no ``math.log``), so ``R = 81, eta = 3``
gives ``s_max = 4`` exactly.  These functions know nothing about trials; the
Hyperband and BOHB oracles both plan with them.

KerasTuner's ``Hyperband`` plans its brackets differently
(:func:`keras_tuner_bracket_schedule`, ``schedule="keras_tuner"``): the same
brackets, but bracket ``s`` has ``s + 1`` rounds of
``ceil(ceil(1 + log_eta(R / r)) / (s + 1) * eta**(s - i))`` trials trained to
``ceil(R / eta**(s - i))`` epochs.  Rounds are larger (every size is rounded
up, and ``1 + log`` is rounded up before dividing) and budgets rounded up, so
it trains more: for ``R = 4, eta = 3`` it runs ``5@2 2@4 | 3@4`` (10 trials,
26 epochs) where the paper's plan runs ``3@1 1@4 | 2@4`` (6 trials, 14).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from archsearch.errors import ConfigError

# How brackets are sized: the paper's table (archsearch's own) or KerasTuner's Hyperband.
ARCHSEARCH, KERAS_TUNER = "archsearch", "keras_tuner"
SCHEDULES = (ARCHSEARCH, KERAS_TUNER)


@dataclass(frozen=True)
class Round:
    """One rung of successive halving: ``num_trials`` configurations trained to ``budget`` epochs."""

    index: int
    num_trials: int
    budget: int


@dataclass(frozen=True)
class Bracket:
    """One run of successive halving; ``s`` is its number of halvings (the paper's bracket index)."""

    s: int
    rounds: tuple[Round, ...]

    @property
    def num_new_trials(self) -> int:
        """Configurations the bracket starts from scratch (all of round 0)."""
        return self.rounds[0].num_trials

    @property
    def num_trials(self) -> int:
        """Trials the bracket runs, promotions included (each promotion is a new trial)."""
        return sum(r.num_trials for r in self.rounds)

    @property
    def epochs(self) -> int:
        """Epochs the bracket trains when promoted trials resume from their parent's checkpoint."""
        total, previous = 0, 0
        for r in self.rounds:
            total += r.num_trials * (r.budget - previous)
            previous = r.budget
        return total

    @property
    def epochs_without_resume(self) -> int:
        """Epochs it would train if every promoted trial started from scratch."""
        return sum(r.num_trials * r.budget for r in self.rounds)


def check_settings(max_epochs: int, factor: int, min_epochs: int = 1) -> tuple[int, int, int]:
    """Validate the three numbers; raise ConfigError naming the tuner field at fault."""
    values = {}
    for field, value in (("max_epochs", max_epochs), ("factor", factor), ("min_epochs", min_epochs)):
        if isinstance(value, bool) or not _is_integer(value):
            raise ConfigError(f"tuner.{field}", f"must be a whole number, got {value!r}")
        values[field] = int(value)
    if values["min_epochs"] < 1:
        raise ConfigError("tuner.min_epochs", f"must be at least 1, got {min_epochs}")
    if values["factor"] < 2:
        raise ConfigError("tuner.factor", f"must be at least 2, got {factor} (factor needs to be a int larger than 1)",
                          "3 (the default) keeps the best third of each round")
    if values["max_epochs"] < values["min_epochs"]:
        raise ConfigError("tuner.max_epochs", f"({max_epochs}) is less than tuner.min_epochs ({min_epochs})",
                          "raise max_epochs or lower min_epochs")
    return values["max_epochs"], values["factor"], values["min_epochs"]


def max_bracket(max_epochs: int, factor: int = 3, min_epochs: int = 1) -> int:
    """``s_max = floor(log_eta(R / min_epochs))``, computed exactly."""
    max_epochs, factor, min_epochs = check_settings(max_epochs, factor, min_epochs)
    s = 0
    while min_epochs * factor ** (s + 1) <= max_epochs:
        s += 1
    return s


def bracket(s: int, max_epochs: int, factor: int = 3, min_epochs: int = 1) -> Bracket:
    """Bracket ``s`` of a Hyperband iteration (``0 <= s <= s_max``)."""
    s_max = max_bracket(max_epochs, factor, min_epochs)
    if not 0 <= s <= s_max:
        raise ValueError(f"bracket {s} is outside 0..{s_max}")
    n = -(-((s_max + 1) * factor**s) // (s + 1))  # ceil, in integers
    rounds = []
    for i in range(s + 1):
        if i == s:
            budget = max_epochs
        else:
            exact = Fraction(max_epochs * factor**i, factor**s)
            budget = min(max_epochs, max(min_epochs, int(exact + Fraction(1, 2))))
        rounds.append(Round(i, max(1, n // factor**i), budget))
    return Bracket(s, tuple(rounds))


def bracket_schedule(max_epochs: int, factor: int = 3, min_epochs: int = 1) -> list[Bracket]:
    """One Hyperband iteration: brackets from the most exploratory (``s_max``) down to random search (0)."""
    s_max = max_bracket(max_epochs, factor, min_epochs)
    return [bracket(s, max_epochs, factor, min_epochs) for s in range(s_max, -1, -1)]


def keras_tuner_bracket(s: int, max_epochs: int, factor: int = 3, min_epochs: int = 1) -> Bracket:
    """Bracket ``s`` as KerasTuner's Hyperband sizes it (see the module docstring), in exact integers."""
    s_max = max_bracket(max_epochs, factor, min_epochs)
    if not 0 <= s <= s_max:
        raise ValueError(f"bracket {s} is outside 0..{s_max}")
    end_size = 1 + _ceil_log(Fraction(max_epochs, min_epochs), factor)  # ceil(1 + log_eta(R / r))
    rounds = []
    for i in range(s + 1):
        size = -(-(end_size * factor ** (s - i)) // (s + 1))
        budget = -(-max_epochs // factor ** (s - i))
        rounds.append(Round(i, size, budget))
    return Bracket(s, tuple(rounds))


def keras_tuner_bracket_schedule(max_epochs: int, factor: int = 3, min_epochs: int = 1) -> list[Bracket]:
    """One iteration of KerasTuner's Hyperband: its brackets, largest first, as it runs them."""
    s_max = max_bracket(max_epochs, factor, min_epochs)
    return [keras_tuner_bracket(s, max_epochs, factor, min_epochs) for s in range(s_max, -1, -1)]


def check_schedule(schedule: str) -> str:
    """``schedule`` if it names a known plan; a ConfigError naming the choices otherwise."""
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise ConfigError("tuner.schedule", f"unknown schedule {schedule!r}",
                          f"choose one of: {ARCHSEARCH} (the paper's brackets), {KERAS_TUNER} (KerasTuner's "
                          "Hyperband: larger rounds, budgets rounded up)")
    return schedule


def schedule_brackets(schedule: str, max_epochs: int, factor: int = 3, min_epochs: int = 1) -> list[Bracket]:
    """One iteration's brackets under the named plan (:data:`SCHEDULES`)."""
    plan = keras_tuner_bracket_schedule if check_schedule(schedule) == KERAS_TUNER else bracket_schedule
    return plan(max_epochs, factor, min_epochs)


def _ceil_log(x: Fraction, base: int) -> int:
    """The smallest ``k >= 0`` with ``base**k >= x``: ``ceil(log_base(x))`` without floating point."""
    k = 0
    while base**k < x:
        k += 1
    return k


def total_epochs(max_epochs: int, factor: int = 3, min_epochs: int = 1, iterations: int = 1) -> int:
    """Epochs a full search trains, promoted trials training only ``budget - parent budget``."""
    return int(iterations) * sum(b.epochs for b in bracket_schedule(max_epochs, factor, min_epochs))


def total_trials(max_epochs: int, factor: int = 3, min_epochs: int = 1, iterations: int = 1) -> int:
    """Trials a full search runs, promotions included."""
    return int(iterations) * sum(b.num_trials for b in bracket_schedule(max_epochs, factor, min_epochs))


def format_schedule(max_epochs: int, factor: int = 3, min_epochs: int = 1) -> str:
    """The plan as text, one bracket a line: ``s=2: 9@3 3@9 1@27 (54 epochs)``."""
    lines = []
    for b in bracket_schedule(max_epochs, factor, min_epochs):
        rounds = " ".join(f"{r.num_trials}@{r.budget}" for r in b.rounds)
        lines.append(f"s={b.s}: {rounds} ({b.epochs} epochs)")
    return "\n".join(lines)


def _is_integer(value) -> bool:
    try:
        return float(value).is_integer()
    except (TypeError, ValueError):
        return False
