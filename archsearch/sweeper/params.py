"""The sweep's search space, written in Hydra's own sweep grammar and read as the Optuna sweeper reads it, so a
config written for that sweeper migrates by changing only the sweeper's name; and one trial's values back into
Hydra overrides that any value survives.

Hydra's parser reads every entry of ``hydra.sweeper.params`` and every sweep on the command line; each form
becomes one archsearch parameter, named by its config key without Hydra's ``+``/``++`` prefix:

- ``choice(a, b, c)`` or ``a,b,c``: a ``Choice``; numbers stay numbers (ordered), strings stay strings. Null,
  lists, dicts or mixed kinds (``relu,1,null``) become a choice of their Hydra text, passed to the job
  verbatim, so each value keeps its type there.
- ``range(start, stop, step)``: ``Int(start, stop, step)``, or ``Float`` with a float anywhere, the stop
  *included* as the Optuna sweeper reads it (Hydra's basic sweeper excludes it), so a config written for that
  sweeper searches the same values after changing only the sweeper's name.
- ``shuffle(range(...))``, ``shuffle(choice(...))``: an unordered ``Choice`` of the values, as Optuna's sweeper.
- ``interval(low, high)``: ``Float(low, high)``; ``int(interval(...))`` or ``tag(int, interval(...))``:
  ``Int(low, high)``, both ends included (as Optuna's); ``tag(log, ...)``: ``sampling="log"`` (low > 0).
- a plain value (``db=mysql``) or a deletion (``~key``): a fixed override, the same for every job.

Anything else (a glob, a sweep inside a sweep, another tag, ``log`` on a range or choice, an empty range) is one
:class:`ConfigError` naming the key, the value and the fix. A key that is new to the app's config is written
as it must be overridden (``+model.extra: choice(1, 2)``): the override keeps the prefix, the parameter is
``model.extra``. When a key is given twice, the later entry wins (the command line over the config).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    QuotedString,
    Quote,
    RangeSweep,
    Sweep,
    ValueType,
)
from hydra.errors import HydraException

from archsearch.errors import ConfigError, SearchSpaceError
from archsearch.space.hyperparameters import HyperParameters
from archsearch.space.values import value_kind

GRAMMAR = ("choice(a, b), range(start, stop, step), interval(low, high), tag(log, interval(low, high)), "
           "tag(int, interval(low, high)) or a plain value")


@dataclass(frozen=True)
class SweepSpace:
    """The searched parameters, the overrides every job gets, and how a trial's values become a job's overrides."""

    space: HyperParameters  # named by config key: ``model.lr``
    fixed: list[str]  # plain overrides for every job, as written: ``db=mysql``, ``~trainer.logger``
    keys: Mapping[str, str]  # parameter name -> its key as written (``model.extra`` -> ``+model.extra``)
    as_text: frozenset[str] = frozenset()  # choices whose values are Hydra text, passed on verbatim

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """One job's complete override list: the fixed ones, then ``key=value`` per searched parameter. Other
        entries of ``values`` (a tuner's own, like ``tuner/epochs``) are not the app's and are left out."""
        missing = [name for name in self.keys if name not in values]
        if missing:
            raise KeyError(f"no value for the searched parameter(s) {', '.join(missing)}")
        searched = [f"{key}={self._text(name, values[name])}" for name, key in self.keys.items()]
        return [*self.fixed, *searched]

    def _text(self, name: str, value: Any) -> str:
        return str(value) if name in self.as_text else format_value(value)


def space_from_params(params: Mapping[str, Any] | None, arguments: Sequence[str] = ()) -> SweepSpace:
    """``hydra.sweeper.params`` and the command line's overrides (``arguments``, which win) as a sweep space."""
    lines = [(f"{key}={value if isinstance(value, str) else format_value(value)}", f"hydra.sweeper.params.{key}")
             for key, value in (params or {}).items()]
    lines += [(argument, f"command line {argument.split('=', 1)[0]}") for argument in arguments]
    entries: dict[str, tuple[str, Override]] = {}  # parameter name -> (where it was written, the override)
    for line, where in lines:
        override = _parse(line, where)
        entries[_name(override)] = (where, override)
    hp, fixed, keys, as_text = HyperParameters(), [], {}, set()
    for name, (where, override) in entries.items():
        if not override.is_sweep_override():  # a plain value or a deletion
            fixed.append(str(override.input_line).strip())
            continue
        keys[name] = override.get_key_element()
        if _declare(hp, name, override, where):
            as_text.add(name)
    return SweepSpace(hp, fixed, keys, frozenset(as_text))


def format_value(value: Any, nested: bool = False) -> str:
    """``value`` in Hydra's override grammar, so that Hydra's parser gives back the same value and type:
    ``1e-05``, ``true``, ``null``, ``relu``, ``'a b, c'``, ``'1'`` (a string that would read as a number).
    Strings inside a list or dict are always quoted (``,``, ``]`` or ``:`` end an element there)."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return QuotedString(value, Quote.single).with_quotes() if nested else _format_str(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{format_value(v, nested=True)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):  # a list, a tuple, OmegaConf's ListConfig
        return "[" + ",".join(format_value(v, nested=True) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as a Hydra override value")


@functools.lru_cache(maxsize=4096)
def _format_str(text: str) -> str:
    """As written when Hydra reads it back unchanged (``relu``), else quoted (``'a b'``, ``'true'``, ``'1'``)."""
    try:
        override = _parser().parse_overrides([f"k={text}"])[0]
        if override.value_type == ValueType.ELEMENT and override.value() == text and isinstance(override.value(), str):
            return text
    except HydraException:
        pass
    return QuotedString(text, Quote.single).with_quotes()


@functools.lru_cache(maxsize=1)
def _parser() -> OverridesParser:
    return OverridesParser.create()


def _parse(line: str, where: str) -> Override:
    try:
        return _parser().parse_overrides([line])[0]
    except HydraException as exc:
        reason = "; ".join(part for part in str(exc).splitlines()
                           if part and not part.startswith(("Error parsing override", "See ")))
        raise ConfigError(where, f"{line.split('=', 1)[-1]!r} is not in Hydra's override grammar"
                          + (f" ({reason})" if reason else ""), f"write {GRAMMAR}") from None


def _name(override: Override) -> str:
    """The key without Hydra's ``+``/``++``/``~``: ``model.extra``, ``db@backup``."""
    return override.key_or_group + (f"@{override.package}" if override.package else "")


def _declare(hp: HyperParameters, name: str, override: Override, where: str) -> bool:
    """Declare the parameter in ``hp``; True when its values are Hydra text (see :func:`_choice`)."""
    sweep, text = override.value(), override.get_value_string().strip()
    if not isinstance(sweep, (ChoiceSweep, RangeSweep, IntervalSweep)):  # glob(...) is a Glob
        raise ConfigError(where, f"{text!r}: a glob of config group options is not searched",
                          "list the options: choice(a, b)")
    allowed = {"log", "int"} if isinstance(sweep, IntervalSweep) else set()
    odd = sorted(sweep.tags - allowed)
    if odd:
        raise ConfigError(where, f"{text!r}: archsearch reads no tag {', '.join(odd)} here (only log and int, "
                          "and only on an interval)",
                          "drop the tag, or search an interval: tag(log, interval(1e-4, 1e-1)) samples on a log scale")
    try:
        if isinstance(sweep, IntervalSweep):
            _interval(hp, name, sweep)
        elif isinstance(sweep, RangeSweep):
            _range(hp, name, sweep, text, where)
        else:
            return _choice(hp, name, sweep, text, where)
    except SearchSpaceError as exc:
        raise ConfigError(where, f"{text!r}: {exc.problem}", exc.fix) from None
    return False


def _interval(hp: HyperParameters, name: str, sweep: IntervalSweep) -> None:
    """Float, or Int when tagged int or cast (``int(interval(...))``); both ends included."""
    sampling = "log" if "log" in sweep.tags else "linear"
    if "int" in sweep.tags or (isinstance(sweep.start, int) and isinstance(sweep.end, int)):
        hp.Int(name, sweep.start, sweep.end, sampling=sampling)
    else:
        hp.Float(name, sweep.start, sweep.end, sampling=sampling)


def _range(hp: HyperParameters, name: str, sweep: RangeSweep, text: str, where: str) -> None:
    """``range(start, stop, step)`` as the Optuna sweeper reads it: from start to stop *inclusive*, on the step's
    grid (an Int, or a Float with a step), so a config written for it searches the same values; shuffled, the
    unordered choice of Hydra's own values (stop excluded), as there too."""
    if sweep.shuffle:
        values = list(sweep.range())
        if not values:
            raise ConfigError(where, f"{text!r} holds no values", "give a step that leads from start to stop")
        hp.Choice(name, values, ordered=False)
        return
    values = inclusive_range(sweep.start, sweep.stop, sweep.step)
    if not values:
        raise ConfigError(where, f"{text!r} holds no values (start {sweep.start}, stop {sweep.stop}, step "
                          f"{sweep.step})", "give a non-zero step that leads from start to stop, e.g. range(2, 6)")
    step = abs(sweep.step)
    if all(isinstance(v, int) for v in values):
        hp.Int(name, min(values), max(values), step=None if step == 1 else int(step))
    else:
        hp.Float(name, min(values), max(values), step=float(step))


def inclusive_range(start: float, stop: float, step: float) -> list[Any]:
    """Start, start + step, ... up to stop included (the Optuna sweeper's reading of ``range``); ints stay ints."""
    if not step or (stop - start) * step < 0:
        return []
    count = int(np.floor((stop - start) / step + 1e-9))
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step))
    return [start + i * step if whole else float(start + i * step) for i in range(count + 1)]


def _choice(hp: HyperParameters, name: str, sweep: ChoiceSweep, text: str, where: str) -> bool:
    """Numbers, strings or booleans as they are; anything else as Hydra text (a Choice holds one kind of
    scalar), which the job reads back as the value written. True when the values are text."""
    values = [_plain(v) for v in sweep.list]
    if any(isinstance(v, Sweep) for v in values):
        raise ConfigError(where, f"{text!r}: a sweep inside a sweep is not searched",
                          "list every value in one choice(a, b, c)")
    ordered = False if sweep.shuffle else None
    kinds = {value_kind(v) for v in values}
    if kinds <= {"int", "float"} or kinds in ({"str"}, {"bool"}):
        hp.Choice(name, values, ordered=ordered)
        return False
    hp.Choice(name, [format_value(v) for v in values], ordered=False)
    return True


def _plain(value: Any) -> Any:
    """A parsed element without Hydra's quoting wrapper: ``'a b'`` is the string ``a b``."""
    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value
