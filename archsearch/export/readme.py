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
    lines += ["", *_winner(record, objective),
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
        "`retrain/comparison.json` and `retrain/model.keras`. `trial_id=<id>` retrains another trial, "
        "`top_k=3` the three best" + ("; in this Pareto search `trial_id=knee` (the default) retrains the knee, "
                                      "and every objective is reported with its spread over the seeds."
                                      if "objectives" in objective else "."),
        "",
    ]
    return "\n".join(lines)


def _winner(record: Mapping[str, Any], objective: Mapping[str, Any]) -> list[str]:
    """The objective and the exported trial; a Pareto search's knee, with where the rest of the front is."""
    epochs = f", trained {record['epochs']} epochs" if record.get("epochs") is not None else ""
    if "objectives" not in objective:
        direction = "higher" if objective["direction"] == "max" else "lower"
        return ["## The objective and the winner", "",
                f"Objective: `{objective['name']}` ({direction} is better), measured on the validation split; the "
                "test split was never used by the search.",
                f"Best: trial {record['trial']}, {objective['name']} = {record['score']:.6g}{epochs}. Its values:"]
    parts = objective["objectives"]
    named = ", ".join(f"`{p['name']}` ({'higher' if p['direction'] == 'max' else 'lower'} is better)" for p in parts)
    scores = ", ".join(f"{p['name']} = {record['metrics'][p['name']]:.6g}" for p in parts)
    knee = (record.get("pareto") or {}).get("knee")
    point = ("the knee of the front: the trade-off closest to the ideal (every objective at its best) once each "
             "objective is scaled to [0, 1] over the front" if knee else
             "the front's point nearest its knee whose model could be exported (the knee's could not)")
    return ["## The objectives and the front", "",
            f"A Pareto search of {named}, measured on the validation split; the test split was never used by the "
            "search. No trial is best on every objective: the front is the trials no other trial beats on all of "
            "them at once.",
            "",
            f"`best/` holds trial {record['trial']}, {point}: {scores}{epochs}. Every point of the front is in "
            "`best/pareto/` (`trial_NNNN/model.keras` and `hparams.yaml`), and `best/pareto/pareto.csv` lists every "
            "trial with each objective, its rank (0: on the front) and the knee. Its values:"]
