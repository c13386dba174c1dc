"""Tune scikit-learn estimators: KerasTuner's ``SklearnTuner``, over the same oracles and store.

``build(hp)`` returns an estimator; each trial fits it on every cross-validation fold (``cv``,
default 5 shuffled folds) and is scored by ``scoring(estimator, X, y)`` (default: the estimator's
own ``score``), averaged over the folds, as the metric ``score`` (maximised).  ``metrics``
(functions ``metric(y_true, y_pred)``) are recorded too, under their names.  The estimator refitted
on all the data is kept per trial (pickled), so ``get_best_models`` returns fitted estimators.
scikit-learn is an optional extra: ``pip install ".[sklearn]"``.
"""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError, ConfigRuntimeError, MissingExtraError
from archsearch.training.hypermodel import HyperModel
from archsearch.core.trial import Trial
from archsearch.keras_tuner.tuner import Tuner

MODEL_FILE = "estimator.pkl"


try:  # the optional [sklearn] extra; this module is imported only when SklearnTuner is used
    import sklearn
    import sklearn.model_selection
except ImportError:
    sklearn = None


def _sklearn():
    """scikit-learn, or one clear error saying how to install it (looked up when called, as KerasTuner does)."""
    if sklearn is None:
        raise MissingExtraError("SklearnTuner", "needs scikit-learn, which is not installed",
                                'Please install sklearn: pip install "archsearch[sklearn]" (or pip install scikit-learn)')
    return sklearn


class SklearnTuner(Tuner):
    """Cross-validated search over scikit-learn estimators (KerasTuner's signature)."""

    builds_keras_models = False
    metrics: Any = None  # scikit-learn metric functions (KerasTuner's attribute), not a Keras compile setting

    def __init__(self, oracle, hypermodel, scoring: Callable[..., float] | None = None,
                 metrics: Callable[..., float] | Sequence[Callable[..., float]] | None = None,
                 cv: Any = None, **kwargs: Any) -> None:
        sklearn = _sklearn()
        if oracle is None:
            raise ConfigError("oracle", "is required by SklearnTuner",
                              "e.g. oracle=archsearch.oracles.BayesianOptimizationOracle("
                              "objective=archsearch.Objective('score', 'max'), max_trials=10)")
        reported = ["score", *_names(metrics)]
        if not set(oracle.objective.metric_names) <= set(reported):
            raise ConfigError("oracle.objective", f"is {oracle.objective.label}, but SklearnTuner reports {reported}",
                              "use objective=Objective('score', 'max'), or the name of one of metrics=")
        if callable(hypermodel) and not hasattr(hypermodel, "build"):
            hypermodel = _EstimatorBuilder(hypermodel)
        super().__init__(hypermodel=hypermodel, oracle=oracle, **kwargs)
        self.scoring = scoring
        self.metrics = [] if metrics is None else list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        self.cv = cv if cv is not None else sklearn.model_selection.KFold(5, shuffle=True, random_state=1)

    def search(self, X, y, sample_weight=None, groups=None) -> None:  # noqa: N803 - scikit-learn's names
        """Cross-validate every trial's estimator on ``X``, ``y``."""
        _check_rows(X, y)
        super().search(X, y, sample_weight=sample_weight, groups=groups)

    def run_trial(self, trial: Trial, X, y, sample_weight=None, groups=None, **_: Any) -> dict[str, float]:  # noqa: N803
        import numpy as np

        folds: dict[str, list[float]] = {}
        split_kwargs = {} if groups is None else {"groups": groups}
        for train, test in self.cv.split(X, y, **split_kwargs):
            estimator = self.hypermodel.build(trial.hyperparameters)
            _fit(estimator, _take(X, train), _take(y, train), None if sample_weight is None else sample_weight[train])
            weights = {} if sample_weight is None else {"sample_weight": sample_weight[test]}
            x_test, y_test = _take(X, test), _take(y, test)
            score = (estimator.score(x_test, y_test, **weights) if self.scoring is None
                     else self.scoring(estimator, x_test, y_test, **weights))
            folds.setdefault("score", []).append(float(score))
            if self.metrics:
                predicted = estimator.predict(x_test)
                for metric in self.metrics:
                    folds.setdefault(metric.__name__, []).append(float(metric(y_test, predicted, **weights)))
        final = self.hypermodel.build(trial.hyperparameters)  # refitted on everything: what get_best_models returns
        _fit(final, X, y, sample_weight)
        self.save_model(trial.id, final)
        return {name: float(np.mean(values)) for name, values in folds.items()}

    def save_model(self, trial_id: int | str, model: Any, step: int = 0) -> None:
        from archsearch.core.atomic import atomic_path

        folder = Path(self.get_trial_dir(trial_id))
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / MODEL_FILE) as temporary:
            temporary.write_bytes(pickle.dumps(model))

    def load_model(self, trial: Trial) -> Any:
        path = Path(self.get_trial_dir(trial.id)) / MODEL_FILE
        with open(path, "rb") as handle:
            return pickle.load(handle)

    def get_best_models(self, num_models: int | None = None) -> list[Any]:
        return [self.load_model(t) for t in self.best_trials(num_models)]


class _EstimatorBuilder(HyperModel):
    """A ``build(hp)`` function returning an estimator (no Keras session to reset between builds)."""

    def __init__(self, build_fn: Callable[[Any], Any]) -> None:
        super().__init__(getattr(build_fn, "__name__", None))
        self._build_fn = build_fn

    def build(self, hp):
        return self._build_fn(hp)


def _names(metrics) -> list[str]:
    if metrics is None:
        return []
    items = metrics if isinstance(metrics, (list, tuple)) else [metrics]
    return [getattr(m, "__name__", "") for m in items]


def _check_rows(X, y) -> None:  # noqa: N803
    """Refuse, before any trial, data every estimator would fail on: X must be rows of features."""
    import numpy as np

    shape = getattr(X, "shape", None)
    if shape is None:
        try:
            shape = np.shape(X)
        except ValueError:  # ragged rows
            raise ConfigRuntimeError("X", "has rows of different lengths", "give every row the same features") from None
    if len(shape) != 2:
        raise ConfigRuntimeError("X", f"has shape {tuple(shape)}, not (samples, features): Expected the data to be "
                             "numpy arrays or pandas DataFrames of rows",
                             "pass a 2-D array, a DataFrame or a list of rows (reshape(-1, 1) for one feature)")
    rows = len(y) if hasattr(y, "__len__") else None
    if rows is not None and rows != shape[0]:
        raise ConfigError("y", f"has {rows} values for {shape[0]} rows of X", "give one target per row")


def _take(data, index):
    """Rows ``index`` of an array, a DataFrame or a list."""
    if hasattr(data, "iloc"):
        return data.iloc[index]
    if hasattr(data, "shape"):
        return data[index]
    return [data[i] for i in index]


def _fit(estimator, X, y, sample_weight) -> None:  # noqa: N803
    """Fit, passing ``sample_weight`` only where the estimator takes it (a Pipeline does not by that name)."""
    takes_weights = "sample_weight" in inspect.signature(estimator.fit).parameters
    if sample_weight is not None and takes_weights and type(estimator).__name__ != "Pipeline":
        estimator.fit(X, y, sample_weight=sample_weight)
    else:
        estimator.fit(X, y)
