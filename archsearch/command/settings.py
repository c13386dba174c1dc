"""``trial=command``: the typed settings of a trial that runs the user's own program (conf/trial/command.yaml).

Read once, before any trial runs, so a typo in the command line's ``trial.*`` is one ConfigError naming the
field; every default is stated here and in the YAML alike (tests/test_defaults.py).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch.core.checks import boolean, real_number
from archsearch.errors import ConfigError

ARG_STYLES = ("flags", "flags_space", "hydra", "env")
MEASUREMENTS = ("best", "last")
_FIELDS = {"name", "command", "cwd", "args", "budget_arg", "env", "timeout", "grace_period", "measurement", "metrics"}
_METRIC_FIELDS = {"stdout", "pattern", "hypertune", "tensorboard", "client"}


@dataclass(frozen=True)
class MetricSources:
    """Where the program's metrics are read from (all of them are watched while it runs)."""

    stdout: bool = True
    pattern: str | None = None  # None: ``name=value`` / ``name: value`` pairs
    hypertune: bool = True
    tensorboard: str | None = "."  # a folder relative to the trial's folder; None: not read
    client: bool = True

    @classmethod
    def from_config(cls, section: Any) -> MetricSources:
        values = _mapping(section, "trial.metrics")
        _known(values, _METRIC_FIELDS, "trial.metrics")
        default = cls()
        pattern = values.get("pattern", default.pattern)
        if pattern is not None:
            pattern = str(pattern)
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ConfigError("trial.metrics.pattern", f"{pattern!r} is not a regular expression ({exc})",
                                  "give a Python regex with named groups name and value") from None
            if "value" not in compiled.groupindex:
                raise ConfigError("trial.metrics.pattern", f"{pattern!r} has no named group 'value'",
                                  r"e.g. trial.metrics.pattern='(?P<name>\w+)=(?P<value>[-+.\deE]+)'")
        tensorboard = values.get("tensorboard", default.tensorboard)
        if tensorboard is False:
            tensorboard = None
        return cls(
            stdout=boolean(values.get("stdout", default.stdout), "trial.metrics.stdout"),
            pattern=pattern,
            hypertune=boolean(values.get("hypertune", default.hypertune), "trial.metrics.hypertune"),
            tensorboard=None if tensorboard is None else str(tensorboard),
            client=boolean(values.get("client", default.client), "trial.metrics.client"),
        )


@dataclass(frozen=True)
class CommandSettings:
    """How each trial's program is started, watched and stopped."""

    command: tuple[str, ...]
    cwd: str | None = None
    args: str = "flags"
    budget_arg: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    grace_period: float = 10.0
    measurement: str = "best"
    metrics: MetricSources = MetricSources()

    @classmethod
    def from_config(cls, section: Any) -> CommandSettings:
        values = _mapping(section, "trial")
        _known(values, _FIELDS, "trial")
        default_grace = cls.__dataclass_fields__["grace_period"].default
        args = str(values.get("args", "flags"))
        if args not in ARG_STYLES:
            raise ConfigError("trial.args", f"{args!r} is not a way to pass values", f"use one of {', '.join(ARG_STYLES)}")
        measurement = str(values.get("measurement", "best"))
        if measurement not in MEASUREMENTS:
            raise ConfigError("trial.measurement", f"{measurement!r} is not allowed", "use best or last")
        env = _mapping(values.get("env"), "trial.env")
        budget_arg = values.get("budget_arg")
        return cls(
            command=command_words(values.get("command")),
            cwd=None if values.get("cwd") in (None, "") else str(values["cwd"]),
            args=args,
            budget_arg=None if budget_arg in (None, "") else str(budget_arg),
            env={str(k): str(v) for k, v in env.items()},
            timeout=real_number(values.get("timeout"), "trial.timeout", 0.0, allow_none=True, strict=True),
            grace_period=float(real_number(values.get("grace_period", default_grace), "trial.grace_period", 0.0)),
            measurement=measurement,
            metrics=MetricSources.from_config(values.get("metrics")),
        )


def command_words(command: Any) -> tuple[str, ...]:
    """``trial.command`` as the program's argument list: a string is split as a shell would (no shell runs)."""
    if command is None or command == "???" or command == "" or command == []:
        raise ConfigError("trial.command", "is not set",
                          "name the program to run per trial, e.g. trial.command='python train.py --data d/'")
    if isinstance(command, str):
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise ConfigError("trial.command", f"{command!r} cannot be split into arguments ({exc})",
                              "close the quotes, or give a list: trial.command=[python,train.py]") from None
    elif isinstance(command, (list, tuple)):
        words = [str(word) for word in command]
    else:
        raise ConfigError("trial.command", f"{command!r} is not a command", "give a string or a list of arguments")
    if not words:
        raise ConfigError("trial.command", "is empty", "name the program to run, e.g. trial.command='python train.py'")
    return tuple(words)


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"{value!r} is not a mapping", f"e.g. {name}.<key>=<value>")
    return dict(value)


def _known(values: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", "is not an option of trial=command",
                          f"use one of: {', '.join(sorted(known - {'name'}))}")
