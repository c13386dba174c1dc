"""Read a spec file (or mapping) into :class:`CloudSpec`: Hydra overrides, notes and program arguments."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archsearch.errors import ConfigError
from archsearch.spec.fields import camel, show
from archsearch.spec.overrides import format_value, override


@dataclass(frozen=True)
class CloudSpec:
    """What a spec file asks for, in archsearch's terms.

    ``overrides`` are Hydra overrides for the CLI to put before the user's own (so the user's win);
    ``notes`` say, one line per cloud-only field, what happens on this machine instead; ``program`` are
    the arguments the service would pass to the program (``trainingInput.args``, ``--job-dir``) and
    ``module`` its Python module (``python -m <module>`` when no ``trial.command`` is given).
    """

    source: str
    overrides: list[str]
    notes: list[str] = field(default_factory=list)
    program: list[str] = field(default_factory=list)
    module: str | None = None


@dataclass
class Search:
    """The search a spec describes, filled in field by field with the service's defaults."""

    source: str
    tuner: str = "bayesian"          # ALGORITHM_UNSPECIFIED: the service's own (Bayesian) optimisation
    max_trials: int = 1              # the service's documented default
    parallel_trials: int = 1         # the service's documented default
    metric: str = "training/hptuning/metric"
    direction: str = "max"           # goal MAXIMIZE is the documented default
    max_failed_trials: int | None = None
    pruner: str = "none"
    measurement: str = "last"        # the service takes a trial's last measurement unless told BEST
    space: dict[str, dict] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)   # the program's environment (trialJobSpec's env)
    notes: list[str] = field(default_factory=list)
    program: list[str] = field(default_factory=list)
    module: str | None = None

    def note(self, where: str, value: Any, local: str) -> None:
        self.notes.append(f"{where}={show(value)}: {local}")

    def overrides(self) -> list[str]:
        """Group choices first (a spec's parameters go to a program: ``trial=command``; the same choice
        on the command line again is harmless), then values; the whole space as one dict override."""
        lines = ["trial=command", f"tuner={self.tuner}", f"tuner.max_trials={self.max_trials}",
                 f"tuner.parallel_trials={self.parallel_trials}", f"tuner.pruner={self.pruner}",
                 override("objective", {"name": self.metric, "direction": self.direction})]
        if self.max_failed_trials is not None:
            lines.append(f"max_failed_trials={self.max_failed_trials}")
        lines.append(f"trial.measurement={self.measurement}")
        # One variable each: trial.env is an empty mapping that a whole-dict override cannot extend.
        lines.extend(override(f"+trial.env.{name}", value) for name, value in self.env.items())
        lines.append(f"space={format_value(self.space)}")
        return lines

    def result(self) -> CloudSpec:
        _check_space(self.space, self.source)
        return CloudSpec(self.source, self.overrides(), list(self.notes), list(self.program), self.module)


def read_spec(spec: str | os.PathLike | Mapping[str, Any]) -> CloudSpec:
    """Read a spec in either of the service's formats (see docs/cloud_spec.md).

    ``spec`` is a YAML or JSON file, or the mapping already read.  Raises one ConfigError naming the
    field for anything archsearch cannot honour, and for any field it does not know.
    """
    from archsearch.spec import legacy, vertex

    source, body = _load(spec)
    if not isinstance(body, Mapping) or not body:
        raise ConfigError(f"spec={source}", f"expected a mapping of fields, got {show(body)}",
                          "give a trainingInput.hyperparameters or a studySpec spec (docs/cloud_spec.md)")
    keys = {camel(str(k)) for k in body}
    is_legacy = bool(keys & legacy.TOP_FIELDS - {"labels", "jobId"})
    is_vertex = bool(keys & vertex.TOP_FIELDS - {"labels", "displayName"})
    if is_legacy and is_vertex:
        raise ConfigError(f"spec={source}", "holds both the older form (trainingInput/hyperparameters) and the "
                          "newer one (studySpec)", "keep one of them")
    search = Search(source)
    if is_legacy:
        legacy.read(body, search)
    elif is_vertex:
        vertex.read(body, search)
    else:
        raise ConfigError(f"spec={source}", f"not a tuning spec: its fields are {', '.join(map(str, body))}",
                          "expected trainingInput.hyperparameters (AI Platform) or studySpec (Vertex AI)")
    return search.result()


def _load(spec: str | os.PathLike | Mapping[str, Any]) -> tuple[str, Any]:
    if isinstance(spec, Mapping):
        return "<mapping>", spec
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"spec={spec}", "no such file", "give the path of the spec's YAML or JSON file")
    try:
        return str(path), yaml.load(path.read_text(encoding="utf-8"), Loader=_SpecLoader)  # noqa: S506 (safe loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"spec={spec}", f"is not valid YAML: {exc}", "fix the file's syntax") from None
    except ConfigError as exc:
        raise ConfigError(f"spec={spec}", exc.problem, exc.fix) from None


class _SpecLoader(yaml.SafeLoader):
    """YAML as the service reads it (YAML 1.2's booleans: ``yes`` is a string, a category), refusing a key
    written twice (YAML would silently keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError("spec", f"field {key} is written twice (line {key_node.start_mark.line + 1})",
                                  "keep one of them")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def _check_space(space: dict[str, dict], source: str) -> None:
    """Build the space as a search would, so a spec that reads here never fails later."""
    from archsearch.space.hyperparameters import HyperParameters

    hp = HyperParameters.from_config(space)
    if hp.dropped:
        raise ConfigError(f"spec={source}", "; ".join(hp.dropped.values()), "fix the conditional parameter's values")
