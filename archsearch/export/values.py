"""The best values of a search whose trials are programs (``trial=command``): there is no model to save.

``best/hparams.yaml`` has the same record as a Keras search's (trial, objective, score, metrics, values,
epochs), ``best/command.sh`` the exact command that runs the best trial again, and ``trials.csv`` /
``epochs.csv`` list every trial and epoch, as :func:`archsearch.export.best.export_best` writes them.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from archsearch.core.atomic import remove_stale_temporaries, write_text
from archsearch.space.values import to_plain

log = logging.getLogger("archsearch")

HPARAMS_HEADER = "Best hyperparameters found by archsearch (values: pass them back to rebuild this architecture)"


def best_record(trial: Any, objective: Any, knee: int | None = None) -> dict[str, Any]:
    """What ``best/hparams.yaml`` says of the best trial (read back by ``mode=retrain hparams=``).

    A Pareto search's record names every objective (``score`` is the first's) and whether the trial is the
    front's knee (``knee``: the id of the search's knee)."""
    described = {"name": objective.name, "direction": objective.direction}
    if objective.is_pareto:
        described["objectives"] = [{"name": p.name, "direction": p.direction} for p in objective.components]
    record = {
        "trial": trial.id,
        "objective": described,
        "score": float(trial.value),
        "metrics": {k: float(v) for k, v in trial.metrics.items()},
        "values": {k: to_plain(v) for k, v in trial.hparams.items()},
    }
    if trial.budget is not None:
        record["epochs"] = trial.budget
    if objective.is_pareto:
        record["pareto"] = {"on_front": True, "knee": trial.id == knee}
    return record


def write_yaml(path: Path, data: Mapping[str, Any], header: str) -> None:
    write_text(path, f"# {header}\n" + yaml.safe_dump(dict(data), sort_keys=False))


def export_best_values(out_dir: Path, oracle: Any, store: Any, runner: Any) -> Path | None:
    """``trials.csv``, ``epochs.csv`` and ``best/`` (hparams.yaml, command.sh); None when no trial completed."""
    out_dir = Path(out_dir)
    for folder in (out_dir, out_dir / "best"):
        remove_stale_temporaries(folder)
    objective = oracle.objective
    store.export_csv(out_dir / "trials.csv", objective)
    store.export_epochs_csv(out_dir / "epochs.csv")
    view = None
    if objective.is_pareto:  # best/ holds the front's knee, best/pareto/ every point (export/pareto.py)
        from archsearch.core.pareto import FrontView

        view = FrontView.of(oracle.trials.values(), objective)
        best = view.knee_first()[:1]
    else:
        best = oracle.best_trials(1)
    if not best:
        log.warning("no trial completed: nothing to export")
        return None
    trial = best[0]
    best_dir = out_dir / "best"
    best_dir.mkdir(exist_ok=True)
    knee = view.knee if view is not None else None
    write_point_values(best_dir, trial, objective, runner, knee)
    if view is not None:
        from archsearch.export.pareto import export_front

        export_front(best_dir, view, objective, lambda t, folder: write_point_values(folder, t, objective, runner,
                                                                                      knee))
    return best_dir


def write_point_values(folder: Path, trial: Any, objective: Any, runner: Any, knee: int | None = None) -> bool:
    """``hparams.yaml`` and ``command.sh`` (the trial's program, run again) of one trial into ``folder``."""
    write_yaml(folder / "hparams.yaml", best_record(trial, objective, knee), HPARAMS_HEADER)
    argv = runner.command_line(trial)
    main = objective.main.name if objective.is_pareto else objective.name  # trial.value's metric
    write_text(folder / "command.sh",
               f"#!/bin/sh\n# Trial {trial.id}, {main} = {trial.value:.6g}: its program, run again\n"
               f"cd {shlex.quote(str(runner.cwd))} && exec {shlex.join(argv)}\n")
    (folder / "command.sh").chmod(0o755)
    return True
