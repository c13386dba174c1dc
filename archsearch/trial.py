"""A trial and its statuses: the bottom layer that the oracles, the store and the runner all import.

Kept free of Keras and of any algorithm, so a trial can be stored, replayed,
sent to another process and reasoned about on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

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


class Status(str):
    """A trial's status, that also equals KerasTuner's spelling of it.

    ``Status("completed") == "COMPLETED"`` and KerasTuner's ``"INVALID"`` (a trial that raised) is
    archsearch's ``failed``, so code written for either compares and assigns statuses as it did.
    The text itself is archsearch's, lower case, as stored and shown.
    """

    _ALIASES = {"invalid": "failed", "complete": "completed"}

    def __new__(cls, value: str) -> Status:
        if isinstance(value, Status):
            return value
        text = str(value).lower()
        status = super().__new__(cls, cls._ALIASES.get(text, text))
        # KerasTuner's INVALID is a failure that may run again (max_retries_per_trial); FAILED never does.
        status.retryable = text == "invalid"
        return status

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            text = other.lower()
            return str.__eq__(self, self._ALIASES.get(text, text))
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__


class TrialMetrics(dict):
    """A trial's metrics (name -> the value at its best step), read also with KerasTuner's tracker methods.

    KerasTuner code asks ``trial.metrics.exists("val_loss")`` or ``get_best_value("val_loss")``.
    Only the best step's values are kept here; every epoch's metrics are in the store
    (``trials.db``, ``epochs.csv``), and the objective's per epoch in ``trial.intermediate``.
    """

    def exists(self, name: str) -> bool:
        return name in self

    def get_best_value(self, name: str) -> float | None:
        return self.get(name)


class TrialStatus:
    """KerasTuner's status names, for code that compares ``trial.status == TrialStatus.COMPLETED``.

    KerasTuner's INVALID (a trial that raised, which may run again) is archsearch's failed trial
    marked ``retryable``.
    """

    RUNNING = RUNNING
    IDLE = IDLE
    INVALID = "INVALID"
    STOPPED = STOPPED
    COMPLETED = COMPLETED
    FAILED = FAILED

# Why a trial did not complete.  ``disk`` and ``interrupted`` say nothing about the configuration,
# so such a trial continues when the search resumes; the others are the configuration's own result.
# lost: its worker died, retries used up; infeasible: not trained, the configuration breaks a limit (max_model_size);
# failed_trial: the trial raised KerasTuner's FailedTrialError, which says "do not run it again".
FAILURE_KINDS = ("error", "nan", "oom", "disk", "interrupted", "lost", "infeasible", "failed_trial")
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
        elif name == "metrics" and isinstance(value, dict) and not isinstance(value, TrialMetrics):
            value = TrialMetrics(value)
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
        """Print the trial's id, values, score and error (KerasTuner's ``Trial.summary``)."""
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
    # Without an id, a unique one (KerasTuner generates a random hex id): two hand-made trials never share one.
    ident = uuid.uuid4().hex if trial_id is None else (int(trial_id) if _is_id(trial_id) or str(trial_id).isdigit() else trial_id)
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
    hyperparameters: Any = None  # the space with this trial's values (archsearch.hyperparameters.HyperParameters)
    resume_checkpoint: str | None = None
    initial_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    attempt: int = 0

    @property
    def trial_id(self) -> int:
        return self.trial.id
