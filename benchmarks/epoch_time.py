"""Whole epochs end to end, as a user waits for them: the project's run against Keras fit.

    python benchmarks/epoch_time.py [--models mlp alexnet] [--write] [--smoke]

For each model (6 MLP epochs, 3 AlexNet epochs, batch 64, the default precision), the project's run
(`train_and_evaluate`, the code `python -m alexnet_mnist` runs: training, validation, checkpoints)
and Keras `compile()` + `fit()` with `validation_data` train on the same in-memory MNIST with the
same optimizer (Adam at a constant 1e-3; no augmentation, no label smoothing). fit is fed the
pipeline a Keras user writes (shuffle, batch, scale, `prefetch(AUTOTUNE)`). An epoch's wall time
runs from the end of the one before (the start of training for the first) to the end of its own
validation. Within each of the project's epochs the benchmark times every call of
`train.steps_per_execution` steps (each takes its chunk of batches from the pipeline inside the
graph); an epoch's compute is the sum of its calls, and its measured step time is that compute over
its steps (a shared machine's speed drifts from one epoch to the next, so each epoch has its own).
The prediction for an epoch is steps × its step time + its evaluation time: whatever else the epoch
spends (at its boundaries, for a checkpoint, in the loop's Python) is the gap. Each epoch is also
set against the pace of its median call, which the calls' jitter on this shared machine exceeds.
Needs the prepared MNIST (TFDS_DATA_DIR). `--write` writes each model's section of
benchmarks/RESULTS.md.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).parent))
from results_file import write_section  # noqa: E402
from train_throughput import compose_config, cpu_model  # noqa: E402

from alexnet_mnist import data  # noqa: E402
from alexnet_mnist.atomic_files import read_csv  # noqa: E402
from alexnet_mnist.models import build_model  # noqa: E402
from alexnet_mnist.training.optimizers import build_optimizer  # noqa: E402
from alexnet_mnist.training.runtime import reset_process_state, resolve_precision  # noqa: E402
from alexnet_mnist.training.train import train_and_evaluate  # noqa: E402
from alexnet_mnist.training.trainer import Trainer  # noqa: E402

BATCH = 64
EPOCHS = {"mlp": 6, "alexnet": 3}


def run_config(model_name, epochs, overrides=()):
    return compose_config([
        f"model={model_name}", f"train.epochs={epochs}", f"train.batch_size={BATCH}",
        "train.early_stopping.patience=100", "progress=false", "report.plots=false", *overrides,
        # What the step-time windows and fit train with: plain Adam at a constant rate, no augmentation.
        "optimizer=adam", "optimizer.schedule=constant", "train.label_smoothing=0", "augment=none",
    ])  # fmt: skip


def project_epochs(config):
    """Each epoch of the project's run: {"wall", "eval", "compute", "median_step"} seconds. `compute`
    is the time in its calls of k steps (`Trainer.train_epoch` yields after each; a call takes its
    chunk from the pipeline inside the graph); `median_step` the median over those calls of their
    seconds per step."""
    epochs, train_epoch = [], Trainer.train_epoch

    def timed_train_epoch(trainer, chunks, first_step, steps_per_epoch):
        last, before, calls = time.perf_counter(), first_step, []
        for done in train_epoch(trainer, chunks, first_step, steps_per_epoch):
            now = time.perf_counter()
            calls.append((now - last, done - before))
            last, before = now, done
            yield done
        median_step = statistics.median(seconds / steps for seconds, steps in calls)
        epochs.append({"compute": sum(seconds for seconds, _ in calls), "median_step": median_step})

    with tempfile.TemporaryDirectory() as workdir, mock.patch.object(Trainer, "train_epoch", timed_train_epoch):
        train_and_evaluate(config, workdir)
        rows = read_csv(Path(workdir) / "timing.csv")
    for epoch, row in zip(epochs, rows):
        epoch.update(wall=float(row["epoch_seconds"]), eval=float(row["eval_seconds"]))
    return epochs


class EpochClock(keras.callbacks.Callback):
    """Wall seconds of each epoch, from the end of the one before to the end of its validation."""

    def on_train_begin(self, logs=None):
        self.last, self.seconds = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):  # Keras has fetched the logs: the epoch is done
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now


def keras_user_pipeline(images, labels, batch_size, shuffle_seed=None):
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def fit_epochs(config, splits):
    """Wall seconds of each epoch of Keras fit on the same model, optimizer and data."""
    reset_process_state(config.seed, False, config.precision.value)
    model = build_model(config.model.name)
    model.compile(
        optimizer=build_optimizer(config.optimizer.name, config.optimizer.lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    val_images, val_labels = zip(*splits.val.unbatch().batch(100_000).as_numpy_iterator())
    train = keras_user_pipeline(splits.train_images, splits.train_labels, BATCH, shuffle_seed=config.seed)
    val = keras_user_pipeline(np.rint(val_images[0] * 255).astype(np.uint8), val_labels[0], config.train.eval_batch_size)
    clock = EpochClock()
    model.fit(train, validation_data=val, epochs=config.train.epochs, verbose=0, callbacks=[clock])
    return clock.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(EPOCHS), default=list(EPOCHS))
    parser.add_argument("--write", action="store_true", help="also write each model's section of benchmarks/RESULTS.md")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run: MLP on a subset")
    args = parser.parse_args()
    models = (("mlp", 2),) if args.smoke else [(name, EPOCHS[name]) for name in args.models]
    extra = ("data.train_examples=2560", "data.eval_examples=512") if args.smoke else ()
    for model_name, epochs in models:
        config = run_config(model_name, epochs, extra)
        splits = data.make_splits(
            "mnist", batch_size=BATCH, eval_batch_size=config.train.eval_batch_size,
            train_examples=config.data.train_examples, eval_examples=config.data.eval_examples,
        )  # fmt: skip
        loop = project_epochs(config)
        fit = fit_epochs(config, splits)
        precision = resolve_precision(config.precision.value)
        section = render(model_name, precision, splits.num_train, splits.steps_per_epoch, loop, fit)
        print(section)
        if args.write:
            write_section(section)


def render(model_name, precision, images, steps, loop, fit):
    """The model's section: the loop's epochs against fit's, then each loop epoch against its prediction."""
    walls = [epoch["wall"] for epoch in loop]
    seconds = lambda v: f"{v:.1f}" if v >= 10 else f"{v:.2f}"  # noqa: E731
    fmt = lambda values: ", ".join(map(seconds, values))  # noqa: E731
    ratio = lambda values: max(values) / statistics.median(values)  # noqa: E731
    lines = [
        f"## Epochs end to end: {model_name}",
        "",
        f"CPU: {cpu_model()}; TensorFlow {tf.__version__}, Keras {keras.__version__}; {precision}, batch {BATCH}, "
        f"Adam, MNIST ({images:,} training images, {steps} steps an epoch). Written by `benchmarks/epoch_time.py`.",
        "",
        "| contender | epoch wall times (s) | median | max / median | loop / fit (median epoch) |",
        "|---|---|---:|---:|---:|",
        f"| project loop | {fmt(walls)} | {statistics.median(walls):.2f} | {ratio(walls):.2f} | "
        f"{statistics.median(fit) / statistics.median(walls):.2f}× faster |",
        f"| Keras fit | {fmt(fit)} | {statistics.median(fit):.2f} | {ratio(fit):.2f} | |",
        "",
        "Each epoch of the project loop against its compute: the step time is the epoch's time in its "
        "calls of 20 steps (each takes its batches from the pipeline inside the graph) over its steps; "
        "the prediction is steps × step time + evaluation, and the rest (the epoch's boundaries, its "
        "checkpoint, the loop's own Python) makes the gap. The last column sets the epoch against the "
        "pace of its median call of 20 steps instead: the calls' jitter on a shared machine shows there.",
        "",
        "| epoch | wall (s) | step time (ms) | evaluation (s) | predicted (s) | wall / predicted | "
        "rest (ms) | median call's step time (ms) | wall / (steps × median call + evaluation) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for number, epoch in enumerate(loop, 1):
        predicted = epoch["compute"] + epoch["eval"]
        rest = epoch["wall"] - predicted
        at_median = steps * epoch["median_step"] + epoch["eval"]
        lines.append(
            f"| {number} | {seconds(epoch['wall'])} | {epoch['compute'] / steps * 1e3:.2f} | {seconds(epoch['eval'])} | "
            f"{seconds(predicted)} | {epoch['wall'] / predicted - 1:+.1%} | {rest * 1e3:.1f} | "
            f"{epoch['median_step'] * 1e3:.2f} | {epoch['wall'] / at_median - 1:+.1%} |"
        )
    lines += [
        "",
        # Every epoch has the same steps: its compute varies as its step time does.
        f"Across these epochs the step time itself varies by {ratio([epoch['compute'] for epoch in loop]):.2f} max / median (the wall "
        f"times by {ratio(walls):.2f}): an epoch's wall time follows the machine's speed.",
        "",
        "The project loop's epochs include validation and the epoch's checkpoint; its steps are traced "
        "and warmed up once before the first epoch, outside the epoch clock.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
