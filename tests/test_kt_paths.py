"""The attribute paths a KerasTuner user reaches (issue 24): ``kt.tuners.*``, ``kt.applications.*`` and
KerasTuner 1.4.8's public ``keras_tuner.engine.*`` names resolve to the very objects of archsearch's
top-level names, and ``import archsearch`` still loads neither Keras nor TensorFlow."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import archsearch as kt
import archsearch.core.trial  # noqa: F401  (kt.core.trial below)
import archsearch.keras_tuner.tuner  # noqa: F401  (kt.keras_tuner.tuner below)
from conftest import REPO

# keras_tuner.engine.<module>.<name> in KerasTuner 1.4.8 (its generated keras_tuner/engine/*/__init__.py),
# plus engine.objective.Objective (public before 1.1), and the archsearch object each must be.
ENGINE_PATHS = {
    "base_tuner.BaseTuner": "BaseTuner",
    "hypermodel.HyperModel": "HyperModel",
    "hyperparameters.HyperParameters": "HyperParameters",
    "hyperparameters.HyperParameter": "hyperparameters.HyperParameter",
    "hyperparameters.Boolean": "hyperparameters.Boolean",
    "hyperparameters.Choice": "hyperparameters.Choice",
    "hyperparameters.Fixed": "hyperparameters.Fixed",
    "hyperparameters.Float": "hyperparameters.Float",
    "hyperparameters.Int": "hyperparameters.Int",
    "hyperparameters.serialize": "hyperparameters.serialize",
    "hyperparameters.deserialize": "hyperparameters.deserialize",
    "metrics_tracking.infer_metric_direction": "core.trial.infer_metric_direction",
    "objective.Objective": "Objective",
    "oracle.Objective": "Objective",
    "oracle.Oracle": "Oracle",
    "trial.Trial": "Trial",
    "trial.TrialStatus": "core.trial.TrialStatus",
    "tuner.Tuner": "Tuner",
    "tuner.maybe_distribute": "keras_tuner.tuner.maybe_distribute",
}
TUNERS = ["Tuner", "RandomSearch", "GridSearch", "Hyperband", "BayesianOptimization", "SklearnTuner"]
APPLICATIONS = ["HyperImageAugment", "HyperEfficientNet", "HyperResNet", "HyperXception"]


def _resolve(root, dotted: str):
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


@pytest.mark.parametrize("path", sorted(ENGINE_PATHS))
def test_every_keras_tuner_engine_path_is_archsearch_s_own_object(path):
    expected = _resolve(kt, ENGINE_PATHS[path])
    assert _resolve(kt.engine, path) is expected
    module, name = path.rsplit(".", 1)
    assert getattr(importlib.import_module(f"archsearch.engine.{module}"), name) is expected


@pytest.mark.parametrize("name", TUNERS)
def test_kt_tuners_holds_keras_tuner_s_tuners(name):
    assert getattr(kt.tuners, name) is getattr(kt, name)


@pytest.mark.parametrize("name", APPLICATIONS)
def test_kt_applications_holds_keras_tuner_s_hypermodels(name):
    assert isinstance(getattr(kt.applications, name), type)
    assert issubclass(getattr(kt.applications, name), kt.HyperModel)


def test_engine_modules_import_by_name_and_stay_light():
    """``from archsearch.engine.trial import TrialStatus`` works before any attribute access, in a fresh
    process, and neither it nor ``import archsearch`` imports Keras or TensorFlow."""
    code = (
        "import sys\n"
        "import archsearch\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'import archsearch'\n"
        "from archsearch.engine.trial import TrialStatus, Trial\n"
        "import archsearch.engine.hyperparameters as hps\n"
        "import archsearch.engine.objective\n"
        "assert TrialStatus is archsearch.core.trial.TrialStatus and Trial is archsearch.Trial\n"
        "assert hps.HyperParameters is archsearch.HyperParameters\n"
        "assert archsearch.engine.hyperparameters is hps is sys.modules['archsearch.engine.hyperparameters']\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'engine aliases'\n"
        "try:\n"
        "    import archsearch.engine.nothing\n"
        "except ModuleNotFoundError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('an unknown engine module imported')\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_an_unknown_engine_attribute_names_the_ones_there_are():
    with pytest.raises(AttributeError, match="no attribute 'nothing'.*hyperparameters"):
        kt.engine.nothing


def test_infer_metric_direction_reads_names_metric_objects_and_functions():
    import keras

    infer = kt.engine.metrics_tracking.infer_metric_direction
    assert infer("val_loss") == "min" and infer("val_accuracy") == "max" and infer("val_quality") is None
    assert infer(keras.metrics.AUC()) == "max" and infer(keras.losses.mean_squared_error) == "min"


def test_maybe_distribute_enters_the_strategy_s_scope():
    entered = []

    class Strategy:
        def scope(self):
            import contextlib

            @contextlib.contextmanager
            def scope():
                entered.append("in")
                yield
                entered.append("out")

            return scope()

    with kt.engine.tuner.maybe_distribute(None):
        pass
    with kt.engine.tuner.maybe_distribute(Strategy()):
        assert entered == ["in"]
    assert entered == ["in", "out"]
