"""``python -m archsearch mode=retrain from_run=<run folder>``: the run's own settings, then ``retrain.compare``.

The run's stored config (model, data, trainer, objective) is the base, as for ``resume=``: the
retrain keeps its data settings and its trials' epochs.  Only the retrain's own keys may be typed
(``RETRAIN_KEYS``); anything else would silently not apply, so it is refused by name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from archsearch.cli import config as C
from archsearch.core.console import say
from archsearch.engine.settings import RetrainOptions
from archsearch.errors import ConfigError

MODES = ("search", "retrain")
RETRAIN_ONLY = ("from_run", "hparams", "trial_id", "top_k", "baseline")
# What a mode=retrain command line may set; the run's stored config gives everything else.
RETRAIN_KEYS = ("mode", *RETRAIN_ONLY, "retrain", "trainer.verbose", "hydra")


def check_mode(cfg: DictConfig) -> str:
    """``mode`` is search or retrain, and the retrain's keys are not given to a search."""
    mode = str(cfg.get("mode") or "search")
    if mode not in MODES:
        raise ConfigError("mode", f"unknown mode {mode!r}", f"use one of: {', '.join(MODES)}")
    if mode == "search":
        given = [k for k in RETRAIN_ONLY if cfg.get(k) not in (None, "")]
        if given:
            raise ConfigError(given[0], f"is only read by mode=retrain (got {cfg.get(given[0])!r})",
                              f"add mode=retrain, or leave {given[0]}= out for a search")
        _refuse_retrain_options(cfg)
    return mode


def _refuse_retrain_options(cfg: DictConfig) -> None:
    """``retrain.*`` typed for a search would silently do nothing (a search never retrains): refused."""
    from archsearch.cli.resume import command_line_overrides

    for text in command_line_overrides() or []:
        key = text.split("=", 1)[0].lstrip("+~").strip()
        if key == "retrain" or key.startswith("retrain."):
            value = OmegaConf.select(cfg, key, default=None)
            raise ConfigError(key, f"is only read by mode=retrain (got {value!r})",
                              f"add mode=retrain from_run=<run folder>, or leave {key}= out for a search")


def _check_overrides(overrides: list[str] | None) -> None:
    from archsearch.cli.resume import _matches

    for text in overrides or []:
        key = text.split("=", 1)[0].lstrip("+~").split("@", 1)[0].strip()
        if key and not _matches(key, RETRAIN_KEYS):
            raise ConfigError(key, "mode=retrain uses the settings stored with the run and would not apply it",
                              "leave it out (mode=retrain reads from_run, trial_id, top_k, hparams, baseline, "
                              "retrain.* and trainer.verbose); to change it, run a new search")


def _stored_config(run: Path) -> tuple[dict[str, Any], list]:
    from archsearch.core.store import STORE_FILE, TrialStore

    if not run.is_dir():
        raise ConfigError("from_run", f"{run} is not a folder", "point from_run= at the run folder of a finished search")
    path = run / STORE_FILE
    if not path.exists():
        raise ConfigError("from_run", f"{run} holds no search (no {STORE_FILE})",
                          "point from_run= at the run folder of a finished search (e.g. outputs/<date>/<time>)")
    try:
        with TrialStore.open_read_only(path) as store:
            stored, trials = store.get_meta("config"), store.trials()
    except sqlite3.DatabaseError as exc:
        raise ConfigError("from_run", f"{path} is not a readable trial store ({exc})") from None
    if not stored:
        raise ConfigError("from_run", f"{path} holds no stored config (a search of the Python API)",
                          "use archsearch.training.retrain.retrain(tuner, ...) from Python for it")
    return dict(stored), trials


def _whole(value: Any, field: str, minimum: int, allow_none: bool = True) -> int | None:
    return C.whole_number(value, field, minimum, allow_none=allow_none)


def run_retrain(cfg: DictConfig) -> Path:
    """Retrain the run named by ``from_run`` and its baseline; returns ``<run>/retrain``."""
    from archsearch.core.lock import RunFolderLock
    from archsearch.cli.resume import command_line_overrides

    if cfg.get("from_run") in (None, ""):
        raise ConfigError("from_run", "is not set", "e.g. mode=retrain from_run=outputs/2026-11-22/10-00-00")
    _check_overrides(command_line_overrides())
    run = Path(str(cfg.from_run)).expanduser()
    stored, trials = _stored_config(run)
    with RunFolderLock(run):
        return _retrain(cfg, run, stored, trials)


def _retrain(cfg: DictConfig, run: Path, stored: Mapping[str, Any], trials: list) -> Path:
    from archsearch.datasets import load_data
    from archsearch.training import retrain as R
    from archsearch.training.hypermodel import as_hypermodel
    from archsearch.training.runner import Runner

    options = RetrainOptions.from_config(C.to_dict(cfg.get("retrain")))
    epochs = options.epochs
    chosen = [k for k in ("hparams", "trial_id", "top_k") if cfg.get(k) not in (None, "")]
    if len(chosen) > 1:
        raise ConfigError(chosen[1], f"cannot be combined with {chosen[0]}=", "give one of hparams=, trial_id=, top_k=")

    run_settings = C.read_settings({**stored, "objective": stored.get("objective", "val_loss")})  # the search's pass
    model_cfg = run_settings.model
    objective = run_settings.objective
    trainer, compile_settings = C.trainer_settings(run_settings)
    default_epochs = trainer.epochs  # the run's trainer.epochs (a run stored without it: TrainerSettings')
    tuned = _tuned_candidates(cfg, run, trials, objective, epochs, default_epochs)
    baseline, note = R.baseline_candidate(model_cfg.get("baseline"), cfg.get("baseline"), tuned[0].epochs,
                                          tuned[0].trial_id)

    splits = load_data(run_settings.data.section)
    if not splits.has_test:
        raise ConfigError("from_run", f"the run's data ({splits.name}) has no test split to score on",
                          "give the data a test set (npz: x_test/y_test arrays; folder: a test/ folder) or hold one "
                          "out with data.test_split=0.2, and run the search again: a test set carved out now "
                          "would hold samples the search already trained on")
    builder_path, space = C.model_settings(model_cfg)
    hypermodel, learned = C.model_for_data(builder_path, space, model_cfg, splits)
    if learned is None:
        from archsearch.keras_tuner.tuner import discover_space

        space = discover_space(hypermodel)
    build_model = as_hypermodel(hypermodel).build
    R.check_names(baseline, space, "baseline" if cfg.get("baseline") else "model.baseline")
    if cfg.get("hparams"):
        R.check_names(tuned[0], space, "hparams")
    out_dir = run / R.RESULTS_DIR
    runner = Runner(build_model, None, objective, out_dir, compile_settings=compile_settings)  # type: ignore[arg-type]
    verbose = OmegaConf.select(cfg, "trainer.verbose", default=None)  # the command line's, else the run's
    settings = R.RetrainSettings(
        repeats=options.repeats, use_validation=options.use_validation, seed=trainer.seed,
        data_seed=run_settings.data.seed, batch_size=trainer.batch_size,
        early_stopping={"patience": trainer.patience, "min_delta": trainer.min_delta} if trainer.early_stopping else None,
        verbose=C.whole_number(verbose, "trainer.verbose", 0) if verbose is not None else trainer.verbose,
        alpha=options.alpha)
    arrays = R.Arrays(splits.x_train, splits.y_train, splits.x_val, splits.y_val, splits.x_test, splits.y_test,
                      C.augmentation(run_settings.data))
    epochs_note = ("Epochs: " + "; ".join(f"{c.label}: {c.epochs} ({c.epochs_from})" for c in tuned)
                   + f"; the baseline: {baseline.epochs} (those of {tuned[0].label})")
    say(f"archsearch retrain: {run} model={model_cfg.get('name')} data={splits.name} objective={objective.label}")
    R.compare(runner.build, space, tuned, baseline, arrays, objective, settings, out_dir, [note, epochs_note])
    return out_dir


def _tuned_candidates(cfg: DictConfig, run: Path, trials: list, objective: Any, epochs: int | None,
                      default_epochs: int) -> list:
    """What to retrain: ``trial_id=`` (a Pareto search's ``knee`` too), the values of ``hparams=``, or the
    ``top_k`` best trials (default: the best; a Pareto search's knee, then the front from it outwards)."""
    from archsearch.training import retrain as R

    knee = _is_knee(cfg.get("trial_id"), objective, run)
    trial_id = None if knee else _whole(cfg.get("trial_id"), "trial_id", 0)
    top_k = _whole(cfg.get("top_k"), "top_k", 1)
    ranked = R.ranked_trials(trials, objective)
    if not ranked and not cfg.get("hparams"):
        raise ConfigError("from_run", f"{run} holds no completed trial", "retrain a run whose search completed trials")
    if trial_id is not None:
        found = {t.id: t for t in trials}.get(trial_id)
        if found is None or found not in R.retrainable(trials, objective):
            listed = ", ".join(str(t.id) for t in ranked[:10]) or "none"
            what = "the front, from its knee" if objective.is_pareto else "completed trials"
            raise ConfigError("trial_id", f"{trial_id} is not a completed trial of {run}"
                              + (" with every objective" if objective.is_pareto else ""), f"{what}: {listed}")
        return [_labelled(R.trial_candidate(found, epochs, default_epochs), found, ranked, objective)]
    if cfg.get("hparams"):
        values, record = R.read_values(cfg.hparams, "hparams")
        source = "retrain.epochs" if epochs else f"{cfg.hparams}" if record.get("epochs") else "trainer.epochs"
        return [R.Candidate(f"values of {cfg.hparams}", values, int(epochs or record.get("epochs") or default_epochs),
                            int(record.get("trial") or 0), record.get("score"), source)]
    return [_labelled(R.trial_candidate(t, epochs, default_epochs), t, ranked, objective) for t in ranked[: top_k or 1]]


def _is_knee(value: Any, objective: Any, run: Path) -> bool:
    """``trial_id=knee``: the knee of a Pareto search's front (refused, by name, for a single objective)."""
    if not isinstance(value, str) or value.strip().lower() != "knee":
        return False
    if not objective.is_pareto:
        raise ConfigError("trial_id", f"knee names a point of a Pareto search's front, but {run} optimised one "
                          f"objective ({objective.label})", "give a trial id (trial_id=3), or leave trial_id out "
                          "for the best trial")
    return True


def _labelled(candidate: Any, trial: Any, ranked: list, objective: Any) -> Any:
    """A Pareto search's knee says so in the retrain's lines and comparison.json (``knee (trial 4)``)."""
    if objective.is_pareto and ranked and trial.id == ranked[0].id:
        candidate.label = f"knee (trial {trial.id})"
    return candidate
