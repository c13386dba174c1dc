"""NSGA-II: an evolutionary search for the whole Pareto front (Deb et al., IEEE TEC 2002).

Each ``ask`` after the initial design breeds one child from the current *population*:

1. **Population.** Every evaluated trial competes: completed trials with every objective (their costs,
   :meth:`ParetoObjective.costs_from`) and infeasible ones (``failure_kind="infeasible"``, or a
   ``constraint_violation`` > 0 in their metrics).  Constraint-dominance (Deb 2000): any feasible trial
   beats any infeasible one, and of two infeasible ones the smaller violation wins (a violation not
   recorded counts as the worst).  Feasible trials are sorted into non-dominated fronts and, within a
   front, by crowding distance (:mod:`archsearch.core.pareto`); the best ``population_size`` survive.
   Trials that crashed, or were pruned, are left out: they say nothing about the trade-off.
2. **Parents.** Two binary tournaments on that order (rank first, then crowding, then violation).
3. **Child.** Each parameter is a coordinate of the unit cube through its own ``to_unit``/``from_unit``
   warp, so log and reverse-log scales are searched in the space they are sampled in and integers and
   steps snap back to their grid.  Numbers and ordered choices: simulated binary crossover and polynomial
   mutation (pymoo's and Deb's bounded forms, distribution indices :data:`ETA_CROSSOVER` and
   :data:`ETA_MUTATION`); unordered choices and booleans: uniform crossover, and mutation to another
   value.  Each parameter mutates with probability ``mutation_prob``, by default 3 / (the number of
   searched parameters), at most 0.5.  Conditional parameters follow the child's own values: its values
   are decoded in declaration order (``HyperParameters.sample``), a parameter active in one parent only
   is inherited from it, one active in neither parent is drawn at random.
4. A child already tried is bred again (:data:`MAX_CHILD_TRIES` times), then a random configuration is
   drawn; when no draw is new either, the space is used up and the search ends.

**Steady state, not generational.** A generation barrier would leave workers idle until the slowest
trial of a generation finished; breeding one child per free slot from the results in so far keeps every
worker busy, and steady-state NSGA-II needs fewer evaluations for the same front (Durillo et al., 2009),
which is what matters when each evaluation trains a model.  The population is recomputed from the trials
at every ask, so the oracle's only state is its seeded generator: ``restore`` (a replay of the store)
rebuilds it exactly after a kill, and a seed repeats a sequential search.

**Initial design.** The first ``population_size`` trials are scrambled Sobol points, as the other
oracles' initial designs; the design goes on while fewer than two trials have been evaluated.

**Population size.** Optuna's and pymoo's 50 suits budgets of thousands; a tuner rarely has that.  With
``max_trials`` given and no size, the population is a quarter of the budget, between
:data:`MIN_POPULATION` and :data:`MAX_POPULATION` (50): a budget of 50 gets 12, so three quarters of the
trials are bred rather than drawn (chosen on the ZDT/DTLZ benches of ``bench/pareto_bench.py``).
Without ``max_trials`` it is 50.

**One objective.** The fronts are then the trials sorted by value and the crowding only keeps the
extremes, so the search is a plain elitist genetic algorithm with tournament selection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.core.pareto import crowding_distance, nondominated_ranks
from archsearch.core.trial import COMPLETED, FAILED
from archsearch.errors import ConfigError
from archsearch.oracles.base import Oracle, Proposal, Trial, register_oracle
from archsearch.oracles.random import MAX_DRAWS_PER_ASK
from archsearch.oracles.unit_points import UnitPoints
from archsearch.space.categorical import Boolean, Choice, Fixed
from archsearch.space.hyperparameters import HyperParameters
from archsearch.space.numeric import Numeric

VIOLATION = "constraint_violation"
MIN_POPULATION = 4
MAX_POPULATION = 50  # Optuna's NSGAIISampler default, used when the budget is not known
POPULATION_FRACTION = 4  # automatic size: max_trials / this
ETA_CROSSOVER = 15.0  # SBX distribution index (pymoo's default): larger keeps children nearer their parents
ETA_MUTATION = 20.0  # polynomial mutation's (pymoo's and Deb's default)
# Each numeric coordinate of a crossover child is an SBX child of its parents' with this probability (pymoo and
# Deb's code: 0.5); every one crossed did better on the ZDT/DTLZ/NAS tuning seeds of bench/pareto_bench.py.
VARIABLE_CROSSOVER_PROB = 1.0
# Parameters mutated per child on average when mutation_prob is not given (Deb's 1 / d: 1); 3, at most half of
# them, did better on the tuning seeds: with a budget of hundreds of trials, exploring faster pays.
MUTATIONS = 3.0
MAX_MUTATION_PROB = 0.5
MAX_CHILD_TRIES = 20  # children bred per ask before a random draw stands in for a repeat


@register_oracle("nsga2")
class NSGA2Oracle(Oracle):
    """Non-dominated sorting genetic algorithm II, steady state; see the module docstring."""

    def __init__(
        self,
        hyperparameters=None,
        objective=None,
        population_size: int | None = None,
        crossover_prob: float = 0.9,
        mutation_prob: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(hyperparameters, objective, **kwargs)
        self.population_size = _check_size(population_size)
        self.crossover_prob = _check_probability("tuner.crossover_prob", crossover_prob)
        self.mutation_prob = None if mutation_prob is None else _check_probability("tuner.mutation_prob",
                                                                                   mutation_prob)
        self._initial_points = UnitPoints("sobol", self.seed, self.rng)
        self._initial_drawn = 0

    # ------------------------------------------------------------ settings
    @property
    def population(self) -> int:
        """The population size in use: the one given, else a quarter of ``max_trials`` (see the docstring)."""
        if self.population_size is not None:
            return self.population_size
        if self.max_trials is None:
            return MAX_POPULATION
        return int(min(MAX_POPULATION, max(MIN_POPULATION, round(self.max_trials / POPULATION_FRACTION))))

    # ------------------------------------------------------------ proposals
    def _propose(self) -> Proposal | None:
        evaluated = self._evaluated()
        if self._initial_drawn < self.population or len(evaluated) < 2:
            self._initial_drawn += 1
            return self._draw(lambda dims: self._initial_points.next(dims))
        parents = self._survivors(evaluated)
        space = self.hyperparameters
        for _ in range(MAX_CHILD_TRIES):
            first, second = (unit_vector(space, parents[tournament(len(parents), self.rng)].hparams) for _ in range(2))
            values = space.sample(self.rng, unit=self._breed(first, second))
            if self.is_new(values):
                return Proposal(values)
        return self._draw(lambda dims: self.rng.random(dims))

    def _draw(self, point) -> Proposal | None:
        """A configuration not tried yet from ``point(dims)``; None (and the search over) when none is new."""
        for _ in range(MAX_DRAWS_PER_ASK):
            values = self.hyperparameters.sample(self.rng, unit=point(len(self.hyperparameters.space)))
            if self.is_new(values):
                return Proposal(values)
        self._exhausted = True
        return None

    def _breed(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """One child's unit vector from two parents' (NaN: inactive in that parent)."""
        kinds = [gene_kind(p) for p in self.hyperparameters.space.values()]
        a, b = fill_missing(first, second, self.rng)
        child = crossover(a, b, kinds, self.rng) if self.rng.random() < self.crossover_prob else a.copy()
        searched = sum(kind != "fixed" for kind in kinds)
        rate = self.mutation_prob if self.mutation_prob is not None else \
            min(MAX_MUTATION_PROB, MUTATIONS / max(1, searched))
        return mutate(child, kinds, rate, self.rng, [_size(p) for p in self.hyperparameters.space.values()])

    # ------------------------------------------------------------ the trials that compete
    def population_trials(self) -> list[Trial]:
        """The parents of the next child: the best ``population`` evaluated trials, best first."""
        return self._survivors(self._evaluated())

    def _survivors(self, evaluated: list[Trial]) -> list[Trial]:
        return [evaluated[i] for i in survivors(*self._fitness(evaluated), self.population)]

    def _evaluated(self) -> list[Trial]:
        """Completed trials with a score, and infeasible ones, in id order (their index breaks ties)."""
        return [t for t in sorted(self.trials.values(), key=lambda t: t.id)
                if self._costs(t) is not None or _violation(t) > 0]

    def _costs(self, trial: Trial) -> tuple[float, ...] | None:
        if trial.status != COMPLETED or _violation(trial) > 0:
            return None
        if self.objective.is_pareto:  # in each objective's scale: crowding spreads the front as the user counts it
            costs = self.objective.costs_from(trial.metrics)
            return None if costs is None else tuple(self.objective.scaled_costs(costs))
        return None if trial.value is None else (-self.objective.sign * float(trial.value),)

    def _fitness(self, trials: Sequence[Trial]) -> tuple[np.ndarray, np.ndarray]:
        """Costs (NaN rows for infeasible trials) and violations (0 for feasible ones)."""
        width = len(self.objective.components) if self.objective.is_pareto else 1
        costs = np.full((len(trials), width), np.nan)
        violations = np.zeros(len(trials))
        for i, trial in enumerate(trials):
            row = self._costs(trial)
            if row is None:
                violations[i] = _violation(trial)
            else:
                costs[i] = row
        return costs, violations


# --------------------------------------------------------------------------- selection


def survivors(costs: np.ndarray, violations: np.ndarray, size: int) -> np.ndarray:
    """Indices of the best ``size`` rows, best first: NSGA-II's order under constraint-dominance.

    Feasible rows (violation 0) come first, by non-dominated rank and then by crowding distance within
    their front (larger first); infeasible rows follow by violation (smaller first).  Ties keep the
    earlier row, so the order is a function of the trials alone.
    """
    feasible = np.flatnonzero(violations <= 0)
    keys: list[tuple[float, float, float, int]] = []
    if len(feasible):
        ranks = nondominated_ranks(costs[feasible])
        crowding = np.zeros(len(feasible))
        for rank in np.unique(ranks):
            members = np.flatnonzero(ranks == rank)
            crowding[members] = crowding_distance(costs[feasible[members]])
        keys += [(0.0, float(ranks[j]), -crowding[j], int(i)) for j, i in enumerate(feasible)]
    keys += [(1.0, float(violations[i]), 0.0, int(i)) for i in np.flatnonzero(violations > 0)]
    keys.sort()
    return np.array([k[-1] for k in keys[:size]], dtype=int)


def tournament(size: int, rng: np.random.Generator) -> int:
    """Binary tournament over a population sorted best first: the better of two distinct picks."""
    if size < 2:
        return 0
    first, second = rng.choice(size, 2, replace=False)
    return int(min(first, second))


# --------------------------------------------------------------------------- variation


def gene_kind(p: Any) -> str:
    """How a parameter is varied: ``real`` (SBX and polynomial mutation), ``category`` or ``fixed``."""
    if isinstance(p, Fixed) or (isinstance(p, Choice) and len(p.values) <= 1):
        return "fixed"
    if isinstance(p, Numeric) and p.min_value == p.max_value:
        return "fixed"
    if isinstance(p, Boolean) or (isinstance(p, Choice) and not p.ordered):
        return "category"
    return "real"


def _size(p: Any) -> int:
    """How many values a categorical parameter has (0 for the rest)."""
    if isinstance(p, Boolean):
        return 2
    if isinstance(p, Choice):
        return len(p.values)
    return 0


def unit_vector(space: HyperParameters, values: Mapping[str, Any]) -> np.ndarray:
    """A configuration as one unit coordinate per name of the space; NaN where the parameter is inactive."""
    units = np.full(len(space.space), np.nan)
    for j, name in enumerate(space.space.keys()):
        if name not in values:
            continue
        declaration = next((p for p in space.declarations(name) if p.is_active(values)), None)
        if declaration is None:
            continue
        try:
            units[j] = float(declaration.to_unit(values[name]))
        except (ValueError, TypeError):  # a value the space no longer holds: as if unknown
            pass
    return units


def fill_missing(first: np.ndarray, second: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Parents made complete: a coordinate one lacks is the other's; one both lack is drawn at random."""
    a, b = first.copy(), second.copy()
    drawn = rng.random(len(a))
    both = np.isnan(a) & np.isnan(b)
    a[both] = b[both] = drawn[both]
    a = np.where(np.isnan(a), b, a)
    b = np.where(np.isnan(b), a, b)
    return a, b


def crossover(a: np.ndarray, b: np.ndarray, kinds: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """One child of ``a`` and ``b``: SBX on real coordinates, uniform crossover on categories."""
    child = a.copy()
    for j, kind in enumerate(kinds):
        if kind == "category":
            child[j] = a[j] if rng.random() < 0.5 else b[j]
        elif kind == "real" and rng.random() < VARIABLE_CROSSOVER_PROB:
            low, high = sbx(a[j], b[j], ETA_CROSSOVER, rng)
            child[j] = low if rng.random() < 0.5 else high
    return child


def sbx(x1: float, x2: float, eta: float, rng: np.random.Generator) -> tuple[float, float]:
    """Simulated binary crossover on [0, 1] (Deb & Agrawal 1995, the bounded form of NSGA-II's code)."""
    u = rng.random()
    if abs(x1 - x2) < 1e-14:
        return x1, x2
    y1, y2 = min(x1, x2), max(x1, x2)
    children = []
    for distance, sign in ((y1, -1.0), (1.0 - y2, 1.0)):
        beta = 1.0 + 2.0 * distance / (y2 - y1)
        alpha = 2.0 - beta ** -(eta + 1.0)
        betaq = (u * alpha) ** (1.0 / (eta + 1.0)) if u <= 1.0 / alpha else \
            (1.0 / (2.0 - u * alpha)) ** (1.0 / (eta + 1.0))
        children.append(min(1.0, max(0.0, 0.5 * ((y1 + y2) + sign * betaq * (y2 - y1)))))
    return children[0], children[1]


def mutate(child: np.ndarray, kinds: Sequence[str], rate: float, rng: np.random.Generator,
           sizes: Sequence[int]) -> np.ndarray:
    """Each searched coordinate mutates with probability ``rate``: polynomially, or to another category."""
    out = child.copy()
    for j, kind in enumerate(kinds):
        if kind == "fixed" or rng.random() >= rate:
            continue
        if kind == "real":
            out[j] = polynomial_mutation(out[j], ETA_MUTATION, rng)
        else:
            current = min(sizes[j] - 1, int(math.floor(out[j] * sizes[j])))
            other = int(rng.integers(sizes[j] - 1))
            out[j] = (other + (other >= current) + 0.5) / sizes[j]
    return out


def polynomial_mutation(x: float, eta: float, rng: np.random.Generator) -> float:
    """Deb's bounded polynomial mutation on [0, 1]: small steps mostly, the whole range possible."""
    r = rng.random()
    power = 1.0 / (eta + 1.0)
    if r < 0.5:
        value = 2.0 * r + (1.0 - 2.0 * r) * (1.0 - x) ** (eta + 1.0)
        delta = value ** power - 1.0
    else:
        value = 2.0 * (1.0 - r) + 2.0 * (r - 0.5) * x ** (eta + 1.0)
        delta = 1.0 - value ** power
    return min(1.0, max(0.0, x + delta))


# --------------------------------------------------------------------------- helpers


def _violation(trial: Trial) -> float:
    """How far a trial breaks its constraints: 0 when feasible, the recorded violation, else infinity."""
    recorded = trial.metrics.get(VIOLATION) if trial.metrics else None
    if recorded is not None and math.isfinite(recorded) and recorded > 0:
        return float(recorded)
    if trial.status == FAILED and getattr(trial, "failure_kind", None) == "infeasible":
        return math.inf
    return 0.0


def _check_size(size: Any) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, float)) or int(size) != size or int(size) < 2:
        raise ConfigError("tuner.population_size", f"must be a whole number >= 2 or null, got {size!r}",
                          "e.g. 20, or null for a quarter of max_trials (at most 50)")
    return int(size)


def _check_probability(field: str, value: Any) -> float:
    try:
        ok = not isinstance(value, bool) and 0.0 <= float(value) <= 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(field, f"must be a probability between 0 and 1, got {value!r}")
    return float(value)
