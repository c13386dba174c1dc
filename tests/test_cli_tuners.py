"""Hyperband, BOHB, Bayesian search, pruning and the U-Net family through the real command line, on tiny data.

Each CLI run takes seconds: 160 shapes images (128 train / 32 val) or 16 pages of 32x32 pixels, in the test
process (``cli_inprocess``) with executor=inline: the tuners' plans are what is checked here, not the workers.
"""

from __future__ import annotations

import json
import re
import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.xdist_group("cli_tuners")  # its module fixture is built once, in one process

TINY_SHAPES = ["data.num_samples=160", "executor=inline"]


def _rows(run_dir: Path) -> list[dict]:
    db = sqlite3.connect(run_dir / "trials.db")
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM trials ORDER BY id")]
    for r in rows:
        r["info"] = json.loads(r["info"])
        r["hparams"] = json.loads(r["hparams"])
        r["intermediate"] = {int(k): v for k, v in json.loads(r["intermediate"]).items()}
        r["epochs"] = [
            (e, json.loads(m))
            for e, m in db.execute("SELECT epoch, metrics FROM epochs WHERE trial_id = ? ORDER BY epoch", (r["id"],))
        ]
    db.close()
    return rows


def _trial_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("Trial ") and " | " in line]


def _check_promotions(rows: list[dict]) -> list[dict]:
    """Every promoted trial continues its parent: same values, budgets chained, only the extra epochs trained."""
    by_id = {r["id"]: r for r in rows}
    promoted = [r for r in rows if r["parent"] is not None]
    for child in promoted:
        parent = by_id[child["parent"]]
        assert child["info"]["parent"] == parent["id"]
        assert child["hparams"] == parent["hparams"]
        assert child["initial_budget"] == parent["budget"] < child["budget"]
        assert child["info"]["bracket"] == parent["info"]["bracket"]
        assert child["info"]["round"] == parent["info"]["round"] + 1
        assert parent["status"] == "completed"
        # No repeated epoch: the child's epochs are exactly initial_budget+1 .. budget.
        assert [e for e, _ in child["epochs"]] == list(range(child["initial_budget"] + 1, child["budget"] + 1))
        assert sorted(child["intermediate"]) == list(range(child["initial_budget"] + 1, child["budget"] + 1))
        assert child["epochs_done"] == child["budget"]
    for r in rows:
        if r["parent"] is None:
            assert r["initial_budget"] == 0 and r["info"]["round"] == 0
            assert [e for e, _ in r["epochs"]] == list(range(1, r["epochs_done"] + 1))
    return promoted


def _check_export(run_dir: Path, rows: list[dict], objective: str) -> dict:
    completed = [r for r in rows if r["status"] == "completed"]
    best_row = max(completed, key=lambda r: (r["value"], -r["id"]))
    hparams = yaml.safe_load((run_dir / "best" / "hparams.yaml").read_text())
    assert hparams["trial"] == best_row["id"]
    assert hparams["objective"]["name"] == objective
    assert hparams["score"] == pytest.approx(best_row["value"])
    assert hparams["values"] == best_row["hparams"]
    # The best trial's best-epoch weights were kept for the export; no resume checkpoint is left.
    assert (run_dir / "trials" / f"trial_{best_row['id']:04d}" / "best.weights.h5").exists()
    assert list((run_dir / "trials").glob("*/checkpoint*.h5")) == []
    return hparams


def _load_exported(run_dir: Path):
    from archsearch.export.best import load_model

    return load_model(run_dir / "best" / "model.keras")


# --------------------------------------------------------------------------- Hyperband (issue 3)


@pytest.fixture(scope="module")
def hyperband_run(tmp_path_factory):
    from cli_inprocess import run_cli_inprocess  # the fixture is function-scoped; this run is shared by three tests

    run_dir = tmp_path_factory.mktemp("hyperband") / "run"
    # max_epochs=3, factor 3: brackets 3@1 -> 1@3 | 2@3 = 6 trials, 3 + 2 + 6 = 11 epochs.
    result = run_cli_inprocess(["tuner=hyperband", "model=mlp", "tuner.max_epochs=3", "trainer.epochs=7", *TINY_SHAPES],
                     run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result, _rows(run_dir)


def test_hyperband_promoted_trials_resume_without_repeating_epochs(hyperband_run):
    run_dir, result, rows = hyperband_run
    assert [r["status"] for r in rows] == ["completed"] * 6
    assert [(r["info"]["bracket"], r["info"]["round"], r["initial_budget"], r["budget"]) for r in rows] == [
        (1, 0, 0, 1), (1, 0, 0, 1), (1, 0, 0, 1), (1, 1, 1, 3), (0, 0, 0, 3), (0, 0, 0, 3)]
    promoted = _check_promotions(rows)
    assert len(promoted) == 1
    child = promoted[0]
    round0 = [r for r in rows if r["info"]["bracket"] == 1 and r["info"]["round"] == 0]
    assert child["parent"] == max(round0, key=lambda r: (r["value"], -r["id"]))["id"]  # the best one goes on
    # Epochs trained in all: the plan's 11, not the 13 that restarting the promotion would cost.
    assert sum(len(r["epochs"]) for r in rows) == 11
    # The stored per-trial record lists budget, initial_budget and parent.
    header = (run_dir / "trials.csv").read_text().splitlines()[0].split(",")
    assert {"budget", "initial_budget", "parent", "epochs_done"} <= set(header)


def test_hyperband_prints_the_plan_progress_and_the_summary(hyperband_run):
    _, result, rows = hyperband_run
    out = result.stdout
    assert out.count("Search plan: 11 epochs in all (hyperband).") == 1
    # trainer.epochs is not silently ignored: said once, naming both settings.
    assert out.count("trainer.epochs=7 is not used") == 1
    assert "tuner.max_epochs=3" in out
    lines = _trial_lines(out)
    assert len(lines) == 6
    spent = [tuple(map(int, re.search(r"\(spent (\d+)/(\d+)\)", line).groups())) for line in lines]
    assert spent == [(1, 11), (2, 11), (3, 11), (5, 11), (8, 11), (11, 11)]
    assert "epochs 1->3" in lines[3]
    assert "shuffle=True" not in result.stderr  # the tf.data pipeline shuffles; Keras must not warn about it
    # The summary table shows each trial's budget with its bracket, round and the trial it continued.
    summary = out[out.index("Results summary"):]
    child = next(r for r in rows if r["parent"] is not None)
    row = next(line for line in summary.splitlines() if re.match(rf"\d+\s+{child['id']}\s", line))
    assert f"1->3 b1r1 from {child['parent']}" in row
    assert f"epochs 1->3 from trial {child['parent']}" in lines[3]


def test_hyperband_exports_the_best_model(hyperband_run):
    run_dir, _, rows = hyperband_run
    hparams = _check_export(run_dir, rows, "val_accuracy")
    assert hparams["epochs"] == next(r["budget"] for r in rows if r["id"] == hparams["trial"])
    model = _load_exported(run_dir)
    assert model.predict(np.zeros((2, 28, 28, 1), dtype="float32"), verbose=0).shape == (2, 4)


def test_hyperband_checkpoints_live_only_while_promotable(tmp_path):
    """Which resume checkpoints exist when each trial starts (Python API, same engine as the CLI)."""
    import keras

    import archsearch

    seen: list[set[int]] = []

    class Watch(keras.callbacks.Callback):
        def __deepcopy__(self, memo):  # the runner copies callbacks per trial; keep one record
            return self

        def on_train_begin(self, logs=None):
            seen.append({int(p.parent.name.split("_")[1])
                         for p in (tmp_path / "hb" / "trials").glob("*/checkpoint.weights.h5")})

    def build(hp):
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(hp.Int("units", 2, 16), activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    # factor 2, max_epochs 4: bracket s=2 is 4@1 -> 2@2 -> 1@4 (trials 0-6), then s=1 starts (trial 7).
    tuner = archsearch.Hyperband(build, objective="val_loss", max_epochs=4, factor=2, max_trials=8,
                                 directory=tmp_path, project_name="hb")
    tuner.search(x, y, validation_data=(x[:16], y[:16]), batch_size=16, callbacks=[Watch()])

    trials = {t.id: t for t in tuner.oracle.trials.values()}
    assert [(t.info["bracket"], t.info["round"]) for t in trials.values()] == [
        (2, 0)] * 4 + [(2, 1)] * 2 + [(2, 2), (1, 0)]
    first, second = [4, 5], 6
    p4, p5 = trials[4].resume_from, trials[5].resume_from
    # Round 0 is still open: every finished trial may be promoted.
    assert seen[:4] == [set(), {0}, {0, 1}, {0, 1, 2}]
    # Round 0 decided: only the two chosen parents keep their checkpoints.
    assert seen[4] == {p4, p5}
    # Trial 4 is done, so its parent is no longer needed; trial 5's parent still is, and 4 may go on.
    assert seen[5] == {p5, 4}
    # The last round resumes the better of 4 and 5; everything else is gone.
    assert trials[second].resume_from in first and seen[6] == {trials[second].resume_from}
    # The bracket is finished: a new bracket starts with no checkpoint left behind.
    assert seen[7] == set()
    assert list((tmp_path / "hb" / "trials").glob("*/checkpoint.weights.h5")) == []
    best = tuner.best_trials(1)[0]
    assert (tmp_path / "hb" / "trials" / f"trial_{best.id:04d}" / "best.weights.h5").exists()
    assert tuner.get_best_models(1)[0] is not None


# --------------------------------------------------------------------------- BOHB and Bayesian (issue 4)


def test_bohb_cli_runs_brackets_with_resumed_promotions(cli_inprocess, tmp_path):
    run_dir = tmp_path / "run"
    # min_points_in_model=1 and min_model_budget=null: the model proposes from budget 1 on (3 results),
    # so its code path runs too.
    result = cli_inprocess(["tuner=bohb", "model=mlp", "tuner.max_epochs=3", "tuner.hyperband_iterations=1",
                  "tuner.min_points_in_model=1", "tuner.min_model_budget=null", *TINY_SHAPES], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Search plan: 11 epochs in all (bohb)." in result.stdout
    assert "trainer.epochs=5 is not used" in result.stdout
    rows = _rows(run_dir)
    assert [r["status"] for r in rows] == ["completed"] * 6
    assert len(_check_promotions(rows)) == 1
    assert sum(len(r["epochs"]) for r in rows) == 11
    assert len({json.dumps(r["hparams"], sort_keys=True) for r in rows if r["parent"] is None}) == 5
    _check_export(run_dir, rows, "val_accuracy")
    assert _load_exported(run_dir) is not None


def test_bayesian_cli_runs_a_few_trials(cli_inprocess, tmp_path):
    run_dir = tmp_path / "run"
    result = cli_inprocess(["tuner=bayesian", "model=mlp", "tuner.max_trials=4", "tuner.num_initial_points=2",
                  "trainer.epochs=1", *TINY_SHAPES], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(_trial_lines(result.stdout)) == 4
    assert "Results summary" in result.stdout
    rows = _rows(run_dir)
    assert [r["status"] for r in rows] == ["completed"] * 4
    assert all(r["epochs_done"] == 1 and r["budget"] is None for r in rows)
    # Two Sobol points start the search, then the Gaussian process proposes.
    assert [r["info"]["source"] for r in rows[:2]] == ["initial", "initial"]
    assert {r["info"]["source"] for r in rows[2:]} <= {"model", "random"}
    assert "model" in {r["info"]["source"] for r in rows[2:]}
    assert len({json.dumps(r["hparams"], sort_keys=True) for r in rows}) == 4
    _check_export(run_dir, rows, "val_accuracy")
    model = _load_exported(run_dir)
    assert model.predict(np.zeros((1, 28, 28, 1), dtype="float32"), verbose=0).shape == (1, 4)


# --------------------------------------------------------------------------- pruning (issue 3)

PRUNING_BUILDER = '''
import keras

def build(hp):
    # "good" learns; "bad" ends in a frozen layer that always answers class 0 with certainty,
    # so its val_loss stays far above the good trial's at every epoch.
    kind = hp.Choice("kind", ["good", "bad"])
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(8, activation="relu")])
    if kind == "good":
        model.add(keras.layers.Dense(4, activation="softmax"))
    else:
        model.add(keras.layers.Dense(4, activation="softmax", kernel_initializer="zeros",
                                     bias_initializer=keras.initializers.Constant([12.0, 0.0, 0.0, 0.0]),
                                     trainable=False))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
'''


def test_median_pruner_stops_a_hopeless_trial_through_the_cli(cli_inprocess, tmp_path):
    (tmp_path / "pruning_models.py").write_text(textwrap.dedent(PRUNING_BUILDER))
    run_dir = tmp_path / "run"
    result = cli_inprocess(["model=custom", "model.builder=pruning_models:build", "tuner=grid", "objective=val_loss",
                  "tuner.pruner={name: median, warmup_epochs: 1, min_trials: 1}", "trainer.epochs=4",
                  "data.image_size=16", *TINY_SHAPES], run_dir, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _rows(run_dir)
    assert [(r["hparams"]["kind"], r["status"]) for r in rows] == [("good", "completed"), ("bad", "pruned")]
    good, bad = rows
    assert good["epochs_done"] == 4 and sorted(good["intermediate"]) == [1, 2, 3, 4]
    # Pruned after the warm-up epoch, at the first epoch it was compared: recorded with the epoch it reached.
    assert bad["epochs_done"] == 2 < 4
    assert [e for e, _ in bad["epochs"]] == [1, 2]
    assert sorted(bad["intermediate"]) == [1, 2]  # per-epoch values reached the oracle while it trained
    assert bad["value"] == pytest.approx(min(bad["intermediate"].values()))
    assert bad["value"] > good["intermediate"][2]
    assert "pruned at epoch 2" in _trial_lines(result.stdout)[1]
    assert "1 completed, 1 pruned" in result.stdout
    hparams = yaml.safe_load((run_dir / "best" / "hparams.yaml").read_text())
    assert hparams["trial"] == good["id"] and hparams["values"] == {"kind": "good"}


# --------------------------------------------------------------------------- U-Net (issue 5)

def test_unet_hyperband_exports_the_model_and_the_predictions_picture(unet_run):
    import cv2

    run_dir, result = unet_run  # conftest.UNET_RUN_ARGS: hyperband, 3 trials (one promoted), 16 pages of 32x32
    assert "objective=val_f1 (max)" in result.stdout  # model=unet picks data=documents and val_f1 by itself
    assert "data=documents" in result.stdout
    assert "2 classes: number, stamp)" in result.stdout  # the header says what the model will output
    rows = _rows(run_dir)
    assert len(rows) == 3 and all(r["status"] == "completed" for r in rows)
    assert len(_check_promotions(rows)) == 1
    for r in rows:
        assert {"val_f1", "val_iou", "val_precision", "val_recall"} <= set(r["epochs"][-1][1])
        assert 0.0 <= r["value"] <= 1.0
    hparams = _check_export(run_dir, rows, "val_f1")
    assert hparams["objective"]["direction"] == "max"

    model = _load_exported(run_dir)
    assert model.input_shape == (None, 32, 32, 1)
    assert model.output_shape == (None, 32, 32, 2)  # classes: number, stamp
    masks = model.predict(np.zeros((1, 32, 32, 1), dtype="float32"), verbose=0)
    assert masks.min() >= 0.0 and masks.max() <= 1.0

    picture = cv2.imread(str(run_dir / "best" / "predictions.png"))
    assert picture is not None and picture.dtype == np.uint8 and picture.ndim == 3
    height, width, _ = picture.shape
    # 3 validation pages (16 * 0.2), one square row each, upscaled to at least 256 pixels wide,
    # under a 24-pixel title line and over the legend of the two class colours (one 26-pixel row).
    assert 256 <= width <= 1024
    assert height - 24 - 26 == 3 * (width // 3)
    assert picture.std() > 10  # not a blank image
    assert "data:image/png;base64," in (run_dir / "report.html").read_text()  # the report shows the picture
    # Three columns of equal width: input | true masks | predicted; the masks are painted in colour,
    # the input is grey.
    third = width // 3
    grid = picture[24:24 + 3 * (width // 3)]
    colour = [np.abs(grid[:, j * third:(j + 1) * third].astype(int) - grid[:, j * third:(j + 1) * third].mean(
        axis=-1, keepdims=True)).mean() for j in range(3)]
    assert colour[0] < 1.0 < colour[1]
