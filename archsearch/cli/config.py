"""Turn a Hydra config into a ready-to-run search, checking every field first.

Everything a user can get wrong (names, paths, search spaces, budgets, the
objective) is checked here, before the first trial trains, and reported as an
:class:`~archsearch.errors.ArchsearchError` naming the field and the fix.

:func:`read_settings` is the one pass over a config (the composed one, a resumed search's merged
one, or the one ``mode=retrain`` reads from its run): it turns every section into its typed settings
(archsearch/engine/settings.py; the trainer's fields for TrainerSettings), checking each field before
anything is built.  OmegaConf ends here: the engine reads plain data only.
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

from archsearch.core.checks import boolean, real_number, whole_number
from archsearch.engine.settings import (DataSettings, ObjectiveSettings, ExecutorSettings, ExportSettings, LoggerSettings, ReportSettings,
                                        RetrainOptions, SearchSettings, TunerSettings)
from archsearch.errors import ConfigError, SearchSpaceError, describe_exception
from archsearch.space.hyperparameters import HyperParameters
from archsearch.core.objective import Objective

log = logging.getLogger("archsearch")


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


# Every boolean key of the config (tuner options annotated ``bool`` are checked with the tuner).
BOOLEAN_KEYS = ("overwrite", "progress", "verbose_backend", "trainer.early_stopping.enabled", "data.augment", "data.include_background")


def normalise_booleans(cfg: DictConfig) -> None:
    """Read every boolean key strictly and store it back as a real bool, before anything uses it."""
    for key in BOOLEAN_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None:
            OmegaConf.update(cfg, key, boolean(value, key), merge=False)


@dataclass
class Settings:
    """Every section of a search's config, validated once by :func:`read_settings`.

    ``trainer`` and ``compile`` hold the trial runner's fields that the config gives, already
    checked and typed (a key left out falls back to TrainerSettings'/CompileSettings' own default):
    the Keras runner's classes are built from them by :func:`trainer_settings` once the data has
    loaded, so a mistake anywhere is reported before TensorFlow's import.
    """

    search: SearchSettings
    tuner: TunerSettings
    executor: ExecutorSettings
    data: DataSettings
    export: ExportSettings
    report: ReportSettings
    loggers: LoggerSettings
    retrain: RetrainOptions
    objective: Objective
    goal: ObjectiveSettings  # the objective with search.mode, constraints, measures and reference point
    model: dict[str, Any]
    trainer: dict[str, Any]
    compile: dict[str, Any]


def read_settings(cfg: Mapping[str, Any]) -> Settings:
    """The whole config (plain data: :func:`to_dict` of the composed one, or a stored one) as typed
    settings: every field is checked, in one pass, before anything is built or loaded; the first
    mistake is a ConfigError naming the field, the value and the fix."""
    trainer, compile_fields = _trainer_fields(_mapping(cfg.get("trainer"), "trainer"), _mapping(cfg.get("model"),
                                                                                                  "model"))
    search = SearchSettings.from_config(cfg)
    report = ReportSettings.from_config(cfg.get("report", True))
    export = ExportSettings.from_config(cfg.get("export"))
    tuner = TunerSettings.from_config(cfg.get("tuner"))
    goal = ObjectiveSettings.from_config({**cfg, "objective": _plain_objective(cfg.get("objective"))})
    executor = ExecutorSettings.from_config(cfg.get("executor"))
    return Settings(search=search, tuner=tuner, executor=executor, data=DataSettings.from_config(cfg.get("data")),
                    export=export, report=report, loggers=LoggerSettings.from_config(cfg.get("logger")),
                    retrain=RetrainOptions.from_config(cfg.get("retrain")), objective=goal.objective, goal=goal,
                    model=_mapping(cfg.get("model"), "model"), trainer=trainer, compile=compile_fields)


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"{value!r} is not a mapping of settings", f"e.g. {name}.<key>=<value>")
    return dict(value)


def _trainer_fields(trainer: Mapping[str, Any], model: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``trainer.*`` checked, as (TrainerSettings fields, CompileSettings fields): only what the config gives,
    so every default stays the settings class's own (``trainer.keep_top_models`` is the driver's:
    SearchSettings)."""
    from archsearch.training.optimizers import check_optimizer_names
    from archsearch.training.policy import jit_compile_setting, mixed_precision_setting, steps_per_execution_setting

    fields: dict[str, Any] = {}
    for key, minimum, allow_none in (("epochs", 1, False), ("batch_size", 1, True),
                                     ("executions_per_trial", 1, False), ("seed", 0, True), ("verbose", 0, False)):
        if key in trainer:
            fields[key] = whole_number(trainer[key], f"trainer.{key}", minimum, allow_none=allow_none)
    for key, check in (("mixed_precision", mixed_precision_setting), ("jit_compile", jit_compile_setting),
                       ("steps_per_execution", steps_per_execution_setting)):
        if key in trainer:
            fields[key] = check(trainer[key], f"trainer.{key}")
    if fields.get("verbose", 0) > 2:
        raise ConfigError("trainer.verbose", f"{fields['verbose']} is not allowed", "use 0 (silent), 1 or 2")
    early = trainer.get("early_stopping")
    early = {} if early is None else early
    if not isinstance(early, Mapping):
        raise ConfigError("trainer.early_stopping", f"{early!r} is not a mapping",
                          "e.g. trainer.early_stopping.enabled=true trainer.early_stopping.patience=3")
    if "enabled" in early:
        fields["early_stopping"] = boolean(early["enabled"], "trainer.early_stopping.enabled")
    if "patience" in early:
        fields["patience"] = whole_number(early["patience"], "trainer.early_stopping.patience", 0)
    if "min_delta" in early:
        fields["min_delta"] = real_number(early["min_delta"], "trainer.early_stopping.min_delta", 0.0)
    learning_rate = real_number(trainer.get("learning_rate"), "trainer.learning_rate", 0.0, allow_none=True,
                                strict=True)
    compile_fields: dict[str, Any] = {
        "loss": model.get("loss"), "metrics": list(model.get("metrics") or []),
        # A config without trainer.learning_rate leaves it to the optimizer's own default.
        "learning_rate": learning_rate, "loss_options": dict(model.get("loss_options") or {}),
    }
    if "optimizer" in trainer:
        check_optimizer_names([trainer["optimizer"]], "trainer.optimizer")
        compile_fields["optimizer"] = trainer["optimizer"]
    return fields, compile_fields


def trainer_settings(settings: Settings) -> tuple[Any, Any]:
    """The Keras runner's (TrainerSettings, CompileSettings) from the checked ``trainer.*`` and ``model.*``."""
    from archsearch.training.settings import CompileSettings, TrainerSettings

    return TrainerSettings(**settings.trainer), CompileSettings(**settings.compile)


def budget_note(settings: Settings) -> str | None:
    """Budget-driven tuners set each trial's epochs: the line saying that trainer.epochs is not used."""
    if not settings.tuner.sets_budgets:
        return None
    return (f"Note: tuner={settings.tuner.name} trains each trial to a budget of at most tuner.max_epochs="
            f"{settings.tuner.options['max_epochs']} epochs; trainer.epochs={settings.trainer.get('epochs')} "
            "is not used.")


def run_folder(cfg: DictConfig) -> Path:
    """The folder of this search: ``resume=<folder>`` or Hydra's output folder."""
    if cfg.get("resume"):
        folder = Path(str(cfg.resume)).expanduser()
        check_resume_folder(folder)
        return folder
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    # Outside @hydra.main (tests, notebooks) there is no run, or a composed config whose run has no folder.
    hydra = HydraConfig.instance().cfg
    if hydra is None or OmegaConf.is_missing(hydra.hydra.runtime, "output_dir"):
        return Path("outputs") / "archsearch"
    return Path(hydra.hydra.runtime.output_dir)


def resolve_objective(cfg: Mapping[str, Any]) -> Objective:
    """The objective the config names, read with its ``search.mode`` (see ObjectiveSettings)."""
    return ObjectiveSettings.from_config({**cfg, "objective": _plain_objective(cfg.get("objective"))}).objective


def _plain_objective(objective: Any) -> Any:
    from omegaconf import ListConfig

    if isinstance(objective, (DictConfig, ListConfig)):
        return OmegaConf.to_container(objective, resolve=True)
    return objective


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


def model_settings(model: Mapping[str, Any]) -> tuple[str, HyperParameters]:
    """``model.builder`` (found, not yet imported: a user's module may import Keras) and ``model.space``."""
    from archsearch.training.optimizers import check_optimizer_names

    builder_path = model.get("builder")
    if builder_path in (None, "???"):
        raise ConfigError("model.builder", "is not set", "e.g. model=custom model.builder=my_module:build")
    check_builder_module(str(builder_path))
    space = search_space(model)
    searched = space.space.get("optimizer")
    if searched is not None:
        check_optimizer_names(getattr(searched, "values", [searched.default]), "model.space.optimizer")
    return str(builder_path), space


def model_for_data(builder_path: str, space: HyperParameters, model: Mapping[str, Any],
                   splits: Any) -> tuple[Any, HyperParameters | None]:
    """The hypermodel for the loaded data, and its space (None: a define-by-run builder declares it)."""
    builder = import_builder(builder_path)
    params = dict(model.get("params") or {})
    validate = getattr(importlib.import_module(builder.__module__), "validate_config", None)
    if validate is not None:
        validate(space, splits.input_shape, splits.num_classes, params)
    if is_family_builder(builder):
        return FamilyHyperModel(builder, splits.input_shape, splits.num_classes, params), space
    return builder, (space if space.space else None)  # a KerasTuner-style build(hp)


def augmentation(data: DataSettings) -> Callable | None:
    """``data.augment``: the random flips, turns and brightness applied to training batches, or None."""
    if not data.augment:
        return None
    from archsearch.datasets import folder as folder_data

    return folder_data.augment_batch
