"""A trial runner that trains nothing Keras: the proof that the trial runner is a seam.

:class:`NumpyRunner` implements :class:`~archsearch.core.trial_runner.TrialRunner` with a numpy
objective that improves per epoch: a trial's "model" is one number ``w`` that halves every epoch,
and its loss is a noisy quadratic in the trial's values plus ``w``:

    loss(epoch) = (x - 0.3)**2 + (1.0 if kind == "bad" else 0.0) + w(epoch) + noise(trial, epoch)

``w`` is the trial's state: it is written every epoch to the trial's resume checkpoint (an HDF5
file recording its epoch, as :func:`archsearch.core.checkpoints.checkpoint_epoch` reads it), and a
resumed or promoted trial continues from it.  Each state file also records which deep-learning
modules its process had imported (:func:`modules_of`): none, for a worker that trains this runner.  The noise is a function of (trial, epoch) alone, so
every epoch's loss is exactly :func:`expected_loss`, however often the trial was interrupted: a
test that compares the store's epochs with it proves that nothing was lost or trained twice.

``python -m tests.numpy_runner FOLDER`` runs (or resumes) a whole search of it through the real
engine (a seeded random oracle with a median pruner, the store, the process executor with two
workers, the driver), as the kill -9 test needs a search in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.core.checkpoints import EPOCH_ATTRIBUTE, TrialFiles
from archsearch.core.trial import COMPLETED, PRUNED, Trial, TrialOutcome
from archsearch.core.trial_runner import RunnerNeeds

OBJECTIVE = "loss"
STATE = "w"
MODULES = "heavy_modules"  # the deep-learning modules the process that wrote a state file had imported
HEAVY = ("keras", "tensorflow", "torch", "jax")


def space():
    from archsearch.space.hyperparameters import HyperParameters

    hp = HyperParameters()
    hp.Float("x", 0.0, 1.0)
    hp.Choice("kind", ["good", "bad"])
    return hp


def noise(trial_id: int, epoch: int) -> float:
    return float(np.random.default_rng([trial_id, epoch]).normal(scale=0.001))


def expected_loss(trial_id: int, hparams: Mapping[str, Any], epoch: int) -> float:
    """The loss epoch ``epoch`` (from 1) of this trial must report: ``w`` halves each epoch from 1."""
    offset = 1.0 if hparams["kind"] == "bad" else 0.0
    return (float(hparams["x"]) - 0.3) ** 2 + offset + 0.5 ** epoch + noise(trial_id, epoch)


class NumpyRunner:
    """Trains ``epochs`` epochs (or the trial's budget) of the numpy objective, ``seconds`` each."""

    needs = RunnerNeeds()  # no GPU, and nothing to set up: a worker imports neither Keras nor TensorFlow

    def __init__(self, workdir: str | Path, epochs: int = 4, seconds: float = 0.0) -> None:
        self.files = TrialFiles(workdir)
        self.epochs = int(epochs)
        self.seconds = float(seconds)

    def run(self, trial: Trial, hp, reporter=None, resume_checkpoint: Path | None = None, initial_epoch: int = 0,
            history: Sequence[Mapping[str, float]] = ()) -> TrialOutcome:
        start = time.perf_counter()
        budget = int(trial.budget if trial.budget is not None else self.epochs)
        w = 1.0 if resume_checkpoint is None else _load_state(Path(resume_checkpoint))
        best: dict[str, float] | None = None
        best_epoch = None
        for record in history:  # the epochs trained before an interruption: their best still counts
            if best is None or record[OBJECTIVE] < best[OBJECTIVE]:
                best, best_epoch = {OBJECTIVE: float(record[OBJECTIVE])}, int(record["epoch"])
        status, epoch = COMPLETED, int(initial_epoch)
        for epoch in range(int(initial_epoch) + 1, budget + 1):
            time.sleep(self.seconds)
            w *= 0.5
            offset = 1.0 if hp.get("kind") == "bad" else 0.0
            loss = (float(hp.get("x")) - 0.3) ** 2 + offset + w + noise(trial.id, epoch)
            metrics = {OBJECTIVE: loss}
            improved = best is None or loss < best[OBJECTIVE]
            self._save(trial.id, w, epoch, improved)  # before the report, as the Keras runner does
            if improved:
                best, best_epoch = metrics, epoch
            if reporter is not None and reporter.on_epoch(trial, epoch, metrics, loss):
                status = PRUNED
                break
        return TrialOutcome(status=status, value=None if best is None else best[OBJECTIVE],
                            metrics=dict(best or {}), epochs_done=epoch, best_epoch=best_epoch,
                            duration=time.perf_counter() - start, hparams=dict(hp.values))

    def _save(self, trial_id: int, w: float, epoch: int, improved: bool) -> None:
        """The state, atomically, at the trial's checkpoint (and its best epoch's, when it improved)."""
        import h5py

        folder = self.files.trial_dir(trial_id)
        folder.mkdir(parents=True, exist_ok=True)
        targets = [self.files.checkpoint(trial_id)] + ([self.files.best_weights(trial_id)] if improved else [])
        for target in targets:
            tmp = target.with_name(target.name + ".tmp")
            with h5py.File(tmp, "w") as fh:
                fh.attrs[STATE] = w
                fh.attrs[EPOCH_ATTRIBUTE] = int(epoch)
                fh.attrs[MODULES] = json.dumps(heavy_modules())
            os.replace(tmp, target)


def heavy_modules() -> list[str]:
    return sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))


def modules_of(path: Path) -> list[str]:
    """What :func:`heavy_modules` said in the process that wrote the state file ``path``."""
    import h5py

    with h5py.File(path, "r") as fh:
        return json.loads(fh.attrs[MODULES])


def _load_state(path: Path) -> float:
    import h5py

    with h5py.File(path, "r") as fh:
        return float(fh.attrs[STATE])


def run_search(folder: Path, max_trials: int = 6, slots: int = 2, epochs: int = 4, seconds: float = 0.0,
               seed: int = 0, executor: str = "process") -> None:
    """One numpy search (or its resume: same folder) through the real engine, assembled as the CLI's is
    (archsearch/engine/assembly.py): only the trial runner differs."""
    from archsearch.engine.assembly import Assembly, create_search_oracle
    from archsearch.engine.settings import ExecutorSettings, SearchSettings, TunerSettings

    folder.mkdir(parents=True, exist_ok=True)
    assembly = Assembly(folder)
    try:
        runner = NumpyRunner(folder, epochs=epochs, seconds=seconds)
        tuner = TunerSettings("random", {"max_trials": max_trials, "seed": seed,
                                         "pruner": {"name": "median", "warmup_epochs": 1, "min_trials": 1}})
        store = assembly.open(create_search_oracle(tuner, space(), OBJECTIVE))  # the fingerprint the report reads
        assembly.restore()
        with assembly.lock.searching():
            assembly.search(runner, ExecutorSettings(executor), slots, SearchSettings(), []).run()
        store.close()
    finally:
        assembly.lock.release()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--max-trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    run_search(args.folder, max_trials=args.max_trials, epochs=args.epochs, seconds=args.seconds)
    print(f"done; deep-learning modules in the driver: {heavy_modules()}", flush=True)
    return 0


if __name__ == "__main__":
    # Through the module's own name: the workers unpickle tests.numpy_runner.NumpyRunner, not __main__'s.
    from tests.numpy_runner import main as run_main

    sys.exit(run_main())
