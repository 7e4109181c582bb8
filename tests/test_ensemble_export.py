"""Ensembles, TFLite export and prediction on mock data and untrained models (fast)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import make_config

from alexnet_mnist import MLP, AlexNet, Ensemble, data
from alexnet_mnist.cli import modes
from alexnet_mnist.errors import UserError
from alexnet_mnist.inference import export, prediction, saved_models

SMOKE = ("model=mlp", "debug=smoke", "progress=false")
X = np.random.default_rng(0).random((6, 28, 28, 1), dtype=np.float32)


@pytest.fixture
def mock_mnist():
    with tfds.testing.mock_data(num_examples=200):
        yield


def assert_builtin_ops_only(report):
    assert report["ops"] and not [name for name in report["ops"] if name.startswith("Flex") or name == "CUSTOM"]


def test_ensemble_probabilities_are_the_exact_mean_and_survive_keras_saving(tmp_path):
    ensemble = Ensemble([MLP(), AlexNet(fc_units=16), AlexNet(fc_units=16, lrn=False)])
    expected = tf.reduce_mean(tf.stack([tf.nn.softmax(m(X)) for m in ensemble.members]), axis=0)
    np.testing.assert_array_equal(ensemble.probabilities(X), expected)
    np.testing.assert_allclose(tf.nn.softmax(ensemble(X)), expected, atol=1e-6)  # outputs are logits
    ensemble.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert [type(m).__name__ for m in restored.members] == ["MLP", "AlexNet", "AlexNet"]
    assert restored.combine == "mean_prob"
    np.testing.assert_array_equal(restored(X), ensemble(X))


def test_vote_counts_the_members_top_classes_and_exports_with_builtin_ops():
    members = [MLP(), MLP(), MLP()]
    ensemble = Ensemble(members, combine="vote")
    expected = np.mean([np.eye(10)[m(X).numpy().argmax(1)] for m in members], axis=0)
    np.testing.assert_allclose(ensemble.probabilities(X), expected, atol=1e-7)
    content = export.convert(ensemble)
    assert_builtin_ops_only(export.inspect_ops(content))
    np.testing.assert_allclose(export.TFLiteModel(content)(X), ensemble(X), atol=1e-5)


def test_ensemble_run_writes_members_and_one_verified_tflite(mock_mnist, tmp_path):
    config = make_config(*SMOKE, "ensemble.members=2", "data.train_examples=128")
    modes.train(config, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [m["model"] for m in metrics["members"]] == [str(tmp_path / f"members/{k}/model.keras") for k in (0, 1)]
    for k in (0, 1):
        assert (tmp_path / f"members/{k}/metrics.json").is_file()
    assert isinstance(keras.models.load_model(tmp_path / "model.keras"), Ensemble)
    report = json.loads((tmp_path / "export.json").read_text())
    assert (tmp_path / "model.tflite").stat().st_size == report["size_bytes"]
    assert report["test_images"] == 200 and report["agreement"] == 1.0 and report["max_abs_logit_diff"] < 1e-4
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert report["median_latency_ms"] > 0
    assert_builtin_ops_only(report)

    # The same members, assembled again from their run directories by a glob, without training.
    again = make_config(*SMOKE, "mode=ensemble", f"ensemble.runs=[{tmp_path}/members/*]", "export.tflite=false")
    modes.assemble(again, tmp_path / "again")
    assert json.loads((tmp_path / "again/metrics.json").read_text())["test_accuracy"] == metrics["test_accuracy"]


def test_members_of_another_dataset_are_refused(tmp_path):
    MLP(hidden_units=(8,)).save(tmp_path / "model.keras")
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra/config.yaml").write_text("data:\n  name: fashion_mnist\n")
    with pytest.raises(UserError, match="trained on data=fashion_mnist, not data=mnist; add data=fashion_mnist"):
        modes.assemble(make_config(*SMOKE, "mode=ensemble", f"ensemble.runs=[{tmp_path}]"), tmp_path / "ensemble")


def test_int8_keeps_lrn_float_and_says_so(mock_mnist, tmp_path):
    AlexNet(fc_units=16).save(tmp_path / "model.keras")
    splits = data.make_splits("mnist", batch_size=32, eval_batch_size=100, eval_examples=20)
    report = export.export_model(tmp_path / "model.keras", "int8", splits.test, [x for x, _ in splits.train(0).take(2)])
    assert {"CONV_2D", "FULLY_CONNECTED"} <= set(report["quantized_ops"])
    assert "LOCAL_RESPONSE_NORMALIZATION" in report["float_ops"]
    assert report["ops"]["LOCAL_RESPONSE_NORMALIZATION"] == {"float32": 2}
    assert export.inspect_ops((tmp_path / "model_int8.tflite").read_bytes())["ops"] == report["ops"]
    assert_builtin_ops_only(report)


def test_a_mode_that_cannot_be_honoured_is_an_error():
    report = export.inspect_ops(export.convert(MLP(), "none"))
    with pytest.raises(UserError, match="export.quantization=dynamic cannot be honoured"):
        export.check_ops(report, "dynamic")


def test_mixed_precision_model_exports_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = MLP()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    twin = saved_models.float32_copy(model)
    assert {layer.compute_dtype for layer in twin._flatten_layers()} == {"float32"}
    report = export.inspect_ops(export.convert(twin))
    assert report["float16_tensors"] == 0 and "CAST" not in report["ops"]
    np.testing.assert_allclose(export.TFLiteModel(export.convert(twin))(X), model(X), atol=1e-2)


def test_predict_reads_npy_batches_and_names_bad_inputs(tmp_path):
    np.save(tmp_path / "batch.npy", (X[..., 0] * 255).astype(np.uint8))
    images, names = prediction.load_inputs([tmp_path / "batch.npy"])
    assert images.shape == (6, 28, 28, 1) and names[1] == f"{tmp_path / 'batch.npy'}[1]"
    with pytest.raises(UserError, match="missing.png does not exist"):
        prediction.load_inputs([tmp_path / "missing.png"])
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(UserError, match="cannot read input .*text.png"):
        prediction.load_inputs([tmp_path / "text.png"])


def test_cli_predict_with_a_missing_input_is_one_line(tmp_path):
    MLP().save(tmp_path / "model.keras")
    result = subprocess.run(
        [sys.executable, "-m", "alexnet_mnist", "mode=predict", f"checkpoint={tmp_path}", "inputs=[nowhere.png]",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=os.environ,
    )
    assert result.returncode == 1
    assert "input nowhere.png does not exist" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("build", [MLP, lambda: Ensemble([MLP(), AlexNet(fc_units=16)])], ids=["mlp", "ensemble"])
def test_saved_model_export_serves_logits_that_agree_with_keras(mock_mnist, tmp_path, build):
    model = build()
    model.save(tmp_path / "model.keras")
    modes.export_checkpoint(make_config(*SMOKE, "mode=export", "export.format=saved_model", f"checkpoint={tmp_path}"), None)
    report = json.loads((tmp_path / "export_saved_model.json").read_text())
    assert report["test_images"] == 200 and report["agreement"] == 1.0 and report["max_abs_logit_diff"] < 1e-4
    assert report["signature"] == {"inputs": {"images": [[None, 28, 28, 1], "float32"]},
                                   "outputs": {"logits": [[None, 10], "float32"]}}
    serving = tf.saved_model.load(str(tmp_path / "model_saved_model")).signatures["serving_default"]
    np.testing.assert_allclose(serving(images=tf.constant(X))["logits"], model(X), atol=1e-5)
    assert not list(tmp_path.glob(".*partial*"))  # no temporary directory left behind


def test_saved_model_export_refuses_a_quantization(tmp_path):
    MLP().save(tmp_path / "model.keras")
    config = make_config(*SMOKE, "mode=export", "export.format=saved_model", "export.quantization=int8", f"checkpoint={tmp_path}")
    with pytest.raises(UserError, match="export.quantization=int8 applies to export.format=tflite only"):
        modes.export_checkpoint(config, None)
    assert not (tmp_path / "model_saved_model").exists()


def test_an_export_that_disagrees_with_keras_is_not_written(mock_mnist, tmp_path, monkeypatch):
    MLP().save(tmp_path / "model.keras")
    monkeypatch.setattr(export, "verify", lambda *args: {**dict.fromkeys(["accuracy", "keras_accuracy", "max_abs_logit_diff", "median_latency_ms"], 0.0), "agreement": 0.5})
    splits = data.make_splits("mnist", batch_size=32, eval_batch_size=100, eval_examples=20)
    with pytest.raises(UserError, match="agrees with the Keras model on 50.00% of the test images"):
        export.export_saved_model(tmp_path / "model.keras", splits.test)
    assert not (tmp_path / "model_saved_model").exists() and not (tmp_path / "export_saved_model.json").exists()
