"""Continuing a search in a folder that already holds one (``resume=<run folder>``).

The stored config is the base and only the command line's overrides change it, so a resumed
search never needs the first run's flags again.  Settings that do not change what was already
measured (``RESUMABLE_CHANGES``) may differ and are reported; any other difference is refused by
name before anything trains, because mixing two searches in one store would make it meaningless.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from archsearch.cli.config import normalise_booleans, to_dict
from archsearch.engine.settings import ExportSettings, SearchSettings
from archsearch.errors import ConfigError


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as stored with a search: plain data, without Hydra's own section."""
    return {k: v for k, v in to_dict(cfg).items() if k != "hydra"}


def search_config(cfg: DictConfig, folder: Path) -> tuple[DictConfig, dict[str, Any], bool]:
    """The config a search runs with (a resumed or continued one: the stored config, safe changes applied),
    as the composed config and as plain data, and whether it starts afresh (``overwrite``); the notes of
    what a resume changes are said here."""
    from archsearch.core.console import say

    normalise_booleans(cfg)
    overwrite = bool(cfg.get("overwrite", False)) and not cfg.get("resume")
    if not overwrite:
        cfg, notes = continue_stored_search(cfg, folder)
        for note in notes:
            say(note)
    return cfg, plain_config(cfg), overwrite


def upgraded(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A config stored before ``trial`` chose the kind of trial (it was mode=retrain's trial id): a Keras search."""
    stored = dict(stored)
    if not isinstance(stored.get("trial"), Mapping):
        stored["trial"] = {"name": "keras"}
    return stored


def stored_config(folder: Path) -> dict[str, Any] | None:
    """The config stored with the search in ``folder`` (None: none there, or unreadable: the resume says why)."""
    from archsearch.core.store import STORE_FILE, TrialStore, UnreadableStoreError

    path = folder / STORE_FILE
    if not path.exists():
        return None
    try:
        with TrialStore.open_read_only(path) as store:
            return store.get_meta("config")
    except UnreadableStoreError:
        return None


def continue_stored_search(cfg: DictConfig, folder: Path) -> tuple[DictConfig, list[str]]:
    """Continuing a search: the config it runs with, safe changes applied, the rest refused by name; and the
    lines saying what changes (the caller's console says them).

    With ``resume=<folder>`` the stored config is the base and only the command line's overrides
    change it; a run into a folder that already holds a search must match it as a whole.
    """
    from archsearch.core.store import STORE_FILE, TrialStore, UnreadableStoreError

    path = folder / STORE_FILE
    kinds = retry_kinds(cfg.get("retry_failed"))
    if not path.exists():
        if kinds:
            raise ConfigError("retry_failed", f"is set, but {folder} holds no search whose failed trials could run "
                              "again", "use it with resume=<run folder of the search>")
        return cfg, []
    try:
        with TrialStore.open_read_only(path) as store:
            stored, count = store.get_meta("config"), store.count()
    except UnreadableStoreError as exc:
        if not exc.blank:
            raise ConfigError("resume" if cfg.get("resume") else "hydra.run.dir",
                              f"{path} is not a readable trial store ({exc.reason})",
                              "point it at a run folder of archsearch, or pass overwrite=true to start afresh"
                              ) from None
        stored, count = None, 0  # a store a kill left before its tables: nothing stored yet
    if cfg.get("resume") and stored is None:
        raise ConfigError(
            "resume", f"{path} holds no stored config: the search there was stopped while it was starting, "
            "before its settings were saved (or it was written by the Python API)",
            "start that search again with its original command and overwrite=true",
        )
    if stored is None or (count == 0 and not cfg.get("resume")):
        return cfg, []
    stored = upgraded(stored)
    overrides = command_line_overrides() if cfg.get("resume") else None
    if overrides is not None:
        cfg = resume_config(cfg, stored, overrides)
    safe, refused = compare_for_resume(stored, plain_config(cfg))
    if refused:
        raise ConfigError(
            "resume" if cfg.get("resume") else str(folder),
            "these settings differ from the search stored there and cannot change when it continues: "
            + describe_changes(refused),
            f"continue it with resume={folder} (only {', '.join(RESUMABLE_CHANGES)} may change), "
            "start a new run folder, or pass overwrite=true to start afresh",
        )
    notes = [f"Resume: {change} (takes effect now)" for change in safe]
    if kinds:
        notes.append(_reopen_failed(folder, kinds))
    return cfg, notes


# Failure kinds ``retry_failed`` may run again: a new run can end otherwise (a worker that does not
# die, more memory, a fixed builder or program, a longer trial.timeout).  Not infeasible (max_model_size refuses it again, untrained)
# nor failed_trial (the builder raised FailedTrialError: "do not run it again").
RETRYABLE_KINDS = ("lost", "oom", "error", "nan", "timeout", "no_metric")


def retry_kinds(value: Any) -> tuple[str, ...]:
    """The failure kinds ``retry_failed`` names: false, true (all of RETRYABLE_KINDS) or a list of them."""
    from omegaconf import ListConfig

    from archsearch.core.checks import boolean

    if value is None:
        return ()
    if isinstance(value, (list, tuple, ListConfig)):
        kinds = tuple(str(k) for k in value)
        wrong = [k for k in kinds if k not in RETRYABLE_KINDS]
        if wrong:
            raise ConfigError("retry_failed", f"{wrong[0]!r} is not a failure kind that can run again",
                              f"use true, false or a list of: {', '.join(RETRYABLE_KINDS)} (infeasible and "
                              "failed_trial trials would fail the same way)")
        return kinds
    return RETRYABLE_KINDS if boolean(value, "retry_failed") else ()


def _reopen_failed(folder: Path, kinds: tuple[str, ...]) -> str:
    """Make the failed trials of ``kinds`` interrupted, so the search runs them first, from scratch; the line
    saying which."""
    from archsearch.core.checkpoints import TrialFiles
    from archsearch.core.store import STORE_FILE, TrialStore

    store = TrialStore(folder / STORE_FILE)
    try:
        reopened = store.reopen_failed(kinds)
    finally:
        store.close()
    files = TrialFiles(folder)
    for trial_id in reopened:
        files.checkpoint(trial_id).unlink(missing_ok=True)  # a failed run's weights: never continued
    if reopened:
        ids = ", ".join(str(i) for i in reopened)
        runs = f"trials {ids} run" if len(reopened) > 1 else f"trial {ids} runs"
        return f"Resume: retry_failed ({', '.join(kinds)}): {runs} again from the start."
    return f"Resume: retry_failed: no trial failed as {' or '.join(kinds)}; nothing to run again."


# Settings that may change when a search is resumed: they do not change what was already measured.
RESUMABLE_CHANGES = (
    "tuner.max_trials",
    "tuner.parallel_trials",
    "tuner.max_parallel_trials",
    "executor",
    "trainer.verbose",
    "trainer.early_stopping",
    "trainer.keep_top_models",
    "max_consecutive_failed_trials",
    "summary_trials",
    "export",
    "progress",           # how the search is shown and reported: never what it measures
    "verbose_backend",
    "report",
    "logger",             # what tracks the search (logger=[tensorboard,mlflow]), not what it measures
    "model.baseline",     # read by mode=retrain only
    "data.test_samples",  # drawn from a stream of their own: training and validation stay the same
)
IGNORED_ON_RESUME = ("resume", "overwrite", "retry_failed")  # this command's, never the stored search's
# Settings of mode=retrain, which never change a search: whatever the stored config says of them.
RETRAIN_SETTINGS = ("mode", "from_run", "hparams", "trial_id", "top_k", "baseline", "retrain")
# Keys added after searches were stored: a stored config without one had its default.
ADDED_KEYS = {"data.test_split": 0.0, "export.format": ExportSettings.format, "progress": SearchSettings.progress,
              "verbose_backend": SearchSettings.verbose_backend,
              "report": True, "tuner.schedule": "archsearch", "space": None, "spec": None,
              "max_failed_trials": SearchSettings.max_failed_trials, "trial_id": None}
GROUPS = ("model", "tuner", "data", "trainer", "executor", "trial")
MAX_LISTED_CHANGES = 8


def command_line_overrides() -> list[str] | None:
    """The ``key=value`` overrides typed on the command line, or None outside ``@hydra.main``."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ValueError, ImportError, AttributeError):
        return None


def resume_config(cfg: DictConfig, stored: Mapping[str, Any], overrides: list[str]) -> DictConfig:
    """The config a resumed search runs with: the stored one, changed only where the command line says so.

    ``resume=<folder> tuner.max_trials=20`` then means "the same search, 20 trials", without
    retyping every override of the first run.  Group choices (``model=cnn``) replace the whole section.
    """
    merged = OmegaConf.create(dict(stored))
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+~").split("@", 1)[0].strip()
        if not key or _matches(key, IGNORED_ON_RESUME + RETRAIN_SETTINGS + ("hydra",)):
            continue
        if key in GROUPS and _section_name(stored.get(key)) == _section_name(OmegaConf.select(cfg, key)):
            continue  # the group the search already uses: keep its stored settings
        if text.lstrip().startswith("~"):
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(merged, parent) if parent else merged
            if isinstance(node, DictConfig) and leaf in node:
                del node[leaf]
            continue
        OmegaConf.update(merged, key, OmegaConf.select(cfg, key), merge=False, force_add=True)
    for key in IGNORED_ON_RESUME:
        if key in cfg or key in merged:
            merged[key] = cfg.get(key)
    for key in RETRAIN_SETTINGS:
        if key in cfg:
            merged[key] = OmegaConf.select(cfg, key)
    return merged


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


def _section_name(section: Any) -> Any:
    return section.get("name") if isinstance(section, (Mapping, DictConfig)) else section


def compare_for_resume(stored: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Split the differences between two configs into (safe changes, refused changes)."""
    old, new = {**ADDED_KEYS, **flatten(stored)}, {**ADDED_KEYS, **flatten(current)}
    safe, refused = [], []
    # Another model/tuner/data choice altogether: name the choice, not each of its keys.
    swapped = tuple(g for g in GROUPS if old.get(f"{g}.name") != new.get(f"{g}.name"))
    for g in swapped:
        text = f"{g}: {old.get(f'{g}.name', '<unset>')} -> {new.get(f'{g}.name', '<unset>')}"
        (safe if _matches(g, RESUMABLE_CHANGES) else refused).append(text)
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key) or _matches(key, IGNORED_ON_RESUME + RETRAIN_SETTINGS + ("hydra",) + swapped):
            continue
        text = f"{key}: {old.get(key, '<unset>')} -> {new.get(key, '<unset>')}"
        (safe if _matches(key, RESUMABLE_CHANGES) else refused).append(text)
    return safe, refused


def _matches(key: str, prefixes: tuple[str, ...]) -> bool:
    """``trainer.early_stopping.patience`` matches ``trainer.early_stopping``; ``resumed`` does not match ``resume``."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def describe_changes(changes: list[str]) -> str:
    shown = "; ".join(changes[:MAX_LISTED_CHANGES])
    if len(changes) > MAX_LISTED_CHANGES:
        shown += f"; and {len(changes) - MAX_LISTED_CHANGES} more"
    return shown
