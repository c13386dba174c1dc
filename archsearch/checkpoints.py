"""Where a trial's weights live, how they are written, and how training continues from them.

The one owner of checkpoint paths: the runner (in whatever process trains the trial) writes
them, the search driver reads them to decide where a trial resumes and deletes those no trial
can continue from, and the export loads the best ones.  Two files per trial make resuming exact:
``checkpoint.weights.h5`` (the last epoch, weights *and* optimizer state, and the epoch it holds)
and ``best.weights.h5`` (the best epoch by the objective, for export and ``get_best_models``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHECKPOINT = "checkpoint.weights.h5"
BEST_WEIGHTS = "best.weights.h5"
EPOCH_ATTRIBUTE = "archsearch_epoch"


class TrialFiles:
    """The files of every trial of one search, under ``<run folder>/trials/trial_NNNN/``."""

    def __init__(self, workdir: str | Path) -> None:
        self.workdir = Path(workdir)

    def trial_dir(self, trial_id: int) -> Path:
        return self.workdir / "trials" / f"trial_{trial_id:04d}"

    def checkpoint(self, trial_id: int) -> Path:
        return self.trial_dir(trial_id) / CHECKPOINT

    def best_weights(self, trial_id: int) -> Path:
        return self.trial_dir(trial_id) / BEST_WEIGHTS


def save_checkpoint(model, path: Path, epoch: int | None = None) -> None:
    """Write to a temporary file and rename, so a kill never leaves a half-written checkpoint.

    The file records the epoch it holds, so a resumed trial continues from exactly that epoch
    even if the process died between saving it and recording the epoch in the store.
    """
    tmp = path.with_name(path.name.replace(".weights.h5", ".tmp.weights.h5"))
    model.save_weights(tmp)
    if epoch is not None:
        import h5py

        with h5py.File(tmp, "a") as fh:
            fh.attrs[EPOCH_ATTRIBUTE] = int(epoch)
    os.replace(tmp, path)


def link_best(source: Path, target: Path) -> None:
    """``target`` becomes another name of ``source``'s file (a copy where hard links are not possible).

    The next checkpoint replaces ``source`` by a new file, so ``target`` keeps this epoch's weights.
    """
    tmp = target.with_name(target.name.replace(".weights.h5", ".tmp.weights.h5"))
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def restore_checkpoint(model, path: Path) -> None:
    """Load weights *and* optimizer state, so training continues exactly where it stopped."""
    if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a weights file written by a trial holds, or None (older or foreign files)."""
    try:
        import h5py

        with h5py.File(path, "r") as fh:
            value = fh.attrs.get(EPOCH_ATTRIBUTE)
    except (OSError, ValueError):
        return None
    return None if value is None else int(value)
