"""Turn a Hydra config into a ready-to-run search, checking every field first.

Everything a user can get wrong (names, paths, search spaces, budgets, the
objective) is checked here, before the first trial trains, and reported as an
:class:`~archsearch.errors.ArchsearchError` naming the field and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from archsearch.core.checks import real_number, whole_number
from archsearch.errors import ConfigError, SearchSpaceError, describe_exception
from archsearch.space.hyperparameters import HyperParameters
from archsearch.core.objective import Objective

log = logging.getLogger("archsearch")

BUDGETED_TUNERS = ("hyperband", "bohb", "asha")


def to_dict(section: Any) -> dict[str, Any]:
    """A config section as plain Python data (resolving interpolations)."""
    if section is None:
        return {}
    if isinstance(section, DictConfig):
        return OmegaConf.to_container(section, resolve=True)  # type: ignore[return-value]
    return dict(section)


def check_builder_module(path: str, field: str = "model.builder") -> None:
    """``module:function`` whose module can be found, checked without running it: a user's module may
    import Keras, and a typo in its name should not wait for TensorFlow.  :func:`import_builder` imports it."""
    if not isinstance(path, str) or ":" not in path:
        raise ConfigError(field, f"{path!r} is not of the form module:function", "e.g. model.builder=my_models:build")
    module_name = path.partition(":")[0]
    missing = f"No module named '{module_name}'"
    try:
        found = module_name in sys.modules or importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError as exc:  # its parent package is missing
        found, missing = False, str(exc)
    except (ImportError, ValueError):  # a parent package that fails to import: import_builder says why
        return
    if not found:
        raise ConfigError(field, f"cannot import module '{module_name}' ({missing})",
                          "check the name and that its folder is on PYTHONPATH")


def import_builder(path: str, field: str = "model.builder") -> Callable[..., Any]:
    """Import ``package.module:function``; a clear error if it does not import."""
    if not isinstance(path, str) or ":" not in path:
        raise ConfigError(field, f"{path!r} is not of the form module:function", "e.g. model.builder=my_models:build")
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(field, f"cannot import module '{module_name}' ({exc})",
                          "check the name and that its folder is on PYTHONPATH") from exc
    except Exception as exc:  # the user's module itself is broken (syntax error, failing top-level code)
        raise ConfigError(field, f"importing module '{module_name}' failed: {describe_exception(exc)}",
                          "fix the module; run `python -c 'import "
                          f"{module_name}'` to see the full traceback") from exc
    try:
        builder = getattr(module, attr)
    except AttributeError:
        raise ConfigError(field, f"module '{module_name}' has no function '{attr}'") from None
    if not callable(builder):
        raise ConfigError(field, f"'{path}' is a {type(builder).__name__}, not a function")
    return builder




@dataclass
class FamilyHyperModel:
    """A model family from ``hypermodels/`` bound to the data's shape and the config's fixed params."""

    builder: Callable[..., Any]
    input_shape: tuple[int, ...]
    num_classes: int
    params: Mapping[str, Any]

    def build(self, hp: HyperParameters):
        import keras

        keras.backend.clear_session(free_memory=False)  # fresh layer names; the runner frees memory
        return self.builder(hp, input_shape=self.input_shape, num_classes=self.num_classes, **self.params)


def is_family_builder(builder: Callable[..., Any]) -> bool:
    """Families take ``input_shape``/``num_classes`` keywords; KerasTuner builders take only ``hp``."""
    import inspect

    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False
    return "input_shape" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def search_space(model_cfg: Mapping[str, Any]) -> HyperParameters:
    space = model_cfg.get("space") or {}
    if not isinstance(space, Mapping):
        raise ConfigError("model.space", f"must be a mapping of parameter declarations, got {space!r}")
    _check_space_numbers(space)
    try:
        return HyperParameters.from_config(space, where="model.space")
    except SearchSpaceError as exc:
        raise SearchSpaceError(f"model.space: {exc.field}", exc.problem, exc.fix) from None


NUMBER_FIELDS = ("min", "max", "step", "default")


def _check_space_numbers(space: Mapping[str, Any]) -> None:
    """``model.space.units_1.min=abc``: one line naming the field, not a ValueError from deep inside Int."""
    for name, spec in space.items():
        kind = str(spec.get("type", "")).lower() if isinstance(spec, Mapping) else ""
        if kind not in ("int", "float"):
            continue
        for key in NUMBER_FIELDS:
            value = spec.get(key)
            if value is None or _is_number(value):
                continue
            example = 16 if kind == "int" else 0.001
            raise SearchSpaceError(f"model.space.{name}.{key}", f"is {value!r}, not a number",
                                   f"the min, max, step and default of a {kind} parameter are numbers, "
                                   f"e.g. model.space.{name}.{key}={example}")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def check_overrides(cfg: DictConfig, overrides: Sequence[str] | None = None) -> None:
    """Refuse ``key={}`` where the config holds a non-empty mapping.

    Hydra merges the override's mapping into the configured one, so ``model.space={}`` changes
    nothing and the search would run the whole configured space the user meant to empty.
    ``overrides`` defaults to the command line's (Hydra's task overrides), when Hydra runs.
    """
    if overrides is None:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_delete() or override.value() != {}:
            continue
        key = override.key_or_group
        current = OmegaConf.select(cfg, key, default=None)
        if isinstance(current, DictConfig) and len(current) > 0:
            names = list(current.keys())
            listed = ", ".join(str(n) for n in names[:4]) + (", ..." if len(names) > 4 else "")
            raise ConfigError(
                key, f"the override {key}={{}} does not empty it: Hydra merges it into the configured mapping, "
                f"which keeps its {len(names)} entries ({listed})",
                f"drop the override to use them; to replace {key} delete it first: '~{key}' "
                f"'+{key}={{...}}'" + ("; to fix a parameter give it one value, e.g. model.space.units_1=64"
                                      if key == "model.space" else ""),
            )


PARALLEL_KEYS = ("parallel_trials", "max_parallel_trials")  # where trials run, not how the tuner chooses


def oracle_options(tuner_cfg: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    options = {k: v for k, v in tuner_cfg.items() if k not in PARALLEL_KEYS}
    name = options.pop("name", None)
    if not name:
        raise ConfigError("tuner.name", "is missing", "choose a tuner, e.g. tuner=random")
    return str(name), {k: v for k, v in options.items() if v is not None or k in ("max_trials",)}


TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")
# Every boolean key of the config (tuner options annotated ``bool`` are checked with the tuner).
BOOLEAN_KEYS = ("overwrite", "progress", "verbose_backend", "trainer.early_stopping.enabled", "data.augment", "data.include_background")


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


def normalise_booleans(cfg: DictConfig) -> None:
    """Read every boolean key strictly and store it back as a real bool, before anything uses it."""
    for key in BOOLEAN_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None:
            OmegaConf.update(cfg, key, boolean(value, key), merge=False)


def report_mode(value: Any) -> str:
    """The config's ``report``: true (``report.html`` and its PNGs), ``html`` (no PNGs) or false."""
    if isinstance(value, str) and value.strip().lower() == "html":
        return "html"
    try:
        return "full" if boolean(value, "report") else "off"
    except ConfigError:
        raise ConfigError("report", f"{value!r} is not allowed",
                          "use true (report.html and plots/*.png), html (the page only) or false") from None


def check_run_settings(cfg: Mapping[str, Any]) -> None:
    """Numbers in trainer.* and the top level: checked up front, so a typo never reaches trial 1."""
    trainer = cfg.get("trainer") or {}
    whole_number(trainer.get("epochs", 5), "trainer.epochs", 1)
    whole_number(trainer.get("batch_size", 32), "trainer.batch_size", 1, allow_none=True)
    real_number(trainer.get("learning_rate"), "trainer.learning_rate", 0.0, allow_none=True, strict=True)
    whole_number(trainer.get("executions_per_trial", 1), "trainer.executions_per_trial", 1)
    whole_number(trainer.get("seed"), "trainer.seed", 0, allow_none=True)
    whole_number(trainer.get("keep_top_models", 5), "trainer.keep_top_models", 1, allow_none=True)
    verbose = whole_number(trainer.get("verbose", 0), "trainer.verbose", 0)
    if verbose > 2:
        raise ConfigError("trainer.verbose", f"{verbose} is not allowed", "use 0 (silent), 1 or 2")
    early = trainer.get("early_stopping") or {}
    if not isinstance(early, Mapping):
        raise ConfigError("trainer.early_stopping", f"{early!r} is not a mapping",
                          "e.g. trainer.early_stopping.enabled=true trainer.early_stopping.patience=3")
    whole_number(early.get("patience", 3), "trainer.early_stopping.patience", 0)
    real_number(early.get("min_delta", 0.0), "trainer.early_stopping.min_delta", 0.0)
    whole_number(cfg.get("max_consecutive_failed_trials", 3), "max_consecutive_failed_trials", 1)
    whole_number(cfg.get("summary_trials", 10), "summary_trials", 0)
    report_mode(cfg.get("report", True))


def check_tuner_option_types(tuner_name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Options annotated ``int``/``float`` in the oracle's signature must be numbers (``max_trials=abc``),
    and those annotated ``bool`` strict booleans; returns the options with booleans read.

    Only the type is checked here; each oracle checks its own ranges (``factor >= 2``, ...).
    """
    import inspect

    from archsearch.oracles.base import oracle_class

    annotations: dict[str, str] = {}
    for klass in reversed(oracle_class(tuner_name).__mro__):
        init = vars(klass).get("__init__")
        if init is not None:
            for p in inspect.signature(init).parameters.values():
                annotations[p.name] = str(p.annotation)
    checked = dict(options)
    for name, value in options.items():
        kind = annotations.get(name, "")
        allow_none = "None" in kind
        if kind.startswith("bool"):
            if value is not None or not allow_none:
                checked[name] = boolean(value, f"tuner.{name}")
        elif kind.startswith("int"):
            whole_number(value, f"tuner.{name}", 0 if name == "seed" else None, allow_none=allow_none)
        elif kind.startswith("float"):
            real_number(value, f"tuner.{name}", allow_none=allow_none)
    if "schedule" in options and "schedule" in annotations:  # Hyperband's plan: checked before the data loads
        from archsearch.oracles.successive_halving import check_schedule

        check_schedule(options["schedule"])
    return checked


def check_budget_settings(tuner_name: str, tuner_cfg: Mapping[str, Any], trainer_cfg: Mapping[str, Any],
                          echo: Callable[[str], None]) -> None:
    """Budget-driven tuners set each trial's epochs; say once that trainer.epochs is not used."""
    if tuner_name in BUDGETED_TUNERS and "max_epochs" in tuner_cfg:
        echo(
            f"Note: tuner={tuner_name} trains each trial to a budget of at most tuner.max_epochs="
            f"{tuner_cfg['max_epochs']} epochs; trainer.epochs={trainer_cfg.get('epochs')} is not used."
        )


def run_folder(cfg: DictConfig) -> Path:
    """The folder of this search: ``resume=<folder>`` or Hydra's output folder."""
    if cfg.get("resume"):
        folder = Path(str(cfg.resume)).expanduser()
        check_resume_folder(folder)
        return folder
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # composed without @hydra.main (tests, notebooks)
        return Path("outputs") / "archsearch"


def resolve_objective(cfg: DictConfig) -> Objective:
    if cfg.get("objective") is None:  # the Python API's None is KerasTuner's default; a config names a metric
        raise ConfigError("objective", "is not set", "name the metric to optimise, e.g. objective=val_accuracy")
    return Objective.create(to_dict(cfg.objective) if isinstance(cfg.objective, DictConfig) else cfg.objective)


def check_resume_folder(folder: Path) -> None:
    """``resume=<folder>`` must name an existing, writable folder that holds a search."""
    import os

    from archsearch.core.store import STORE_FILE

    if not folder.exists():
        raise ConfigError("resume", f"{folder} does not exist",
                          "point resume= at the run folder of an earlier search (e.g. outputs/<date>/<time>)")
    if not folder.is_dir():
        raise ConfigError("resume", f"{folder} is a file, not a run folder",
                          "point resume= at the run folder of an earlier search")
    if not (folder / STORE_FILE).exists():
        raise ConfigError("resume", f"{folder} holds no search (no {STORE_FILE})",
                          "point resume= at the run folder of an earlier search")
    if not os.access(folder, os.W_OK | os.X_OK) or not os.access(folder / STORE_FILE, os.R_OK | os.W_OK):
        raise ConfigError("resume", f"{folder} is not writable, and a resumed search writes its trials there",
                          "make it writable (e.g. chmod -R u+w), or copy the run folder somewhere writable and "
                          "resume the copy")


def executor_settings(cfg: Mapping[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """(executor name, trials at a time, executor options) from ``executor.*`` and ``tuner.parallel_trials``."""
    from archsearch.executors import EXECUTORS
    from archsearch.executors.process import parallel_trials

    tuner = to_dict(cfg.get("tuner"))
    given = {k: tuner[k] for k in PARALLEL_KEYS if tuner.get(k) not in (None, "auto")}
    if len(set(map(str, given.values()))) > 1:
        raise ConfigError("tuner.max_parallel_trials", f"{given['max_parallel_trials']!r} differs from "
                          f"tuner.parallel_trials={given['parallel_trials']!r}", "set only one of them")
    key = next(iter(given), "parallel_trials")
    slots = parallel_trials(given.get(key, "auto"), f"tuner.{key}")
    executor = to_dict(cfg.get("executor")) or {"name": "inline"}
    name = executor.pop("name", None)
    if name not in EXECUTORS:
        raise ConfigError("executor", f"unknown executor {name!r}", f"choose one of: {', '.join(EXECUTORS)}")
    if "max_retries" in executor:
        whole_number(executor["max_retries"], "executor.max_retries", 0)
    if "max_trials_per_worker" in executor:
        whole_number(executor["max_trials_per_worker"], "executor.max_trials_per_worker", 1)
    return str(name), slots, executor
