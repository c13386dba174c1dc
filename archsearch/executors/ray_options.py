"""The Ray executor's options (``executor.*`` of conf/executor/ray.yaml), checked once, before Ray starts.

Each wrong value is one ConfigError naming the field and the fix; the result is what
:class:`~archsearch.executors.ray.RayExecutor` runs with (``validate_options({})`` gives the defaults,
which tests/test_defaults.py compares with the YAML).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from numbers import Real
from typing import Any

from archsearch.core.checks import whole_number
from archsearch.errors import ConfigError

OPTIONS = ("address", "resources", "storage", "max_trials_per_worker", "init")
DEFAULT_RESOURCES = {"num_cpus": 1}
DEFAULT_MAX_TRIALS_PER_WORKER = 10


def validate_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(k for k in options if k not in OPTIONS)
    if unknown:
        raise ConfigError(f"executor.{unknown[0]}", "is not an option of the 'ray' executor",
                          f"its options are: {', '.join(OPTIONS)}, max_retries")
    address = options.get("address")
    if address is not None:
        if not isinstance(address, str) or not address.strip():
            raise ConfigError("executor.address", f"must be auto, ray://<head>:10001 or <head>:6379, not {address!r}",
                              "or null for a local Ray started for the run")
        address = address.strip()
    storage = options.get("storage")
    if storage is not None and (not isinstance(storage, (str, os.PathLike)) or not str(storage).strip()):
        raise ConfigError("executor.storage", f"must be a folder path, not {storage!r}",
                          "or null for the run folder")
    max_trials = options.get("max_trials_per_worker")
    max_trials = DEFAULT_MAX_TRIALS_PER_WORKER if max_trials is None else int(
        whole_number(max_trials, "executor.max_trials_per_worker", 1))
    init = options.get("init") or {}
    if not isinstance(init, Mapping):
        raise ConfigError("executor.init", f"must be a mapping of ray.init arguments, not {init!r}",
                          "e.g. executor.init={num_cpus: 8}")
    if "address" in init:
        raise ConfigError("executor.init.address", "is set by executor.address", "set executor.address instead")
    return {"address": address, "resources": _validate_resources(options.get("resources")),
            "storage": None if storage is None else str(storage), "max_trials_per_worker": max_trials,
            "init": dict(init)}


def _validate_resources(resources: Any) -> dict[str, float]:
    if resources is None:
        return dict(DEFAULT_RESOURCES)
    if not isinstance(resources, Mapping):
        raise ConfigError("executor.resources", f"must be a mapping, not {resources!r}",
                          "e.g. executor.resources={num_cpus: 4, num_gpus: 1}")
    out: dict[str, float] = {}
    for key, value in resources.items():
        key = str(key)
        field_name = f"executor.resources.{key}"
        if value is None:  # not asked for (the config's memory: null)
            continue
        if key in ("CPU", "GPU"):
            raise ConfigError(field_name, "is spelled num_cpus / num_gpus here", f"use num_{key.lower()}s")
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
            raise ConfigError(field_name, f"must be a number >= 0, not {value!r}")
        out[key] = float(value) if key != "memory" else int(value)
    if "num_cpus" not in out:
        out = {"num_cpus": 1.0, **out}  # Ray's own default for scheduling an actor
    return out
