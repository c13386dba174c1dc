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


def best_record(trial: Any, objective: Any) -> dict[str, Any]:
    """What ``best/hparams.yaml`` says of the best trial (read back by ``mode=retrain hparams=``)."""
    record = {
        "trial": trial.id,
        "objective": {"name": objective.name, "direction": objective.direction},
        "score": float(trial.value),
        "metrics": {k: float(v) for k, v in trial.metrics.items()},
        "values": {k: to_plain(v) for k, v in trial.hparams.items()},
    }
    if trial.budget is not None:
        record["epochs"] = trial.budget
    return record


def write_yaml(path: Path, data: Mapping[str, Any], header: str) -> None:
    write_text(path, f"# {header}\n" + yaml.safe_dump(dict(data), sort_keys=False))


def export_best_values(out_dir: Path, oracle: Any, store: Any, runner: Any) -> Path | None:
    """``trials.csv``, ``epochs.csv`` and ``best/`` (hparams.yaml, command.sh); None when no trial completed."""
    out_dir = Path(out_dir)
    for folder in (out_dir, out_dir / "best"):
        remove_stale_temporaries(folder)
    store.export_csv(out_dir / "trials.csv")
    store.export_epochs_csv(out_dir / "epochs.csv")
    best = oracle.best_trials(1)
    if not best:
        log.warning("no trial completed: nothing to export")
        return None
    trial = best[0]
    best_dir = out_dir / "best"
    best_dir.mkdir(exist_ok=True)
    write_yaml(best_dir / "hparams.yaml", best_record(trial, oracle.objective), HPARAMS_HEADER)
    argv = runner.command_line(trial)
    write_text(best_dir / "command.sh",
               f"#!/bin/sh\n# Trial {trial.id}, {oracle.objective.name} = {trial.value:.6g}: its program, run again\n"
               f"cd {shlex.quote(str(runner.cwd))} && exec {shlex.join(argv)}\n")
    (best_dir / "command.sh").chmod(0o755)
    return best_dir
