"""kt.applications (issue 12, item 10): KerasTuner's ready-made image hypermodels, and the CLI families.

Model builds are kept few and small (32x32 inputs, the shallowest depths); only one tiny Xception
trains a batch.  The CLI runs one ResNet trial end to end.
"""

from __future__ import annotations

import numpy as np
import pytest

import archsearch as kt
from archsearch.errors import ConfigError
from cli_inprocess import run_cli_inprocess
from conftest import REPO

SHAPE = (32, 32, 3)
RESNET_NAMES = ["version", "conv3_depth", "conv4_depth", "pooling", "optimizer", "learning_rate"]
XCEPTION_DEFAULTS = {"activation": "relu", "conv2d_num_filters": 64, "kernel_size": 3, "initial_strides": 2,
                     "sep_num_filters": 256, "num_residual_blocks": 4, "pooling": "avg", "num_dense_layers": 1,
                     "dropout_rate": 0.5, "dense_use_bn": True, "learning_rate": 1e-3}
CLASSES = [kt.applications.HyperResNet, kt.applications.HyperXception, kt.applications.HyperEfficientNet]


def small_resnet_hp(**values):
    hp = kt.HyperParameters()
    for name, value in {"conv3_depth": 1, "conv4_depth": 1, **values}.items():
        hp.Fixed(name, value)
    return hp


def small_xception_hp(**values):
    hp = kt.HyperParameters()
    for name, value in {"sep_num_filters": 32, "num_residual_blocks": 1, "conv2d_num_filters": 16,
                        **values}.items():
        hp.Fixed(name, value)
    return hp


@pytest.mark.parametrize("cls", CLASSES)
def test_an_input_is_required(cls):
    with pytest.raises(ValueError, match="input_tensor"):
        cls(classes=10)


@pytest.mark.parametrize("cls", CLASSES)
def test_classes_are_required_for_a_top(cls):
    with pytest.raises(ConfigError, match="classes"):
        cls(input_shape=SHAPE)


def test_without_a_top_classes_may_be_left_out():
    kt.applications.HyperResNet(input_shape=SHAPE, include_top=False)
    kt.applications.HyperXception(input_shape=SHAPE, include_top=False)


def test_augmentation_model_must_be_a_model_or_hypermodel():
    with pytest.raises(ConfigError, match="augmentation_model"):
        kt.applications.HyperEfficientNet(input_shape=SHAPE, classes=10, augmentation_model=0)


def test_reachable_as_kt_applications():
    import archsearch.keras_tuner.applications as apps

    assert kt.applications is apps
    assert {"HyperResNet", "HyperXception", "HyperEfficientNet"} <= set(dir(apps))
    assert isinstance(apps.HyperResNet(input_shape=SHAPE, classes=2), kt.HyperModel)


def test_resnet_declares_kerastuner_space_and_compiles_with_the_tuned_optimizer():
    hp = small_resnet_hp(version="v1")
    hp.Fixed("optimizer", "rmsprop")
    hp.Fixed("learning_rate", 0.001)
    model = kt.applications.HyperResNet(input_shape=SHAPE, classes=5).build(hp)
    assert list(hp.values) == ["conv3_depth", "conv4_depth", "version", "optimizer", "learning_rate", "pooling"]
    assert model.name == "ResNet" and model.output_shape == (None, 5)
    assert type(model.optimizer).__name__ == "RMSprop"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)
    assert model.loss == "categorical_crossentropy"


def test_resnet_defaults_are_kerastuners():
    space = kt.HyperParameters()
    space.Fixed("conv3_depth", 1)  # keep the build cheap; the others keep KerasTuner's declarations
    space.Fixed("conv4_depth", 1)
    kt.applications.HyperResNet(input_shape=SHAPE, classes=5).build(space)
    assert set(space.space.keys()) == set(RESNET_NAMES)
    assert space.space["version"].values == ["v1", "v2", "next"] and space.values["version"] == "v2"
    assert space.space["pooling"].values == ["avg", "max"] and space.values["pooling"] == "avg"
    assert space.space["optimizer"].values == ["adam", "rmsprop", "sgd"] and space.values["optimizer"] == "adam"
    assert space.space["learning_rate"].values == [0.1, 0.01, 0.001] and space.values["learning_rate"] == 0.01


@pytest.mark.parametrize("version", ["v2", "next"])
def test_resnet_versions_build_without_top_from_an_input_tensor(version):
    import keras

    inputs = keras.Input(SHAPE)
    model = kt.applications.HyperResNet(input_tensor=inputs, include_top=False).build(
        small_resnet_hp(version=version, pooling="max"))
    assert model.inputs == [inputs]
    width = 2048 if version == "v2" else 1024 * 2
    assert model.output_shape == (None, width)
    assert not getattr(model, "optimizer", None)  # not compiled without a top


def test_resnet_v1_is_keras_resnet50():
    """Default depths (4, 6) and v1: exactly Keras' ResNet50's weights count without its top."""
    hp = kt.HyperParameters()
    hp.Fixed("version", "v1")
    model = kt.applications.HyperResNet(input_shape=SHAPE, include_top=False).build(hp)
    assert model.count_params() == 23_587_712
    assert hp.values["conv3_depth"] == 4 and hp.values["conv4_depth"] == 6


def test_xception_defaults_and_training(tmp_path):
    hp = kt.HyperParameters()
    hypermodel = kt.applications.HyperXception(input_shape=(16, 16, 3), classes=3)
    model = hypermodel.build(hp)
    assert hp.values == XCEPTION_DEFAULTS
    assert model.name == "Xception" and model.output_shape == (None, 3)
    assert type(model.optimizer).__name__ == "Adam"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert hp.space["sep_num_filters"].values == [128, 256, 384, 512, 640, 768]
    small = kt.applications.HyperXception(input_shape=(16, 16, 3), classes=3).build(
        small_xception_hp(activation="selu", pooling="flatten", num_dense_layers=2))
    loss = small.train_on_batch(np.ones((2, 16, 16, 3), "float32"), np.eye(3, dtype="float32")[[0, 2]])
    assert np.isfinite(loss).all()


def test_xception_without_top_and_untunable():
    import keras

    inputs = keras.Input((16, 16, 3))
    hp = small_xception_hp()
    hp.Choice("pooling", ["avg", "max"])
    model = kt.applications.HyperXception(input_tensor=inputs, include_top=False, tunable=False).build(hp)
    assert model.inputs == [inputs] and model.output_shape == (None, 64)  # exit block: 2 x sep_num_filters
    assert "num_dense_layers" not in hp.values and not getattr(model, "optimizer", None)
    # tunable=False (as in KerasTuner): build works on a copy, so what was not declared beforehand
    # takes its default and never reaches the search space; what was declared stays as declared.
    assert "activation" not in hp.space
    assert type(hp.space["pooling"]).__name__ == "Choice"


def test_efficientnet_from_scratch_with_a_hyper_augmentation():
    import keras

    class Flip(kt.HyperModel):
        def build(self, hp):
            hp.Choice("flip", ["horizontal"])
            return keras.Sequential([keras.layers.RandomFlip("horizontal")], name="aug")

    hp = kt.HyperParameters()
    model = kt.applications.HyperEfficientNet(input_shape=SHAPE, classes=4, augmentation_model=Flip(),
                                              weights=None).build(hp)
    assert model.name == "EfficientNet" and model.output_shape == (None, 4)
    assert model.layers[1].name == "aug"
    assert hp.values == {"flip": "horizontal", "version": "B0", "pooling": "avg", "top_dropout_rate": 0.2,
                         "learning_rate": 0.01}
    assert type(model.optimizer).__name__ == "SGD"


# ------------------------------------------------------------ the CLI families


def _family(name: str):
    import importlib

    from omegaconf import OmegaConf

    from archsearch.cli.config import search_space

    cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml"))
    return importlib.import_module(f"hypermodels.{name}"), search_space(cfg), cfg


@pytest.mark.parametrize("family", ["resnet", "xception", "efficientnet"])
def test_family_configs_validate_and_their_baselines_lie_in_the_space(family):
    module, space, cfg = _family(family)
    module.validate_config(space, (28, 28), 4, cfg["params"])
    assert cfg["builder"] == f"hypermodels.{family}:build"
    assert set(cfg["baseline"]) <= set(space.space.keys())
    assert all(space.space[k].contains(v) for k, v in cfg["baseline"].items())


def test_family_configs_refuse_what_the_family_would_ignore_or_cannot_build():
    module, space, cfg = _family("resnet")
    with pytest.raises(ConfigError, match="model.params.width"):
        module.validate_config(space, (28, 28), 4, {"width": 2})
    with pytest.raises(ConfigError, match=r"model.params.version.*'v3'"):
        module.validate_config(space, (28, 28), 4, {"version": "v3"})
    with pytest.raises(ConfigError, match="model"):
        module.validate_config(space, (10,), 4, {})
    with pytest.raises(ConfigError, match="model.params.base_filters"):
        module.validate_config(space, (28, 28), 4, {"base_filters": 0})
    emodule, espace, ecfg = _family("efficientnet")
    with pytest.raises(ConfigError, match="3-channel"):
        emodule.validate_config(espace, (28, 28, 1), 4, {**ecfg["params"], "weights": "imagenet"})
    bad = kt.HyperParameters.from_config({**cfg["space"], "pooling": {"type": "choice", "values": ["avg", "sum"]},
                                          "units": {"type": "int", "min": 1, "max": 2}})
    with pytest.raises(ConfigError, match="model.space.units"):
        module.validate_config(bad, (28, 28), 4, {})
    xmodule, xspace, _ = _family("xception")
    with pytest.raises(ConfigError, match=r"model.space.pooling.*'sum'"):
        xmodule.validate_config(kt.HyperParameters.from_config({"pooling": {"type": "choice",
                                                                            "values": ["avg", "sum"]}}),
                                (28, 28), 4, {})


def test_resnet_family_builds_an_uncompiled_classifier_on_grayscale_images():
    module, space, _ = _family("resnet")
    hp = space.with_values({"version": "next", "conv3_depth": 2, "conv4_depth": 2})
    model = module.build(hp, input_shape=(28, 28), num_classes=4, base_filters=8)
    assert model.output_shape == (None, 4) and model.input_shape == (None, 28, 28)
    assert not getattr(model, "optimizer", None)  # the runner compiles it with the searched optimizer


@pytest.mark.slow
def test_cli_model_resnet(tmp_path):
    """One ResNet trial end to end on the built-in shapes (28x28 grayscale), narrowed for 2 cores."""
    result = run_cli_inprocess(["model=resnet", "tuner.max_trials=1", "trainer.epochs=1", "executor=inline",
                                "model.params.base_filters=8", "data.num_samples=120", "data.test_samples=20",
                                "model.space.version.values=[v1]", "model.space.version.default=v1",
                                "model.space.conv3_depth.values=[2]",
                                "model.space.conv4_depth.values=[2]", "model.space.conv3_depth.default=2",
                                "model.space.conv4_depth.default=2"], tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "best" / "model.keras").exists()
    assert "model=resnet" in result.stdout


# ------------------------------------------------------------ HyperImageAugment (issue 24)


def _space(hp) -> dict:
    return {p.name: (type(p).__name__, p.min_value, p.max_value, p.step, p.default) for p in hp.space}


def test_image_augment_declares_keras_tuner_s_space_and_keeps_the_image_shape():
    """KerasTuner 1.4.8's HyperImageAugment: augment_layers in [1, 3] (default 1) and one factor per
    transform in [0, its argument] (default 0), RandAugment by default; every transform in turn
    (factors in steps of 0.05) with augment_layers=0."""
    hp = kt.HyperParameters()
    model = kt.applications.HyperImageAugment(input_shape=SHAPE).build(hp)
    assert model.name == "image_rand_augment" and model.output_shape == (None, *SHAPE)
    assert _space(hp) == {"augment_layers": ("Int", 1, 3, None, 1),
                          "factor_rotate": ("Float", 0.0, 0.5, None, 0.0),
                          "factor_translate_x": ("Float", 0.0, 0.4, None, 0.0),
                          "factor_translate_y": ("Float", 0.0, 0.4, None, 0.0),
                          "factor_contrast": ("Float", 0.0, 0.3, None, 0.0)}

    hp = kt.HyperParameters()
    model = kt.applications.HyperImageAugment(input_shape=SHAPE, augment_layers=0, rotate=[0.2, 0.3],
                                              translate_x=0.1, translate_y=None, contrast=None).build(hp)
    assert model.name == "image_augment"
    assert _space(hp) == {"factor_rotate": ("Float", 0.2, 0.3, 0.05, 0.2),
                          "factor_translate_x": ("Float", 0.0, 0.1, 0.05, 0.0)}
    # each factor starts at its range's low end; a transform at 0 is left out, as in KerasTuner
    assert [type(layer).__name__ for layer in model.layers[1:]] == ["RandomRotation"]


def test_image_augment_changes_images_in_training_only_and_saves_with_its_layer(tmp_path):
    import keras

    hp = kt.HyperParameters()
    for name, value in {"augment_layers": 2, "factor_rotate": 0.5, "factor_translate_x": 0.4,
                        "factor_translate_y": 0.4, "factor_contrast": 0.3}.items():
        hp.Fixed(name, value)
    model = kt.applications.HyperImageAugment(input_tensor=keras.Input(SHAPE)).build(hp)
    assert [type(layer).__name__ for layer in model.layers[1:]] == ["RandAugment", "RandAugment"]
    images = np.random.default_rng(0).random((8, *SHAPE)).astype("float32")
    trained = keras.ops.convert_to_numpy(model(images, training=True))
    assert trained.shape == images.shape
    changed = [not np.allclose(a, b) for a, b in zip(trained, images)]
    assert sum(changed) >= 6  # a zero-factor draw is impossible here; two layers, four transforms each
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(images, training=False)), images)
    model.save(tmp_path / "augment.keras")
    again = keras.saving.load_model(tmp_path / "augment.keras")
    assert [layer.get_config()["factors"] for layer in again.layers[1:]] == [[0.5, 0.4, 0.4, 0.3]] * 2


@pytest.mark.parametrize("kwargs, words", [
    ({}, "input_shape"),
    ({"input_shape": SHAPE, "rotate": [0.1, 0.2, 0.3]}, "rotate"),
    ({"input_shape": SHAPE, "contrast": "high"}, "contrast.*must be int or float"),
    ({"input_shape": SHAPE, "translate_x": [0.5, 0.2]}, "translate_x.*increasing"),
    ({"input_shape": SHAPE, "augment_layers": 2.5}, "augment_layers.*must be int"),
])
def test_image_augment_refuses_bad_arguments_when_constructed(kwargs, words):
    with pytest.raises(ValueError, match=words):
        kt.applications.HyperImageAugment(**kwargs)


def test_image_augment_as_efficientnet_s_augmentation_in_a_search(tmp_path):
    """KerasTuner's documented use: HyperEfficientNet(augmentation_model=HyperImageAugment(...)) searched
    together; the augmentation's factors are in each trial's values."""
    import keras

    class Small(kt.HyperModel):  # EfficientNet itself is too big for a test: a tiny classifier after the block
        def build(self, hp):
            inputs = keras.Input(SHAPE)
            x = kt.applications.HyperImageAugment(input_shape=SHAPE, augment_layers=[1, 2]).build(hp)(inputs)
            outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
            model = keras.Model(inputs, outputs)
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            return model

    rng = np.random.default_rng(0)
    x, y = rng.random((16, *SHAPE)).astype("float32"), rng.integers(0, 2, 16)
    tuner = kt.RandomSearch(Small(), objective="val_accuracy", max_trials=2, seed=3, directory=tmp_path,
                            project_name="aug")
    tuner.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    assert all({"augment_layers", "factor_rotate", "factor_contrast"} <= set(t.hyperparameters.values)
               for t in trials)
