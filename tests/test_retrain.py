"""mode=retrain: the winner and the family's baseline, retrained over seeds and scored on the test split."""

from __future__ import annotations

import json
import re
import sqlite3

import numpy as np
import pytest

from archsearch.core.objective import Objective
from archsearch.training.retrain import ranked_trials, trial_candidate
from archsearch.core.trial import Trial

LINE = re.compile(r"test accuracy: baseline \d\.\d{3} ± \d\.\d{3} -> tuned \d\.\d{3} ± \d\.\d{3} "
                  r"\([+-]\d\.\d{3}, 2 seeds\) \[trial \d+\]: (better|worse|within noise) \(paired t-test over 2 "
                  r"seeds: p = \S+ (<|>=) 0.05, the significance level\)")


def _stored_trials(run_dir):
    db = sqlite3.connect(run_dir / "trials.db")
    rows = db.execute("SELECT id, value, metrics FROM trials WHERE status = 'completed'").fetchall()
    db.close()
    return {i: (value, json.loads(metrics)) for i, value, metrics in rows}


@pytest.mark.slow
def test_retrain_compares_tuned_and_baseline_and_reproduces_a_trial(cli_inprocess, finished_run_copy):
    cli = cli_inprocess
    run_dir = finished_run_copy  # conftest.FINISHED_RUN_ARGS: 2 trials x 2 epochs, 160 + 40 images
    stored = _stored_trials(run_dir)
    best_id = max(stored, key=lambda i: (stored[i][0], -i))

    result = cli(["mode=retrain", f"from_run={run_dir}", "retrain.repeats=2"], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert LINE.search(result.stdout), result.stdout[-2000:]
    assert "fixed number of epochs" in result.stdout  # train + validation: no early stopping, said
    comparison = json.loads((run_dir / "retrain" / "comparison.json").read_text())
    assert comparison["metric"] == "accuracy" and comparison["repeats"] == 2 and comparison["seeds"] == [0, 1]
    assert comparison["data"] == {"train": 128, "validation": 32, "test": 40}
    baseline, (tuned,) = comparison["baseline"], comparison["tuned"]
    assert baseline["values"] == {"num_layers": 1, "units_1": 512, "dropout": 0.2, "optimizer": "adam",
                                  "learning_rate": 0.001}  # conf/model/mlp.yaml's baseline
    assert tuned["trial"] == best_id and tuned["search_score"] == pytest.approx(stored[best_id][0])
    assert baseline["label"] == "baseline" and "trial" not in baseline and baseline["seeded_as_trial"] == best_id
    assert tuned["verdict"] == tuned["significance"]["verdict"] == LINE.search(result.stdout).group(1)
    for entry in (baseline, tuned):
        assert len(entry["test_scores"]) == 2 and all(0.0 <= s <= 1.0 for s in entry["test_scores"])
        assert entry["mean"] == pytest.approx(np.mean(entry["test_scores"]))
        assert entry["std"] == pytest.approx(np.std(entry["test_scores"], ddof=1))
        assert entry["epochs"] == 2
    differences = [t - b for t, b in zip(tuned["test_scores"], baseline["test_scores"])]
    assert tuned["difference"]["per_seed"] == pytest.approx(differences)
    from archsearch.export.best import load_model

    assert load_model(run_dir / "retrain" / "model.keras").count_params() > 0

    # top_k: the two best trials, each with its own model
    result = cli(["mode=retrain", f"from_run={run_dir}", "top_k=2", "retrain.repeats=1"], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    comparison = json.loads((run_dir / "retrain" / "comparison.json").read_text())
    assert [t["trial"] for t in comparison["tuned"]] == sorted(stored, key=lambda i: (-stored[i][0], i))
    for trial_id in stored:
        assert (run_dir / "retrain" / f"trial_{trial_id:04d}" / "model.keras").is_file()

    # a trial's exact values, seed and epochs on the training data reproduce its stored score
    other = min(stored, key=lambda i: (stored[i][0], i))
    result = cli(["mode=retrain", f"from_run={run_dir}", f"trial_id={other}", "retrain.repeats=1",
                  "retrain.use_validation=false"], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    (tuned,) = json.loads((run_dir / "retrain" / "comparison.json").read_text())["tuned"]
    value, metrics = stored[other]
    assert tuned["trial"] == other and tuned["validation_scores"] == [pytest.approx(value, abs=1e-6)]
    assert tuned["validation_metrics"][0]["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)

    result = cli(["mode=retrain", f"from_run={run_dir}", "trial_id=7"], run_dir)
    assert result.returncode == 2 and "trial_id: 7 is not a completed trial" in result.stderr
    result = cli(["mode=retrain", f"from_run={run_dir}", "retrain.alpha=2"], run_dir)
    assert result.returncode == 2 and "retrain.alpha: 2 is not a significance level" in result.stderr


@pytest.mark.parametrize("args, expected", [
    (["mode=retrain"], "from_run: is not set"),
    (["mode=retrain", "from_run=/nonexistent/run"], "from_run: /nonexistent/run does not exist"),
    (["mode=again"], "mode: unknown mode 'again'"),
    (["from_run=outputs/x"], "from_run: is only read by mode=retrain"),
    (["retrain.repeats=5"], "retrain.repeats: is only read by mode=retrain (got 5)"),  # a search never retrains
])
def test_retrain_settings_are_checked(cli_inprocess, tmp_path, args, expected):
    result = cli_inprocess(args, tmp_path / "run")
    assert result.returncode == 2, result.stderr[-2000:]
    assert expected in result.stderr
    assert not (tmp_path / "run" / "trials.db").exists()


def test_retrain_refuses_settings_it_would_not_apply(cli_inprocess, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = cli_inprocess(["mode=retrain", f"from_run={run_dir}", "data.num_samples=50"], run_dir)
    assert result.returncode == 2
    assert "data.num_samples: mode=retrain uses the settings stored with the run" in result.stderr


def test_budgeted_trials_retrain_for_the_epochs_they_trained():
    trials = [Trial(0, {"u": 1}, budget=3, status="completed", value=0.5),
              Trial(1, {"u": 2}, budget=9, status="completed", value=0.7),
              Trial(2, {"u": 3}, status="failed")]
    best, second = ranked_trials(trials, Objective.create("val_accuracy"))
    assert (best.id, second.id) == (1, 0)
    assert trial_candidate(best, None, 5).epochs == 9  # hyperband: its budget
    assert trial_candidate(best, 4, 5).epochs == 4  # retrain.epochs wins
    assert trial_candidate(Trial(3, {}, status="completed", value=0.1), None, 5).epochs == 5  # trainer.epochs
    assert [t.id for t in ranked_trials(trials, Objective.create("val_loss"))] == [0, 1]


def test_python_api_retrain(tmp_path):
    keras = pytest.importorskip("keras")
    import archsearch

    def build(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 2, 8, step=2, default=4),
                                                                        activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    tuner = archsearch.RandomSearch(build, objective="val_accuracy", max_trials=2, seed=0, directory=tmp_path,
                                    project_name="p")
    tuner.search(x[:60], y[:60], validation_split=0.25, epochs=1)
    comparison = tuner.retrain(x[:60], y[:60], x_test=x[60:], y_test=y[60:], repeats=2, baseline={"units": 2})
    assert comparison["baseline"]["values"] == {"units": 2}
    baseline, (tuned,) = comparison["baseline"], comparison["tuned"]
    assert baseline["label"] == "baseline" and "trial" not in baseline  # the baseline is no trial
    assert tuned["label"] == f"trial {tuned['trial']}" and baseline["seeded_as_trial"] == tuned["trial"]
    assert tuned["verdict"] in ("better", "worse", "within noise") and tuned["significance"]["seeds"] == 2
    assert tuned["verdict"] == "better" or "repeats=" in tuned["significance"]["advice"]  # the API's own names
    assert "retrain.repeats" not in tuned["significance"]["advice"]
    assert len(comparison["baseline"]["test_scores"]) == 2 and len(comparison["tuned"][0]["test_scores"]) == 2
    assert (tmp_path / "p" / "retrain" / "comparison.json").is_file()
    assert (tmp_path / "p" / "retrain" / "model.keras").is_file()


def test_values_files_read_as_exported_or_plain(tmp_path):
    from archsearch.errors import ConfigError
    from archsearch.training.retrain import baseline_candidate, read_values

    exported = tmp_path / "hparams.yaml"
    exported.write_text("trial: 3\nscore: 0.5\nepochs: 4\nvalues: {units: 8, learning_rate: 0.01}\n")
    values, record = read_values(exported, "hparams")
    assert values == {"units": 8, "learning_rate": 0.01} and record["epochs"] == 4
    plain = tmp_path / "plain.yaml"
    plain.write_text("units: 2\n")
    candidate, note = baseline_candidate({"units": 512}, plain, epochs=3, trial_id=1)
    assert candidate.values == {"units": 2} and str(plain) in note
    candidate, note = baseline_candidate({"units": 512}, None, epochs=3, trial_id=1)
    assert candidate.values == {"units": 512} and "model.baseline" in note
    assert baseline_candidate(None, None, 3, 1)[0].values == {}
    from archsearch.space.hyperparameters import HyperParameters
    from archsearch.training.retrain import Candidate, check_names

    space = HyperParameters.from_config({"units": {"type": "int", "min": 2, "max": 8}})
    check_names(candidate, space, "model.baseline")
    with pytest.raises(ConfigError, match=r"baseline: 'unit' is not in the search space \(units\)"):
        check_names(Candidate("baseline", {"unit": 3}, 1), space, "baseline")
    with pytest.raises(ConfigError, match="baseline: .*missing.yaml does not exist"):
        baseline_candidate(None, tmp_path / "missing.yaml", 3, 1)
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="hparams: .* holds no hyperparameter values"):
        read_values(tmp_path / "empty.yaml", "hparams")


@pytest.mark.parametrize("tuned, baseline, direction, verdict", [
    ([0.90, 0.91, 0.92], [0.84, 0.85, 0.85], "max", "better"),  # every seed 6-7 points up
    ([0.80, 0.81, 0.80], [0.84, 0.85, 0.85], "max", "worse"),
    ([0.823, 0.835, 0.811], [0.842, 0.828, 0.856], "max", "within noise"),  # the issue's -0.019 over 3 seeds
    ([0.30, 0.31, 0.29], [0.40, 0.42, 0.41], "min", "better"),  # a loss: lower is better
])
def test_retrain_says_whether_the_difference_is_beyond_noise(tuned, baseline, direction, verdict):
    from archsearch.training.retrain import significance, verdict_text

    result = significance(tuned, baseline, direction)
    assert result["verdict"] == verdict and result["significant"] == (verdict != "within noise")
    assert result["alpha"] == 0.05 and result["seeds"] == 3 and "paired t-test" in result["test"]
    text = verdict_text(result)
    assert text.startswith(verdict) and "significance level" in text and "0.05" in text
    if verdict == "within noise":
        assert result["p_value"] >= 0.05 and "retrain.repeats=" in text and "tuner.max_trials" in text
        assert "whether a loss of this size is real" in text  # tuned scored lower, within noise
        assert result["seeds_needed"] > 3
    elif verdict == "worse":
        assert result["p_value"] < 0.05 and "bigger budget (tuner.max_trials, trainer.epochs)" in text
    else:
        assert result["p_value"] < 0.05 and result["advice"] == ""


def test_significance_with_one_seed_or_no_spread():
    from archsearch.training.retrain import significance

    one = significance([0.9], [0.8], "max", repeats_name="repeats")
    assert one["verdict"] == "untested" and "repeats=3" in one["advice"]
    same = significance([0.8, 0.9], [0.8, 0.9], "max")
    assert same["verdict"] == "within noise" and same["p_value"] == 1.0 and same["seeds_needed"] is None
    assert "both scored the same" in same["advice"]
    tiny = significance([0.801, 0.79, 0.811], [0.8, 0.8, 0.8], "max")  # +0.0007 against a spread of 0.01
    assert tiny["seeds_needed"] is None and "would not stand out from noise even with 50 seeds" in tiny["advice"]
    shifted = significance([0.85, 0.95], [0.8, 0.9], "max")  # the same gain on every seed
    assert shifted["verdict"] == "better" and shifted["p_value"] == 0.0 and shifted["t"] is None  # valid JSON
    stricter = significance([0.86, 0.89, 0.88], [0.84, 0.85, 0.85], "max", alpha=0.001)
    assert stricter["verdict"] == "within noise" and stricter["alpha"] == 0.001


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, "abc", None])
def test_retrain_alpha_is_checked(alpha):
    from archsearch.errors import ConfigError
    from archsearch.engine.settings import check_alpha

    with pytest.raises(ConfigError, match="retrain.alpha: .* (is not a significance level|is not allowed)"):
        check_alpha(alpha, "retrain.alpha")
