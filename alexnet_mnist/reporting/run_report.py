"""A run's pictures: the model's predictions on the test split, drawn by `plots`, written as PNGs."""

import csv
from pathlib import Path

import numpy as np
import tensorflow as tf

from alexnet_mnist import data
from alexnet_mnist.inference.saved_models import load_model
from alexnet_mnist.reporting import plots


def predict(model, dataset):
    """Images, labels and softmax probabilities over every batch of `dataset`."""
    images, labels, probabilities = [], [], []
    for batch_images, batch_labels in dataset:
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
        probabilities.append(tf.nn.softmax(model(batch_images, training=False)).numpy())
    return np.concatenate(images), np.concatenate(labels), np.concatenate(probabilities)


def make_figures(model, test, history, class_names) -> dict:
    """{name: Figure} for curves, confusion, samples and errors; `history` is the rows of history.csv."""
    images, labels, probabilities = predict(model, test)
    predictions, confidences = probabilities.argmax(axis=1), probabilities.max(axis=1)
    return {
        "curves": plots.curves(history),
        "confusion": plots.confusion(labels, predictions, class_names),
        "samples": plots.samples(images, labels, predictions, class_names),
        "errors": plots.errors(images, labels, predictions, confidences, class_names),
    }


def save_figures(figures, directory) -> list:
    """Write each figure as NAME.png into `directory`; returns the paths."""
    paths = []
    for name, figure in figures.items():
        paths.append(Path(directory) / f"{name}.png")
        paths[-1].write_bytes(plots.to_png(figure))
    return paths


def read_history(path) -> list:
    """The rows of a history.csv, numbers as floats."""
    with open(path, newline="") as f:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]


def report_saved_run(run_dir, dataset, *, eval_examples=None, eval_batch_size=1000, data_dir=None, download=False) -> list:
    """Draw the pictures of a finished run from its model.keras and history.csv into `run_dir`.

    `dataset` and `eval_examples` should be the run's own, so the test images are the ones it was
    evaluated on. Returns the PNG paths.
    """
    run_dir = Path(run_dir)
    model = load_model(run_dir / "model.keras")
    test, class_names = data.make_test_split(
        dataset, batch_size=eval_batch_size, data_dir=data_dir, download=download, examples=eval_examples
    )
    figures = make_figures(model, test, read_history(run_dir / "history.csv"), class_names)
    return save_figures(figures, run_dir)
