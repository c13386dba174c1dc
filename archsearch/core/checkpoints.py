"""Where a trial's weights live, how they are written, and how training continues from them.

The one owner of checkpoint paths: the runner (in whatever process trains the trial) writes
them, the search driver reads them to decide where a trial resumes and deletes those no trial
can continue from, and the export loads the best ones.  Two files per trial make resuming exact:
``checkpoint.weights.h5`` (the last epoch, weights *and* optimizer state, and the epoch it holds)
and ``best.weights.h5`` (the best epoch by the objective, for export and ``get_best_models``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

CHECKPOINT = "checkpoint.weights.h5"
BEST_WEIGHTS = "best.weights.h5"
EPOCH_ATTRIBUTE = "archsearch_epoch"
# The model's build config (its input shape), so a model that builds itself on its first batch (a
# Sequential without an Input) can be built again before its weights are loaded, as KerasTuner does.
BUILD_ATTRIBUTE = "archsearch_build_config"
# The training policy a trial trains under (archsearch/training/policy.py), as JSON: the runner sets it on the
# model (MODEL_POLICY), every weights file records it, and a resumed trial or a loaded best model is built
# under it again, so its weights always load into the dtypes they were trained in.
POLICY_ATTRIBUTE = "archsearch_training_policy"
MODEL_POLICY = "_archsearch_training_policy"


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

    def remove_if_empty(self, trial_id: int) -> None:
        """Drop a trial's folder once clean-up left nothing in it (a pruned, failed or lower-ranked
        trial): ``trials/`` then lists the trials that have weights to load."""
        try:
            self.trial_dir(trial_id).rmdir()
        except OSError:  # not empty (weights kept, a run_trial's own files) or never made
            pass


def save_checkpoint(model, path: Path, epoch: int | None = None) -> None:
    """Write to a temporary file and rename, so a kill never leaves a half-written checkpoint.

    The file records the epoch it holds, so a resumed trial continues from exactly that epoch
    even if the process died between saving it and recording the epoch in the store.
    """
    tmp = path.with_name(path.name.replace(".weights.h5", ".tmp.weights.h5"))
    model.save_weights(tmp)
    build_config = _build_config(model)
    policy = getattr(model, MODEL_POLICY, None)
    if epoch is not None or build_config is not None or policy is not None:
        import h5py

        with h5py.File(tmp, "a") as fh:
            if epoch is not None:
                fh.attrs[EPOCH_ATTRIBUTE] = int(epoch)
            if build_config is not None:
                fh.attrs[BUILD_ATTRIBUTE] = build_config
            if policy is not None:
                fh.attrs[POLICY_ATTRIBUTE] = str(policy)
    os.replace(tmp, path)


def _build_config(model) -> str | None:
    """``model.get_build_config()`` as JSON, or None when there is none to record."""
    try:
        config = model.get_build_config()
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        return None
    if not config:
        return None
    try:
        return json.dumps(config)
    except (TypeError, ValueError):
        return None


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
    """Load weights *and* optimizer state, so training continues exactly where it stopped.

    A model not built yet (no Input: Keras builds it on its first batch) is first built from the
    build config the file records.
    """
    if not getattr(model, "built", True):
        _build_from_file(model, path)
    if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)


def _build_from_file(model, path: Path) -> None:
    recorded = _recorded(path, BUILD_ATTRIBUTE)
    if recorded is None:
        return  # an older file: Keras names the problem when the weights are loaded
    if isinstance(recorded, bytes):
        recorded = recorded.decode()
    config = json.loads(recorded)
    model.build_from_config(config)
    shape = config.get("input_shape") if isinstance(config, dict) else None
    if not model.built and isinstance(shape, (list, tuple)) and all(isinstance(d, (int, type(None))) for d in shape):
        # A subclass without its own build(): one call on zeros of the saved input shape creates its weights.
        import keras

        model(keras.ops.zeros([1 if d is None else d for d in shape]))


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a weights file written by a trial holds, or None (older or foreign files)."""
    value = _recorded(path, EPOCH_ATTRIBUTE)
    return None if value is None else int(value)


def checkpoint_policy(path: Path) -> dict | None:
    """The training policy a weights file was trained under (as recorded), or None (older or foreign files)."""
    value = _recorded(path, POLICY_ATTRIBUTE)
    if value is None:
        return None
    try:
        recorded = json.loads(value.decode() if isinstance(value, bytes) else str(value))
    except ValueError:
        return None
    return recorded if isinstance(recorded, dict) else None


def _recorded(path: Path, attribute: str):
    """One attribute this module wrote into a weights file, or None (absent, unreadable or not HDF5)."""
    try:
        import h5py

        with h5py.File(path, "r") as fh:
            return fh.attrs.get(attribute)
    except (OSError, ValueError):
        return None
