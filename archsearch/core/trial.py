"""A trial and its statuses: the bottom layer that the oracles, the store and the runner all import.

Kept free of Keras and of any algorithm, so a trial can be stored, replayed,
sent to another process and reasoned about on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.core.objective import infer_direction

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
PRUNED = "pruned"
INTERRUPTED = "interrupted"
STATUSES = (RUNNING, COMPLETED, FAILED, PRUNED, INTERRUPTED)
DONE = (COMPLETED, FAILED, PRUNED)
# What a hand-driven oracle's ``create_trial`` says when it has no trial to give (KerasTuner's names):
# the search is over, or nothing can start until a running trial reports back.
STOPPED = "stopped"
IDLE = "idle"


# KerasTuner's TrialStatus name for each archsearch status (KerasTuner 1.4.8, keras_tuner/src/engine/trial.py):
# pruned: stopped early by the pruner/oracle, KerasTuner's STOPPED (a trial the oracle told to stop);
# interrupted: cut short (Ctrl-C, a lost worker, a full disk) and run again when the search resumes,
# KerasTuner's INVALID ("crashed ... for the current run, but subject to retries"); failed: FAILED, or
# INVALID while it waits for a retry (``retryable``).  A trial refused before training as infeasible
# (``failure_kind="infeasible"``, max_model_size) is FAILED: it would be refused again, so it is never retried.
KERAS_TUNER_NAMES = {RUNNING: "RUNNING", COMPLETED: "COMPLETED", FAILED: "FAILED", PRUNED: "STOPPED",
                     INTERRUPTED: "INVALID", STOPPED: "STOPPED", IDLE: "IDLE"}
_KERAS_TUNER_VOCABULARY = frozenset(("RUNNING", "IDLE", "INVALID", "STOPPED", "COMPLETED", "FAILED"))


class Status(str):
    """A trial's status: archsearch's lower-case text, that also equals KerasTuner's name for it.

    Why a ``str`` subclass rather than an enum: the text is what the store (``trials.db``), the CSVs,
    the reports and older runs hold and what the console shows, so it stays archsearch's
    (``"completed"``, ``"pruned"``, ...), and every place that handles a plain string keeps working.
    KerasTuner code compares with its own names, so ``==`` (``!=``, ``in (...)``) also accepts
    :data:`KERAS_TUNER_NAMES`' spelling: ``Status("completed") == "COMPLETED"``, ``Status("pruned") ==
    "STOPPED"``.  Assigning KerasTuner's names works too: ``Status("COMPLETED")`` is ``completed`` and
    ``Status("INVALID")`` a failure marked ``retryable`` (KerasTuner runs an INVALID trial again).

    The hash is the archsearch text's: two equal objects must hash alike, and no string can hash like
    both ``"completed"`` and ``"COMPLETED"``, so dicts and sets keyed by archsearch's statuses (as the
    reports count them) work, while KerasTuner's names are for comparisons, as KerasTuner's code uses them.
    """

    _ALIASES = {"invalid": FAILED, "complete": COMPLETED}
    retryable: bool

    def __new__(cls, value: str) -> Status:
        if isinstance(value, Status):
            return value
        text = str(value).lower()
        status = super().__new__(cls, cls._ALIASES.get(text, text))
        # KerasTuner's INVALID is a failure that may run again (max_retries_per_trial); FAILED never does.
        status.retryable = text == "invalid"
        return status

    @property
    def keras_tuner(self) -> str:
        """KerasTuner's name for this status (``TrialStatus``)."""
        if self.retryable:
            return "INVALID"
        return KERAS_TUNER_NAMES.get(str(self), self.upper())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Status):  # archsearch's own comparisons: the text decides
            return str.__eq__(self, other)
        if not isinstance(other, str):
            return NotImplemented
        if other in _KERAS_TUNER_VOCABULARY:  # KerasTuner's spelling: its meaning (INVALID is not FAILED)
            return other == self.keras_tuner
        text = other.lower()  # archsearch's, in any case
        return str.__eq__(self, COMPLETED if text == "complete" else text)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__


@dataclass
class MetricObservation:
    """One step of a metric's history, as KerasTuner's tracker gives it: ``value`` (one per execution)."""

    value: list[float]
    step: int

    def mean(self) -> float:
        return float(sum(self.value) / len(self.value))


class TrialMetrics(dict):
    """A trial's metrics (name -> the value at its best step), read also with KerasTuner's tracker methods.

    KerasTuner code asks ``trial.metrics.exists("val_loss")``, ``get_best_value``, ``get_history``,
    ``get_last_value``, ``get_statistics``, ``get_direction``, ``get_best_step``, and may ``register``
    and ``update`` metrics (its ``MetricsTracker``).  The dict holds the best step's values; ``steps``
    every reported step's (name -> step -> one value per execution), kept when the dict is replaced,
    and ``directions`` what was registered (the oracle registers its objective's).  Every epoch's
    metrics are also in the store (``trials.db``, ``epochs.csv``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps: dict[str, dict[int, list[float]]] = {}
        self.directions: dict[str, str] = {}

    def exists(self, name: str) -> bool:
        """Whether the metric was reported or registered (a direction the oracle knows is not enough)."""
        return name in self or name in self.steps

    def record(self, values: Mapping[str, float], step: int) -> None:
        """Remember the metrics reported after ``step`` (a later report of the same step replaces it)."""
        for name, value in values.items():
            self.steps.setdefault(name, {})[int(step)] = [float(value)]

    # ------------------------------------------------------------ KerasTuner's MetricsTracker
    def register(self, name: str, direction: str | None = None) -> None:
        """Declare a metric and whether it is minimised or maximised (inferred from its name when not given,
        else ``min``, as KerasTuner does); a metric registered twice is a ValueError."""
        if self.exists(name):
            raise ValueError(f"Metric already exists: {name}")
        direction = direction or infer_direction(name) or "min"
        if direction not in ("min", "max"):
            raise ValueError(f"`direction` should be one of {{'min', 'max'}}, but got: {direction!r}")
        self.directions[name] = direction
        self.steps.setdefault(name, {})

    def update(self, name: str, value: float, step: int = 0) -> bool:
        """Add ``value`` at ``step`` (another execution's when the step has one); True when the best improved."""
        if not self.exists(name):
            self.register(name)
        before = self.get_best_value(name) if self._observations(name) else None
        self.steps.setdefault(name, {}).setdefault(int(step), []).append(float(value))
        return self.get_best_value(name) != before

    def get_direction(self, name: str) -> str:
        """``min`` or ``max``: as registered, else inferred from the name, else ``min`` (KerasTuner's default)."""
        self._assert_exists(name)
        return self.directions.get(name) or infer_direction(name) or "min"

    def get_history(self, name: str) -> list[MetricObservation]:
        """Every reported step of ``name``, in step order (KerasTuner's ``MetricsTracker.get_history``)."""
        self._assert_exists(name)
        return [MetricObservation(list(values), step) for step, values in sorted(self._observations(name).items())]

    def get_best_value(self, name: str) -> float | None:
        """The best step's mean in the metric's own direction; None for a metric this trial never had."""
        if not self.exists(name):
            return None
        means = [observation.mean() for observation in self.get_history(name)]
        if not means:
            return None
        return float(np.nanmin(means) if self.get_direction(name) == "min" else np.nanmax(means))

    def get_best_step(self, name: str) -> int | None:
        best = self.get_best_value(name)
        return next((o.step for o in self.get_history(name) if o.mean() == best), None)

    def get_last_value(self, name: str) -> float | None:
        history = self.get_history(name)
        return history[-1].mean() if history else None

    def get_statistics(self, name: str) -> dict[str, float]:
        """min, max, mean, median, var and std of the steps' means ({} without steps), as KerasTuner's."""
        means = [observation.mean() for observation in self.get_history(name)]
        if not means:
            return {}
        return {"min": float(np.nanmin(means)), "max": float(np.nanmax(means)), "mean": float(np.nanmean(means)),
                "median": float(np.nanmedian(means)), "var": float(np.nanvar(means)), "std": float(np.nanstd(means))}

    def _observations(self, name: str) -> dict[int, list[float]]:
        """The steps reported for ``name``; a value given only as the trial's result is one step (0)."""
        steps = self.steps.get(name)
        if steps:
            return steps
        return {0: [float(self[name])]} if name in self else {}

    def _assert_exists(self, name: str) -> None:
        if not self.exists(name):
            raise ValueError(f"Unknown metric: {name!r}; this trial has {sorted({*self, *self.steps})}")


def infer_metric_direction(metric: Any) -> str | None:
    """KerasTuner's ``metrics_tracking.infer_metric_direction``: ``"min"`` or ``"max"`` for a metric given by
    name, ``keras.metrics`` object or function (by its name), None when the name says neither."""
    name = metric if isinstance(metric, str) else getattr(metric, "name", None) or getattr(metric, "__name__", None)
    return infer_direction(str(name)) if name else None


class TrialStatus:
    """KerasTuner's status names, for code that compares ``trial.status == TrialStatus.COMPLETED``.

    They are KerasTuner's own strings; a trial's :class:`Status` equals them (see
    :data:`KERAS_TUNER_NAMES` for the archsearch statuses KerasTuner has no name for).
    """

    RUNNING = "RUNNING"
    IDLE = "IDLE"
    INVALID = "INVALID"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

# Why a trial did not complete.  ``disk`` and ``interrupted`` say nothing about the configuration,
# so such a trial continues when the search resumes; the others are the configuration's own result.
# lost: its worker died, retries used up; infeasible: not trained, the configuration breaks a limit (max_model_size);
# failed_trial: the trial raised KerasTuner's FailedTrialError, which says "do not run it again".
# A trial that is a program (trial=command): timeout, it ran past trial.timeout; no_metric, it exited 0 but
# never reported the objective (Katib's "MetricsUnavailable"); infeasible, it said so (exit status 77).
FAILURE_KINDS = ("error", "nan", "oom", "disk", "interrupted", "lost", "infeasible", "failed_trial", "timeout",
                 "no_metric")
RETRIED_ON_RESUME = ("disk", "interrupted")


@dataclass
class Trial:
    """One configuration to train, and later its outcome.

    ``budget`` is the epoch to train *to* (None: the trainer's own ``epochs``);
    ``resume_from`` names a trial whose checkpoint to continue from, in which
    case training starts at ``initial_budget`` (the parent's budget).
    ``failure_kind`` (one of :data:`FAILURE_KINDS`) says why a trial failed or was interrupted.
    """

    id: int
    hparams: dict[str, Any]
    budget: int | None = None
    resume_from: int | None = None
    initial_budget: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    status: str = RUNNING
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    intermediate: dict[int, float] = field(default_factory=dict)
    error: str | None = None
    failure_kind: str | None = None
    # The search space holding this trial's values (an archsearch HyperParameters), attached by the
    # oracle for KerasTuner code (``trial.hyperparameters.get(...)``); not stored, not compared.
    hyperparameters: Any = field(default=None, repr=False, compare=False)
    best_step: int | None = field(default=None, compare=False)  # the epoch whose weights are the trial's

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "status" and isinstance(value, str) and not isinstance(value, Status):
            value = Status(value)  # KerasTuner code assigns "COMPLETED"
        elif name == "metrics" and isinstance(value, dict):
            previous = self.__dict__.get("metrics")
            if not isinstance(value, TrialMetrics):
                value = TrialMetrics(value)
            if isinstance(previous, TrialMetrics) and previous is not value:
                if not value.steps:
                    value.steps = previous.steps  # a new best step's values: the history stays
                value.directions = {**previous.directions, **value.directions}
        object.__setattr__(self, name, value)

    @property
    def done(self) -> bool:
        return self.status in DONE

    # KerasTuner's names for the same facts.
    @property
    def trial_id(self) -> str:
        return str(self.id)

    @property
    def score(self) -> float | None:
        return self.value

    @score.setter
    def score(self, value: float | None) -> None:  # KerasTuner's score_trial overrides set it
        self.value = None if value is None else float(value)

    @property
    def message(self) -> str | None:
        """KerasTuner's name for the error of a failed trial."""
        return self.error

    @message.setter
    def message(self, text: str | None) -> None:
        self.error = text

    def summary(self) -> None:
        """Print the trial's id, values, score and error (KerasTuner's ``Trial.summary``).

        It prints on purpose: this is KerasTuner's console API, which tutorials call to show a trial."""
        print(self.summary_text())

    def summary_text(self) -> str:
        lines = [f"Trial {self.trial_id} summary ({self.status})", "Hyperparameters:"]
        lines += [f"{name}: {value}" for name, value in self.hparams.items()] or ["default configuration"]
        if self.value is not None:
            lines.append(f"Score: {self.value}")
        if self.error:
            lines.append(self.error)
        return "\n".join(lines)


_dataclass_init = Trial.__init__


def _trial_init(self, *args, **kwargs) -> None:
    """archsearch's ``Trial(id, hparams, ...)``, or KerasTuner's ``Trial(hyperparameters, trial_id=None,
    status="RUNNING", message=None)`` (told apart by the first argument: an id or a search space)."""
    keras_tuner_style = ("id" not in kwargs and "hparams" not in kwargs
                         and (("trial_id" in kwargs or "message" in kwargs) or (args and not _is_id(args[0]))
                              or (not args and "hyperparameters" in kwargs)))
    if not keras_tuner_style:
        _dataclass_init(self, *args, **kwargs)
        return
    names = ("hyperparameters", "trial_id", "status", "message")
    if len(args) > len(names):
        raise TypeError(f"Trial() takes at most {len(names)} positional arguments in KerasTuner's form "
                        f"({', '.join(names)}), got {len(args)}")
    given = dict(zip(names, args))
    for name in kwargs:
        if name in given:
            raise TypeError(f"Trial() got multiple values for argument '{name}'")
    given.update(kwargs)
    hp = given.pop("hyperparameters", None)
    trial_id = given.pop("trial_id", None)
    status = Status(given.pop("status", RUNNING) or RUNNING)
    message = given.pop("message", None)
    values = dict(getattr(hp, "values", None) or {})
    # Without an id, a unique one as KerasTuner generates (trials built by hand are often put in one dict).
    ident = (uuid.uuid4().hex if trial_id is None
             else int(trial_id) if _is_id(trial_id) or str(trial_id).isdigit() else trial_id)
    _dataclass_init(self, ident, values, status=status, error=message,
                    hyperparameters=hp, **given)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or type(value).__name__.startswith(("int", "uint"))


Trial.__init__ = _trial_init  # type: ignore[method-assign]


@dataclass
class TrialOutcome:
    """What a trial produced: the objective at its best epoch and how it ended."""

    status: str
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    epochs_done: int = 0
    best_epoch: int | None = None
    error: str | None = None
    failure_kind: str | None = None  # one of FAILURE_KINDS
    duration: float = 0.0
    fit_seconds: float = 0.0
    hparams: dict[str, Any] = field(default_factory=dict)
    space: Any = None  # the search space after the build, when a define-by-run builder grew it


@dataclass
class TrialSpec:
    """Everything needed to train one trial, as plain picklable data: what a worker receives.

    Never an oracle: the worker trains ``trial`` from ``resume_checkpoint`` (its own after a
    crash, its parent's for a promotion, or None) starting at ``initial_epoch``; ``history``
    holds the metrics of the epochs it already trained, so its best epoch so far still counts.
    ``attempt`` counts the workers that died while training it.
    """

    trial: Trial
    hyperparameters: Any = None  # the space with this trial's values (archsearch.space.hyperparameters.HyperParameters)
    resume_checkpoint: str | None = None
    initial_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    attempt: int = 0

    @property
    def trial_id(self) -> int:
        return self.trial.id
