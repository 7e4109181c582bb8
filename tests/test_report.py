"""The run's pictures, TensorBoard events and mode=report, in process on TFDS mock data."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import make_config, require_extra
from PIL import Image

from alexnet_mnist import data
from alexnet_mnist.cli import modes
from alexnet_mnist.errors import UserError
from alexnet_mnist.models import build_model
from alexnet_mnist.reporting import plots, run_report
from alexnet_mnist.training.train import train_and_evaluate

SMOKE = ("model=mlp", "debug=smoke", "progress=false")
PICTURES = ["curves", "confusion", "samples", "errors"]


@pytest.fixture
def mock_data():
    with tfds.testing.mock_data(num_examples=200):
        yield


def assert_pictures(directory):
    for name in PICTURES:
        with Image.open(directory / f"{name}.png") as image:
            assert image.format == "PNG"
            width, height = plots.SIZES[name]
            assert image.size == (width * plots.DPI, height * plots.DPI), name
            pixels = np.asarray(image.convert("L"), dtype=float)
        # Not blank: plenty of ink on the white page, and more than a couple of grey levels.
        assert (pixels < 128).mean() > 0.01 and len(np.unique(pixels)) > 16, name


def test_every_run_draws_its_pictures(mock_data, tmp_path):
    train_and_evaluate(make_config(*SMOKE, "train.epochs=2"), tmp_path)
    assert_pictures(tmp_path)
    assert not (tmp_path / "tensorboard").exists()


def test_class_names_come_from_the_dataset(mock_data):
    test, class_names = data.make_test_split("fashion_mnist", batch_size=100)
    history = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4}]
    figures = run_report.make_figures(build_model("mlp"), test, history, class_names)
    ticks = [label.get_text() for label in figures["confusion"].axes[0].get_xticklabels()]
    assert "Sneaker" in ticks and "7" not in ticks
    titles = " ".join(ax.get_title() for ax in figures["samples"].axes + figures["errors"].axes)
    assert "pred " in titles and any(name in titles for name in class_names)
    assert len(figures["samples"].axes) == plots.GRID**2


def test_tensorboard_events_hold_scalars_and_pictures(mock_data, tmp_path):
    require_extra("tensorboard", "tensorboard")
    train_and_evaluate(make_config(*SMOKE, "train.epochs=2", "logger=tensorboard", "report.plots=false"), tmp_path)
    assert not list(tmp_path.glob("*.png"))
    tags = {}
    for events in (tmp_path / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert tags[f"epoch/{name}"] == [1, 2]
    for name in ("loss", "accuracy", "learning_rate"):
        assert len(tags[f"step/{name}"]) >= 2  # every log_every_steps steps
    assert {f"pictures/{name}" for name in PICTURES} <= set(tags)


def test_mode_report_draws_the_pictures_of_a_saved_run(mock_data, tmp_path):
    train_and_evaluate(make_config(*SMOKE, "report.plots=false"), tmp_path)
    assert not list(tmp_path.glob("*.png"))
    modes.report(make_config(*SMOKE, "mode=report", f"checkpoint={tmp_path}"), tmp_path / "report_run")
    assert_pictures(tmp_path)


@pytest.mark.parametrize("checkpoint", [None, "no/such/run"])
def test_mode_report_needs_a_finished_run(checkpoint, tmp_path):
    overrides = ["mode=report"] + ([f"checkpoint={checkpoint}"] if checkpoint else [])
    with pytest.raises(UserError, match="checkpoint"):
        modes.report(make_config(*overrides), tmp_path)


@pytest.mark.parametrize("epochs", [1, 2, 40])
def test_curves_tick_whole_epochs(epochs):
    history = [{"epoch": e, "loss": 1 / e, "accuracy": 1 - 1 / (e + 1), "val_loss": 1.1 / e, "val_accuracy": 0.9} for e in range(1, epochs + 1)]
    for ax in plots.curves(history).axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks) and 1 <= len(ticks) <= 12, ticks
        assert all(line.get_marker() not in (None, "None", "") for line in ax.get_lines())
