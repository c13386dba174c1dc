"""Segmentation metrics and losses: hand-computed values, conventions, Keras integration."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from archsearch.training import metrics as M  # noqa: E402
from archsearch.errors import ConfigError  # noqa: E402


def _score(name, y_true, y_pred, **kwargs) -> float:
    metric = M.get_metric(name, **kwargs)
    metric.update_state(np.asarray(y_true, "float32"), np.asarray(y_pred, "float32"))
    return float(keras.ops.convert_to_numpy(metric.result()))


def _masks(shape=(1, 4, 4, 1)):
    return np.zeros(shape, "float32")


def test_names_are_exact():
    assert M.SEGMENTATION_METRICS == ("f1", "iou", "precision", "recall")
    for name in M.SEGMENTATION_METRICS:
        assert M.get_metric(name).name == name
    assert M.get_metric("accuracy") == "accuracy"
    assert M.get_loss("sparse_categorical_crossentropy") == "sparse_categorical_crossentropy"


@pytest.mark.parametrize("name", M.SEGMENTATION_METRICS)
def test_both_empty_scores_one(name):
    assert _score(name, _masks(), _masks()) == 1.0


@pytest.mark.parametrize("name", M.SEGMENTATION_METRICS)
def test_perfect_masks_score_one(name):
    y = _masks()
    y[0, 1:3, 1:3, 0] = 1
    assert _score(name, y, y * 0.9) == pytest.approx(1.0)


def test_one_pixel_masks():
    truth, pred = _masks(), _masks()
    truth[0, 0, 0, 0] = 1
    pred[0, 0, 0, 0] = 0.7
    for name in M.SEGMENTATION_METRICS:
        assert _score(name, truth, pred) == pytest.approx(1.0)
    miss = _masks()
    miss[0, 3, 3, 0] = 0.7
    for name in M.SEGMENTATION_METRICS:
        assert _score(name, truth, miss) == 0.0


def test_empty_truth_or_prediction_scores_zero():
    truth, pred = _masks(), _masks()
    truth[0, 0, 0, 0] = 1
    # nothing predicted though something is there
    assert _score("precision", truth, pred) == 0.0
    assert _score("recall", truth, pred) == 0.0
    assert _score("f1", truth, pred) == 0.0
    # false alarm on an absent class
    assert _score("recall", pred, truth) == 0.0
    assert _score("iou", pred, truth) == 0.0


def test_known_partial_overlap():
    # truth: 4 pixels; prediction: 3 pixels of which 2 are right -> TP 2, FP 1, FN 2
    truth, pred = _masks(), _masks()
    truth[0, 0, 0:4, 0] = 1
    pred[0, 0, 2:4, 0] = 0.8
    pred[0, 1, 0, 0] = 0.8
    assert _score("precision", truth, pred) == pytest.approx(2 / 3)
    assert _score("recall", truth, pred) == pytest.approx(2 / 4)
    assert _score("f1", truth, pred) == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert _score("iou", truth, pred) == pytest.approx(2 / (2 + 1 + 2))


def test_threshold_behaviour():
    truth, pred = _masks(), _masks()
    truth[0, 0, 0:2, 0] = 1
    pred[0, 0, 0, 0] = 0.6
    pred[0, 0, 1, 0] = 0.4
    assert _score("recall", truth, pred) == pytest.approx(0.5)  # default 0.5
    assert _score("recall", truth, pred, threshold=0.3) == pytest.approx(1.0)
    assert _score("recall", truth, pred, threshold=0.7) == 0.0
    assert _score("recall", truth, np.full_like(pred, 0.5)) == 1.0  # >= threshold counts
    with pytest.raises(ConfigError, match="threshold"):
        M.get_metric("f1", threshold=1.5)


def test_macro_average_over_classes():
    truth, pred = _masks((1, 4, 4, 2)), _masks((1, 4, 4, 2))
    truth[0, 0, 0:2, 0] = 1
    pred[0, 0, 0:2, 0] = 1  # class 0 perfect: iou 1
    truth[0, 2, 0:4, 1] = 1
    pred[0, 2, 0:1, 1] = 1  # class 1: iou 1/4
    assert _score("iou", truth, pred) == pytest.approx((1 + 0.25) / 2)
    assert _score("recall", truth, pred) == pytest.approx((1 + 0.25) / 2)
    assert _score("precision", truth, pred) == pytest.approx(1.0)


def test_argmax_mode_for_softmax_outputs():
    truth = np.zeros((1, 2, 2, 3), "float32")
    truth[0, :, :, 0] = 1
    truth[0, 0, 0] = [0, 1, 0]
    pred = np.full((1, 2, 2, 3), 0.3, "float32")
    pred[..., 0] = 0.4  # every pixel arg-max class 0 although no score reaches 0.5
    assert _score("recall", truth, pred, mode="argmax") == pytest.approx((1 + 0 + 1) / 3)
    assert _score("recall", truth, pred) == pytest.approx((0 + 0 + 1) / 3)  # threshold: nothing predicted
    with pytest.raises(ConfigError, match="mode"):
        M.get_metric("f1", mode="softmax")
    assert M.get_metric({"name": "f1", "mode": "argmax"}).mode == "argmax"


def test_accumulates_over_batches_not_mean_of_batches():
    metric = M.get_metric("f1")
    # batch 1: one true pixel found; batch 2: 3 true pixels, none found
    t1, p1 = _masks(), _masks()
    t1[0, 0, 0, 0] = p1[0, 0, 0, 0] = 1
    t2, p2 = _masks(), _masks()
    t2[0, 0, 0:3, 0] = 1
    metric.update_state(t1, p1)
    metric.update_state(t2, p2)
    # TP 1, FN 3 -> 2/(2+3) = 0.4, while the mean of batch scores would be (1 + 0) / 2
    assert float(metric.result()) == pytest.approx(0.4)
    metric.reset_state()
    metric.update_state(t1, p1)
    assert float(metric.result()) == pytest.approx(1.0)


def test_sample_weight_removes_samples():
    truth = np.zeros((2, 2, 2, 1), "float32")
    truth[:, 0, 0, 0] = 1
    pred = np.zeros_like(truth)
    pred[0, 0, 0, 0] = 1  # sample 0 right, sample 1 missed
    metric = M.get_metric("recall")
    metric.update_state(truth, pred, sample_weight=np.array([1.0, 0.0], "float32"))
    assert float(metric.result()) == pytest.approx(1.0)


def test_class_weights_from_masks():
    y = np.zeros((2, 10, 10, 3), "float32")
    y[:, :1, :5, 0] = 1  # 10 of 200 pixels -> 190 / 10 = 19
    y[:, :, :, 1] = 1  # all positive -> clipped to 1
    weights = M.class_weights_from_masks(y)
    assert weights == pytest.approx([19.0, 1.0, 1.0])
    assert M.class_weights_from_masks(y, max_weight=5.0)[0] == 5.0


@pytest.mark.parametrize("name", M.SEGMENTATION_LOSSES)
def test_losses_finite_and_lower_for_perfect_predictions(name):
    rng = np.random.default_rng(0)
    truth = (rng.random((2, 8, 8, 2)) > 0.8).astype("float32")
    perfect = truth.copy()
    wrong = 1.0 - truth
    noisy = rng.random(truth.shape).astype("float32")
    loss = M.get_loss(name, **({"class_weights": [4.0, 2.0]} if name != "dice_loss" else {}))
    values = {k: float(loss(truth, p)) for k, p in (("perfect", perfect), ("noisy", noisy), ("wrong", wrong))}
    assert all(np.isfinite(v) for v in values.values())
    assert values["perfect"] < values["noisy"] < values["wrong"]
    assert values["perfect"] == pytest.approx(0.0, abs=1e-3)


def test_class_weights_raise_the_cost_of_missed_positives():
    truth = np.zeros((1, 4, 4, 1), "float32")
    truth[0, 0, 0, 0] = 1
    pred = np.full_like(truth, 0.1)
    plain = float(M.get_loss("weighted_bce")(truth, pred))
    weighted = float(M.get_loss("weighted_bce", class_weights=[10.0])(truth, pred))
    assert weighted > plain * 3


def test_dice_loss_value_and_empty_masks():
    truth = np.zeros((1, 2, 2, 1), "float32")
    truth[0, 0, 0, 0] = 1
    pred = np.zeros_like(truth)
    pred[0, 0, 0, 0] = 0.5
    # 1 - (2 * 0.5 + 1) / (1 + 0.5 + 1)
    assert float(M.get_loss("dice_loss")(truth, pred)) == pytest.approx(1 - 2 / 2.5)
    empty = np.zeros_like(truth)
    assert float(M.get_loss("dice_loss")(empty, empty)) == pytest.approx(0.0)


def test_bce_dice_is_the_sum():
    rng = np.random.default_rng(1)
    truth = (rng.random((2, 4, 4, 2)) > 0.5).astype("float32")
    pred = rng.random(truth.shape).astype("float32")
    total = float(M.get_loss("bce_dice")(truth, pred))
    parts = float(M.get_loss("weighted_bce")(truth, pred)) + float(M.get_loss("dice_loss")(truth, pred))
    assert total == pytest.approx(parts, rel=1e-5)


def test_unknown_options_are_config_errors():
    with pytest.raises(ConfigError, match="loss_options"):
        M.get_loss("bce_dice", colour="red")
    with pytest.raises(ConfigError, match="loss_options"):
        M.get_loss("mse", class_weights=[1.0])
    with pytest.raises(ConfigError, match="class_weights"):
        M.get_loss("weighted_bce", class_weights=[1.0, -2.0])


def test_compile_fit_evaluate_and_reload(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((10, 8, 8, 1)).astype("float32")
    y = np.concatenate([x > 0.6, x < 0.2], axis=-1).astype("float32")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Conv2D(2, 1, activation="sigmoid")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile("adam", loss=M.get_loss("bce_dice"), metrics=[M.get_metric(n) for n in M.SEGMENTATION_METRICS])
    history = model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=3, verbose=0)
    assert {"val_f1", "val_iou", "val_precision", "val_recall", "f1"} <= set(history.history)
    result = model.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)  # 4 uneven batches
    # the epoch value equals the F1 over the whole set, computed by hand
    pred = model.predict(x, verbose=0) >= 0.5
    truth = y >= 0.5
    f1s = []
    for c in range(2):
        tp = np.sum(pred[..., c] & truth[..., c])
        fp = np.sum(pred[..., c] & ~truth[..., c])
        fn = np.sum(~pred[..., c] & truth[..., c])
        f1s.append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
    assert result["f1"] == pytest.approx(np.mean(f1s), abs=1e-5)
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    again = reloaded.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)
    assert again["f1"] == pytest.approx(result["f1"], abs=1e-6)
    assert again["loss"] == pytest.approx(result["loss"], rel=1e-5)
