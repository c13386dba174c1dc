"""Fixed MLP values retrained as ``mode=retrain`` retrains them: where in the default space the winners are.

    python bench/retrain_values_bench.py 5 '{"baseline": {"num_layers": 1, "units_1": 512, "dropout": 0.2,
                                                "optimizer": "adam", "learning_rate": 1e-3}, ...}'

Each named set of values (conf/model/mlp.yaml's space; unlisted names take the space's defaults) is
trained on the default ``shapes`` training + validation data for the given epochs, 3 seeds keyed as
trial 1 (``retrain.train_and_score``, one CPU thread), and scored on its 400 test images.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from archsearch.cli import config as C
    from archsearch.training import retrain as R
    from archsearch.datasets import load_data
    from archsearch.core.objective import Objective
    from archsearch.training.runner import Runner
    from archsearch.training.settings import CompileSettings

    epochs, candidates = int(sys.argv[1]), json.loads(sys.argv[2])
    model_cfg = yaml.safe_load((ROOT / "conf" / "model" / "mlp.yaml").read_text())
    splits = load_data(yaml.safe_load((ROOT / "conf" / "data" / "shapes.yaml").read_text()))
    family = C.FamilyHyperModel(C.import_builder(model_cfg["builder"]), splits.input_shape, splits.num_classes, {})
    objective = Objective.create("val_accuracy")
    runner = Runner(family.build, None, objective, Path("/tmp/retrain_values_bench"),
                    compile_settings=CompileSettings(loss=model_cfg["loss"], metrics=["accuracy"], optimizer="adam",
                                                     learning_rate=1e-3, loss_options={}))
    arrays = R.Arrays(splits.x_train, splits.y_train, splits.x_val, splits.y_val, splits.x_test, splits.y_test)
    settings = R.RetrainSettings(repeats=3, seed=0, data_seed=0, batch_size=32)
    space = C.search_space(model_cfg)
    for name, values in candidates.items():
        started = time.monotonic()
        candidate = R.Candidate(name, values, epochs, 1)
        scores = [R.train_and_score(runner.build, space, candidate, arrays, objective, settings, r)[0]
                  for r in range(settings.repeats)]
        print(f"{name:24s} {epochs} epochs: test accuracy {sum(scores) / len(scores):.3f} "
              f"{[round(s, 3) for s in scores]} ({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
