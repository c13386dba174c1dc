"""U-Net family: shapes, layer graph switches, mish round trip, input-size checks."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from archsearch.errors import ConfigError  # noqa: E402
from archsearch.space.hyperparameters import HyperParameters  # noqa: E402
from archsearch.training import layers  # noqa: E402
from hypermodels import unet as U  # noqa: E402


def _names(model) -> list[str]:
    return [layer.name for layer in model.layers]


def _x(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


@pytest.mark.parametrize(
    "size, depth, classes",
    [((16, 16, 1), 1, 1), ((16, 16, 1), 2, 2), ((32, 16, 3), 3, 1), ((16, 32, 1), 5, 3)],
)
def test_output_shape_matches_input_and_classes(size, depth, classes):
    model = U.unet(size, start_neurons=4, net_depth=depth, output_classes=classes)
    out = model.predict(_x((2, *size)), verbose=0)
    assert out.shape == (2, size[0], size[1], classes)
    assert sum(n.startswith("pool") for n in _names(model)) == depth - 1
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_filters_double_per_level_and_stage_names():
    model = U.unet((16, 16, 1), start_neurons=4, net_depth=3, output_classes=2)
    names = _names(model)
    for expected in ("enc1_conv1", "enc1_bn1", "enc1_act1", "enc2_conv2", "pool2", "mid_conv1",
                     "dec2_up", "dec2_concat", "dec1_up", "dec1_conv2", "mask"):
        assert expected in names
    assert model.get_layer("enc1_conv1").filters == 4
    assert model.get_layer("enc2_conv1").filters == 8
    assert model.get_layer("mid_conv1").filters == 16
    assert model.get_layer("dec1_conv1").filters == 4
    assert model.get_layer("mask").filters == 2
    assert model.get_layer("dec1_concat").output.shape[-1] == 8  # 4 upsampled + 4 skip


def test_bn_after_act_swaps_order():
    before = U.unet((16, 16, 1), start_neurons=4, net_depth=2, bn_after_act=False)
    after = U.unet((16, 16, 1), start_neurons=4, net_depth=2, bn_after_act=True)
    nb, na = _names(before), _names(after)
    assert nb.index("enc1_bn1") < nb.index("enc1_act1")
    assert na.index("enc1_act1") < na.index("enc1_bn1")
    # the activation feeds on the conv (after) or the bn (before)
    assert after.get_layer("enc1_act1").input is after.get_layer("enc1_conv1").output
    assert before.get_layer("enc1_act1").input is before.get_layer("enc1_bn1").output


def test_dropout_adds_layers():
    plain = U.unet((16, 16, 1), start_neurons=4, net_depth=3)
    dropped = U.unet((16, 16, 1), start_neurons=4, net_depth=3, dropout=True)
    assert not any("dropout" in n for n in _names(plain))
    drop_names = [n for n in _names(dropped) if "dropout" in n]
    assert sorted(drop_names) == ["dec1_dropout", "dec2_dropout", "pool1_dropout", "pool2_dropout"]
    assert plain.count_params() == dropped.count_params()


@pytest.mark.parametrize("name, layer_type", [("relu", "ReLU"), ("elu", "ELU"), ("lrelu", "LeakyReLU"),
                                              ("mish", "Mish"), ("gelu", "Activation"), ("swish", "Activation")])
def test_activation_choices(name, layer_type):
    layer = layers.get_activation(name, "act")
    assert type(layer).__name__ == layer_type and layer.name == "act"
    x = keras.ops.convert_to_tensor(np.array([-2.0, 0.0, 2.0], "float32"))
    y = keras.ops.convert_to_numpy(layer(x))
    assert y[2] > 1.5 and y[1] == pytest.approx(0.0, abs=1e-6)
    if name == "lrelu":
        assert y[0] == pytest.approx(-0.2)


def test_mish_values_and_unknown_activation():
    x = np.array([-1.0, 0.0, 1.0], "float32")
    expected = x * np.tanh(np.log1p(np.exp(x)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layers.mish(x)), expected, rtol=1e-5)
    with pytest.raises(ConfigError, match="activation.*'sigmoidish'.*mish"):
        layers.get_activation("sigmoidish")


def test_mish_model_saves_and_reloads(tmp_path):
    model = U.unet((16, 16, 1), start_neurons=4, net_depth=2, output_classes=2, activation="mish",
                   bn_after_act=True)
    x = _x((2, 16, 16, 1), seed=1)
    expected = model.predict(x, verbose=0)
    path = tmp_path / "unet.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.get_layer("enc1_act1"), layers.Mish)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_pretrained_weights_are_loaded(tmp_path):
    source = U.unet((16, 16, 1), start_neurons=4, net_depth=2)
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)
    x = _x((1, 16, 16, 1), seed=2)
    loaded = U.unet((16, 16, 1), start_neurons=4, net_depth=2, pretrained_weights=str(path))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), source.predict(x, verbose=0), rtol=1e-5)
    with pytest.raises(ConfigError, match="pretrained_weights.*not found"):
        U.unet((16, 16, 1), start_neurons=4, net_depth=2, pretrained_weights=str(tmp_path / "none.h5"))


def test_softmax_output_sums_to_one():
    model = U.unet((16, 16, 1), start_neurons=4, net_depth=2, output_classes=3, output_activation="softmax")
    out = model.predict(_x((2, 16, 16, 1)), verbose=0)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ConfigError, match="output_activation"):
        U.unet((16, 16, 1), start_neurons=4, net_depth=2, output_classes=1, output_activation="softmax")
    with pytest.raises(ConfigError, match="output_activation"):
        U.unet((16, 16, 1), start_neurons=4, net_depth=2, output_activation="tanh")


def test_build_uses_hp_values_over_params():
    hp = HyperParameters.from_config({
        "start_neurons": {"type": "int", "min": 4, "max": 8, "step": 4},
        "net_depth": {"type": "int", "min": 2, "max": 3},
        "activation": {"type": "choice", "values": ["elu", "mish"]},
    }).with_values({"start_neurons": 8, "net_depth": 3, "activation": "mish"})
    model = U.build(hp, input_shape=(16, 16, 1), num_classes=2, start_neurons=4, dropout=True)
    assert model.get_layer("enc1_conv1").filters == 8  # searched value wins over the param
    assert isinstance(model.get_layer("mid_act1"), layers.Mish)
    assert "pool2_dropout" in _names(model)  # param used where nothing is searched
    assert model.output_shape == (None, 16, 16, 2)
    assert not model.compiled  # the runner compiles
    with pytest.raises(ConfigError, match="model.params.depth"):
        U.build(hp, input_shape=(16, 16, 1), num_classes=2, depth=3)


def test_valid_depths():
    assert U.valid_depths(128, 6) == [1, 2, 3, 4, 5, 6]
    assert U.valid_depths((96, 80), 6) == [1, 2, 3, 4, 5]
    assert U.valid_depths((100, 128, 3), 6) == [1, 2, 3]
    assert U.valid_depths(33, 4) == [1]


def test_check_input_size_message():
    U.check_input_size((128, 128, 1), range(2, 7))  # fits
    with pytest.raises(ConfigError) as info:
        U.check_input_size((100, 128, 1), range(2, 7))
    message = str(info.value)
    assert info.value.field == "data.image_size"
    assert "100x128" in message
    assert "net_depth 4 needs multiples of 8" in message and "net_depth 6 needs multiples of 32" in message
    assert "fits net_depth 2..3" in message
    assert "model.space.net_depth.max to 3" in message and "divisible by 32" in message


def test_validate_config_checks_every_sampled_depth():
    space = HyperParameters.from_config({"net_depth": {"type": "int", "min": 2, "max": 6}})
    U.validate_config(space, (64, 64, 1), 2, {})
    with pytest.raises(ConfigError, match="data.image_size.*net_depth 6 needs multiples of 32"):
        U.validate_config(space, (48, 48, 1), 2, {})
    U.validate_config(HyperParameters(), (48, 48, 1), 2, {"net_depth": 5})
    with pytest.raises(ConfigError, match="net_depth 6.*limit model.params.net_depth to 5"):
        U.validate_config(HyperParameters(), (48, 48, 1), 2, {"net_depth": 6})
    with pytest.raises(ConfigError, match="model.params.depth"):
        U.validate_config(HyperParameters(), (48, 48, 1), 2, {"depth": 3})
    with pytest.raises(ConfigError, match="output_activation"):
        U.validate_config(HyperParameters(), (64, 64, 1), 1, {"output_activation": "softmax"})
    bad_act = HyperParameters.from_config({"activation": {"type": "choice", "values": ["mish", "tanhh"]}})
    with pytest.raises(ConfigError, match="tanhh"):
        U.validate_config(bad_act, (64, 64, 1), 2, {})


def test_unet_config_space_fits_default_documents():
    import yaml
    from pathlib import Path

    conf = Path(__file__).resolve().parent.parent / "conf"
    model_cfg = yaml.safe_load((conf / "model" / "unet.yaml").read_text())["model"]
    data_cfg = yaml.safe_load((conf / "data" / "documents.yaml").read_text())
    space = HyperParameters.from_config(model_cfg["space"])
    size = data_cfg["image_size"]
    U.validate_config(space, (size, size, data_cfg["channels"]), len(data_cfg["classes"]), model_cfg["params"])
    assert model_cfg["builder"] == "hypermodels.unet:build"
    assert model_cfg["metrics"] == ["f1", "iou", "precision", "recall"]


def test_model_unet_selects_documents_and_val_f1():
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    conf = str(Path(__file__).resolve().parent.parent / "conf")
    with initialize_config_dir(config_dir=conf, version_base=None):
        cfg = compose("config", overrides=["model=unet"])
        assert (cfg.data.name, cfg.objective, cfg.model.name) == ("documents", "val_f1", "unet")
        assert cfg.model.loss == "bce_dice" and cfg.model.space.net_depth.max == 5
        cfg = compose("config", overrides=["model=unet", "data=folder", "objective=val_iou"])
        assert (cfg.data.name, cfg.objective) == ("folder", "val_iou")  # the command line wins
