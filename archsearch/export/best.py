"""Export the best architecture of a search into ``<run folder>/best/``.

* ``model.keras``: the best trial's model with its best-epoch weights,
  reloadable with ``keras.saving.load_model`` in any process that imported
  ``archsearch`` (see ``registration.py``), or :func:`load_model`;
* ``saved_model/`` or ``model.onnx`` with ``export.format=savedmodel|onnx`` (``serving.py``);
* ``README.md``: what was searched, the winner, how to reload and retrain it (``best_readme.py``);
* ``hparams.yaml``: its hyperparameter values, score and trial;
* ``conf/model/best.yaml``: the same values as a fixed search space, so
  ``python -m archsearch --config-dir <run>/best/conf model=best tuner=grid``
  retrains exactly that architecture;
* ``summary.txt``: layer summary and parameter count.

``trials.csv`` next to ``best/`` lists every trial, ``epochs.csv`` every trial's epochs.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


from archsearch.core.atomic import atomic_path, remove_stale_temporaries, write_text
from archsearch.core.disk import file_size
from archsearch.space.values import to_plain
from archsearch.engine.settings import ExportSettings
from archsearch.export.values import HPARAMS_HEADER, best_record, write_yaml

log = logging.getLogger("archsearch")


def export_best(
    tuner,
    out_dir: str | Path | None = None,
    model_config: Mapping[str, Any] | None = None,
    extra_pictures: Callable[[Any, Path], None] | None = None,
    export_format: str = ExportSettings.format,
) -> Path | None:
    """Write ``best/``, ``trials.csv`` and ``epochs.csv``; returns ``best``, or None when no trial completed.

    ``export_format`` (checked by ``serving.check_export_format`` before the search) adds a
    SavedModel or ONNX export beside ``model.keras``.
    """
    from archsearch.export.readme import readme_text
    from archsearch.export.serving import export_for_serving

    out_dir = Path(out_dir or tuner.project_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in (out_dir, out_dir / "best"):
        remove_stale_temporaries(folder)
    objective = tuner.objective
    tuner.store.export_csv(out_dir / "trials.csv", objective)
    tuner.store.export_epochs_csv(out_dir / "epochs.csv")
    view = None
    if objective.is_pareto:  # best/ holds the front's knee, best/pareto/ every point of the front (pareto.py)
        from archsearch.core.pareto import FrontView

        view = FrontView.of(tuner.oracle.trials.values(), objective)
    trial, model = _best_exportable(tuner, view.knee_first() if view is not None else None)
    if trial is None:
        log.warning("no trial completed: nothing to export")
        return None
    best_dir = out_dir / "best"
    best_dir.mkdir(exist_ok=True)
    weights = tuner.runner.best_weights_path(trial.id)
    with atomic_path(best_dir / "model.keras", expected_size=2 * max(file_size(weights), 4 * model.count_params()),
                     run_folder=out_dir) as tmp:
        model.save(tmp)
    record = best_record(trial, objective, view.knee if view is not None else None)
    values = record["values"]
    write_yaml(best_dir / "hparams.yaml", record, HPARAMS_HEADER)
    if model_config is not None:
        retrain = {k: to_plain(v) for k, v in model_config.items() if k not in ("space", "defaults")}
        retrain["space"] = {name: {"type": "fixed", "value": v} for name, v in values.items()}
        (best_dir / "conf" / "model").mkdir(parents=True, exist_ok=True)
        write_yaml(best_dir / "conf" / "model" / "best.yaml", retrain,
                    header=f"Retrain trial {trial.id}: python -m archsearch --config-dir {best_dir / 'conf'} "
                           "model=best tuner=grid")
    write_text(best_dir / "summary.txt", model_summary(model, trial, objective), run_folder=out_dir)
    extra = [export_format] if export_for_serving(model, best_dir, export_format) is not None else []
    if view is not None:
        from archsearch.export.pareto import export_front

        export_front(best_dir, view, objective, lambda t, folder: _write_point(tuner, t, folder, view.knee))
    write_text(best_dir / "README.md", readme_text(out_dir, record, tuner.store.get_meta("config"),
                                                   tuner.store.count("completed"), extra), run_folder=out_dir)
    if extra_pictures is not None:
        try:
            extra_pictures(model, best_dir)
        except Exception as exc:  # a picture must never cost the user the exported model
            log.warning("could not draw the pictures for the best model: %s", exc)
    return best_dir


def _best_exportable(tuner, candidates: list | None = None) -> tuple[Any, Any]:
    """The best trial (or first of ``candidates``: a Pareto search's front, knee first) whose weights are all
    finite, and its model; (None, None) if there is none.

    A model with NaN weights can still report a finite accuracy: it is never exported.
    """
    for trial in tuner.best_trials(max(1, len(tuner.oracle.trials))) if candidates is None else candidates:
        model = _finite_model(tuner, trial)
        if model is not None:
            return trial, model
    return None, None


def _finite_model(tuner, trial) -> Any:
    """The trial's model with its best-epoch weights, or None (said) when a weight is NaN or infinite."""
    from archsearch.training.callbacks import weights_are_finite

    model = tuner.runner.load_best_model(trial, tuner.oracle.hyperparameters.with_values(trial.hparams))
    if weights_are_finite(model):
        return model
    log.warning("trial %s has NaN or infinite weights: it is not exported", trial.id)
    return None


def _write_point(tuner, trial, folder: Path, knee: int | None) -> bool:
    """One front trial's ``model.keras`` and ``hparams.yaml`` into ``best/pareto/trial_NNNN/``; False when
    its model cannot be exported (weights lost or broken: said, and pareto.csv leaves its model empty)."""
    if not tuner.runner.best_weights_path(trial.id).exists():
        log.warning("trial %s of the front has no saved weights: its model is not exported", trial.id)
        return False
    try:
        model = _finite_model(tuner, trial)
    except Exception as exc:  # a model that cannot be rebuilt or loaded: one point must not cost the others
        log.warning("trial %s of the front could not be exported: %s", trial.id, exc)
        return False
    if model is None:
        return False
    with atomic_path(folder / "model.keras", expected_size=8 * model.count_params(),
                     run_folder=folder.parent.parent.parent) as tmp:
        model.save(tmp)
    write_yaml(folder / "hparams.yaml", best_record(trial, tuner.objective, knee), HPARAMS_HEADER)
    return True


def model_summary(model, trial, objective) -> str:
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, *args, **kwargs: buffer.write(line + "\n"))
    params = model.count_params()
    lines = [
        f"Best trial: {trial.id}",
        _objective_line(objective, trial),
        "Hyperparameters:",
        *(f"  {k}: {v}" for k, v in trial.hparams.items()),
        f"Parameters: {params:,}",
        "",
        buffer.getvalue(),
    ]
    return "\n".join(lines)


def _objective_line(objective, trial) -> str:
    if objective.is_pareto:
        return "Objectives: " + ", ".join(f"{p.name} ({p.direction}) = {float(trial.metrics[p.name]):.6g}"
                                          for p in objective.components)
    return f"Objective: {objective.name} ({objective.direction}) = {trial.value:.6g}"


def load_model(path: str | Path):
    """Load an exported model with every archsearch layer, metric and loss registered."""
    import keras

    import archsearch.training.custom_objects  # noqa: F401  (registers serialisable objects)

    return keras.saving.load_model(path)
