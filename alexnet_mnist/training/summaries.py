"""TensorBoard logging with tf.summary (logger=tensorboard): scalars per step and epoch, and the pictures.

TensorFlow writes the event files, but the summary ops themselves live in the `tensorboard` package,
an optional extra; without a writer nothing here touches them, so plain runs work without it.
"""

import importlib.util
from pathlib import Path

import tensorflow as tf

from alexnet_mnist.errors import UserError
from alexnet_mnist.reporting import plots

LOG_DIR = "tensorboard"  # inside the run directory


def create_writer(workdir, enabled):
    """A file writer under workdir/tensorboard, or TF's no-op writer, under which nothing is recorded."""
    if not enabled:
        return tf.summary.create_noop_writer()
    if importlib.util.find_spec("tensorboard") is None:
        raise UserError("logger=tensorboard needs the tensorboard package: pip install 'alexnet_mnist[tensorboard]'")
    return tf.summary.create_file_writer(str(Path(workdir) / LOG_DIR))


def log_step(step, loss, accuracy, learning_rate):
    """Scalars at a training step, to the default writer; the epoch's running means, as on the bar."""
    _scalars({"step/loss": loss, "step/accuracy": accuracy, "step/learning_rate": learning_rate}, step)


def log_epoch(writer, row, learning_rate):
    """One row of history.csv (loss, accuracy, val_loss, val_accuracy) and the learning rate."""
    with writer.as_default():
        values = {f"epoch/{name}": value for name, value in row.items() if name != "epoch"}
        _scalars({**values, "epoch/learning_rate": learning_rate}, int(row["epoch"]))


def log_figures(writer, figures):
    """Each matplotlib figure as an image summary named pictures/NAME."""
    with writer.as_default():
        if tf.summary.should_record_summaries():
            for name, figure in figures.items():
                tf.summary.image(f"pictures/{name}", tf.image.decode_png(plots.to_png(figure), channels=4)[None], step=0)
    writer.flush()


def _scalars(values, step):
    if tf.summary.should_record_summaries():
        for tag, value in values.items():
            tf.summary.scalar(tag, value, step=step)
