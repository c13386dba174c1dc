"""Reading the spec's mappings field by field: every key known or refused, values checked by type.

The service's JSON names are camelCase; its Python SDK writes snake_case (``max_trial_count``), so
both spellings are read as one field, and messages name the field as the user spelled it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from archsearch.errors import ConfigError

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def camel(name: str) -> str:
    """``max_trial_count`` -> ``maxTrialCount``; camelCase names stay as they are."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def show(value: Any) -> str:
    """A value as a message shows it: short, YAML-like."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(show(v) for v in value) + "]"
    else:
        text = "null" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Section:
    """One mapping of the spec: its fields by camelCase name, and where it is, for messages.

    Every key must be one of ``known`` (a typo is refused naming the known fields), and no field may be
    given twice under its two spellings.
    """

    def __init__(self, value: Any, path: str, known: Iterable[str]):
        if not isinstance(value, Mapping):
            raise ConfigError(path or "spec", f"expected a mapping of fields, got {show(value)}",
                              "see docs/cloud_spec.md for the spec's form")
        self.path = path
        self.known = tuple(known)
        self._fields: dict[str, tuple[str, Any]] = {}
        for key, item in value.items():
            key = str(key)
            name = camel(key)
            if name in self._fields:
                raise ConfigError(self.at_key(key), f"given twice (as {self._fields[name][0]} and {key})",
                                  "keep one of them")
            self._fields[name] = (key, item)
        for name, (key, item) in self._fields.items():
            if name not in self.known:
                raise self.unknown(key, item)

    def unknown(self, key: str, item: Any) -> ConfigError:
        close = difflib.get_close_matches(camel(key), self.known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return ConfigError(self.at_key(key), f"unknown field (value {show(item)})",
                           f"{hint}known fields here: {', '.join(self.known)}")

    def at_key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def at(self, name: str) -> str:
        """The path of field ``name`` as the user spelled it (camelCase when absent)."""
        return self.at_key(self._fields.get(name, (name, None))[0])

    def has(self, name: str) -> bool:
        return name in self._fields

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields[name][1] if name in self._fields else default

    def present(self) -> list[str]:
        """The camelCase names of the fields given, in the order written."""
        return list(self._fields)

    def section(self, name: str, known: Iterable[str]) -> Section:
        return Section(self.get(name), self.at(name), known)

    def items(self, name: str) -> list[tuple[str, Any]]:
        """A list field's items with their paths (``params[1]``); a missing or empty list is refused."""
        value = self.get(name)
        if not isinstance(value, list) or not value:
            raise ConfigError(self.at(name), f"expected a non-empty list, got {show(value)}",
                              "list at least one entry")
        return [(f"{self.at(name)}[{i}]", item) for i, item in enumerate(value)]

    def error(self, name: str, problem: str, fix: str | None = None) -> ConfigError:
        return ConfigError(self.at(name), f"{show(self.get(name))}: {problem}", fix)


def number(value: Any, where: str) -> float | int:
    """A finite number; numeric strings are read too (the service's JSON writes int64 as strings, and
    YAML 1.1 reads ``1e-4`` as a string)."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        text = value.strip()
        value = int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(where, f"expected a finite number, got {show(value)}", "write a number, e.g. 0.01")
    return value


def integer(value: Any, where: str, minimum: int | None = None) -> int:
    """An integer (``3`` or ``3.0``), at least ``minimum``."""
    value = number(value, where)
    if not float(value).is_integer():
        raise ConfigError(where, f"expected an integer, got {show(value)}", "write a whole number")
    if minimum is not None and value < minimum:
        raise ConfigError(where, f"{show(value)} is less than {minimum}", f"use a number >= {minimum}")
    return int(value)


def string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(where, f"expected a non-empty string, got {show(value)}", "write a name in quotes")
    return value


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(where, f"expected true or false, got {show(value)}", "write true or false")
    return value


def enum(value: Any, where: str, choices: Mapping[str, Any]) -> Any:
    """The meaning of an enum value (case-insensitive, as the SDK writes ``maximize``)."""
    key = value.upper() if isinstance(value, str) else value
    if key not in choices:
        raise ConfigError(where, f"{show(value)} is not a known value", f"use one of {', '.join(choices)}")
    return choices[key]
