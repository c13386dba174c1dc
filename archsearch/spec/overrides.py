"""Values written in Hydra's override grammar, so that the composed config holds exactly them.

Every string is single-quoted (a name such as ``training/hptuning/metric`` or a category ``a, b: c``
survives); dictionary keys cannot be quoted, so their grammar characters are escaped with a
backslash, and a key the grammar cannot carry at all is refused by the caller (:func:`key_problem`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

# Characters a dictionary key may hold as they are, and those the grammar needs escaped.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-./+$%*@?|]")
_ESCAPED_KEY = set("()[]{}:=, \t")
# Keys Hydra would read as a number, a boolean or null rather than as a name.
_NOT_A_NAME = re.compile(r"[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(inf|nan)|true|false|null",
                         re.IGNORECASE)


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a key of a Hydra dict override, or None when it can."""
    if not key:
        return "an empty name"
    if _NOT_A_NAME.fullmatch(key):
        return "a name Hydra's override grammar reads as a number, boolean or null"
    bad = sorted({c for c in key if not _PLAIN_KEY.fullmatch(c) and c not in _ESCAPED_KEY})
    if bad:
        return f"characters Hydra's override grammar cannot carry in a name: {' '.join(map(repr, bad))}"
    return None


def format_key(key: str) -> str:
    """``a b:c`` -> ``a\\ b\\:c`` (checked with :func:`key_problem` first)."""
    return "".join("\\" + c if c in _ESCAPED_KEY else c for c in key)


def quote(text: str) -> str:
    """A single-quoted string: quotes escaped, backslashes before a quote or at the end doubled, and
    ``${`` escaped so that OmegaConf does not read it as an interpolation."""
    def escape(match: re.Match) -> str:
        backslashes, what = match.group(1), match.group(2)
        return backslashes * 2 + {"'": "\\'", "${": "\\${", "": ""}[what]

    return "'" + re.sub(r"(\\*)('|\$\{|$)", escape, text) + "'"


def format_value(value: Any) -> str:
    """A value in the override grammar: null, true/false, numbers, quoted strings, lists and dicts."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value}")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{format_key(str(k))}:{format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a Hydra override value")


def override(key: str, value: Any) -> str:
    """``key=value`` with the value in the override grammar."""
    return f"{key}={format_value(value)}"
