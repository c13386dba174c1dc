"""Synthetic ``trials.db`` files for the report tests: no Keras, no training, seeded."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np

from archsearch.core.store import TrialStore
from archsearch.core.trial import COMPLETED, FAILED, INTERRUPTED, PRUNED, Trial

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

SPACE = {
    "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
    "noise": {"type": "float", "min": 0.0, "max": 1.0},
    "activation": {"type": "choice", "values": ["relu", "elu"]},
    "num_layers": {"type": "int", "min": 1, "max": 3},
    "units_2": {"type": "int", "min": 32, "max": 512, "when": {"num_layers": [2, 3]}},
}


def _meta(store: TrialStore, tuner: str, objective: str, direction: str) -> None:
    store.set_meta_many({"fingerprint": {"oracle": tuner, "objective": [objective, direction], "space": SPACE},
                         "config": {"tuner": {"name": tuner}, "objective": objective, "model": {"space": SPACE}}})


def random_store(folder: Path, n: int = 40, seed: int = 0) -> Path:
    """A random search where ``learning_rate`` drives ``val_accuracy`` (best near 3e-3) and ``noise`` does nothing.

    Trial 3 failed with an error, the last trial was running when the search was killed.
    """
    rng = np.random.default_rng(seed)
    store = TrialStore(folder / "trials.db")
    _meta(store, "random", "val_accuracy", "max")
    for i in range(n):
        hp = {"learning_rate": float(10 ** rng.uniform(-4, -1)), "noise": float(rng.uniform()),
              "activation": str(rng.choice(["relu", "elu"])), "num_layers": int(rng.integers(1, 4))}
        if hp["num_layers"] > 1:
            hp["units_2"] = int(rng.integers(32, 513))
        trial = Trial(i, hp)
        store.create_trial(trial)
        final = 0.95 - 0.08 * (math.log10(hp["learning_rate"]) + 2.5) ** 2 + 0.002 * float(rng.normal())
        if i == n - 1:  # killed while training
            store.record_epoch(i, 1, {"val_accuracy": final / 2}, objective_value=final / 2)
            continue
        if i == 3:
            trial.status, trial.error, trial.failure_kind = FAILED, "ValueError: units <tiny> & 'bad'\n  at line 2", "error"
            store.finish_trial(trial, duration=0.1)
            continue
        for epoch in (1, 2, 3):
            v = final * (1 - 0.3 / epoch)
            store.record_epoch(i, epoch, {"val_accuracy": v, "loss": 1 / epoch}, objective_value=v)
        trial.status, trial.value, trial.metrics = COMPLETED, final, {"val_accuracy": final, "loss": 0.3}
        store.finish_trial(trial, duration=1.0 + i, epochs_done=3)
    store.close()
    return folder


def hyperband_store(folder: Path) -> Path:
    """Two brackets of a Hyperband run (budgets 1 -> 3 -> 9), with promotions, a pruned, an interrupted and a
    failed trial, and a conditional parameter."""
    store = TrialStore(folder / "trials.db")
    _meta(store, "hyperband", "val_loss", "min")
    rng = np.random.default_rng(1)
    next_id = 0

    def add(hp, budget, parent, info, status=COMPLETED):
        nonlocal next_id
        trial = Trial(next_id, dict(hp), budget=budget, resume_from=parent,
                      initial_budget=0 if parent is None else store.trial(parent).budget, info=info)
        next_id += 1
        store.create_trial(trial)
        start = trial.initial_budget
        loss = store.trial(parent).value if parent is not None else 1.0 + float(rng.uniform())
        for epoch in range(start + 1, budget + 1):
            loss = loss * 0.8
            store.record_epoch(trial.id, epoch, {"val_loss": loss}, objective_value=loss)
            if status == PRUNED and epoch == start + 1:
                break
        if status != INTERRUPTED:
            trial.status, trial.value, trial.metrics = status, loss, {"val_loss": loss}
            store.finish_trial(trial, duration=0.5)
        return trial.id

    for bracket, first in ((2, 1), (1, 3)):
        starters = [add({"learning_rate": float(10 ** rng.uniform(-4, -1)), "noise": float(rng.uniform()),
                         "activation": "relu", "num_layers": 1 + k % 2, **({"units_2": 64 * (k + 1)} if k % 2 else {})},
                        first, None, {"iteration": 0, "bracket": bracket, "round": 0, "parent": None})
                    for k in range(3)]
        promoted = add(store.trial(starters[0]).hparams, first * 3, starters[0],
                       {"iteration": 0, "bracket": bracket, "round": 1, "parent": starters[0]})
        if bracket == 2:
            add(store.trial(promoted).hparams, 9, promoted,
                {"iteration": 0, "bracket": bracket, "round": 2, "parent": promoted}, status=PRUNED)
    add({"learning_rate": 1e-3, "noise": 0.5, "activation": "elu", "num_layers": 1}, 9, None,
        {"iteration": 0, "bracket": 0, "round": 0, "parent": None}, status=INTERRUPTED)
    failed = Trial(next_id, {"learning_rate": 1e-2, "noise": 0.1, "activation": "elu", "num_layers": 1}, budget=9,
                   info={"iteration": 0, "bracket": 0, "round": 0, "parent": None})
    store.create_trial(failed)
    failed.status, failed.error, failed.failure_kind = FAILED, "ResourceExhaustedError: OOM <GPU:0>", "oom"
    store.finish_trial(failed)
    store.close()
    return folder


def pareto_store(folder: Path, objectives: tuple[str, ...] = ("val_accuracy:max", "params:min", "latency_ms:min"),
                 n: int = 30, reference_point: dict[str, float] | list[float] | None = None, seed: int = 0) -> Path:
    """A Pareto search of ``val_accuracy`` against ``params`` (and ``latency_ms``) under ``params <= 3e6``.

    Bigger models score better (with noise), so the front is a real trade-off.  Every fifth trial is too
    big: infeasible, refused before training (its measures and violation stored, no score, no epoch);
    trial 7 is infeasible after training (latency too high: every objective stored); trial 11 failed.
    """
    from types import SimpleNamespace

    from archsearch.core.objective import ParetoObjective
    from archsearch.engine.assembly import fingerprint

    rng = np.random.default_rng(seed)
    oracle = SimpleNamespace(name="random", objective=ParetoObjective.of(list(objectives)),
                             hyperparameters=SimpleNamespace(get_config=lambda: SPACE))
    store = TrialStore(folder / "trials.db")
    store.set_meta_many({
        "fingerprint": fingerprint(oracle),  # what a search stores, objectives included
        "config": {"tuner": {"name": "random"}, "objective": list(objectives), "model": {"space": SPACE},
                   "search": {"mode": "pareto", "measures": [], "reference_point": reference_point},
                   "constraints": ["params <= 3e6"]}})
    for i in range(n):
        hp = {"learning_rate": float(10 ** rng.uniform(-4, -1)), "noise": float(rng.uniform()),
              "activation": str(rng.choice(["relu", "elu"])), "num_layers": int(rng.integers(1, 4))}
        trial = Trial(i, hp)
        store.create_trial(trial)
        params = float(round(10 ** rng.uniform(4, 6.3) if i % 5 else 10 ** rng.uniform(6.6, 7)))
        measures = {"params": params, "latency_ms": 0.5 + params / 4e5 + float(rng.uniform(0, 2))}
        if i % 5 == 0:
            trial.status, trial.failure_kind = FAILED, "infeasible"
            trial.metrics = {"params": params, "constraint_violation": params / 3e6 - 1}
            trial.error = f"infeasible: params = {params:.3g} breaks params <= 3e+06"
            store.finish_trial(trial, duration=0.01)
            continue
        if i == 11:
            trial.status, trial.error, trial.failure_kind = FAILED, "ValueError: bad", "error"
            store.finish_trial(trial, duration=0.1)
            continue
        accuracy = 0.5 + 0.08 * math.log10(params) - 0.3 + float(rng.normal(0, 0.03))
        metrics = {"val_accuracy": accuracy, "loss": 1 - accuracy, **measures, "constraint_violation": 0.0}
        store.record_epoch(i, 1, {"val_accuracy": accuracy, "loss": 1 - accuracy}, objective_value=accuracy)
        if i == 7:
            trial.status, trial.failure_kind = FAILED, "infeasible"
            trial.metrics = {**metrics, "latency_ms": 99.0, "constraint_violation": 0.5}
            trial.error = "infeasible: latency_ms = 99 breaks latency_ms <= 66"
            store.finish_trial(trial, duration=1.0, epochs_done=1)
            continue
        trial.status, trial.value, trial.metrics = COMPLETED, accuracy, metrics
        store.finish_trial(trial, duration=1.0, epochs_done=1)
    store.close()
    return folder


def chromium_dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` once headless Chromium drew it (its scripts run; a start is ~10 s)."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=600)
    assert "</html>" in result.stdout, result.stderr[-2000:]
    return result.stdout
