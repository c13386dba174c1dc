"""Tuner overhead: the same 10 small-MLP trainings run by a plain loop, archsearch and KerasTuner.

Each contender runs in its own process (so memory figures do not mix) and
trains exactly the same 10 configurations on the same data.  Reported per
contender: total wall time, time inside ``fit``, overhead = total - fit per
trial, overhead as a share of the plain loop's total, and process memory
(RSS) after trial 1 and trial 10.

    pip install ".[bench]"
    python bench/overhead_bench.py            # prints the table
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EPOCHS = 3
NUM_TRIALS = 10
SEED = 0


def make_data(n: int = 6000, seed: int = 0):
    """A learnable 10-class problem shaped like Fashion-MNIST (28x28), made on the spot."""
    import numpy as np

    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 28, 28)).astype("float32")
    y = rng.integers(0, 10, n).astype("int32")
    x = np.clip(prototypes[y] * 0.6 + rng.random((n, 28, 28)).astype("float32") * 0.4, 0, 1)
    split = int(n * 0.8)
    return (x[:split], y[:split]), (x[split:], y[split:])


def configurations() -> list[dict]:
    """The 10 configurations every contender trains, drawn once by a seeded random oracle."""
    import archsearch
    from archsearch.oracles.driving import drive

    space = archsearch.HyperParameters.from_config({
        "units": {"type": "int", "min": 32, "max": 256, "step": 32},
        "learning_rate": {"type": "choice", "values": [1e-2, 1e-3, 1e-4]},
    })
    oracle = archsearch.create_oracle("random", space, "val_accuracy", max_trials=NUM_TRIALS, seed=SEED)
    return [trial.hparams for trial in drive(oracle, lambda hparams: 0.0).asked]


def build(units: int, learning_rate: float):
    import keras

    model = keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class FitMeter:
    """Times every ``keras.Model.fit`` call in the process (the whole call) and samples RSS after it.

    Patching ``fit`` itself measures all three contenders the same way:
    whatever happens outside ``fit`` is the tuner's overhead.
    """

    fit_seconds = 0.0
    rss_after: list[float] = []

    @classmethod
    def install(cls) -> None:
        import keras
        import psutil

        original = keras.Model.fit

        def timed_fit(model, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(model, *args, **kwargs)
            finally:
                cls.fit_seconds += time.perf_counter() - start
                cls.rss_after.append(psutil.Process().memory_info().rss / 2**20)

        keras.Model.fit = timed_fit


def run_plain(configs, data):
    import gc

    import keras

    (x, y), (xv, yv) = data
    for config in configs:
        keras.backend.clear_session()
        model = build(**config)
        model.fit(x, y, epochs=EPOCHS, batch_size=32, validation_data=(xv, yv), verbose=0)
        del model
        gc.collect()


def run_archsearch(configs, data, folder):
    import archsearch

    (x, y), (xv, yv) = data
    space = archsearch.HyperParameters.from_config({"config": {"type": "choice", "values": list(range(len(configs)))}})

    def indexed_builder(hp):
        return build(**configs[hp.get("config")])

    tuner = archsearch.GridSearch(indexed_builder, objective="val_accuracy", hyperparameters=space,
                                  directory=folder, project_name="archsearch")
    tuner.search(x, y, epochs=EPOCHS, batch_size=32, validation_data=(xv, yv), verbose=0)


def run_kerastuner(configs, data, folder):
    import keras_tuner as kt

    (x, y), (xv, yv) = data

    def indexed_builder(hp):
        return build(**configs[hp.Choice("config", list(range(len(configs))))])

    tuner = kt.GridSearch(indexed_builder, objective="val_accuracy", max_trials=len(configs),
                          directory=folder, project_name="kerastuner", overwrite=True)
    tuner.search(x, y, epochs=EPOCHS, batch_size=32, validation_data=(xv, yv), verbose=0)


def contender(name: str) -> dict:
    configs = configurations()
    data = make_data()
    FitMeter.install()
    probe = FitMeter
    folder = tempfile.mkdtemp(prefix=f"bench-{name}-")
    start = time.perf_counter()
    if name == "plain":
        run_plain(configs, data)
    elif name == "archsearch":
        run_archsearch(configs, data, folder)
    elif name == "kerastuner":
        run_kerastuner(configs, data, folder)
    total = time.perf_counter() - start
    return {
        "name": name,
        "trials": len(probe.rss_after),
        "total_s": total,
        "fit_s": probe.fit_seconds,
        "rss_after_1_mb": probe.rss_after[0] if probe.rss_after else None,
        "rss_after_last_mb": probe.rss_after[-1] if probe.rss_after else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contender", choices=["plain", "archsearch", "kerastuner"])
    parser.add_argument("--repeats", type=int, default=1, help="runs per contender (medians are reported)")
    args = parser.parse_args()
    if args.contender:
        print(json.dumps(contender(args.contender)))
        return
    results: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for name in ("plain", "archsearch", "kerastuner"):
            out = subprocess.run([sys.executable, __file__, "--contender", name], capture_output=True, text=True,
                                 cwd=Path(__file__).resolve().parent.parent)
            if out.returncode != 0:
                print(f"{name} failed:\n{out.stderr[-2000:]}")
                continue
            results.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    print_table(results)


def _median(values):
    values = sorted(values)
    return values[len(values) // 2]


def print_table(results: dict[str, list[dict]]) -> None:
    """Overhead is reported two ways: outside ``fit`` (total - fit), and against the plain loop's total.

    The second also counts work a tuner does *inside* ``fit`` through callbacks (archsearch writes a
    checkpoint and the store row every epoch), which total - fit cannot see.
    """
    plain_total = _median([r["total_s"] for r in results["plain"]]) if "plain" in results else None
    header = (f"{'contender':<12} {'trials':>6} {'total s':>8} {'fit s':>8} {'(total-fit)/trial s':>20} "
              f"{'(total-fit) % of plain':>23} {'total vs plain':>15} {'RSS MB after 1':>15} "
              f"{'RSS MB after 10':>16}")
    print(header)
    print("-" * len(header))
    for name, runs in results.items():
        total = _median([r["total_s"] for r in runs])
        fit = _median([r["fit_s"] for r in runs])
        trials = runs[0]["trials"]
        overhead = (total - fit) / max(trials, 1)
        share = f"{100 * (total - fit) / plain_total:.1f}%" if plain_total else "-"
        versus = f"{100 * (total - plain_total) / plain_total:+.1f}%" if plain_total else "-"
        print(f"{name:<12} {trials:>6} {total:>8.2f} {fit:>8.2f} {overhead:>20.3f} {share:>23} {versus:>15} "
              f"{_median([r['rss_after_1_mb'] for r in runs]):>15.0f} "
              f"{_median([r['rss_after_last_mb'] for r in runs]):>16.0f}")

if __name__ == "__main__":
    main()
