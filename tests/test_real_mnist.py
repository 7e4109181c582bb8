"""Training on the real MNIST copy: the accuracy floors of the foundation issue."""

import pytest
from conftest import make_config

from alexnet_mnist.training.train import train_and_evaluate

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


def test_mlp_one_full_epoch_reaches_96_percent(tfds_data_dir, tmp_path):
    # One epoch is 844 steps of 64 images: at Adam's default 1e-3 that ends near 95 % (as Keras fit
    # does, measured); 5e-3 decayed to 0 over the epoch reaches 96.4-96.5 % over seeds 0-3.
    config = make_config(
        "model=mlp", "train.epochs=1", "train.batch_size=64", "optimizer=adam", "optimizer.lr=5e-3", "augment=none", "train.label_smoothing=0",
        "progress=false",
    )  # fmt: skip
    metrics = train_and_evaluate(config, tmp_path)
    assert metrics["test_accuracy"] >= 0.96, metrics


def test_alexnet_a_few_hundred_steps_reach_95_percent(tfds_data_dir, tmp_path):
    # 300 steps of 64 images; validation and test on their first 2,000 images to keep this short.
    # The recipe's AdamW one-cycle at 1e-3 (half its 2e-3 for half its batch): 97.9-98.2 % over seeds
    # 0-2 on an AMD EPYC. Plain Adam with no warm-up is a draw: seed 0 ended at 91.5 % there, 1 and 2 at 97.5-97.6.
    config = make_config(
        "model=alexnet", "train.epochs=1", "data.train_examples=19200", "data.eval_examples=2000", "progress=false",
        "optimizer.lr=1e-3", "train.batch_size=64", "augment=none", "train.label_smoothing=0",
    )  # fmt: skip
    metrics = train_and_evaluate(config, tmp_path)
    assert metrics["test_accuracy"] >= 0.95, metrics
