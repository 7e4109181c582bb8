import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from alexnet_mnist import MLP, AlexNet, LocalResponseNormalization, build_model


@pytest.mark.parametrize(
    "model, params",
    [(MLP(), 101_770), (MLP(hidden_units=(900,)), 715_510), (AlexNet(), 7_703_242)],
    ids=["mlp", "mlp_wide", "alexnet"],
)
def test_parameter_counts_and_logit_shapes(model, params):
    assert model.count_params() == params
    logits = model(np.zeros((3, 28, 28, 1), np.float32))
    assert logits.shape == (3, 10)
    assert logits.dtype == tf.float32


def test_alexnet_feature_map_sizes():
    model = AlexNet()
    x = tf.zeros((1, 28, 28, 1))
    x = model.pool1(model.norm1(model.conv1(x)))
    assert x.shape == (1, 14, 14, 64)
    x = model.pool2(model.norm2(model.conv2(x)))
    assert x.shape == (1, 7, 7, 192)
    x = model.pool5(model.conv5(model.conv4(model.conv3(x))))
    assert x.shape == (1, 4, 4, 256)


def test_build_model_by_name():
    assert isinstance(build_model("mlp", hidden_units=[64]), MLP)
    assert isinstance(build_model("alexnet", lrn=False), AlexNet)
    with pytest.raises(ValueError, match="'vgg' is unknown"):
        build_model("vgg")


def test_lrn_matches_the_formula_in_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 5, 12)).astype(np.float32) * 3
    radius, bias, alpha, beta = 2, 2.0, 1e-4, 0.75
    expected = np.empty_like(x)
    for c in range(x.shape[-1]):
        window = x[..., max(0, c - radius) : c + radius + 1]
        expected[..., c] = x[..., c] / (bias + alpha * np.sum(window**2, axis=-1)) ** beta
    layer = LocalResponseNormalization(depth_radius=radius, bias=bias, alpha=alpha, beta=beta)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5)


def test_lrn_runs_under_mixed_bfloat16_and_returns_bfloat16():
    # There is no bfloat16 LRN kernel on CPU: this raises unless the layer computes in float32.
    x = tf.random.normal((1, 4, 4, 8), dtype=tf.float32)
    out = LocalResponseNormalization(dtype="mixed_bfloat16")(x)
    assert out.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(out, tf.float32), LocalResponseNormalization()(x), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("model", [MLP(hidden_units=(32, 16), dropout=0.1), AlexNet(lrn=True)], ids=["mlp", "alexnet"])
def test_config_round_trip(model):
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.count_params() == model.count_params()


def test_keras_file_loads_in_a_fresh_process_with_identical_logits(tmp_path):
    model = AlexNet()
    x = np.random.default_rng(1).random((4, 28, 28, 1), np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", model(x).numpy())
    model.save(tmp_path / "model.keras")
    script = (
        # A plain `import alexnet_mnist` is all a user needs to load a saved model.
        "import sys, numpy as np, alexnet_mnist\n"
        "d = sys.argv[1]\n"
        "model = alexnet_mnist.load_model(d + '/model.keras')\n"
        "assert type(model) is alexnet_mnist.AlexNet, type(model)\n"
        "np.testing.assert_array_equal(model(np.load(d + '/x.npy')), np.load(d + '/expected.npy'))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)


def test_models_train_and_infer_in_keras_fit_too():
    # Users import the models into their own projects, usually with compile()/fit().
    model = MLP(hidden_units=(16,))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.default_rng(0).random((32, 28, 28, 1), np.float32), np.arange(32) % 10
    history = model.fit(x, y, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]


def test_the_package_loads_tensorflow_only_with_the_models():
    # The command line composes its config (and answers --help) before TensorFlow starts.
    script = (
        "import sys, alexnet_mnist, alexnet_mnist.cli.app\n"
        "assert 'tensorflow' not in sys.modules\n"
        "from alexnet_mnist import AlexNet\n"
        "assert 'tensorflow' in sys.modules and AlexNet.__module__ == 'alexnet_mnist.models.alexnet'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
