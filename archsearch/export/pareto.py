"""A Pareto search's ``best/pareto/``: every model of the front, and ``pareto.csv``.

There is no one best model when objectives trade against each other, so the export keeps every point
of the front: ``best/pareto/trial_NNNN/`` holds its ``model.keras`` and ``hparams.yaml`` (a command
search's: ``hparams.yaml`` and ``command.sh``, see ``values.py``), and ``best/pareto/pareto.csv`` ranks
every completed trial with every objective (the front first, rank 0; the knee marked).  ``best/`` itself
holds the knee point, the front's most balanced trade-off (:func:`archsearch.core.pareto.knee_index`);
``mode=retrain from_run=<run> trial_id=knee`` (or ``trial_id=<id>``) retrains a point against the baseline.
"""

from __future__ import annotations

import csv
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from archsearch.core.atomic import atomic_path, remove_stale_temporaries
from archsearch.core.pareto import FrontView

log = logging.getLogger("archsearch")

PARETO_DIR = "pareto"
PARETO_CSV = "pareto.csv"


def trial_folder(trial_id: int) -> str:
    return f"trial_{int(trial_id):04d}"


def export_front(best_dir: Path, view: FrontView, objective: Any,
                 write_point: Callable[[Any, Path], bool]) -> Path:
    """Write ``best/pareto/``: ``write_point(trial, folder)`` writes each front trial's files (False: it could
    not, e.g. NaN weights) and ``pareto.csv`` says which were written.  Folders of trials no longer on the
    front (a resumed search moved it) are removed."""
    folder = best_dir / PARETO_DIR
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    on_front = {trial_folder(t.id) for t in view.front}
    for old in folder.glob("trial_*"):
        if old.is_dir() and old.name not in on_front:
            shutil.rmtree(old)
    written: dict[int, str] = {}
    for trial in view.front:
        target = folder / trial_folder(trial.id)
        target.mkdir(exist_ok=True)
        remove_stale_temporaries(target)
        if write_point(trial, target):
            written[trial.id] = trial_folder(trial.id)
        else:
            shutil.rmtree(target, ignore_errors=True)
    write_pareto_csv(folder / PARETO_CSV, view, objective, written)
    return folder


def write_pareto_csv(path: Path, view: FrontView, objective: Any, written: Mapping[int, str]) -> Path:
    """``pareto.csv``: trial, every objective, its non-dominated rank, knee yes/no and its folder here (if any);
    the front first (as the results table orders it), then each next rank."""
    parts = list(objective.components)
    rank = view.rank_of()
    order = {t.id: i for i, t in enumerate(view.front)}
    trials = sorted(view.trials, key=lambda t: (rank[t.id], order.get(t.id, 0), objective.costs_from(t.metrics),
                                                t.id))
    with atomic_path(path, expected_size=256 * (1 + len(trials))) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["trial", *(p.name for p in parts), "rank", "knee", "model"])
        for t in trials:
            writer.writerow([t.id, *(float(t.metrics[p.name]) for p in parts), rank[t.id],
                             "yes" if t.id == view.knee else "no", written.get(t.id, "")])
    return path
