"""The mlp and cnn families: hyperparameters change the graph, odd input shapes still build."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from archsearch.errors import ConfigError  # noqa: E402
from hypermodels import cnn, mlp  # noqa: E402


class StubHP:
    """Only what the family contract allows: ``get(name, default)``, as ``HyperParameters.get``."""

    def __init__(self, **values):
        self.values = values

    def get(self, name, default=None):
        return self.values.get(name, default)


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def hidden_units(model):
    return [layer.units for layer in layers_of(model, keras.layers.Dense) if layer.name != "output"]


# ----------------------------------------------------------------------------- mlp

def test_mlp_layers_follow_num_layers_and_units():
    hp = StubHP(num_layers=3, units_1=64, units_2=32, units_3=96)
    model = mlp.build(hp, input_shape=(28, 28, 1), num_classes=4)
    assert hidden_units(model) == [64, 32, 96]
    assert [layer.name for layer in layers_of(model, keras.layers.Dense)] == ["dense_1", "dense_2", "dense_3", "output"]
    one = mlp.build(StubHP(num_layers=1, units_1=64, units_2=32), input_shape=(28, 28, 1), num_classes=4)
    assert hidden_units(one) == [64]  # inactive units_2 is ignored


def test_mlp_dropout_zero_means_no_dropout_layer():
    with_dropout = mlp.build(StubHP(num_layers=2, dropout=0.2), input_shape=(8,), num_classes=3)
    without = mlp.build(StubHP(num_layers=2, dropout=0.0), input_shape=(8,), num_classes=3)
    rates = [layer.rate for layer in layers_of(with_dropout, keras.layers.Dropout)]
    assert rates == pytest.approx([0.2, 0.2])
    assert layers_of(without, keras.layers.Dropout) == []


def test_mlp_output_is_softmax_over_classes_with_and_without_channel_axis():
    x = np.random.default_rng(0).random((5, 16, 16)).astype("float32")
    for shape, batch in (((16, 16), x), ((16, 16, 1), x[..., None])):
        model = mlp.build(StubHP(), input_shape=shape, num_classes=7)
        out = np.asarray(model(batch))
        assert out.shape == (5, 7)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_mlp_searched_value_wins_over_param_and_params_fill_gaps():
    model = mlp.build(StubHP(units_1=64), input_shape=(4,), num_classes=2, units_1=256, activation="tanh")
    dense = model.get_layer("dense_1")
    assert dense.units == 64
    assert dense.activation.__name__ == "tanh"


def test_mlp_bad_dropout_names_the_field():
    with pytest.raises(ConfigError, match="dropout"):
        mlp.build(StubHP(dropout=1.5), input_shape=(4,), num_classes=2)


# ----------------------------------------------------------------------------- cnn

def test_cnn_blocks_filters_and_dense_units():
    hp = StubHP(num_blocks=2, filters_1=32, filters_2=64, padding="same", dense_units=75, dropout=0.1)
    model = cnn.build(hp, input_shape=(28, 28, 1), num_classes=4)
    convs = layers_of(model, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [32, 64]
    assert [c.name for c in convs] == ["block1_conv", "block2_conv"]
    assert len(layers_of(model, keras.layers.MaxPooling2D)) == 2
    assert len(layers_of(model, keras.layers.Dropout)) == 2
    assert model.get_layer("dense").units == 75
    assert model.output_shape == (None, 4)


def test_cnn_padding_changes_the_graph():
    same = cnn.build(StubHP(num_blocks=1, padding="same"), input_shape=(28, 28, 1), num_classes=3)
    valid = cnn.build(StubHP(num_blocks=1, padding="valid"), input_shape=(28, 28, 1), num_classes=3)
    assert same.get_layer("block1_conv").output.shape[1:3] == (28, 28)
    assert valid.get_layer("block1_conv").output.shape[1:3] == (26, 26)
    assert same.get_layer("flatten").output.shape[-1] == 14 * 14 * 32
    assert valid.get_layer("flatten").output.shape[-1] == 13 * 13 * 32


@pytest.mark.parametrize("size", [16, 28, 6, 4, 2])
def test_cnn_tiny_images_with_valid_padding_do_not_crash(size):
    model = cnn.build(StubHP(num_blocks=3, padding="valid"), input_shape=(size, size, 1), num_classes=2)
    out = np.asarray(model(np.zeros((2, size, size, 1), "float32")))
    assert out.shape == (2, 2)
    for layer in layers_of(model, keras.layers.Conv2D) + layers_of(model, keras.layers.MaxPooling2D):
        h, w = layer.output.shape[1:3]
        assert min(h, w) >= min(3, size)


def test_cnn_guard_drops_blocks_that_would_shrink_below_three_pixels():
    # 16 -> conv 14 -> pool 7 -> conv 5 (pool would give 2: skipped) -> conv 3 (no pool)
    model = cnn.build(StubHP(num_blocks=3, padding="valid"), input_shape=(16, 16, 1), num_classes=2)
    assert len(layers_of(model, keras.layers.Conv2D)) == 3
    assert len(layers_of(model, keras.layers.MaxPooling2D)) == 1
    # 8 -> conv 6 -> pool 3 -> a second valid conv would leave 1 pixel: no more blocks
    small = cnn.build(StubHP(num_blocks=3, padding="valid"), input_shape=(8, 8, 1), num_classes=2)
    assert len(layers_of(small, keras.layers.Conv2D)) == 1


def test_cnn_accepts_grayscale_without_channel_axis_and_colour():
    gray = cnn.build(StubHP(num_blocks=2), input_shape=(28, 28), num_classes=5)
    assert isinstance(gray.get_layer("add_channel"), keras.layers.Reshape)
    assert np.asarray(gray(np.zeros((3, 28, 28), "float32"))).shape == (3, 5)
    colour = cnn.build(StubHP(num_blocks=2), input_shape=(32, 32, 3), num_classes=10)
    assert np.asarray(colour(np.zeros((1, 32, 32, 3), "float32"))).shape == (1, 10)


def test_cnn_rejects_flat_inputs_before_training():
    with pytest.raises(ConfigError, match="model=mlp"):
        cnn.validate_config(None, (20,), 2, {})
    with pytest.raises(ConfigError, match="padding"):
        cnn.build(StubHP(padding="full"), input_shape=(8, 8, 1), num_classes=2)


def test_model_configs_declare_spaces_the_engine_accepts():
    from pathlib import Path

    import yaml

    from archsearch.space.hyperparameters import HyperParameters

    conf = Path(__file__).resolve().parent.parent / "conf" / "model"
    for name, family in (("mlp", mlp), ("cnn", cnn)):
        cfg = yaml.safe_load((conf / f"{name}.yaml").read_text())
        assert cfg["builder"] == f"hypermodels.{name}:build"
        space = HyperParameters.from_config(cfg["space"])
        rng = np.random.default_rng(0)
        for _ in range(3):  # every sampled trial builds
            values = {n: p.random_sample(rng) for n, p in space.space.items()}
            model = family.build(StubHP(**values), input_shape=(28, 28, 1), num_classes=4)
            assert model.output_shape == (None, 4)
    custom = yaml.safe_load((conf / "custom.yaml").read_text())
    assert custom["builder"] == "???" and custom["space"] == {}
