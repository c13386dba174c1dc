"""How a trial's own failure is told: as a failed outcome with its kind, or, for a builder that returns no
model, as one error that stops the search (it would fail every trial the same way)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archsearch.errors import FailedTrialError, NotAModelError


class TrialFailed(FailedTrialError):
    """A trial cannot go on (NaN loss, ...): recorded as failed, the search continues.

    ``kind`` says why (:data:`archsearch.core.trial.FAILURE_KINDS`), and so whether it may run again;
    ``metrics``, what the trial measured before it stopped (an infeasible model's measures), are kept.
    """

    def __init__(self, message: str, kind: str = "error", metrics: Mapping[str, float] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.metrics = dict(metrics or {})


def describe_failure(exc: BaseException, values: Mapping[str, Any]) -> tuple[str, str]:
    """The failure as one line for the store and the console, and its kind (error, nan, oom)."""
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".strip()
    if isinstance(exc, TrialFailed):
        return str(exc)[:2000], exc.kind
    if isinstance(exc, FailedTrialError):  # the trial's own verdict: never retried (max_retries_per_trial)
        return text[:2000], "failed_trial"
    lowered = f"{type(exc).__name__} {exc}".lower()
    if "resourceexhausted" in lowered or "out of memory" in lowered or " oom" in lowered:
        text = (
            f"out of memory with hyperparameters {dict(values)}: try a smaller trainer.batch_size "
            f"or a smaller model ({text[:200]})"
        )
        return text[:2000], "oom"
    return text[:2000], "error"


def check_is_model(model: Any) -> None:
    """A builder must return a Keras model; anything else would fail every trial the same way."""
    if hasattr(model, "fit") and hasattr(model, "compile") and hasattr(model, "save_weights"):
        return
    shown = repr(model)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise NotAModelError(
        f"the model builder returned {type(model).__name__} {shown}, not a Keras model (Expected the "
        "model-building function, or HyperModel.build() to return a valid Keras Model instance): "
        "return the model it builds (e.g. `return model`, a keras.Model)"
    )
