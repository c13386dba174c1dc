"""Run one search from a composed config: data, tuner, search, summary, export.

The CLI (``python -m archsearch``) calls :func:`run`; tests and notebooks can
call it with a config from ``hydra.compose``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from archsearch.cli import config as C
from archsearch.errors import DiskFullError
from archsearch.loggers.base import Loggers
from archsearch.core.console import say
from archsearch.core.lock import RunFolderLock
from archsearch.cli.resume import search_config
from archsearch.cli.signals import signals_deferred

log = logging.getLogger("archsearch")


class ArraysFitData:
    """Training and validation arrays turned into batched datasets for each fit.

    The training batches of epoch ``e`` of trial ``t`` are a function of (data seed, t, e) alone,
    so a trial resumed after a kill, or continued from its Hyperband parent, sees exactly the
    batches an uninterrupted run would have seen.  Validation batches are built once per size.
    """

    def __init__(self, splits, seed: int = 0, augment: Callable | None = None) -> None:
        self.splits = splits
        self.seed = seed
        self.augment = augment
        self._validation: dict[int, Any] = {}

    @property
    def samples_per_epoch(self) -> int:
        """Every training sample, once per epoch: what an epoch's ``samples_per_second`` counts."""
        return len(self.splits.x_train)

    def __getstate__(self) -> dict[str, Any]:
        # Sent to worker processes: the arrays travel, the datasets built from them are rebuilt there.
        return {**self.__dict__, "_validation": {}}

    def fit_kwargs(self, batch_size: int | None, *, trial_id: int = 0, initial_epoch: int = 0, epochs: int = 1,
                   execution: int = 0) -> dict[str, Any]:
        from archsearch.datasets.pipeline import epoch_batches, make_dataset
        from archsearch.training.settings import DEFAULT_BATCH_SIZE

        size = int(batch_size or DEFAULT_BATCH_SIZE)
        s = self.splits
        train, steps = epoch_batches(s.x_train, s.y_train, batch_size=size, seed=self.seed, trial_id=trial_id,
                                     initial_epoch=initial_epoch, epochs=epochs, augment=self.augment,
                                     execution=execution)
        if size not in self._validation:
            self._validation[size] = make_dataset(s.x_val, s.y_val, batch_size=size, shuffle=False, seed=self.seed)
        return {"x": train, "steps_per_epoch": steps, "shuffle": False, "validation_data": self._validation[size]}


def prepare(cfg: DictConfig):
    """Check the whole config and build the tuner and its data; no training happens here.

    Everything that needs no backend (paths, numbers, names, the space, the data itself) is checked
    before Keras is imported: TensorFlow's import is most of a start-up, and a typo should not wait for it.
    """
    from archsearch.datasets import load_data
    from archsearch.engine.assembly import create_search_oracle
    from archsearch.export.serving import check_export_format
    from archsearch.loggers import create_loggers

    from archsearch.cli.command_search import check_trial_kind

    folder = C.run_folder(cfg)
    cfg, config, overwrite = search_config(cfg, folder)

    check_trial_kind(config)  # space=/spec= belong to trial=command
    settings = C.read_settings(config)  # every section checked and typed, in one pass
    check_export_format(settings.export.format)  # a missing converter, before any training
    builder_path, space = C.model_settings(settings.model)
    note = C.budget_note(settings)
    if note:
        say(note)
    splits = load_data(settings.data.section)  # keras.datasets import Keras; every other loader needs no backend
    hypermodel, space = C.model_for_data(builder_path, space, settings.model, splits)

    from archsearch.keras_tuner.tuner import Tuner, discover_space  # the backend, from here on

    trainer, compile_settings = C.trainer_settings(settings)
    if space is None:
        space = discover_space(hypermodel)
    oracle = create_search_oracle(settings.tuner, space, settings.objective, settings.goal.reference_point)
    loggers = create_loggers(settings.loggers.trackers or None, folder, config)  # a missing package: said now
    tuner = Tuner(
        hypermodel, objective=settings.objective, hyperparameters=space, oracle=oracle, directory=folder,
        project_name="", overwrite=overwrite, trainer=trainer, compile_settings=compile_settings,
        max_consecutive_failed_trials=settings.search.max_consecutive_failed_trials,
        keep_top_models=settings.search.keep_top_models, config=config,
        executor=settings.executor.name, parallel_trials=settings.executor.slots(settings.tuner.parallel_trials),
        executor_options={**settings.executor.options, "max_retries": settings.executor.max_retries},
        listeners=[loggers] if loggers is not None else [],
        constraints=settings.goal.constraints, measures=settings.goal.measures,
    )
    tuner.max_failed_trials = settings.search.max_failed_trials
    tuner.reference_point = settings.goal.reference_point  # a Pareto search's hypervolume, in the results table
    tuner.store.set_meta("config", config)  # a resumed search: its safe changes, from now on
    # The search never sees the test split: its data holds training and validation only.
    data = ArraysFitData(splits.without_test(), seed=settings.data.seed, augment=C.augmentation(settings.data))
    return tuner, data, splits, settings.model


def run(cfg: DictConfig) -> Path | None:
    """Run the whole search described by ``cfg``; returns the ``best/`` folder.

    The run folder's lock is taken before anything there is read or deleted, and held to the end.
    A search whose trials are the user's own program (``trial=command``) is assembled in command_search.py.
    """
    from archsearch.cli.command_search import is_command_trial, run_command_search
    from archsearch.cli.resume import stored_config

    resumed = stored_config(Path(str(cfg.resume)).expanduser()) if cfg.get("resume") else None
    if is_command_trial(resumed if resumed is not None else cfg):
        return run_command_search(cfg)
    with RunFolderLock(C.run_folder(cfg)):
        return _run_locked(cfg)


def _run_locked(cfg: DictConfig) -> Path | None:
    tuner, data, splits, model_cfg = prepare(cfg)
    say(f"archsearch: tuner={tuner.oracle.name} model={model_cfg.get('name')} data={splits.name} "
         f"({len(splits.x_train)} train / {len(splits.x_val)} val / {len(splits.x_test)} test held out, "
         f"input {splits.input_shape}, {_classes(splits)}) "
         f"objective={tuner.objective.label} -> {tuner.project_dir}")
    say(_training_line(tuner))
    _add_progress_display(cfg, tuner)
    best = None
    loggers = next((x for x in tuner.listeners if isinstance(x, Loggers)), None)
    try:
        tuner.run_search(data)
    finally:
        # Whatever stopped the search (the end, Ctrl-C, an error), what finished is summarised and
        # exported; a second Ctrl-C meanwhile waits, so the exported files are never half-written.
        # A search stopped before its first trial (a config error) has nothing to show.
        with signals_deferred():
            stopping = sys.exc_info()[1]
            try:
                if tuner.store.count() > 0:
                    best = _summarise_and_export(cfg, tuner, splits, model_cfg)
            except DiskFullError as exc:
                if stopping is None:
                    raise
                # The search already stops with its own error (often this same full disk): say this one
                # and keep the first, which names the file that did not fit.
                log.warning("could not export the results: %s", exc)
            finally:
                if loggers is not None:  # the trackers get the exported results, then the end of the run
                    loggers.on_results(best)
                    loggers.close(stopping or sys.exc_info()[1])
    return best


def _training_line(tuner) -> str:
    """``Training: mixed precision ..., jit_compile ..., steps_per_execution ...``: the policy the trials will
    train under on the device this machine shows (each worker resolves its own), stored in the run's meta.
    A setting the backend cannot follow is refused here, before any training."""
    import keras

    from archsearch.training.policy import resolve_policy, unsaid_notes, visible_device

    backend = keras.backend.backend()
    policy = resolve_policy(tuner.trainer, backend, visible_device(backend))
    tuner.store.set_meta("training_policy", policy.as_dict())
    return "Training: " + policy.describe() + "".join(f"\nNote: {note}" for note in unsaid_notes(policy))


def _classes(splits) -> str:
    """``2 classes: number, stamp``: what the model will output, so a wrong class count shows before training."""
    n, names = splits.num_classes, splits.class_names
    listed = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{n} class{'' if n == 1 else 'es'}: {listed}"


def _add_progress_display(cfg: DictConfig, tuner) -> None:
    """The live display on a terminal (``progress=true``); the plain lines stay either way."""
    from archsearch.cli.progress import SearchProgress, live_display_wanted

    show, note = live_display_wanted(bool(cfg.get("progress", True)), tuner.trainer.verbose, sys.stdout)
    if note:
        say(note)
    if show:
        tuner.listeners.append(SearchProgress(tuner.trainer.epochs))


def _summarise_and_export(cfg: DictConfig, tuner, splits, model_cfg: dict[str, Any]) -> Path | None:
    """The results table, ``trials.csv``, ``best/`` and ``report.html``: what the user keeps from a search."""
    from archsearch.export.best import export_best
    from archsearch.export.serving import check_export_format

    tuner.results_summary(C.SearchSettings.from_config(cfg).summary_trials)
    pictures = None
    if splits.task == "segmentation":
        from archsearch.report.pictures import save_predictions

        pictures = lambda model, folder: save_predictions(model, splits, folder / "predictions.png")  # noqa: E731
    best = export_best(tuner, tuner.project_dir, model_config=model_cfg, extra_pictures=pictures,
                       export_format=check_export_format(C.ExportSettings.from_config(cfg.get("export")).format))
    if best is not None:
        say(f"Best model exported to {best}")
    from archsearch.report.html import write_report_safely

    # report.html and plots/, from trials.db; after best/, whose predictions picture it shows.
    page = write_report_safely(tuner.project_dir, C.ReportSettings.from_config(cfg.get("report", True)).mode)
    if page is not None:
        say(f"Report: {page}")
    return best
