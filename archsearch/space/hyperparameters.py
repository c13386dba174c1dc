"""The space and the values of one trial: :class:`HyperParameters`, the ``hp`` a model builder gets.

One class, so one module though past 400 lines: KerasTuner's ``hp`` API, the helpers oracles use and
its serialised forms all read and write the same declarations and values.

One object serves both ways of declaring a space:

* declaratively, from a model config (:meth:`HyperParameters.from_config`, read by
  :mod:`archsearch.space.declarative`);
* define-by-run, KerasTuner style: a ``build(hp)`` function calls
  ``hp.Int(...)``, ``hp.Choice(...)`` ... and receives the trial's values.

Oracles then sample, enumerate and complete values through it (``sample``, ``grid``,
``active_values``) without knowing the parameter types.  This module is also KerasTuner's
``keras_tuner.engine.hyperparameters`` (see archsearch/engine): it holds that module's names,
the parameter types included, and its ``serialize`` / ``deserialize``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.errors import InactiveHyperParameterError, SearchSpaceError
from archsearch.space.categorical import Boolean, Choice, Fixed
from archsearch.space.declarative import PARAMETER_TYPES, drop_unreachable, parameter_class, parameter_from_config
from archsearch.space.numeric import Float, Int
from archsearch.space.parameters import Condition, HyperParameter
from archsearch.space.values import as_list, values_key

_UNSET = object()


class SearchSpace(dict):
    """The declared parameters: a dict ``name -> HyperParameter`` (archsearch's oracles look names up),
    that also reads as KerasTuner's list of parameters: iterating yields the parameter objects in
    declaration order (``for p in hp.space: p.name``), ``space[0]`` is the first one and
    ``space == [...]`` compares them in order.  Names: ``name in space``, ``space[name]``, ``keys()``.
    """

    def __iter__(self):
        return iter(list(self.values()))

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer, slice)) and not isinstance(key, bool):
            return list(self.values())[key]
        return super().__getitem__(key)

    def __eq__(self, other):
        if isinstance(other, (list, tuple)):
            return list(self.values()) == list(other)
        return super().__eq__(other)

    def __ne__(self, other):
        return not self == other

    __hash__ = None  # type: ignore[assignment]


class HyperParameters:
    """A search space plus the values of one trial.

    Inside a model builder it is the ``hp`` object: ``hp.Int("units", 32, 512,
    step=32)`` registers the parameter the first time and returns the trial's
    value (or the default when the trial has no value for it yet), exactly as
    in KerasTuner.  ``hp.values`` holds the active values only.
    """

    def __init__(self) -> None:
        self.space = SearchSpace()
        self.values: dict[str, Any] = {}
        self._scope: list[Condition] = []
        self._name_scopes: list[str] = []
        # Parameters from_config left out because their conditions can never hold: name -> the note.
        self.dropped: dict[str, str] = {}
        # KerasTuner lets a builder declare one name twice under different conditions (``layers`` for
        # model v1 and for v2): the first declaration is in ``space``, the others are kept here.
        self.alternates: dict[str, list[HyperParameter]] = {}

    @property
    def space(self) -> SearchSpace:
        """``name -> HyperParameter`` for every declared name (see :class:`SearchSpace`)."""
        return self._space

    @space.setter
    def space(self, value: Mapping[str, HyperParameter]) -> None:
        self._space = value if isinstance(value, SearchSpace) else SearchSpace(value)

    # ------------------------------------------------------------ building
    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Any]] | None, where: str | None = None) -> HyperParameters:
        """Build a space from the declarative form used in ``conf/model/*.yaml``.

        A conditional parameter whose condition can never hold (say ``units_2``
        ``when: {num_layers: [2, 3]}`` after ``num_layers.max=1``) is dropped
        with a logged note, and so are the parameters conditioned on it; the
        notes are kept in :attr:`dropped`.  ``where`` (e.g. ``"model.space"``)
        prefixes the parameter names in those notes.
        """
        if _is_keras_tuner_config(config):
            return cls._from_keras_tuner_config(config)
        hp = cls()
        for name, spec in (config or {}).items():
            hp._register(parameter_from_config(str(name), spec))
        hp.dropped.update(drop_unreachable(hp.space, where))
        hp.values = hp.active_values({})
        return hp

    @classmethod
    def _from_keras_tuner_config(cls, config: Mapping[str, Any]) -> HyperParameters:
        """KerasTuner's form, ``{"space": [{"class_name": "Int", "config": {...}}, ...], "values": {...}}``."""
        hp = cls()
        for item in config.get("space") or []:
            hp._add(deserialize(item))
        hp.values = dict(config.get("values") or {})
        return hp

    def get_config(self) -> dict[str, dict]:
        """The declarative form of this space: ``from_config(get_config())`` rebuilds it."""
        return {name: p.to_config() for name, p in self.space.items()}

    def copy(self) -> HyperParameters:
        clone = HyperParameters()
        clone.space = SearchSpace(self.space)
        clone.values = dict(self.values)
        clone.dropped = dict(self.dropped)
        clone.alternates = {name: list(ps) for name, ps in self._alternates().items()}
        return clone

    def with_values(self, values: Mapping[str, Any]) -> HyperParameters:
        """A copy of this space holding ``values`` (as a trial's ``hp``)."""
        clone = self.copy()
        clone.values = clone.active_values(values)
        return clone

    def keras_tuner_config(self) -> dict[str, Any]:
        """KerasTuner's form: every declaration (alternates included) and the values."""
        return {"space": [serialize(p) for p in self.all_declarations()], "values": dict(self.values)}

    def __setstate__(self, state: dict) -> None:
        if "space" in state:  # pickled when ``space`` was a plain attribute
            state["_space"] = SearchSpace(state.pop("space"))
        self.__dict__.update(state)

    def _register(self, parameter: HyperParameter) -> None:
        if parameter.name in self.space:
            raise parameter._err("is declared twice")
        self.space[parameter.name] = parameter

    # ------------------------------------------------------------ declarations of one name
    def _alternates(self) -> dict[str, list[HyperParameter]]:
        return self.__dict__.setdefault("alternates", {})  # spaces pickled before alternates existed

    def declarations(self, name: str) -> list[HyperParameter]:
        """Every declaration of ``name``: the one in ``space``, then those under other conditions."""
        first = self.space.get(name)
        return ([first] if first is not None else []) + list(self._alternates().get(name, ()))

    def all_declarations(self) -> list[HyperParameter]:
        """Every declared parameter, alternates included (KerasTuner's ``hp.space`` list, grouped by name)."""
        return [p for name in self.space.keys() for p in self.declarations(name)]

    def _active_declaration(self, name: str, values: Mapping[str, Any]) -> HyperParameter | None:
        return next((p for p in self.declarations(name) if p.is_active(values)), None)

    def _same(self, parameter: HyperParameter) -> HyperParameter | None:
        """The declaration with ``parameter``'s name and conditions, if any."""
        return next((p for p in self.declarations(parameter.name) if p.conditions == parameter.conditions), None)

    def _add(self, parameter: HyperParameter, replace: HyperParameter | None = None) -> None:
        """Declare ``parameter`` (in place of ``replace``, a declaration of the same name and conditions)."""
        name = parameter.name
        if replace is not None and self.space.get(name) is replace:
            self.space[name] = parameter
        elif replace is not None:
            others = self._alternates()[name]
            others[others.index(replace)] = parameter
        elif name in self.space:
            self._alternates().setdefault(name, []).append(parameter)
        else:
            self.space[name] = parameter

    def _declared(self, name: str) -> bool:
        return name in self.space or name in self.dropped

    # ------------------------------------------------------------ define-by-run API (KerasTuner names)
    def _retrieve(self, parameter: HyperParameter) -> Any:
        for c in parameter.conditions:
            if c.parent == parameter.name:
                raise parameter._err(f"is declared inside a condition on '{c.parent}' itself: a hyperparameter "
                                     "cannot have the same name as the parent of its condition",
                                     "rename the parameter or the parent")
        existing = self._same(parameter)
        if existing is None:
            self._add(parameter)
            existing = parameter
        if not existing.is_active(self.values):
            return None  # KerasTuner returns None for inactive parameters, so nobody relies on them.
        if existing.name not in self.values:
            self.values[existing.name] = existing.default
        return self.values[existing.name]

    def _scoped(self, name: str) -> str:
        """``name`` prefixed with the open name scopes: ``block1/units``."""
        scopes = self.__dict__.get("_name_scopes") or []
        return "/".join([*scopes, name]) if scopes else name

    def _conditions(self, parent_name: str | None, parent_values) -> tuple[Condition, ...]:
        conditions = list(self._scope)
        if parent_name is not None:
            parent_name = self._scoped(parent_name)
            self._require_declared(parent_name, f"parent_name='{parent_name}'")
            conditions.append(Condition(parent_name, tuple(as_list(parent_values))))
        return tuple(conditions)

    def Int(self, name: str, min_value: int, max_value: int, step: int | None = None, sampling: str = "linear",
            default: int | None = None, parent_name: str | None = None, parent_values=None) -> int:
        return self._retrieve(Int(self._scoped(name), min_value, max_value, step, sampling, default,
                                  self._conditions(parent_name, parent_values)))

    def Float(self, name: str, min_value: float, max_value: float, step: float | None = None,
              sampling: str = "linear", default: float | None = None, parent_name: str | None = None,
              parent_values=None) -> float:
        return self._retrieve(Float(self._scoped(name), min_value, max_value, step, sampling, default,
                                    self._conditions(parent_name, parent_values)))

    def Choice(self, name: str, values: Sequence, ordered: bool | None = None, default=None,
               parent_name: str | None = None, parent_values=None):
        return self._retrieve(Choice(self._scoped(name), values, ordered, default,
                                     self._conditions(parent_name, parent_values)))

    def Boolean(self, name: str, default: bool = False, parent_name: str | None = None, parent_values=None) -> bool:
        return self._retrieve(Boolean(self._scoped(name), default, self._conditions(parent_name, parent_values)))

    def Fixed(self, name: str, value, parent_name: str | None = None, parent_values=None):
        return self._retrieve(Fixed(self._scoped(name), value, self._conditions(parent_name, parent_values)))

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values) -> Iterator[None]:
        """Parameters declared inside are active only while ``parent_name`` is in ``parent_values``.

        Scopes nest: a parameter inside two scopes needs both conditions.
        """
        parent_name = self._scoped(parent_name)
        self._require_declared(parent_name, f"conditional_scope('{parent_name}')")
        self._scope.append(Condition(parent_name, tuple(as_list(parent_values))))
        try:
            yield
        finally:
            self._scope.pop()

    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Parameters declared inside are named ``name/<their name>`` (scopes nest: ``a/b/units``)."""
        scopes = self.__dict__.setdefault("_name_scopes", [])
        scopes.append(str(name))
        try:
            yield
        finally:
            scopes.pop()

    def _require_declared(self, parent_name: str, where: str) -> None:
        if parent_name not in self.space:
            raise SearchSpaceError(
                where,
                f"'{parent_name}' is not declared yet (a parameter not defined yet cannot be a condition's parent)",
                "declare the parent with hp.Int/Choice/... before the parameters that depend on it",
            )

    def merge(self, other: HyperParameters | Sequence[HyperParameter], overwrite: bool = True) -> None:
        """Add ``other``'s parameters (a HyperParameters or a list of parameters) to this space.

        A parameter with the same name and conditions as one declared here replaces it when
        ``overwrite`` (its default becomes the value), and is skipped otherwise.  Only parameters
        active under this space's values get a value, as in KerasTuner.
        """
        parameters = other.all_declarations() if isinstance(other, HyperParameters) else list(other)
        for p in parameters:
            existing = self._same(p)
            if existing is not None and not overwrite:
                continue
            self._add(p, replace=existing)
            if p.is_active(self.values) and (overwrite or p.name not in self.values):
                self.values[p.name] = p.default

    # ------------------------------------------------------------ access
    def get(self, name: str, default: Any = _UNSET) -> Any:
        """The trial's value of ``name``, as KerasTuner's ``hp.get``: an inactive parameter (its conditions
        do not hold) raises ``ValueError``, an undeclared one ``KeyError``.

        ``default`` is archsearch's addition, for code that reads a parameter which may be inactive or
        absent: ``hp.get("momentum", None)`` returns None then, and ``hp.get("units", 32)`` 32.
        """
        name = self._scoped(name)
        if name in self.values:
            return self.values[name]
        if default is not _UNSET:
            return default
        if self._declared(name):
            why = (f"was dropped from the search space ({self.dropped[name]})" if name in self.dropped
                   else "is currently inactive (its conditions do not hold)")
            raise InactiveHyperParameterError(f"hyperparameter '{name}'", why,
                                              f"read it with hp.get('{name}', None) to get None while it is inactive")
        raise KeyError(f"hyperparameter '{name}' does not exist in the search space "
                       f"(declared: {', '.join(self.space.keys()) or 'none'}); declare it, or give a default: "
                       f"hp.get('{name}', None)")

    def __getitem__(self, name: str) -> Any:
        """The trial's value of ``name`` (KerasTuner's ``hp[name]``, the same as ``hp.get(name)``)."""
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return self._scoped(name) in self.values

    def is_active(self, name: str | HyperParameter) -> bool:
        """Whether ``name`` (any of its declarations), or that very parameter, is active now."""
        if isinstance(name, HyperParameter):
            return name.is_active(self.values)
        return self._active_declaration(name, self.values) is not None

    def __len__(self) -> int:
        return len(self.space)

    def __repr__(self) -> str:
        return f"HyperParameters(values={self.values!r})"

    # ------------------------------------------------------------ helpers for oracles
    def active_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Complete ``values`` with defaults and drop parameters whose conditions fail.

        Parents are resolved before children because a parameter can only be
        conditioned on one declared earlier (or on one whose value is given).
        """
        result: dict[str, Any] = {}
        for _ in range(len(self.space) + 1):  # fixed point: conditions may chain
            changed = False
            for name in self.space.keys():
                p = None if name in result else self._active_declaration(name, result)
                if p is None:
                    continue
                result[name] = values[name] if name in values else p.default
                changed = True
            if not changed:
                break
        return result

    def sample(self, rng: np.random.Generator, unit: Sequence[float] | None = None) -> dict[str, Any]:
        """Draw active values; ``unit`` (one number per parameter) replaces the random draws."""
        values: dict[str, Any] = {}
        for i, name in enumerate(self.space.keys()):
            p = self._active_declaration(name, values)
            if p is None:
                continue
            u = float(unit[i]) if unit is not None else float(rng.random())
            values[name] = p.from_unit(u)
        # Conditions on parents declared later are resolved here.
        return self.active_values(values)

    def grid(self, float_points: int = 5, order: Callable[[HyperParameter], list] | None = None
             ) -> Iterator[dict[str, Any]]:
        """Every combination of active values, once, in declaration order (the last name varies fastest).

        ``order(parameter)`` gives each parameter's values in place of ``parameter.grid(float_points)``.
        """
        names = list(self.space.keys())

        def expand(i: int, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(names):
                yield dict(values)
                return
            p = self._active_declaration(names[i], values)
            if p is None:
                yield from expand(i + 1, values)
                return
            for v in (order(p) if order is not None else p.grid(float_points)):
                values[p.name] = v
                yield from expand(i + 1, values)
            del values[p.name]

        seen: set[str] = set()
        for combo in expand(0, {}):
            combo = self.active_values(combo)
            key = values_key(combo)
            if key not in seen:
                seen.add(key)
                yield combo

    def grid_size(self, float_points: int = 5, order: Callable[[HyperParameter], list] | None = None) -> int:
        return sum(1 for _ in self.grid(float_points, order))

    def validate_values(self, values: Mapping[str, Any]) -> None:
        """Raise a clear error when ``values`` (e.g. from ``best/hparams.yaml``) do not fit the space."""
        for name, v in values.items():
            p = self.space.get(name)
            if p is None:
                raise SearchSpaceError(f"hyperparameter '{name}'", "is not in the search space")
            if not any(q.contains(v) for q in self.declarations(name)):
                raise p._err(f"value {v!r} is outside its range {p._config_fields()}")

    def summary(self) -> str:
        lines = [f"Search space summary: {len(self.space)} hyperparameters"]
        for name, p in self.space.items():
            lines.append(f"  {name} ({p.type_name}): {p._config_fields()}"
                         + (f" when {[c.to_config() for c in p.conditions]}" if p.conditions else ""))
        return "\n".join(lines)


# --------------------------------------------------------------------------- KerasTuner's module functions

def serialize(obj: HyperParameter | HyperParameters) -> dict[str, Any]:
    """``{"class_name": "Int", "config": {...}}``: a parameter or a space as plain data (KerasTuner's form)."""
    config = obj.keras_tuner_config() if isinstance(obj, HyperParameters) else obj.get_config()
    return {"class_name": type(obj).__name__, "config": config}


def deserialize(config: Mapping[str, Any]) -> HyperParameter | HyperParameters:
    """The parameter or space :func:`serialize` wrote."""
    if isinstance(config, (HyperParameter, HyperParameters)):
        return config
    name = config.get("class_name") if isinstance(config, Mapping) else None
    cls = HyperParameters if name == "HyperParameters" else parameter_class(name)
    if cls is None:
        names = [t.__name__ for t in PARAMETER_TYPES] + ["HyperParameters"]
        raise SearchSpaceError("hyperparameter config", f"unknown class_name {name!r}",
                               f"use one of {', '.join(names)}")
    return cls.from_config(config.get("config") or {})


def _is_keras_tuner_config(config: Any) -> bool:
    return (isinstance(config, Mapping) and bool(config) and set(config) <= {"space", "values"}
            and isinstance(config.get("space", []), (list, tuple)))
