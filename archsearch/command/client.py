"""The tiny client a training program may call when archsearch runs it as a command trial.

``archsearch.report(step=3, val_loss=0.25)`` appends one JSON line to ``$ARCHSEARCH_METRICS_FILE``;
``archsearch.trial_values()`` gives the trial's values, ``archsearch.should_stop()`` says when the
search wants the trial to end (pruned, timed out, interrupted), ``archsearch.checkpoint_dir()`` where
to save and reload the program's own checkpoint (a promoted trial gets the folder of the trial it
continues), ``archsearch.report_infeasible("why")`` that the configuration cannot work (it is not a
failure).  Outside a search (the variables unset: the program run by hand) each does nothing or
returns its empty answer, so the same script runs both ways.

Only the standard library is imported here: the client is what a PyTorch or JAX script loads, and
it must never pull Keras, TensorFlow or Hydra into it.  Arguments are checked even outside a
search, so a mistake shows when the script is tried by hand, not hours into a search.
"""

from __future__ import annotations

import json
import numbers
import os
import time
from pathlib import Path

METRICS_FILE = "ARCHSEARCH_METRICS_FILE"
VALUES = "ARCHSEARCH_VALUES"
STOP_FILE = "ARCHSEARCH_STOP_FILE"
CHECKPOINT_DIR = "ARCHSEARCH_CHECKPOINT_DIR"


def report(step: int | None = None, **metrics: float) -> None:
    """Report ``metrics`` (name=number; NaN and infinities are kept) at ``step`` (an epoch, a global
    step; None: archsearch numbers the reports itself).  Raises TypeError for a value that is not a
    number (naming the metric), a step that is not an integer, or no metric at all."""
    line = {"step": _step(step), "metrics": {name: _number(name, value) for name, value in metrics.items()},
            "time": time.time()}
    if not metrics:
        raise TypeError("archsearch.report() needs at least one metric, e.g. report(step=3, val_loss=0.25)")
    _append(line)


def report_infeasible(reason: str) -> None:
    """Say the trial's configuration cannot work (too large, an invalid combination): archsearch
    records it as infeasible, not failed, and never counts it towards the failed-trials limit.
    Exiting with status 77 (``archsearch.command.EXIT_INFEASIBLE``) says the same."""
    _append({"infeasible": str(reason), "time": time.time()})


def trial_values() -> dict:
    """The trial's values (``{"lr": 0.01, "layers": 3}``), also passed as ``--name=value`` arguments;
    ``{}`` outside a search."""
    text = os.environ.get(VALUES)
    return json.loads(text) if text else {}


def should_stop() -> bool:
    """True once archsearch wants this trial to end (it sends SIGTERM right after): save and exit."""
    path = os.environ.get(STOP_FILE)
    return bool(path) and Path(path).exists()


def checkpoint_dir() -> Path | None:
    """Where to save and reload the program's own checkpoint; None outside a search."""
    path = os.environ.get(CHECKPOINT_DIR)
    return Path(path) if path else None


def _step(step: object) -> int | None:
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"archsearch.report(step=...) must be an integer or None, not {step!r}")
    return int(step)


def _number(name: str, value: object) -> float:
    """``value`` as a float: Python and numpy numbers, 0-d arrays and one-element tensors (anything
    with ``__float__``), never text or booleans (a True would be stored as 1.0 without a word)."""
    boolean = isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")  # numpy's too
    if boolean or isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        raise TypeError(f"archsearch.report(): metric {name!r} must be a number, not {value!r} "
                        f"({type(value).__name__})")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"archsearch.report(): metric {name!r} must be a number, not {value!r} ({exc})") from None


def _append(record: dict) -> None:
    """One ``write`` of the whole line, appended: a reader never sees half a line but at the very end."""
    path = os.environ.get(METRICS_FILE)
    if not path:
        return
    data = (json.dumps(record) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
