"""Training throughput: the project's loop against Keras compile()+fit(), and the input pipeline.

    python benchmarks/train_throughput.py [--write] [--smoke]

For each model (MLP, AlexNet) and precision (float32, mixed_bfloat16), both contenders train the same
model class on the same tf.data pipeline with the same batch size and optimizer. After a warm-up
window each, their timed windows alternate A B A B; a figure is the median over windows. A window
is timed from its first step to its last, as in the middle of an epoch: each `fit()` call also
makes and drops a dataset iterator, and dropping one waits for tf.data's autotuning thread, whose
sleep doubles from 10 ms (so a whole call lasts 1.27, 2.55, 5.11 or 10.23 s here, whatever the
steps took). Needs the prepared MNIST (TFDS_DATA_DIR). `--write` also writes its section of benchmarks/RESULTS.md.
"""

import argparse
import dataclasses
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import keras
import tensorflow as tf
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from results_file import write_section

from alexnet_mnist import data
from alexnet_mnist.config import register_schemas
from alexnet_mnist.data.augmentation import Augmentation
from alexnet_mnist.models import build_model
from alexnet_mnist.training.optimizers import build_optimizer
from alexnet_mnist.training.runtime import reset_process_state
from alexnet_mnist.training.trainer import Trainer

BATCH = 128
# (model, steps per timed window): each window lasts a few seconds on a 2-core CPU.
MODELS = {"mlp": 400, "alexnet": 8}
PRECISIONS = ("float32", "mixed_bfloat16")


# The step as it was before issue 29: the paper's conv -> LRN -> pool order, the optimizer's update
# as Keras's own element-wise ops. The loop and Keras fit run today's model and update.
BEFORE = {"model": {"alexnet": {"lrn_after_pool": False}}, "jit_optimizer": False}


def project_loop(model_name, precision, splits, steps_per_execution, before=False):
    reset_process_state(0, False, precision)
    model = build_model(model_name, **(BEFORE["model"].get(model_name, {}) if before else {}))
    # After: the optimizer update as the model's own recipe runs it (XLA pays off for AlexNet only).
    jit_optimizer = BEFORE["jit_optimizer"] if before else compose_config([f"model={model_name}"]).train.jit_optimizer
    trainer = Trainer(model, build_optimizer("adam", 1e-3), jit_optimizer=jit_optimizer)
    iterator = iter(splits.train_chunks(0, 0, steps_per_execution).repeat())

    def window(steps):
        """Seconds for `steps` train steps and the images they took."""
        start, done, images = time.perf_counter(), 0, 0
        while done < steps:
            chunk_images, labels = next(iterator)
            trainer.train_steps(chunk_images, labels)
            done, images = done + labels.shape[0], images + labels.shape.num_elements()
        float(trainer.train_loss.result())  # wait for the last step
        return time.perf_counter() - start, images

    return window


class Stopwatch(keras.callbacks.Callback):
    """Seconds from the start of `fit()`'s first step to the end of its last."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_end(self, logs=None):  # Keras has fetched the logs: the steps are done
        self.seconds = time.perf_counter() - self.start


def keras_fit(model_name, precision, splits, _):
    reset_process_state(0, False, precision)
    model = build_model(model_name)
    model.compile(
        optimizer=build_optimizer("adam", 1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    dataset = splits.train(0).repeat()

    def window(steps):
        """Seconds for `steps` train steps and the images they took."""
        stopwatch = Stopwatch()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[stopwatch])
        return stopwatch.seconds, steps * BATCH  # one smaller batch per 422 is not worth counting

    return window


def compose_config(overrides=()):
    """The typed config of `python -m alexnet_mnist OVERRIDES...`."""
    register_schemas()
    with initialize_config_module("alexnet_mnist.conf", version_base="1.3"):
        return OmegaConf.to_object(compose("config", overrides=list(overrides)))


def time_pair(contenders, steps, windows):
    """Median images/s of each contender, and the median over rounds of each one's rate over the
    first contender's in the same round (the machine's pace drifts: a ratio within a round is steadier
    than a ratio of medians); windows alternate between them after one warm-up each."""
    for window in contenders.values():
        window(steps)
    rates = {name: [] for name in contenders}
    for _ in range(windows):
        for name, window in contenders.items():
            seconds, images = window(steps)
            rates[name].append(images / seconds)
    first = next(iter(rates.values()))
    ratios = {name: statistics.median(a / b for a, b in zip(r, first)) for name, r in rates.items()}
    return {name: statistics.median(r) for name, r in rates.items()}, ratios


def pipeline_rate(splits, steps_per_execution, epochs=3):
    """Images/s that the project loop's input pipeline delivers with no model (augmented as `splits` says)."""
    rates = []
    for epoch in range(epochs):
        start, images = time.perf_counter(), 0
        for _, labels in splits.train_chunks(epoch, 0, steps_per_execution):
            images += labels.shape.num_elements()
        rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates)


def cpu_model():
    """The CPU's model name, and whether it computes bfloat16 with AMX or AVX512-BF16."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    name = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "unknown")
    flags = set(cpuinfo.split())
    bfloat16 = "AMX" if "amx_bf16" in flags else "AVX512-BF16, no AMX" if "avx512_bf16" in flags else "no native bfloat16"
    return f"{name} ({bfloat16})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="also write its section of benchmarks/RESULTS.md")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run: tiny windows, MLP only")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--steps-per-execution", type=int, default=20)
    args = parser.parse_args()

    models = {"mlp": 5} if args.smoke else MODELS
    windows = 1 if args.smoke else args.windows
    splits = data.make_splits(
        "mnist", batch_size=BATCH, eval_batch_size=1000, train_examples=BATCH * 40 if args.smoke else None
    )
    rows = []
    for model_name, steps in models.items():
        for precision in PRECISIONS:
            rates, ratios = time_pair(
                {
                    "loop": project_loop(model_name, precision, splits, args.steps_per_execution),
                    "before": project_loop(model_name, precision, splits, args.steps_per_execution, before=True),
                    "fit": keras_fit(model_name, precision, splits, None),
                },
                steps,
                windows,
            )
            rows.append((model_name, precision, rates["loop"], rates["before"], 1 / ratios["before"], rates["fit"]))
            print(f"{model_name} {precision}: {rates} (loop / before {1 / ratios['before']:.2f})", flush=True)
    reset_process_state(0, False)
    # The default config's augmentation on: the pipeline a default run trains on.
    augmented = dataclasses.replace(splits, augment=Augmentation(**dataclasses.asdict(compose_config().augment)))
    pipeline = pipeline_rate(augmented, args.steps_per_execution, epochs=1 if args.smoke else 3)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    table = render(rows, pipeline, peak_rss_mib, windows, args.steps_per_execution)
    print(table)
    if args.write:
        write_section(table)


def render(rows, pipeline, peak_rss_mib, windows, steps_per_execution):
    rate = {(m, p): loop for m, p, loop, *_ in rows}
    lines = [
        "# Training throughput",
        "",
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        f"batch {BATCH}, Adam; median of {windows} interleaved windows after warm-up; "
        f"project loop with steps_per_execution={steps_per_execution}. *Before*: the same loop with the "
        "step as it was before issue 29 (the paper's conv → LRN → pool order, the optimizer update not "
        "XLA-compiled); *loop / before*: the median over rounds of the two rates measured side by side.",
        "",
        "| model | precision | project loop (img/s) | before (img/s) | loop / before | Keras fit (img/s) | loop / fit | loop / own float32 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model_name, precision, loop, before, speedup, fit in rows:
        lines.append(
            f"| {model_name} | {precision} | {loop:,.0f} | {before:,.0f} | {speedup:.2f}× | {fit:,.0f} | {loop / fit:.2f}× | "
            f"{loop / rate[(model_name, 'float32')]:.2f}× |"
        )
    alexnet = rate.get(("alexnet", "mixed_bfloat16"), rate.get(("alexnet", "float32")))
    lines += [
        "",
        f"Input pipeline alone, with the default augmentation: {pipeline:,.0f} img/s"
        + (f" ({pipeline / alexnet:,.0f}× the fastest AlexNet training rate)." if alexnet else "."),
        f"Peak resident memory of the benchmark process: {peak_rss_mib:,.0f} MiB.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
