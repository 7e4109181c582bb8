"""What makes models differ: ensemble members beyond their seed (`ensemble.variants`), the AlexNet's
kernel sizes, and batch normalization as an option."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import make_config

from alexnet_mnist import AlexNet, load_model
from alexnet_mnist.cli import modes
from alexnet_mnist.config import AlexNetConfig, MLPConfig
from alexnet_mnist.errors import UserError

VARIANTS = "ensemble.variants=[{model:{kernel_sizes:[3,3,3,3,3]}},{model:{name:mlp,hidden_units:[64]},augment:{elastic_alpha:0.0}}]"


def test_each_member_takes_its_variant_over_the_runs_settings():
    config = make_config("ensemble.members=3", "seed=4", VARIANTS)
    members = [modes._member_config(config, k) for k in range(3)]
    # Members of different variants share a seed, so a validation split; a variant's second member does not.
    assert [m.seed for m in members] == [4, 4, 5]
    assert members[0].model.kernel_sizes == [3, 3, 3, 3, 3] and isinstance(members[0].model, AlexNetConfig)
    # Another model takes its own schema and defaults; the variants cycle.
    assert isinstance(members[1].model, MLPConfig) and members[1].model.hidden_units == [64]
    assert members[1].augment.elastic_alpha == 0.0 and members[1].augment.rotate == config.augment.rotate
    assert members[2].model == members[0].model
    assert all(m.ensemble.members == 1 and m.ensemble.variants == [] for m in members)


@pytest.mark.parametrize(
    "variant, message",
    [
        ("[{model:{kernel_size:[3]}}]", r"ensemble.variants\[0\]: .*kernel_size"),
        ("[{model:{name:vgg}}]", r"ensemble.variants\[0\]: model.name=vgg is not one of \['alexnet', 'mlp'\]"),
        ("[{model:{kernel_sizes:[3,3,4,3,3]}}]", r"model.kernel_sizes=\[3, 3, 4, 3, 3\] is out of range"),
    ],
)
def test_a_bad_variant_is_one_line_naming_it(variant, message):
    config = make_config("ensemble.members=2", f"ensemble.variants={variant}")
    with pytest.raises(UserError, match=message):
        modes._member_config(config, 0)


def test_kernel_sizes_shape_the_alexnet():
    assert AlexNet(kernel_sizes=(3, 3, 3, 3, 3)).count_params() < AlexNet().count_params() == 7_703_242
    with pytest.raises(ValueError, match="one size per conv layer"):
        AlexNet(kernel_sizes=(3, 3))


def test_batch_norm_is_an_option_and_a_saved_model_keeps_it(tmp_path):
    model = AlexNet(batch_norm=True)
    # Five BatchNormalizations (4 values per channel) instead of the five conv biases.
    assert model.count_params() == 7_703_242 + 3 * (64 + 192 + 384 + 256 + 256)
    x = np.random.default_rng(0).random((8, 28, 28, 1), np.float32)
    model(x, training=True)  # moves the running statistics: inference differs from a fresh model
    model.save(tmp_path / "model.keras")
    np.testing.assert_allclose(load_model(tmp_path / "model.keras")(x), model(x), atol=1e-5)
    assert AlexNet().batch_norm is False


def test_a_mixed_ensemble_trains_its_members_and_assembles_them(tmp_path):
    config = make_config(
        "model=mlp", "debug=smoke", "progress=false", "ensemble.members=2", "report.plots=false",
        "ensemble.variants=[{},{model:{hidden_units:[16]}}]",
    )  # fmt: skip
    with tfds.testing.mock_data(num_examples=200):
        modes.train(config, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [json.loads((tmp_path / "members" / k / "metrics.json").read_text())["params"] for k in "01"] == [101_770, 12_730]
    assert len(metrics["members"]) == 2 and 0 <= metrics["test_accuracy"] <= 1
