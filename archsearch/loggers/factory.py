"""Build the loggers a config names (``logger=[tensorboard,mlflow]``), checked before any training.

``cfg.logger`` is a mapping from a logger's name to its options (each ``conf/logger/<name>.yaml``
adds its own key, so a list of options merges).  An unknown name, an unknown option or a missing
optional package is a :class:`ConfigError` here, not a failure hours into the search, and so is a
tracker whose target cannot be reached (``Logger.check``: an MLflow server that does not answer).  A logger of
your own needs no change here: ``+logger.<name>.class=my_module:MyLogger`` (a
:class:`~archsearch.loggers.base.Logger` subclass; its other options reach it as ``options``).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError, describe_exception
from archsearch.loggers.base import Logger, Loggers

# name -> (module:class, its options and their defaults, the package it needs, the extra that installs it)
_BUILT_IN: dict[str, tuple[str, dict[str, Any], str | None, str | None]] = {
    "csv": ("", {}, None, None),  # trials.csv and epochs.csv are always written (archsearch.export.best)
    "tensorboard": ("archsearch.loggers.tensorboard:TensorBoardLogger", {"dir": "tensorboard"},
                    "tensorboard", "tensorboard"),
    "mlflow": ("archsearch.loggers.mlflow:MLflowLogger", {"tracking_uri": None, "experiment_name": "archsearch"},
               "mlflow", "mlflow"),
}


def available_loggers() -> list[str]:
    return sorted(_BUILT_IN)


def create_loggers(section: Any, run_folder: str | Path, config: Mapping[str, Any] | None = None) -> Loggers | None:
    """The loggers ``section`` (``cfg.logger``) names, as one listener; None when it names none."""
    if section is None:
        return None
    if isinstance(section, str):
        section = [section]
    if isinstance(section, (list, tuple)):
        section = {name: {} for name in section}
    if not isinstance(section, Mapping):
        raise ConfigError("logger", f"{section!r} is not a list of loggers", "e.g. logger=[tensorboard,mlflow]")
    loggers: list[Logger] = []
    for name, options in section.items():
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise ConfigError(f"logger.{name}", f"{options!r} is not a mapping of options",
                              f"e.g. logger={name}, or logger.{name}.<option>=<value>")
        logger = _create(str(name), dict(options), Path(run_folder), config)
        if logger is not None:
            loggers.append(logger)
    return Loggers(loggers) if loggers else None


def _create(name: str, options: dict[str, Any], run_folder: Path, config: Mapping[str, Any] | None) -> Logger | None:
    target = options.pop("class", None)
    if target is None:
        if name not in _BUILT_IN:
            raise ConfigError("logger", f"unknown logger {name!r}",
                              f"choose from: {', '.join(available_loggers())} (a list: logger=[tensorboard,mlflow]), "
                              f"or name your own with +logger.{name}.class=my_module:MyLogger")
        target, defaults, package, extra = _BUILT_IN[name]
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            raise ConfigError(f"logger.{name}.{unknown[0]}", "is not an option of this logger",
                              f"its options: {', '.join(defaults) or 'none'}")
        if package is not None and importlib.util.find_spec(package) is None:
            raise ConfigError("logger", f"{name} needs the {package!r} package, which is not installed",
                              f'pip install "archsearch[{extra}]"')
        if not target:
            return None
        options = {**defaults, **options}
    cls = _import_class(str(target), f"logger.{name}.class")
    logger = cls(run_folder, config, options)
    logger.check()  # an unreachable tracker: one line now, not a search that logs nothing
    return logger


def _import_class(path: str, field: str) -> type[Logger]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(field, f"{path!r} is not of the form module:Class", "e.g. my_loggers:WandbLogger")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ConfigError(field, f"cannot import {path} ({exc})", "check the name and that it is on PYTHONPATH") from exc
    except AttributeError:
        raise ConfigError(field, f"module '{module_name}' has no {attr!r}") from None
    except Exception as exc:
        raise ConfigError(field, f"importing {module_name} failed: {describe_exception(exc)}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Logger)):
        raise ConfigError(field, f"{path} is not a subclass of archsearch.loggers.Logger")
    return cls
