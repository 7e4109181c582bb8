"""Whole epochs end to end, as a user waits for them: the project's run against Keras fit.

    python benchmarks/epoch_time.py [--models mlp alexnet] [--write] [--smoke]

For each model (6 MLP epochs, 3 AlexNet epochs, batch 64, the default precision), the project's run
(`train_and_evaluate`, the code `python -m alexnet_mnist` runs: training, validation, checkpoints) and
Keras `compile()` + `fit()` with `validation_data` train on the same in-memory MNIST with the same
optimizer (Adam at a constant 1e-3; no augmentation, no label smoothing). fit is fed the
pipeline a Keras user writes (shuffle, batch, scale, `prefetch(AUTOTUNE)`). An epoch's wall time runs
from the end of the one before (the start of training for the first) to the end of its own
validation. The pure step time is measured in the same epoch: the median, over the epoch's calls of
`train.steps_per_execution` steps, of their seconds per step (a shared machine's speed drifts from
one epoch to the next). The prediction for an epoch is steps × its step time + its evaluation time,
so any wait at an epoch's boundaries, or stall within it, shows as the gap. Needs the prepared
MNIST (TFDS_DATA_DIR). `--write` writes each model's section of benchmarks/RESULTS.md.
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
from alexnet_mnist.files import read_csv  # noqa: E402
from alexnet_mnist.models import build_model  # noqa: E402
from alexnet_mnist.train import Trainer, build_optimizer, reset_process_state, resolve_precision, train_and_evaluate  # noqa: E402

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
    """Wall seconds, evaluation seconds, step time and seconds spent in the steps of each epoch of the
    project's run. The step time is the median over its calls of k steps (`Trainer.train_epoch`
    yields after each) of their seconds per step; the seconds in the steps are their sum."""
    step_times, in_steps, train_epoch = [], [], Trainer.train_epoch

    def timed_train_epoch(trainer, chunks, first_step, steps_per_epoch):
        last, before, calls = time.perf_counter(), first_step, []
        for done in train_epoch(trainer, chunks, first_step, steps_per_epoch):
            now = time.perf_counter()
            calls.append((now - last, done - before))
            last, before = now, done
            yield done
        step_times.append(statistics.median(seconds / steps for seconds, steps in calls))
        in_steps.append(sum(seconds for seconds, _ in calls))

    with tempfile.TemporaryDirectory() as workdir, mock.patch.object(Trainer, "train_epoch", timed_train_epoch):
        train_and_evaluate(config, workdir)
        rows = read_csv(Path(workdir) / "timing.csv")
    epochs = [float(row["epoch_seconds"]) for row in rows]
    return epochs, [float(row["eval_seconds"]) for row in rows], step_times, in_steps


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
        loop, evals, steps, in_steps = project_epochs(config)
        fit = fit_epochs(config, splits)
        print(f"{model_name}: loop {loop}, eval {evals}, fit {fit}, steps {[f'{s * 1e3:.3f} ms' for s in steps]}", flush=True)
        precision = resolve_precision(config.precision.value)
        section = render(model_name, precision, splits.num_train, splits.steps_per_epoch, steps, in_steps, loop, evals, fit)
        print(section)
        if args.write:
            write_section(section)


def render(model_name, precision, images, steps, step_times, in_steps, loop, evals, fit):
    """The model's section: its epochs' wall times against their predictions, and against fit's."""
    fmt = lambda values: ", ".join(f"{v:.1f}" if v >= 10 else f"{v:.2f}" for v in values)  # noqa: E731
    predicted = [steps * step + e for step, e in zip(step_times, evals)]
    worst = max(abs(wall / p - 1) for wall, p in zip(loop, predicted))
    speedup = statistics.median(fit) / statistics.median(loop)
    outside = [wall - steps_seconds - e for wall, steps_seconds, e in zip(loop, in_steps, evals)]
    lines = [
        f"## Epochs end to end: {model_name}",
        "",
        f"CPU: {cpu_model()}; TensorFlow {tf.__version__}, Keras {keras.__version__}; {precision}, batch {BATCH}, "
        f"Adam, MNIST ({images:,} training images, {steps} steps an epoch); each epoch's step "
        "time is the median of its calls of 20 steps. Written by `benchmarks/epoch_time.py`.",
        "",
        "| contender | epoch wall times (s) | median | max / median | step time (ms) | "
        "predicted epoch (steps × step + evaluation) | worst epoch / predicted | "
        "outside the steps and evaluation (ms) | loop / fit (median epoch) |",
        "|---|---|---:|---:|---|---|---:|---|---:|",
        f"| project loop | {fmt(loop)} | {statistics.median(loop):.2f} | {max(loop) / statistics.median(loop):.2f} | "
        f"{', '.join(f'{s * 1e3:.2f}' for s in step_times)} | {fmt(predicted)} | {worst:.1%} off | "
        f"{', '.join(f'{o * 1e3:.0f}' for o in outside)} | {speedup:.2f}× faster |",
        f"| Keras fit | {fmt(fit)} | {statistics.median(fit):.2f} | {max(fit) / statistics.median(fit):.2f} | | | | | |",
        "",
        "The project loop's epochs include validation and the epoch's checkpoint; its steps are traced "
        "and warmed up once before the first epoch, outside the epoch clock. The time outside the steps "
        "and evaluation is the epoch's wall time less the sum of its calls of 20 steps and its "
        "evaluation: the epoch's boundaries, its checkpoint and the loop's own Python.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
