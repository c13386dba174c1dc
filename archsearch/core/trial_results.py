"""What a user's ``run_trial`` or ``HyperModel.fit`` returned, as metrics: KerasTuner's contract.

Either may return a number (the objective's value), a dict of metrics (holding the objective), a
Keras ``History`` (its best epoch by the objective counts), or a list of those (one per execution:
averaged).  Anything else stops the search with :class:`~archsearch.errors.FatalTypeError`, and a
dict without the objective with :class:`~archsearch.errors.FatalValueError`: every trial would
fail the same way, so failing each one quietly would only waste the search.  Keras-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from archsearch.errors import FatalTypeError, FatalValueError
from archsearch.core.objective import Objective


def is_history(results: Any) -> bool:
    """A Keras ``History`` (or anything shaped like one: ``.history`` maps metric -> per-epoch list)."""
    return isinstance(getattr(results, "history", None), Mapping) and not isinstance(results, Mapping)


def _is_number(value: Any) -> bool:
    """A float, an int, a NumPy scalar or a 0-d tensor; not a string that happens to parse."""
    if isinstance(value, (str, bytes, Mapping, list, tuple)) or is_history(value):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def check_results(results: Any, objective: Objective, where: str) -> None:
    """Raise a fatal error when ``results`` cannot be read as this objective's value."""
    if isinstance(results, list):
        if not results:
            raise FatalValueError(f"{where} returned an empty list: return a number, a dict of metrics or a History")
        for item in results:
            check_results(item, objective, where)
        return
    if results is None:
        raise FatalTypeError(f"{where} returned None. Did you forget to return the metrics? Return the "
                             f"objective's value, a dict of metrics (with {objective.name!r}) or the History of "
                             "model.fit")
    if _is_number(results):
        return
    if isinstance(results, Mapping):
        if objective.value_from({k: v for k, v in results.items() if _is_number(v)}) is None:
            raise FatalValueError(f"{where} returned the metrics {sorted(results)}, without the objective "
                                  f"{objective.name!r}: add it to the dict, or set objective= to one of them")
        return
    if is_history(results):
        return
    raise FatalTypeError(f"Expected the return value of {where} to be one of: a number, a dict of metrics, a "
                         "keras.callbacks.History, or a list of those (one per execution); it returned "
                         f"{type(results).__name__} {results!r:.80}")


def to_metrics(results: Any, objective: Objective) -> tuple[dict[str, float], int | None]:
    """The metrics to record (with the objective among them) and the best epoch (1-based, if known)."""
    if isinstance(results, list):
        parts = [to_metrics(item, objective) for item in results]
        names = set().union(*(m for m, _ in parts))
        averaged = {n: sum(m[n] for m, _ in parts if n in m) / sum(1 for m, _ in parts if n in m) for n in names}
        epochs = [e for _, e in parts if e is not None]
        return averaged, (round(sum(epochs) / len(epochs)) if epochs else None)
    if isinstance(results, Mapping):
        return {k: float(v) for k, v in results.items() if _is_number(v)}, None
    if is_history(results):
        return best_epoch_of_history(results.history, objective)
    return {objective.name: float(results)}, None


def best_epoch_of_history(history: Mapping[str, list], objective: Objective) -> tuple[dict[str, float], int | None]:
    """The metrics of the epoch whose objective is best (the first such epoch on ties)."""
    length = max((len(v) for v in history.values()), default=0)
    best: tuple[dict[str, float], int | None] = ({}, None)
    best_value: float | None = None
    for epoch in range(length):
        metrics = {k: float(v[epoch]) for k, v in history.items() if epoch < len(v) and _is_number(v[epoch])}
        value = objective.value_from(metrics)
        if value is None or not math.isfinite(value):
            continue
        if best_value is None or objective.better(value, best_value):
            best, best_value = (metrics, epoch + 1), value
    if best[1] is None and length:  # the objective never appeared: the last epoch, so the caller can say so
        last = length - 1
        return {k: float(v[last]) for k, v in history.items() if last < len(v) and _is_number(v[last])}, length
    return best
