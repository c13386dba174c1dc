"""KerasTuner's SklearnTuner: cross-validated search over scikit-learn estimators (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

import archsearch as kt

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is the optional [sklearn] extra")


def test_the_sklearn_tuner_tutorial(tmp_path):
    from sklearn import datasets, ensemble, linear_model, metrics, model_selection

    def build_model(hp):
        model_type = hp.Choice("model_type", ["random_forest", "ridge"])
        if model_type == "random_forest":
            with hp.conditional_scope("model_type", "random_forest"):
                return ensemble.RandomForestClassifier(n_estimators=hp.Int("n_estimators", 5, 15, step=5),
                                                       max_depth=hp.Int("max_depth", 2, 4), random_state=0)
        with hp.conditional_scope("model_type", "ridge"):
            return linear_model.RidgeClassifier(alpha=hp.Float("alpha", 1e-3, 1, sampling="log"))

    tuner = kt.SklearnTuner(
        oracle=kt.oracles.BayesianOptimizationOracle(objective=kt.Objective("score", "max"), max_trials=4,
                                                     num_initial_points=2, seed=0),
        hypermodel=build_model,
        scoring=metrics.make_scorer(metrics.accuracy_score),
        metrics=[metrics.balanced_accuracy_score],
        cv=model_selection.StratifiedKFold(3),
        directory=str(tmp_path), project_name="my_project")
    x, y = datasets.load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = model_selection.train_test_split(x, y, test_size=0.2, random_state=0)
    tuner.search(x_train, y_train)

    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 4 and all(t.status == "completed" for t in trials)
    assert all(0.5 < t.score <= 1.0 and "balanced_accuracy_score" in t.metrics for t in trials)
    best_model = tuner.get_best_models(num_models=1)[0]
    assert best_model.score(x_test, y_test) > 0.6  # fitted on all the training data
    best_hps = tuner.get_best_hyperparameters()[0]
    assert best_hps.get("model_type") in ("random_forest", "ridge")


def test_default_scoring_sample_weights_and_group_folds(tmp_path):
    from sklearn import linear_model, model_selection

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=60)
    groups = np.repeat(np.arange(6), 10)

    tuner = kt.SklearnTuner(
        oracle=kt.oracles.RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=2, seed=1),
        hypermodel=lambda hp: linear_model.Ridge(alpha=hp.Float("alpha", 1e-3, 10.0, sampling="log")),
        cv=model_selection.GroupKFold(3), directory=str(tmp_path))
    tuner.search(x, y, sample_weight=np.ones(60), groups=groups)
    assert all(t.score > 0.9 for t in tuner.oracle.trials.values())  # R^2, the estimator's own score


def test_an_objective_the_tuner_does_not_report_is_refused(tmp_path):
    from sklearn import linear_model

    with pytest.raises(kt.ConfigError, match="oracle.objective.*reports \\['score'\\]"):
        kt.SklearnTuner(oracle=kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=1),
                        hypermodel=lambda hp: linear_model.Ridge(), directory=str(tmp_path))


def test_data_that_is_not_rows_of_features_is_refused_before_any_trial(tmp_path):
    from sklearn import linear_model

    def build(hp):
        return linear_model.Ridge(alpha=hp.Float("alpha", 1e-3, 1.0, sampling="log"))

    tuner = kt.SklearnTuner(oracle=kt.oracles.RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=2),
                            hypermodel=build, directory=tmp_path)
    with pytest.raises(kt.ConfigError, match="X: has shape \\(6,\\), not \\(samples, features\\)") as info:
        tuner.search([1, 2, 3, 4, 5, 6], [1, 1, 1, 2, 2, 2])
    assert isinstance(info.value, RuntimeError)  # what KerasTuner raises there, for code that catches it
    assert "Expected the data to be numpy" in str(info.value)
    with pytest.raises(kt.ConfigError, match="y: has 2 values for 3 rows"):
        tuner.search([[1.0], [2.0], [3.0]], [1, 2])
    assert not tuner.oracle.trials


def test_without_scikit_learn_the_tuner_says_how_to_install_it(monkeypatch, tmp_path):
    import archsearch.keras_tuner.sklearn_tuner as module

    monkeypatch.setattr(module, "sklearn", None)  # as if the [sklearn] extra were not installed
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=2)
    with pytest.raises(ImportError, match=r"Please install sklearn: pip install \"archsearch\[sklearn\]\"") as info:
        kt.SklearnTuner(oracle=oracle, hypermodel=lambda hp: None, directory=tmp_path)
    assert isinstance(info.value, kt.ConfigError)  # one line and exit status 2 from the CLI, like other setup errors
    assert not (tmp_path / "untitled_project").exists()
