"""Tiny data and builders shared by the KerasTuner-compatibility tests (tests/test_kt_*.py)."""

from __future__ import annotations

import numpy as np


def tiny_data(n: int = 96, features: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    return x, y


def build_mlp(hp):
    import keras

    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 1e-3])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
