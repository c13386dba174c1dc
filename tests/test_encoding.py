"""The unit-cube encoding of a search space: warps, one-hot, inactive parameters, round trips, growth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archsearch import HyperParameters
from archsearch.oracles.encoding import SpaceEncoder

SPACE = {
    "num_layers": {"type": "int", "min": 1, "max": 3},
    "units": {"type": "int", "min": 16, "max": 512, "step": 16},
    "units_2": {"type": "int", "min": 16, "max": 64, "step": 16, "when": {"num_layers": [2, 3]}},
    "lr": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
    "momentum": {"type": "float", "min": 0.5, "max": 0.99, "sampling": "reverse_log"},
    "activation": {"type": "choice", "values": ["relu", "elu", "tanh"]},
    "kernel": {"type": "choice", "values": [3, 5, 7]},
    "dropout": {"type": "boolean"},
    "rate": {"type": "float", "min": 0.1, "max": 0.5, "when": {"dropout": [True]}},
    "seed": {"type": "fixed", "value": 7},
}


def encoder() -> SpaceEncoder:
    return SpaceEncoder(HyperParameters.from_config(SPACE))


def test_layout_one_hot_for_categories_none_for_fixed():
    enc = encoder()
    kinds = {b.name: (b.kind, b.width) for b in enc.blocks}
    assert kinds["activation"] == ("onehot", 3)
    assert kinds["dropout"] == ("onehot", 2)
    assert kinds["kernel"] == ("numeric", 1)  # numeric choices are ordered
    assert kinds["lr"] == ("numeric", 1)
    assert "seed" not in kinds
    assert enc.dims == 1 + 1 + 1 + 1 + 1 + 3 + 1 + 2 + 1


def test_log_warp_is_used():
    enc = encoder()
    hp = enc.hyperparameters
    values = hp.active_values({"lr": 10 ** -2.5})
    lr = next(b for b in enc.blocks if b.name == "lr")
    assert enc.encode(values)[lr.start] == pytest.approx(0.5)  # the middle of [1e-4, 1e-1] in log space


def test_round_trip_random_configurations():
    enc = encoder()
    hp = enc.hyperparameters
    rng = np.random.default_rng(0)
    seen_inactive = seen_active = 0
    for _ in range(300):
        values = hp.sample(rng)
        back = enc.decode(enc.encode(values))
        assert set(back) == set(values)
        for name, v in values.items():
            if isinstance(v, float):
                assert back[name] == pytest.approx(v, rel=1e-9)
            else:
                assert back[name] == v and type(back[name]) is type(v)
        seen_inactive += "rate" not in values
        seen_active += "rate" in values
    assert seen_inactive > 50 and seen_active > 50


def test_inactive_parameters_get_the_neutral_value():
    enc = encoder()
    hp = enc.hyperparameters
    x = enc.encode(hp.active_values({"num_layers": 1, "dropout": False}))
    blocks = {b.name: b for b in enc.blocks}
    assert x[blocks["units_2"].start] == 0.5 and x[blocks["rate"].start] == 0.5
    # Two configurations that differ only in values of inactive parameters encode identically.
    y = enc.encode({**hp.active_values({"num_layers": 1, "dropout": False}), "units_2": 64, "rate": 0.4})
    assert np.array_equal(x, y)
    x2 = enc.encode(hp.active_values({"activation": "elu"}))
    assert list(x2[blocks["activation"].columns]) == [0.0, 1.0, 0.0]
    # A one-hot block without a value is uniform.
    missing = enc.encode({k: v for k, v in hp.active_values({}).items() if k != "activation"})
    assert np.allclose(missing[blocks["activation"].columns], 1 / 3)


def test_decode_rounds_relaxed_vectors_to_valid_values():
    enc = encoder()
    hp = enc.hyperparameters
    rng = np.random.default_rng(1)
    for _ in range(200):
        values = enc.decode(rng.random(enc.dims))
        hp.validate_values(values)
        assert values == hp.active_values(values)
        assert values["units"] % 16 == 0 and isinstance(values["num_layers"], int)
        assert values["activation"] in ("relu", "elu", "tanh")
        # projecting is idempotent
        x = enc.project(rng.random(enc.dims))
        assert np.array_equal(enc.project(x), x)


def test_refinable_columns_skip_categories_and_small_ranges():
    enc = encoder()
    hp = enc.hyperparameters
    blocks = {b.name: b for b in enc.blocks}
    cols = set(enc.refinable_columns(hp.active_values({"num_layers": 1})))
    assert cols == {blocks["units"].start, blocks["lr"].start, blocks["momentum"].start}
    cols = set(enc.refinable_columns(hp.active_values({"num_layers": 2, "dropout": True})))
    assert blocks["rate"].start in cols and blocks["units_2"].start not in cols  # 4 values: left to candidates


def test_growing_space_is_detected_and_old_values_still_encode():
    hp = HyperParameters()
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    enc = SpaceEncoder(hp)
    old = {"lr": 1e-3}
    hp.Choice("act", ["relu", "tanh"])
    assert not enc.matches(hp)
    enc2 = SpaceEncoder(hp)
    assert enc2.matches(hp) and enc2.dims == 3
    x = enc2.encode(old)  # a trial from before "act" existed: neutral there
    assert x[0] == pytest.approx(math.log(10) / math.log(1000)) and list(x[1:]) == [0.5, 0.5]


def test_unknown_values_encode_as_neutral():
    enc = encoder()
    blocks = {b.name: b for b in enc.blocks}
    x = enc.encode({"activation": "swish"})
    assert np.allclose(x[blocks["activation"].columns], 1 / 3)


UNCONDITIONAL = {name: spec for name, spec in SPACE.items() if "when" not in spec} | {
    "log_units": {"type": "int", "min": 8, "max": 1024, "sampling": "log"},
    "log_step": {"type": "int", "min": 2, "max": 64, "step": 2, "sampling": "log"},
    "ordered_float": {"type": "choice", "values": [0.1, 0.2, 0.4, 0.8]},
}


def test_encode_units_is_encode_of_sample_for_every_kind_of_parameter():
    """The array path of candidate scoring must mean exactly what encoding each sampled configuration means."""
    hp = HyperParameters.from_config(UNCONDITIONAL)
    enc = SpaceEncoder(hp)
    assert enc.unconditional
    rng = np.random.default_rng(4)
    units = rng.random((300, len(hp.space)))
    units[:4] = [[0.0] * len(hp.space), [1.0] * len(hp.space), [0.5] * len(hp.space), [0.999999] * len(hp.space)]
    expected = enc.encode_many([hp.sample(rng, unit=u) for u in units])
    np.testing.assert_array_equal(enc.encode_units(units), expected)


def test_encode_units_refuses_a_space_with_conditions():
    enc = encoder()
    assert not enc.unconditional
    with pytest.raises(ValueError, match="without conditions"):
        enc.encode_units(np.zeros((1, len(SPACE))))
