"""Run one search from a composed config: data, tuner, search, summary, export.

The CLI (``python -m archsearch``) calls :func:`run`; tests and notebooks can
call it with a config from ``hydra.compose``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from archsearch.cli import config as C
from archsearch.errors import ConfigError, DiskFullError
from archsearch.loggers.base import Loggers
from archsearch.core.lock import RunFolderLock
from archsearch.cli.resume import continue_stored_search, plain_config

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


def prepare(cfg: DictConfig, echo: Callable[[str], None] = print):
    """Check the whole config and build the tuner and its data; no training happens here.

    Everything that needs no backend (paths, numbers, names, the space, the data itself) is checked
    before Keras is imported: TensorFlow's import is most of a start-up, and a typo should not wait for it.
    """
    from archsearch.datasets import load_data
    from archsearch.loggers import create_loggers
    from archsearch.oracles import available_oracles, create_oracle
    from archsearch.training.optimizers import check_optimizer_names
    from archsearch.export.serving import check_export_format

    folder = C.run_folder(cfg)
    C.normalise_booleans(cfg)
    overwrite = bool(cfg.get("overwrite", False)) and not cfg.get("resume")
    if not overwrite:
        cfg = continue_stored_search(cfg, folder, echo)
    C.check_run_settings(cfg)
    check_export_format(C.to_dict(cfg.get("export")).get("format"))  # a missing converter, before any training
    model_cfg = C.to_dict(cfg.model)
    tuner_cfg = C.to_dict(cfg.tuner)
    trainer_cfg = C.to_dict(cfg.trainer)
    data_cfg = C.to_dict(cfg.data)

    tuner_name, options = C.oracle_options(tuner_cfg)
    if tuner_name not in available_oracles():
        raise ConfigError("tuner.name", f"unknown tuner {tuner_name!r}", f"choose one of: {', '.join(available_oracles())}")
    options = C.check_tuner_option_types(tuner_name, options)
    objective = C.resolve_objective(cfg)
    builder_path = model_cfg.get("builder")
    if builder_path in (None, "???"):
        raise ConfigError("model.builder", "is not set", "e.g. model=custom model.builder=my_module:build")
    C.check_builder_module(str(builder_path))  # found without importing it (a user's module may import Keras)
    space = C.search_space(model_cfg)
    executor_name, slots, executor_options = C.executor_settings(cfg)
    C.check_budget_settings(tuner_name, tuner_cfg, trainer_cfg, echo)
    check_optimizer_names([trainer_cfg.get("optimizer", "adam")], "trainer.optimizer")
    searched = space.space.get("optimizer")
    if searched is not None:
        check_optimizer_names(getattr(searched, "values", [searched.default]), "model.space.optimizer")
    splits = load_data(data_cfg)  # keras.datasets import Keras; every other loader needs no backend
    builder = C.import_builder(str(builder_path))
    params = dict(model_cfg.get("params") or {})
    validate = getattr(__import__(builder.__module__, fromlist=["_"]), "validate_config", None)
    if validate is not None:
        validate(space, splits.input_shape, splits.num_classes, params)
    if C.is_family_builder(builder):
        hypermodel: Any = C.FamilyHyperModel(builder, splits.input_shape, splits.num_classes, params)
    else:
        hypermodel = builder  # a KerasTuner-style build(hp)
        if not space.space:
            space = None  # define-by-run: the tuner learns the space by running the builder

    from archsearch.training.settings import CompileSettings, TrainerSettings  # the backend, from here on
    from archsearch.keras_tuner.tuners import Tuner, discover_space

    early = trainer_cfg.get("early_stopping") or {}
    default = TrainerSettings()  # a key left out of the config (~trainer.epochs) falls back to the Python default
    trainer = TrainerSettings(
        epochs=int(trainer_cfg.get("epochs", default.epochs)),
        batch_size=trainer_cfg.get("batch_size", default.batch_size),
        verbose=int(trainer_cfg.get("verbose", default.verbose)),
        early_stopping=bool(early.get("enabled", default.early_stopping)),
        patience=int(early.get("patience", default.patience)),
        min_delta=float(early.get("min_delta", default.min_delta)),
        executions_per_trial=int(trainer_cfg.get("executions_per_trial", default.executions_per_trial)),
        seed=None if trainer_cfg.get("seed") is None else int(trainer_cfg["seed"]),
    )
    compile_settings = CompileSettings(
        loss=model_cfg.get("loss"),
        metrics=list(model_cfg.get("metrics") or []),
        optimizer=trainer_cfg.get("optimizer", CompileSettings.optimizer),
        learning_rate=trainer_cfg.get("learning_rate"),
        loss_options=dict(model_cfg.get("loss_options") or {}),
    )
    if space is None:
        space = discover_space(hypermodel)
    oracle = create_oracle(tuner_name, space, objective, **options)
    loggers = create_loggers(cfg.get("logger"), folder, plain_config(cfg))  # a missing package: said before training
    tuner = Tuner(
        hypermodel,
        objective=objective,
        hyperparameters=space,
        oracle=oracle,
        directory=folder,
        project_name="",
        overwrite=overwrite,
        trainer=trainer,
        compile_settings=compile_settings,
        max_consecutive_failed_trials=int(cfg.get("max_consecutive_failed_trials", 3)),
        keep_top_models=trainer_cfg.get("keep_top_models", 5),
        echo=echo,
        config=plain_config(cfg),
        executor=executor_name,
        parallel_trials=slots,
        executor_options=executor_options,
        listeners=[loggers] if loggers is not None else [],
    )
    tuner.store.set_meta("config", plain_config(cfg))  # a resumed search: its safe changes, from now on
    augment = None
    if data_cfg.get("augment"):
        from archsearch.datasets import folder as folder_data

        augment = folder_data.augment_batch
    # The search never sees the test split: its data holds training and validation only.
    data = ArraysFitData(splits.without_test(), seed=int(data_cfg.get("seed", 0) or 0), augment=augment)
    return tuner, data, splits, model_cfg


def run(cfg: DictConfig, echo: Callable[[str], None] = print) -> Path | None:
    """Run the whole search described by ``cfg``; returns the ``best/`` folder.

    The run folder's lock is taken before anything there is read or deleted, and held to the end.
    """
    with RunFolderLock(C.run_folder(cfg)):
        return _run_locked(cfg, echo)


def _run_locked(cfg: DictConfig, echo: Callable[[str], None]) -> Path | None:
    tuner, data, splits, model_cfg = prepare(cfg, echo)
    echo(f"archsearch: tuner={tuner.oracle.name} model={model_cfg.get('name')} data={splits.name} "
         f"({len(splits.x_train)} train / {len(splits.x_val)} val / {len(splits.x_test)} test held out, "
         f"input {splits.input_shape}, {_classes(splits)}) "
         f"objective={tuner.objective.label} -> {tuner.project_dir}")
    _add_progress_display(cfg, tuner, echo)
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
                    best = _summarise_and_export(cfg, tuner, splits, model_cfg, echo)
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


def _classes(splits) -> str:
    """``2 classes: number, stamp``: what the model will output, so a wrong class count shows before training."""
    n, names = splits.num_classes, splits.class_names
    listed = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{n} class{'' if n == 1 else 'es'}: {listed}"


def _add_progress_display(cfg: DictConfig, tuner, echo: Callable[[str], None]) -> None:
    """The live display on a terminal (``progress=true``); the plain lines stay either way."""
    from archsearch.cli.progress import SearchProgress, live_display_wanted

    show, note = live_display_wanted(bool(cfg.get("progress", True)), tuner.trainer.verbose, sys.stdout)
    if note:
        echo(note)
    if show:
        tuner.listeners.append(SearchProgress(tuner.trainer.epochs))


def _summarise_and_export(cfg: DictConfig, tuner, splits, model_cfg: dict[str, Any],
                          echo: Callable[[str], None]) -> Path | None:
    """The results table, ``trials.csv``, ``best/`` and ``report.html``: what the user keeps from a search."""
    from archsearch.export.best import export_best
    from archsearch.export.serving import check_export_format

    tuner.results_summary(int(cfg.get("summary_trials", 10)))
    pictures = None
    if splits.task == "segmentation":
        from archsearch.report.pictures import save_predictions

        pictures = lambda model, folder: save_predictions(model, splits, folder / "predictions.png")  # noqa: E731
    best = export_best(tuner, tuner.project_dir, model_config=model_cfg, extra_pictures=pictures,
                       export_format=check_export_format(C.to_dict(cfg.get("export")).get("format")))
    if best is not None:
        echo(f"Best model exported to {best}")
    from archsearch.report.html import write_report_safely

    # report.html and plots/, from trials.db; after best/, whose predictions picture it shows.
    write_report_safely(tuner.project_dir, echo, C.report_mode(cfg.get("report", True)))
    return best


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then stop as they asked (KeyboardInterrupt).

    If the block runs because of an earlier interrupt, the later signals are simply absorbed.
    Outside the main thread (signal handlers cannot be set there) the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in handled}
    already_stopping = sys.exc_info()[0] is not None
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received and not already_stopping:
        raise KeyboardInterrupt
