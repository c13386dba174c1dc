"""Turn a Hydra config into a ready-to-run search, checking every field first.

Everything a user can get wrong (names, paths, search spaces, budgets, the
objective) is checked here, before the first trial trains, and reported as an
:class:`~archsearch.errors.ArchsearchError` naming the field and the fix.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from archsearch.errors import ConfigError, SearchSpaceError
from archsearch.hyperparameters import HyperParameters
from archsearch.objective import Objective

log = logging.getLogger("archsearch")

BUDGETED_TUNERS = ("hyperband", "bohb")


def to_dict(section: Any) -> dict[str, Any]:
    """A config section as plain Python data (resolving interpolations)."""
    if section is None:
        return {}
    if isinstance(section, DictConfig):
        return OmegaConf.to_container(section, resolve=True)  # type: ignore[return-value]
    return dict(section)


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
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(field, f"module '{module_name}' has no function '{attr}'") from None


@dataclass
class FamilyHyperModel:
    """A model family from ``hypermodels/`` bound to the data's shape and the config's fixed params."""

    builder: Callable[..., Any]
    input_shape: tuple[int, ...]
    num_classes: int
    params: Mapping[str, Any]

    def build(self, hp: HyperParameters):
        import keras

        keras.backend.clear_session()
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
    try:
        return HyperParameters.from_config(space)
    except SearchSpaceError as exc:
        raise SearchSpaceError(f"model.space: {exc.field}", exc.problem, exc.fix) from None


def oracle_options(tuner_cfg: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    options = dict(tuner_cfg)
    name = options.pop("name", None)
    if not name:
        raise ConfigError("tuner.name", "is missing", "choose a tuner, e.g. tuner=random")
    return str(name), {k: v for k, v in options.items() if v is not None or k in ("max_trials",)}


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
        if not (folder / "trials.db").exists():
            raise ConfigError("resume", f"{folder} holds no search (no trials.db)",
                              "point resume= at the run folder of an earlier search")
        return folder
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # composed without @hydra.main (tests, notebooks)
        return Path("outputs") / "archsearch"


def resolve_objective(cfg: DictConfig) -> Objective:
    return Objective.create(to_dict(cfg.objective) if isinstance(cfg.objective, DictConfig) else cfg.objective)


# Settings that may change when a search is resumed: they do not change what was already measured.
RESUMABLE_CHANGES = (
    "tuner.max_trials",
    "trainer.verbose",
    "trainer.early_stopping",
    "trainer.keep_top_models",
    "max_consecutive_failed_trials",
    "summary_trials",
)
IGNORED_ON_RESUME = ("resume", "overwrite")


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, for comparing configs key by key."""
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        if not data and prefix:
            out[prefix[:-1]] = {}
        return out
    return {prefix[:-1]: data}


def compare_for_resume(stored: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Split the differences between two configs into (safe changes, refused changes)."""
    old, new = flatten(stored), flatten(current)
    safe, refused = [], []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key) or key.startswith(IGNORED_ON_RESUME):
            continue
        text = f"{key}: {old.get(key, '<unset>')} -> {new.get(key, '<unset>')}"
        (safe if key.startswith(RESUMABLE_CHANGES) else refused).append(text)
    return safe, refused
