"""The faster training step and the per-model recipes (issue 29): what they change, and what not."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from alexnet_mnist import AlexNet, load_model
from alexnet_mnist.models import MLP
from alexnet_mnist.training.optimizers import build_optimizer
from alexnet_mnist.training.train import train_and_evaluate
from alexnet_mnist.training.trainer import Trainer
from conftest import make_config

SMOKE = ("model=mlp", "debug=smoke", "progress=false")


@pytest.fixture
def mock_mnist():
    with tfds.testing.mock_data(num_examples=200):
        yield


def test_the_lrn_normalises_the_pooled_tensor_unless_asked_for_the_papers_order():
    # AlexNet's LRN (k=2, alpha=1e-4) is almost a constant scale for small activations: large inputs
    # make it tell the two orders apart.
    x = 300 * np.random.default_rng(0).random((2, 28, 28, 1), np.float32)
    caffenet, paper = AlexNet(), AlexNet(lrn_after_pool=False)
    paper.set_weights(caffenet.get_weights())
    assert caffenet.count_params() == paper.count_params() == 7_703_242
    assert not np.allclose(caffenet(x), paper(x), rtol=1e-3)
    # With the LRN off, the order cannot matter.
    plain, plain_paper = AlexNet(lrn=False), AlexNet(lrn=False, lrn_after_pool=False)
    plain_paper.set_weights(plain.get_weights())
    np.testing.assert_allclose(plain(x), plain_paper(x), rtol=1e-5)


def test_a_model_saved_before_the_option_keeps_the_papers_order(tmp_path):
    old = AlexNet(lrn_after_pool=False)
    config = old.get_config()
    del config["lrn_after_pool"]  # as files saved before the option existed hold it
    assert AlexNet.from_config(config).lrn_after_pool is False
    old.save(tmp_path / "model.keras")
    assert load_model(tmp_path / "model.keras").lrn_after_pool is False


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_the_xla_compiled_update_matches_keras_own(name):
    x = np.random.default_rng(1).random((16, 28, 28, 1), np.float32)
    y = np.arange(16) % 10
    results = []
    for jit_optimizer in (False, True):
        keras.utils.set_random_seed(0)
        model = MLP(hidden_units=(32,), dropout=0.0)
        trainer = Trainer(model, build_optimizer(name, 1e-2, weight_decay=0.05), jit_optimizer=jit_optimizer)
        for _ in range(3):
            trainer.train_step(tf.constant(x), tf.constant(y, tf.int64))
        results.append([w.numpy() for w in model.weights])
    for plain, fused in zip(*results):
        np.testing.assert_allclose(plain, fused, rtol=1e-5, atol=1e-6)


def test_training_stops_once_the_target_validation_accuracy_is_reached(mock_mnist, tmp_path):
    # Mock labels are random: a target of 0.01 (one right of 20) is met within a few epochs, 1.0 never.
    reached = train_and_evaluate(make_config(*SMOKE, "train.epochs=8", "train.target_val_accuracy=0.01"), tmp_path / "a")
    history = [float(row.split(",")[4]) for row in (tmp_path / "a" / "history.csv").read_text().splitlines()[1:]]
    first = next(epoch for epoch, accuracy in enumerate(history, 1) if accuracy >= 0.01)
    assert reached["epochs"] == first < 8 and reached["target_reached"] is True
    missed = train_and_evaluate(make_config(*SMOKE, "train.epochs=2", "train.target_val_accuracy=1.0"), tmp_path / "b")
    assert missed["epochs"] == 2 and missed["target_reached"] is False
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["target_val_accuracy"] == 0.01


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ((), {"model.name": "alexnet", "model.lrn_after_pool": True, "train.jit_optimizer": True, "augment.elastic_alpha": 2.0}),
        (("model=mlp",), {"model.name": "mlp", "train.jit_optimizer": False, "augment.elastic_alpha": 0.0, "augment.translate": 1.0, "train.epochs": 20}),
        # The command line's choices win over a model's recipe.
        (("model=mlp", "augment=elastic", "train.epochs=3"), {"augment.elastic_alpha": 2.0, "train.epochs": 3}),
        (("model=mlp", "optimizer=sgd", "optimizer.lr=0.05"), {"optimizer.name": "sgd", "optimizer.lr": 0.05}),
    ],
)
def test_each_model_brings_its_own_recipe(overrides, expected):
    config = make_config(*overrides)
    for key, value in expected.items():
        node = config
        for part in key.split("."):
            node = getattr(node, part)
        assert node == value, key
