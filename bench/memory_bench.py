"""Memory across trials: does process memory grow over a 50-trial search?

Each contender runs in its own process and trains 50 small MLPs (random search over layers,
units and learning rate) on the same small random arrays.  Process memory (RSS, psutil) is
sampled after every trial, once the trial has ended and its model has been released; the
table reports it after trial 5 (start-up and first builds done) and after trial 50.
Target for archsearch (issue 6): after trial 50 within 10% of after trial 5.  The plain loop
shows what Keras/TensorFlow themselves keep per ``fit`` (graph-mode functions are never fully
released, tf-keras#286 / tensorflow#61791); the last lines give each tuner's memory above it.

Contenders: archsearch's RandomSearch (Python API, checkpoints and store as in real use),
KerasTuner's RandomSearch on the same setup when ``keras_tuner`` is installed, and a plain
build/fit/``clear_session`` loop for reference.

    pip install ".[bench]"
    python bench/memory_bench.py                    # all contenders, prints the table
    python bench/memory_bench.py --trials 20        # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EPOCHS = 2
EARLY = 5  # the "after start-up" sample
SPACE = {
    "num_layers": {"type": "int", "min": 1, "max": 3},
    "units": {"type": "int", "min": 16, "max": 128, "step": 16},
    "learning_rate": {"type": "choice", "values": [1e-2, 3e-3, 1e-3]},
}


def make_data(n: int = 1000, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.random((n, 20)).astype("float32")
    y = (x[:, :4].argmax(axis=1)).astype("int32")
    split = int(n * 0.8)
    return (x[:split], y[:split]), (x[split:], y[split:])


def build(hp):
    """A KerasTuner-style builder: both tuners run exactly this function."""
    import keras

    model = keras.Sequential([keras.Input((20,))])
    for _ in range(hp.Int("num_layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int("units", 16, 128, step=16), activation="relu"))
    model.add(keras.layers.Dense(4, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 3e-3, 1e-3])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def run_archsearch(trials: int, data, folder: str) -> list[float]:
    import archsearch
    from archsearch.core.events import SearchEvents

    (x, y), (xv, yv) = data
    samples: list[float] = []

    class Measured(SearchEvents):
        def on_trial_end(self, trial, outcome) -> None:  # once per finished trial, after its model was freed
            samples.append(rss_mb())

    tuner = archsearch.RandomSearch(build, objective="val_accuracy", max_trials=trials, seed=0,
                                    hyperparameters=archsearch.HyperParameters.from_config(SPACE),
                                    directory=folder, project_name="archsearch", listeners=[Measured()])
    tuner.search(x, y, epochs=EPOCHS, batch_size=32, validation_data=(xv, yv), verbose=0)
    return samples


def run_kerastuner(trials: int, data, folder: str) -> list[float]:
    import keras_tuner as kt

    (x, y), (xv, yv) = data
    samples: list[float] = []

    class Measured(kt.RandomSearch):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            samples.append(rss_mb())

    tuner = Measured(build, objective="val_accuracy", max_trials=trials, seed=0, directory=folder,
                     project_name="kerastuner", overwrite=True)
    tuner.search(x, y, epochs=EPOCHS, batch_size=32, validation_data=(xv, yv), verbose=0)
    return samples


def run_plain(trials: int, data, folder: str) -> list[float]:
    import gc

    import keras

    import archsearch
    from archsearch.oracles.driving import drive

    (x, y), (xv, yv) = data
    oracle = archsearch.create_oracle("random", archsearch.HyperParameters.from_config(SPACE), "val_accuracy",
                                      max_trials=trials, seed=0)
    samples: list[float] = []

    def train(hparams: dict) -> float:
        keras.backend.clear_session()
        model = build(oracle.hyperparameters.with_values(hparams))
        model.fit(x, y, epochs=EPOCHS, batch_size=32, validation_data=(xv, yv), verbose=0)
        del model
        keras.backend.clear_session()
        gc.collect()
        samples.append(rss_mb())  # after each trial, its model freed
        return 0.0

    drive(oracle, train)
    return samples


CONTENDERS = {"archsearch": run_archsearch, "kerastuner": run_kerastuner, "plain": run_plain}


def contender(name: str, trials: int) -> dict:
    folder = tempfile.mkdtemp(prefix=f"memory-{name}-")
    samples = CONTENDERS[name](trials, make_data(), folder)
    return {"name": name, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--contender", choices=sorted(CONTENDERS))
    parser.add_argument("--only", nargs="*", choices=sorted(CONTENDERS), help="contenders to run (default: all)")
    args = parser.parse_args()
    if args.contender:
        print(json.dumps(contender(args.contender, args.trials)))
        return
    names = args.only or ["archsearch", "kerastuner", "plain"]
    if "kerastuner" in names:
        try:
            import keras_tuner  # noqa: F401
        except ImportError:
            print("keras_tuner is not installed: KerasTuner left out (pip install '.[bench]')")
            names.remove("kerastuner")
    results = []
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--contender", name, "--trials", str(args.trials)],
                             capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        if out.returncode != 0:
            print(f"{name} failed:\n{out.stderr[-2000:]}")
            continue
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print_table(results, args.trials)


def print_table(results: list[dict], trials: int) -> None:
    late = trials
    header = (f"{'contender':<12} {'trials':>6} {f'RSS MB after {EARLY}':>17} {f'after {late // 2}':>10} "
              f"{f'after {late}':>10} {f'growth {EARLY}->{late}':>16}")
    print(header)
    print("-" * len(header))
    for r in results:
        s = r["samples"]
        if len(s) < max(EARLY, 2):
            print(f"{r['name']:<12} {len(s):>6}  (too few trials to compare)")
            continue
        early, middle, last = s[EARLY - 1], s[min(len(s), late // 2) - 1], s[-1]
        print(f"{r['name']:<12} {len(s):>6} {early:>17.0f} {middle:>10.0f} {last:>10.0f} "
              f"{100 * (last - early) / early:>+15.1f}%")
    by_name = {r["name"]: r["samples"] for r in results if len(r["samples"]) >= EARLY}
    plain = by_name.get("plain")
    for name in ("archsearch", "kerastuner"):
        if plain and name in by_name and len(by_name[name]) == len(plain):
            extra_early = by_name[name][EARLY - 1] - plain[EARLY - 1]
            extra_last = by_name[name][-1] - plain[-1]
            print(f"{name} above the plain loop: {extra_early:+.0f} MB after trial {EARLY}, "
                  f"{extra_last:+.0f} MB after trial {len(plain)}")


if __name__ == "__main__":
    main()
