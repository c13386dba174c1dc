"""Validators for settings read from a config or passed by a user: one clear ConfigError naming the field.

They sit at the bottom (``core``) because every layer reads numbers from the user: the CLI's config,
the executors' options (``executor.threads``, ``max_trials_per_worker``), the Python ``Tuner``, the
model families and retraining.  Keeping them here lets those packages check input without importing
the CLI (which imports them), so no arrow points up.
"""

from __future__ import annotations

import math
from typing import Any

from archsearch.errors import ConfigError


def whole_number(value: Any, field: str, minimum: int | None, allow_none: bool = False) -> int | None:
    """``value`` as an int (of at least ``minimum``); anything else is a ConfigError naming the field."""
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, (int, float, str))
    try:
        number = float(value) if ok else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number) or (minimum is not None and number < minimum):
        allowed = "a whole number" + (f" >= {minimum}" if minimum is not None else "") + (" or null" if allow_none else "")
        raise ConfigError(field, f"{value!r} is not allowed", f"use {allowed}")
    return int(number)


def real_number(value: Any, field: str, minimum: float | None = None, allow_none: bool = False,
                strict: bool = False) -> float | None:
    """``value`` as a finite float (above ``minimum`` if ``strict``, else at least it)."""
    if value is None and allow_none:
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    too_small = minimum is not None and (number <= minimum if strict else number < minimum)
    if not math.isfinite(number) or too_small:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum}"
        raise ConfigError(field, f"{value!r} is not allowed",
                          f"use a number{bound}" + (" or null" if allow_none else ""))
    return number


TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")


def boolean(value: Any, field: str) -> bool:
    """``value`` as a bool, read strictly: true/false, yes/no, on/off, 1/0 (any case); anything else is refused.

    ``bool("no")`` is True: a non-empty string must never silently mean yes (``overwrite=no`` once
    deleted a finished search).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConfigError(field, f"{value!r} is not a boolean", "use true or false (also yes/no, on/off, 1/0)")
