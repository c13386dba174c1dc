"""The oracle interface: decide *what* to try next, knowing nothing of Keras.

One piece though long: every algorithm inherits all of it -- ask/tell, budgets, ``resume_from``,
pruning and the restore of its state are one contract -- and the registry at its end is the one
way the CLI, the tuners and the benches build an oracle by name (``create_oracle``).

An oracle hands out :class:`Trial` objects with :meth:`Oracle.ask` and learns
their results through :meth:`Oracle.tell`.  Several trials may be running at
once: ``ask`` returns ``None`` when nothing can start until a running trial
reports back, and :attr:`Oracle.finished` says when the search is over.
Because oracles only see numbers, every algorithm can be unit-tested and
benchmarked on plain Python functions in milliseconds.

Subclasses implement :meth:`Oracle._propose` and, when they keep state about
results, :meth:`Oracle._on_result`.

KerasTuner code builds oracles with keywords only (``RandomSearchOracle(objective=...,
max_trials=...)``, the space learned later from the hypermodel), and drives or extends one by hand
(``create_trial`` / ``update_trial`` / ``end_trial``, ``populate_space``, ``score_trial``): that
half lives in :mod:`archsearch.oracles.hand_driven`, over the same protocol.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from archsearch.errors import ConfigError, SearchSpaceRuntimeError
from archsearch.space.hyperparameters import HyperParameters
from archsearch.space.values import to_python, values_key
from archsearch.core.objective import Objective, is_finite, numeric_metrics
from archsearch.oracles.hand_driven import HandDrivenOracle, synchronized  # noqa: F401  (KerasTuner's names)
from archsearch.oracles.pruners import create_pruner
from archsearch.core.trial import (  # noqa: F401  (re-exported: the oracle protocol speaks in trials)
    COMPLETED,
    DONE,
    FAILED,
    FAILURE_KINDS,
    IDLE,
    INTERRUPTED,
    PRUNED,
    RUNNING,
    STATUSES,
    STOPPED,
    Trial,
)

@dataclass
class Proposal:
    """What a subclass returns from ``_propose``; the base turns it into a Trial."""

    hparams: dict[str, Any]
    budget: int | None = None
    resume_from: int | None = None
    initial_budget: int = 0
    info: dict[str, Any] = field(default_factory=dict)


class TrialTable(dict):
    """Trials by id; KerasTuner code looks them up by its string ids (``oracle.trials[trial.trial_id]``)."""

    def __getitem__(self, key: Any) -> Trial:
        return super().__getitem__(_as_id(key))

    def __contains__(self, key: object) -> bool:
        return super().__contains__(_as_id(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(_as_id(key), default)


def _as_id(key: Any) -> Any:
    return int(key) if isinstance(key, str) and key.isdigit() else key


class Oracle(HandDrivenOracle):
    """Base of all search algorithms.  See the module docstring for the protocol."""

    name: ClassVar[str] = ""
    # Options create_oracle (archsearch's own entry: the command line, benchmarks) gives when not told,
    # where archsearch's own behaviour differs from the class default KerasTuner code gets.
    engine_defaults: ClassVar[dict[str, Any]] = {}
    # Proposals are a function of the seed and of how many were made, never of results (random, grid).
    proposals_ignore_results: ClassVar[bool] = False

    def __init__(
        self,
        hyperparameters: HyperParameters | None = None,
        objective: Objective | str | None = None,
        # None, as KerasTuner's oracles: conf/tuner/*.yaml give the command line a small budget and seed 0
        # so its default run is quick and repeatable (the differences are listed in tests/test_defaults.py).
        max_trials: int | None = None,
        seed: int | None = None,
        pruner: Any = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int | None = None,
    ) -> None:
        if max_trials is not None and int(max_trials) < 1:
            raise ConfigError("tuner.max_trials", f"must be at least 1, got {max_trials}")
        if int(max_retries_per_trial) < 0:
            raise ConfigError("tuner.max_retries_per_trial", f"must be at least 0, got {max_retries_per_trial}")
        if hyperparameters is None and not (tune_new_entries and allow_new_entries):
            flag = "tune_new_entries=False" if not tune_new_entries else "allow_new_entries=False"
            raise ConfigError("hyperparameters", f"is not given, and {flag} leaves nothing to search",
                              "pass hyperparameters= (the space to search), or leave the flag True")
        # No space yet: a tuner fills it from its hypermodel (KerasTuner's keyword-only oracles).
        self.hyperparameters = HyperParameters() if hyperparameters is None else hyperparameters
        self.objective = Objective.create(objective)
        if not self.objective.is_pareto:
            self.objective.single()  # a log scale is a Pareto search's: refused, not ignored
        # KerasTuner's space rules: may a builder declare names the given space lacks, and are they searched?
        self.allow_new_entries = bool(allow_new_entries)
        self.tune_new_entries = bool(tune_new_entries)
        self.max_retries_per_trial = int(max_retries_per_trial)  # a failed trial runs again this often
        self.max_consecutive_failed_trials = max_consecutive_failed_trials  # None: the tuner's setting
        self.max_trials = None if max_trials is None else int(max_trials)
        self.seed = 0 if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.trials: dict[int, Trial] = TrialTable()
        self._next_id = 0
        self._tried: set[str] = set()
        self._untuned: dict[str, Any] = {}  # tune_new_entries=False: names a builder declared, run at their default
        self._exhausted = False
        # A Pareto search's hypervolume reference point as costs (set_reference_point); None: derived from the trials.
        self.reference_costs: np.ndarray | None = None
        self.pruner = _make_pruner(pruner)
        if hasattr(self.pruner, "check_objective"):
            self.pruner.check_objective(self.objective)
        self._init_hand_driven()

    def set_reference_point(self, reference_point: Any, field: str = "search.reference_point") -> None:
        """``search.reference_point``: each objective's value (by name or in objective order) that bounds the
        hypervolume a Pareto search is judged by, or None to derive it from the trials.  ``field``: where the
        user set it (``hydra.sweeper.reference_point`` in a sweep), named by an error.

        The model-based Pareto acquisitions (expected hypervolume improvement: ``tuner=bayesian``, and
        MO-ASHA's model-based new configurations) improve the hypervolume up to this point, so a search told
        where the interesting trade-offs lie spends its trials there instead of on the whole trade-off seen
        so far; the other oracles do not use it.
        """
        if reference_point is None:
            self.reference_costs = None
            return
        if not self.objective.is_pareto:
            pareto = "set search.mode=pareto" if field == "search.reference_point" else "search several objectives"
            raise ConfigError(field, f"{reference_point!r} is set, but the search has one objective",
                              f"{pareto}, or leave {field} null")
        from archsearch.core.pareto import reference_costs  # moocore: loaded by Pareto searches only

        self.reference_costs = reference_costs(self.objective, reference_point, field)

    # ------------------------------------------------------------ protocol
    def ask(self) -> Trial | None:
        """The next trial to run, or None when nothing can start now (or ever: see ``finished``)."""
        if self._exhausted or self._trial_limit_reached():
            return None
        proposal = self._next_proposal()
        if proposal is None:
            return None
        values = {k: to_python(v) for k, v in self.hyperparameters.active_values(proposal.hparams).items()}
        # A populate_space override may give values for names the space does not declare: keep them.
        values.update({k: to_python(v) for k, v in proposal.hparams.items() if k not in self.hyperparameters.space})
        trial = Trial(
            id=self._next_id,
            hparams=values,
            budget=proposal.budget,
            resume_from=proposal.resume_from,
            initial_budget=proposal.initial_budget,
            info=dict(proposal.info),
        )
        self._next_id += 1
        self._tried.add(values_key(values))
        self.trials[trial.id] = trial
        self.start_order.append(trial.id)
        self._on_ask(trial)
        return self._attach(trial)

    def tell(
        self,
        trial_id: int,
        result: float | Mapping[str, float] | None = None,
        *,
        status: str = COMPLETED,
        error: str | None = None,
    ) -> Trial:
        """Record a trial's outcome: a number, a metrics dict, or a failure (``status="failed"``)."""
        trial = self._get(trial_id)
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        if isinstance(result, Mapping):
            trial.metrics = numeric_metrics(result)
            value = self.objective.value_from(trial.metrics)
        else:
            value = None if result is None else float(result)
        if status == PRUNED and value is None and trial.intermediate:
            value = self.objective.best(trial.intermediate.values())
        if status == COMPLETED and is_finite(value) and self._overrides("score_trial"):
            trial.value = value
            self.score_trial(trial)  # KerasTuner's extension point: it sets trial.score
            value = trial.value
        if status == COMPLETED and self.objective.is_pareto and self.objective.costs_from(trial.metrics) is None:
            value = None  # a point of a Pareto front needs every objective: one missing is no point at all
            lacking = [p.name for p in self.objective.components if not is_finite(trial.metrics.get(p.name))]
            error = error or f"objective {', '.join(lacking)} is missing or not finite"
        if status == COMPLETED and not is_finite(value):
            status = FAILED
            error = error or (
                f"objective {self.objective.name} is missing or not finite (got {value})"
            )
        trial.value = value if is_finite(value) else None
        trial.status = status
        trial.error = error
        if status != INTERRUPTED:
            if trial.id not in self.end_order:
                self.end_order.append(trial.id)
            self._on_result(trial)
        return trial

    def report(self, trial_id: int, epoch: int, result: float | Mapping[str, float]) -> bool:
        """A trial's objective after ``epoch`` (1-based); True means: stop this trial now (pruned)."""
        trial = self._get(trial_id)
        value = self.objective.value_from(result) if isinstance(result, Mapping) else result
        trial.metrics.record(numeric_metrics(result) if isinstance(result, Mapping)
                             else {} if value is None else {self.objective.name: value}, int(epoch))
        if value is None or not math.isfinite(float(value)):
            return False
        trial.intermediate[int(epoch)] = float(value)
        if self.pruner is None:
            return False
        return bool(self.pruner.should_prune(self, trial, int(epoch)))

    @property
    def finished(self) -> bool:
        """True when no trial is running and none will be proposed."""
        if self.running or self._retry_queue:
            return False
        return self._exhausted or self._trial_limit_reached() or self._algorithm_finished()

    @property
    def running(self) -> list[Trial]:
        return [t for t in self.trials.values() if t.status == RUNNING]

    def repeats_in_parallel(self) -> bool:
        """Whether several trials at a time give the same trials whatever order they finish in.

        True only where what is tried next never depends on results (:attr:`proposals_ignore_results`)
        and no pruner compares a trial with those finished so far: an algorithm that learns from
        results decides from the results in when a worker frees up, and that varies from run to run.
        """
        return self.proposals_ignore_results and self.pruner is None and not self._overrides("populate_space")

    def update_space(self, hyperparameters: HyperParameters, trial_id: int | None = None) -> None:
        """Learn parameters a define-by-run builder declared while building a trial's model.

        With ``trial_id``, that trial's values are completed with the new
        parameters' values and remembered, so the grown space never proposes
        the same configuration again.
        """
        new = [name for name in hyperparameters.space.keys() if name not in self.hyperparameters.space]
        if new and not self.allow_new_entries and len(self.hyperparameters.space):
            raise SearchSpaceRuntimeError(
                "hyperparameters", f"the model builder declared {', '.join(map(repr, new))}, which the given "
                "hyperparameters do not hold, and `allow_new_entries` is `False`",
                "declare them in hyperparameters=, or pass allow_new_entries=True")
        if not self.tune_new_entries:  # KerasTuner: new names stay out of the space; trials run them at their default
            self._untuned.update((name, hyperparameters.space[name]) for name in new)
            new = []
        for name in new:
            self.hyperparameters.space[name] = hyperparameters.space[name]
        if new:  # trials that ran before a name existed ran at its default (a builder's hp.X(...) returns it)
            self.hyperparameters.values = self.hyperparameters.active_values(self.hyperparameters.values)
            self._tried.update(values_key(self.hyperparameters.active_values(t.hparams)) for t in self.trials.values())
        if trial_id is not None:
            trial = self._get(trial_id)
            trial.hparams = {k: to_python(v) for k, v in hyperparameters.values.items()}
            self._tried.add(values_key(trial.hparams))

    # ------------------------------------------------------------ KerasTuner's oracle API
    def get_space(self) -> HyperParameters:
        """A copy of the search space, its values at their defaults (the active ones), as KerasTuner's."""
        space = self.hyperparameters.copy()
        space.values = space.active_values({})
        return space

    def get_trial(self, trial_id: int | str) -> Trial:
        return self._attach(self._get(trial_id))

    def get_best_trials(self, num_trials: int | None = None) -> list[Trial]:
        """KerasTuner's best trials (see :meth:`best_trials`: the whole front of a Pareto search by default)."""
        return self.best_trials(num_trials)

    def remaining_trials(self) -> int | None:
        """KerasTuner's count of trials still to start (None: no ``max_trials``); interrupted ones run again."""
        if self.max_trials is None:
            return None
        counted = sum(1 for t in self.trials.values() if t.status != INTERRUPTED)
        return max(0, self.max_trials - counted)

    def _attach(self, trial: Trial) -> Trial:
        """Give a trial its values as a HyperParameters (``trial.hyperparameters``), as KerasTuner trials have."""
        extra = self.keras_tuner_values(trial)
        if trial.hyperparameters is None or trial.hyperparameters.values != {**trial.hparams, **extra}:
            space = self.hyperparameters
            untuned = {n: p for n, p in getattr(self, "_untuned", {}).items() if n not in space.space}
            if untuned:  # a trial's hyperparameters show what its model was built with, untuned names too
                space = space.copy()
                for name, parameter in untuned.items():
                    space.space[name] = parameter
            trial.hyperparameters = space.with_values(trial.hparams)
            trial.hyperparameters.values.update(extra)
        if trial.best_step is None and trial.done:
            trial.best_step = self._best_step(trial)
        for part in self.objective.components or (self.objective,):  # trial.metrics.get_direction(name)
            trial.metrics.directions.setdefault(part.name, part.direction)
        return trial

    def keras_tuner_values(self, trial: Trial) -> dict[str, Any]:
        """Values KerasTuner's algorithm adds to a trial's own (Hyperband's ``tuner/epochs``, ...); none here.

        They are shown in ``trial.hyperparameters`` (not stored with the trial's values, not searched).
        """
        return {}

    def _best_step(self, trial: Trial) -> int:
        """KerasTuner's ``best_step``: the 0-based epoch of the trial's best objective (0 with no epochs)."""
        scored = [(epoch, value) for epoch, value in trial.intermediate.items() if is_finite(value)]
        if not scored:
            return 0
        best_epoch = min(scored, key=lambda ev: (-self.objective.sign * ev[1], ev[0]))[0]
        return max(0, int(best_epoch) - 1)

    # ------------------------------------------------------------ results
    def completed(self) -> list[Trial]:
        return [t for t in self.trials.values() if t.status == COMPLETED]

    def best_trials(self, num_trials: int | None = None) -> list[Trial]:
        """Completed trials, best first (ties broken by id, so older wins); ``None``: the best one (KerasTuner's 1).

        In a Pareto search: the front, ordered by the first objective (see :meth:`pareto_front`); ``None``
        gives the whole front, so KerasTuner's default never hides it, and a number the first that many."""
        if self.objective.is_pareto:
            front = self.pareto_front()
            return front if num_trials is None else front[:num_trials]
        scored = [t for t in self.trials.values() if t.status == COMPLETED and t.value is not None]
        scored.sort(key=lambda t: (-self.objective.sign * t.value, t.id))
        return [self._attach(t) for t in scored[:1 if num_trials is None else num_trials]]

    def pareto_front(self) -> list[Trial]:
        """The completed trials no other completed trial dominates (a Pareto search's best trials)."""
        from archsearch.core.pareto import front

        return [self._attach(t) for t in front(self.trials.values(), self.objective)]

    def restore(self, events: Iterable[tuple[str, Trial]]) -> None:
        """Rebuild state by replaying the store's history: ``("ask", trial)`` and ``("tell", trial)`` in order.

        Oracles are deterministic given their seed, so replaying every ask and
        tell reproduces brackets, random streams and models exactly; the stored
        trial stays the truth if a replayed proposal differs.
        """
        for kind, stored in events:
            if kind == "ask":
                self._next_id = stored.id
                proposed = self.ask()
                if proposed is None or proposed.id != stored.id:
                    proposed = Trial(stored.id, dict(stored.hparams))
                    self.trials[stored.id] = proposed
                    self._next_id = max(self._next_id, stored.id + 1)
                for name in ("hparams", "budget", "resume_from", "initial_budget", "info"):
                    setattr(proposed, name, getattr(stored, name))
                self._tried.add(values_key(stored.hparams))
            elif kind == "tell":
                trial = self.trials.get(stored.id)
                if trial is None:
                    continue
                trial.intermediate = dict(stored.intermediate)
                result = stored.metrics if stored.metrics else stored.value
                self.tell(stored.id, result, status=stored.status, error=stored.error)
                trial.failure_kind = stored.failure_kind  # the engine sets it after tell: infeasible is not a crash

    # ------------------------------------------------------------ for subclasses
    def _propose(self) -> Proposal | None:
        """Return the next configuration, or None (set ``self._exhausted`` when the space is used up).

        By default, a KerasTuner ``populate_space`` override answers.
        """
        return self._from_response(self.populate_space(str(self._next_id)), None)

    def _has_own_algorithm(self) -> bool:
        return type(self)._propose is not Oracle._propose

    def _next_proposal(self) -> Proposal | None:
        """The algorithm's proposal or, when a subclass of a built-in oracle overrides populate_space, the
        override's answer: it may call ``super().populate_space`` for the algorithm's values and change them."""
        if not (self._has_own_algorithm() and self._overrides("populate_space")):
            return self._propose()
        self._algorithm_proposal = None
        response = self.populate_space(str(self._next_id))
        drawn, self._algorithm_proposal = self._algorithm_proposal, None
        return self._from_response(response, drawn)

    def _from_response(self, response: Mapping[str, Any], drawn: Proposal | None) -> Proposal | None:
        """A populate_space answer as a proposal; the budget and resumption of ``drawn`` (the algorithm's) kept."""
        status = str(response.get("status", RUNNING)).lower()
        if status == STOPPED:
            self._exhausted = True
            return None
        if status == IDLE:
            return None
        values = dict(response.get("values") or {})
        return Proposal(values) if drawn is None else replace(drawn, hparams=values)

    def _on_ask(self, trial: Trial) -> None:
        """Hook: a trial was handed out."""

    def _on_result(self, trial: Trial) -> None:
        """Hook: a trial finished (completed, failed or pruned)."""

    def _algorithm_finished(self) -> bool:
        """Hook: the algorithm itself has nothing left to do (e.g. Hyperband's last bracket is done)."""
        return False

    def _trial_limit_reached(self) -> bool:
        return self.remaining_trials() == 0

    def is_new(self, values: Mapping[str, Any]) -> bool:
        """Whether this configuration (after dropping inactive values) was never proposed."""
        return values_key(self.hyperparameters.active_values(values)) not in self._tried

    def _get(self, trial_id: int) -> Trial:
        try:
            return self.trials[int(trial_id)]
        except KeyError:
            raise KeyError(f"unknown trial id {trial_id}") from None


def _make_pruner(spec: Any):
    """``None``/``"none"`` -> no pruning; a name -> a pruner from ``archsearch.oracles.pruners``."""
    if spec is None or spec == "none" or spec is False:
        return None
    if hasattr(spec, "should_prune"):
        return spec
    return create_pruner(spec)


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Oracle]] = {}


def register_oracle(name: str):
    """Class decorator: make an oracle available to ``create_oracle`` and ``tuner=<name>``."""

    def decorate(cls: type[Oracle]) -> type[Oracle]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_oracles() -> list[str]:
    import archsearch.oracles  # noqa: F401  (registers the built-in algorithms)

    return sorted(_REGISTRY)


def oracle_class(name: str) -> type[Oracle]:
    choices = available_oracles()
    if name not in _REGISTRY:
        raise ConfigError("tuner.name", f"unknown search algorithm {name!r}", f"choose one of: {', '.join(choices)}")
    return _REGISTRY[name]


def oracle_options(name: str) -> list[str]:
    """The keyword options an oracle accepts, for error messages and config validation."""
    cls = oracle_class(name)
    names: list[str] = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.name not in ("self", "hyperparameters", "objective") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                if p.name not in names:
                    names.append(p.name)
    return names


def create_oracle(name: str, hyperparameters: HyperParameters, objective: Objective | str, **options) -> Oracle:
    """Build a registered oracle by name; unknown options raise an error listing the valid ones.

    Options not given take the class's ``engine_defaults`` first (Hyperband: archsearch's own bracket
    plan, where ``HyperbandOracle(...)`` built directly, as KerasTuner code does, takes KerasTuner's).
    """
    cls = oracle_class(name)
    allowed = oracle_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"tuner.{unknown[0]}", f"is not an option of the '{name}' tuner (Unrecognized arguments {unknown})",
            f"its options are: {', '.join(allowed)}"
        )
    return cls(hyperparameters, objective, **{**cls.engine_defaults, **options})
