"""``best/README.md``: the search and its result in plain words, for whoever opens the run folder later.

It says what was searched (model family, tuner, data, space), by which objective, what won,
and the commands that reload and retrain it; everything comes from the store and the export.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archsearch.core.store import STORE_FILE


def readme_text(run_folder: Path, record: Mapping[str, Any], config: Mapping[str, Any] | None,
                trials_done: int, extra_exports: list[str]) -> str:
    """The README for ``best/``; ``record`` is what ``hparams.yaml`` holds, ``config`` the stored CLI config."""
    config = dict(config or {})
    model = config.get("model") or {}
    tuner = config.get("tuner") or {}
    data = config.get("data") or {}
    objective = record["objective"]
    lines = [
        "# The best model of this search",
        "",
        "## What was searched",
        "",
    ]
    if config:
        lines.append(f"Model family `{model.get('name')}` (builder `{model.get('builder')}`), tuner "
                     f"`{tuner.get('name')}`, data `{data.get('name')}`; {trials_done} trials finished. "
                     "The search space:")
        lines += ["", "```yaml", *(f"{name}: {spec}" for name, spec in (model.get("space") or {}).items()), "```"]
    else:
        lines.append(f"A search from the Python API; {trials_done} trials finished "
                     f"(every trial is in `trials.csv` and `{STORE_FILE}`).")
    direction = "higher" if objective["direction"] == "max" else "lower"
    epochs = f", trained {record['epochs']} epochs" if record.get("epochs") is not None else ""
    lines += [
        "",
        "## The objective and the winner",
        "",
        f"Objective: `{objective['name']}` ({direction} is better), measured on the validation split; the test "
        "split was never used by the search.",
        f"Best: trial {record['trial']}, {objective['name']} = {record['score']:.6g}{epochs}. Its values:",
        "",
        *(f"- `{name}`: {value}" for name, value in record["values"].items()),
        "",
        "## Reload it",
        "",
        "```python",
        "import keras, archsearch   # archsearch registers its layers, losses and metrics with Keras",
        f'model = keras.saving.load_model("{run_folder / "best" / "model.keras"}")',
        "```",
    ]
    if "savedmodel" in extra_exports:
        lines += ["", "A TensorFlow SavedModel (TF Serving, or `tf.saved_model.load(path).serve(x)`) is in "
                  "`best/saved_model/`."]
    if "onnx" in extra_exports:
        lines += ["", "An ONNX export (onnxruntime) is `best/model.onnx`."]
    lines += [
        "",
        "## Retrain it and compare it with the family's baseline",
        "",
        "```bash",
        f"python -m archsearch mode=retrain from_run={run_folder}",
        "```",
        "",
        "trains the best values and the model family's hand-picked baseline on training + validation data, "
        "several seeds each (`retrain.repeats`), scores both on the test split and writes "
        "`retrain/comparison.json` and `retrain/model.keras`. `trial=<id>` retrains another trial, "
        "`top_k=3` the three best.",
        "",
    ]
    return "\n".join(lines)
