"""Exports that load anywhere: every family's ``best/model.keras`` in a fresh process, SavedModel, README."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

# The searches run in the test process (cli_inprocess, executor=inline): the export is what is checked, and
# loading it in a fresh process is what needs one. The MLP's is the shared finished run's (conftest.finished_run),
# the U-Net's (mish, the custom loss and metrics) the shared Hyperband U-Net run's (conftest.unet_run).
FAMILIES = {
    "mlp": ["data.num_samples=80", "trainer.epochs=1", "tuner.max_trials=1", "executor=inline"],
    "cnn": ["model=cnn", "data.num_samples=80", "data.image_size=16", "trainer.epochs=1", "tuner.max_trials=1",
            "executor=inline"],
}


def reload_in_fresh_process(path, cwd) -> list[str]:
    """Load ``path`` with plain ``keras.saving.load_model`` in a process that imports only keras and
    archsearch; returns the shape of its prediction for one zero sample ("1x32x32x2") and the loss's class name."""
    code = textwrap.dedent(f"""
        import keras, archsearch, numpy
        model = keras.saving.load_model({str(path)!r})
        x = numpy.zeros((1, *model.input_shape[1:]), "float32")
        print("x".join(map(str, model.predict(x, verbose=0).shape)), type(model.loss).__name__)
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


# Each fresh process is a TensorFlow start (~7 s of CPU): one loads the MLP's and the CNN's exports and answers
# whether archsearch's Keras objects are registered when keras is imported after archsearch (the U-Net's export,
# whose run is built in test_cli_tuners' process, loads in its own, keras imported first). Its tests share one
# xdist_group, so the fixture runs once.
FRESH_LOADS = """
import sys, traceback
import archsearch, keras  # archsearch first: its Keras objects must register when keras is imported after it
import numpy
print("registered", keras.saving.get_registered_object("archsearch>BCEDice") is not None,
      keras.saving.get_registered_object("archsearch>Mish") is not None, flush=True)
for family, path in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        model = keras.saving.load_model(path)
        x = numpy.zeros((1, *model.input_shape[1:]), "float32")
        print("loaded", family, "x".join(map(str, model.predict(x, verbose=0).shape)), type(model.loss).__name__,
              flush=True)
    except Exception:
        print(f"{family}:", traceback.format_exc(), file=sys.stderr, flush=True)
"""
FRESH = pytest.mark.xdist_group("exports_fresh_process")


@pytest.fixture(scope="module")
def fresh_process(finished_run, tmp_path_factory) -> dict:
    """The MLP's run (the shared finished run), a CNN run, and what one fresh process printed loading both."""
    from tests.cli_inprocess import run_cli_inprocess

    runs = {"mlp": finished_run, "cnn": tmp_path_factory.mktemp("cnn") / "run"}
    result = run_cli_inprocess(FAMILIES["cnn"], runs["cnn"])
    assert result.returncode == 0, result.stderr[-3000:]
    args = [str(a) for family, run in runs.items() for a in (family, run / "best" / "model.keras")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", FRESH_LOADS, *args], cwd=tmp_path_factory.mktemp("fresh"), env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line.split() for line in done.stdout.splitlines()]
    return {"runs": runs, "returncode": done.returncode, "stderr": done.stderr,
            "registered": next((line[1:] for line in lines if line[:1] == ["registered"]), None),
            "loaded": {line[1]: line[2:] for line in lines if line[:1] == ["loaded"]}}


@pytest.mark.slow
@pytest.mark.parametrize("family", [pytest.param("mlp", marks=FRESH), pytest.param("cnn", marks=FRESH),
                                    pytest.param("unet", marks=pytest.mark.xdist_group("cli_tuners"))])
def test_every_familys_export_loads_in_a_fresh_process(request, tmp_path, family):
    if family == "unet":
        run_dir = request.getfixturevalue("unet_run")[0]  # read only
        shape, *loss = reload_in_fresh_process(run_dir / "best" / "model.keras", tmp_path)
    else:
        fresh = request.getfixturevalue("fresh_process")
        run_dir = fresh["runs"][family]  # read only
        assert fresh["returncode"] == 0 and family in fresh["loaded"], fresh["stderr"][-3000:]
        shape, *loss = fresh["loaded"][family]
    assert shape.startswith("1x")
    if family == "unet":
        assert loss == ["BCEDice"]  # the custom loss, layer (mish) and metrics: what failed before
    readme = (run_dir / "best" / "README.md").read_text()
    hparams = yaml.safe_load((run_dir / "best" / "hparams.yaml").read_text())
    tuner, data = ("hyperband", "documents") if family == "unet" else ("random", "shapes")
    assert f"tuner `{tuner}`, data `{data}`" in readme
    assert f"= {hparams['score']:.6g}" in readme
    assert "keras.saving.load_model" in readme and f"mode=retrain from_run={run_dir}" in readme
    for name in hparams["values"]:
        assert f"`{name}`" in readme


@pytest.mark.slow
def test_savedmodel_export_reloads_with_tensorflow(cli_inprocess, tmp_path):
    tf = pytest.importorskip("tensorflow")
    run_dir = tmp_path / "run"
    result = cli_inprocess([*FAMILIES["mlp"], "export.format=savedmodel"], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    from archsearch.export.best import load_model

    keras_model = load_model(run_dir / "best" / "model.keras")
    x = np.random.default_rng(0).random((3, *keras_model.input_shape[1:])).astype("float32")
    loaded = tf.saved_model.load(str(run_dir / "best" / "saved_model"))  # kept: serve() uses its variables
    served = loaded.serve(tf.constant(x))
    np.testing.assert_allclose(np.asarray(served), keras_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert "best/saved_model/" in (run_dir / "best" / "README.md").read_text()
    assert not [p for p in (run_dir / "best").iterdir() if ".tmp-" in p.name or ".old-" in p.name]


@pytest.mark.slow
def test_onnx_export_runs_in_onnxruntime(cli_inprocess, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    run_dir = tmp_path / "run"
    result = cli_inprocess([*FAMILIES["cnn"], "export.format=onnx"], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    from archsearch.export.best import load_model

    keras_model = load_model(run_dir / "best" / "model.keras")
    x = np.random.default_rng(0).random((3, *keras_model.input_shape[1:])).astype("float32")
    session = ort.InferenceSession(str(run_dir / "best" / "model.onnx"))
    (served,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(served, keras_model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_export_formats_are_checked_before_the_search(cli_inprocess, tmp_path):
    result = cli_inprocess(["export.format=tflite"], tmp_path / "run")
    assert result.returncode == 2
    assert "export.format: unknown format 'tflite'" in result.stderr and "savedmodel" in result.stderr
    assert not (tmp_path / "run" / "trials.db").exists()


def test_onnx_export_needs_its_converter():
    from archsearch.errors import ConfigError
    from archsearch.export.serving import check_export_format

    import importlib.util

    if importlib.util.find_spec("tf2onnx") is not None and importlib.util.find_spec("onnx") is not None:
        assert check_export_format("onnx") == "onnx"
    else:
        with pytest.raises(ConfigError, match=r"export.format: onnx needs the .*pip install \"\.\[onnx\]\""):
            check_export_format("onnx")
    assert check_export_format(None) == "keras" and check_export_format("SavedModel") == "savedmodel"


@FRESH
def test_keras_objects_register_when_keras_is_imported_after_archsearch(fresh_process):
    """In a fresh process that imports archsearch, then keras (the module fixture's)."""
    assert fresh_process["returncode"] == 0, fresh_process["stderr"][-2000:]
    assert fresh_process["registered"] == ["True", "True"]


def test_a_savedmodel_export_keeps_tensorflows_info_lines_off_the_console(tmp_path, caplog):
    # TensorFlow logs "Assets written to: best/.saved_model.tmp-<pid>/assets" at INFO; Hydra's console shows INFO.
    pytest.importorskip("tensorflow")
    import keras

    from archsearch.export.serving import export_for_serving

    import logging

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    level = logging.getLogger("tensorflow").level
    with caplog.at_level("INFO"):
        path = export_for_serving(model, tmp_path, "savedmodel")
    assert (path / "saved_model.pb").is_file()
    said = [r.getMessage() for r in caplog.records if r.name.startswith("tensorflow")]
    assert not [m for m in said if ".tmp-" in m or "Assets written" in m], said
    assert logging.getLogger("tensorflow").level == level  # the user's own setting is put back
