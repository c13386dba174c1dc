"""Spaces declared as data, as in ``conf/model/*.yaml``: ``units: {type: int, min: 32, max: 512}``.

This module turns each entry into a parameter (:func:`parameter_from_config`) and checks the
conditions between them once all are declared (:func:`drop_unreachable`): a condition that can
never hold drops its parameter with a note instead of leaving a parameter no trial ever uses.
:data:`PARAMETER_TYPES` is the one registry of parameter types, read by their ``type_name`` here
and by their class name in KerasTuner's serialised form (:func:`archsearch.space.hyperparameters.deserialize`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from archsearch.errors import SearchSpaceError
from archsearch.space.categorical import Boolean, Choice, Fixed
from archsearch.space.numeric import Float, Int, Numeric
from archsearch.space.parameters import HyperParameter, conditions_from_config
from archsearch.space.values import to_python

log = logging.getLogger("archsearch")

PARAMETER_TYPES: tuple[type[HyperParameter], ...] = (Int, Float, Choice, Boolean, Fixed)
# Other names the declarative form accepts for a type.
_TYPE_ALIASES = {"bool": "boolean"}
# The fields of each type in the declarative form, besides ``type`` and ``when``.
_FIELDS = {
    "int": {"min", "max", "step", "sampling", "default"},
    "float": {"min", "max", "step", "sampling", "default"},
    "choice": {"values", "ordered", "default"},
    "boolean": {"default"},
    "fixed": {"value"},
}


def parameter_type(type_name: str) -> type[HyperParameter] | None:
    """The type a declarative ``type:`` names (``int``, ``boolean`` or ``bool``, ...), or None."""
    type_name = _TYPE_ALIASES.get(type_name, type_name)
    return next((t for t in PARAMETER_TYPES if t.type_name == type_name), None)


def parameter_class(class_name: str) -> type[HyperParameter] | None:
    """The type KerasTuner's serialised form names by its class (``Int``), or None."""
    return next((t for t in PARAMETER_TYPES if t.__name__ == class_name), None)


def parameter_from_config(name: str, spec: Any) -> HyperParameter:
    """One parameter from its declarative form; a bare scalar or list is shorthand for fixed/choice."""
    if not isinstance(spec, Mapping):
        if isinstance(spec, (list, tuple)):
            return Choice(name, list(spec))
        return Fixed(name, spec)
    spec = dict(spec)
    where = f"hyperparameter '{name}'"
    kind = str(spec.pop("type", "")).lower()
    cls = parameter_type(kind)
    if cls is None:
        raise SearchSpaceError(where, f"unknown type {kind!r}",
                               f"use one of {', '.join(sorted(t.type_name for t in PARAMETER_TYPES))}")
    conditions = conditions_from_config(name, spec.pop("when", None))
    allowed = _FIELDS[cls.type_name]
    unknown = set(spec) - allowed
    if unknown:
        raise SearchSpaceError(where, f"unknown field(s) {sorted(unknown)} for type {kind}",
                               f"allowed: {sorted(allowed | {'type', 'when'})}")
    if issubclass(cls, Numeric):
        missing = [k for k in ("min", "max") if k not in spec]
        if missing:
            raise SearchSpaceError(where, f"missing {', '.join(missing)}", f"{kind} needs both min and max")
        return cls(name, spec["min"], spec["max"], spec.get("step"), spec.get("sampling", "linear"),
                   spec.get("default"), conditions)
    if cls is Choice:
        if "values" not in spec:
            raise SearchSpaceError(where, "missing values", "choice needs values: [...]")
        return Choice(name, list(spec["values"] or []), spec.get("ordered"), spec.get("default"), conditions)
    if cls is Boolean:
        return Boolean(name, spec.get("default", False), conditions)
    if "value" not in spec:
        raise SearchSpaceError(where, "missing value", "fixed needs value: ...")
    return Fixed(name, spec["value"], conditions)


def drop_unreachable(space: MutableMapping[str, HyperParameter], where: str | None = None) -> dict[str, str]:
    """Check the conditions of a declared ``space``; remove the parameters that can never be active.

    Undeclared parents are errors; a condition that can never hold drops its parameter, and the
    parameters conditioned on it (cascading).  Returns ``name -> note`` for the dropped ones (each
    note is logged); ``where`` (e.g. ``"model.space"``) prefixes the names in the notes.
    """
    for p in space.values():
        for c in p.conditions:
            if c.parent not in space:
                raise p._err(
                    f"its condition refers to '{c.parent}', which is not in the search space",
                    f"declare '{c.parent}' or fix the name in 'when'",
                )
    dropped: dict[str, str] = {}
    changed = True
    while changed:  # fixed point: a child of a dropped parameter is dropped too, whatever the order
        changed = False
        for p in space.values():
            if p.name in dropped:
                continue
            reason = _never_holds(space, p, dropped)
            if reason is not None:
                dropped[p.name] = reason
                changed = True
    notes: dict[str, str] = {}
    for name, reason in dropped.items():
        label = f"{where}.{name}" if where else f"hyperparameter '{name}'"
        notes[name] = f"Note: {label} is dropped: {reason}"
        log.warning("%s", notes[name])
        del space[name]
    for p in space.values():
        for c in p.conditions:
            parent = space[c.parent]
            if not isinstance(parent, (Choice, Boolean)):
                continue  # a narrowed numeric range (num_layers.max=2) leaves values out by design
            bad = [v for v in c.values if not parent.contains(v)]
            if bad:
                raise p._err(f"its condition asks '{c.parent}' for {bad}, which '{c.parent}' never takes")
    return notes


def _never_holds(space: Mapping[str, HyperParameter], p: HyperParameter, dropped: Mapping[str, str]) -> str | None:
    """Why ``p`` can never be active (a dropped parent, or no reachable value), or None."""
    for c in p.conditions:
        if c.parent in dropped:
            return f"its parent {c.parent} is dropped"
        parent = space[c.parent]
        if not any(parent.contains(v) for v in c.values):
            return (f"its condition {c.parent} in {_show(list(c.values))} can never hold "
                    f"({c.parent} takes {_describe_values(parent)})")
    return None


def _show(values: list) -> str:
    """``[2, 3]`` / ``[sgd, adam]``: values as a user writes them in YAML."""
    return "[" + ", ".join(str(to_python(v)) for v in values) + "]"


def _describe_values(p: HyperParameter) -> str:
    """The values ``p`` can take, briefly: ``1..3``, ``[1, 3]``, ``32..512 step 32``, ``[adam, sgd]``."""
    if isinstance(p, Numeric):
        steps = p._steps()
        if steps is None or (p.step == 1 and p.sampling == "linear"):
            return f"{p.min_value}..{p.max_value}"
        if len(steps) <= 8:
            return _show(steps)
        return f"{p.min_value}..{p.max_value} step {p.step}" + ("" if p.sampling == "linear" else f" ({p.sampling})")
    if isinstance(p, Fixed):
        return f"only {to_python(p.value)}"
    if isinstance(p, Boolean):
        return "[False, True]"
    return _show(list(getattr(p, "values", ())))
