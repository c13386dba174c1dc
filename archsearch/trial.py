"""A trial and its statuses: the bottom layer that the oracles, the store and the runner all import.

Kept free of Keras and of any algorithm, so a trial can be stored, replayed,
sent to another process and reasoned about on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
PRUNED = "pruned"
INTERRUPTED = "interrupted"
STATUSES = (RUNNING, COMPLETED, FAILED, PRUNED, INTERRUPTED)
DONE = (COMPLETED, FAILED, PRUNED)

# Why a trial did not complete.  ``disk`` and ``interrupted`` say nothing about the configuration,
# so such a trial continues when the search resumes; the others are the configuration's own result.
FAILURE_KINDS = ("error", "nan", "oom", "disk", "interrupted")
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

    @property
    def done(self) -> bool:
        return self.status in DONE
