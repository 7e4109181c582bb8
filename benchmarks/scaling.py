"""Scaling beyond one process: images/s of 1 and 2 workers, the gradients' all-reduce, a projection.

    python benchmarks/scaling.py [--models mlp alexnet] [--steps N [N]] [--batch 64] [--write]

For each model: images/s of the project's loop in one process (`distribute=none`, all cores), then
of a 2-worker `distribute=multi_worker` job on localhost (one process per worker, the cores shared
out between them), both on MNIST without augmentation, timed over `--steps` steps of the global
`--batch` after warm-up. The chief of the 2-worker job also times the all-reduce of the model's
gradients (median of repeats), for each all-reduce implementation, packing and gradient dtype, and
of one scalar (the latency of a round). From those measurements, the efficiency of N machines:

    t_compute = batch per machine / images/s of one process
    t_allreduce(N) = 2 (N - 1) / N * S / bandwidth + 2 * 2 (N - 1) * latency
    efficiency(N) = t_compute / (t_compute + t_allreduce(N));  speed-up = N * efficiency

a ring all-reduce of the gradients (S bytes) and one of two numbers (the global batch's size and
loss) per step, each 2 (N - 1) hops of `latency` (half the scalar round measured on localhost, a
lower bound for a network hop); no overlap of communication with compute is assumed, as
TensorFlow all-reduces after the backward pass. Needs the prepared MNIST (TFDS_DATA_DIR).
`--write` also writes benchmarks/SCALING.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import tensorflow as tf
from train_throughput import cpu_model

from alexnet_mnist import data
from alexnet_mnist.models import build_model
from alexnet_mnist.training import distribute
from alexnet_mnist.training.optimizers import build_optimizer
from alexnet_mnist.training.runtime import reset_process_state, set_thread_counts
from alexnet_mnist.training.train import distributed
from alexnet_mnist.training.trainer import Trainer

STEPS = {"mlp": 400, "alexnet": 10}  # timed steps per model: some seconds each on 2 cores
STEPS_PER_EXECUTION = 10
MACHINES = (2, 4, 8, 16)
GBIT_PER_S = (10, 100)
# All-reduce settings timed: (implementation, bytes_per_pack, gradient dtype).
SETTINGS = [("ring", 0, "float32"), ("auto", 0, "float32"), ("ring", 4 << 20, "float32"), ("ring", 0, "bfloat16")]
REPEATS = 10


def measure(model_name, steps, batch, workers):
    """In one process of a job of `workers`: images/s of the whole job, and on the chief the
    all-reduce times {setting: seconds} of the model's gradients and of a scalar."""
    set_thread_counts(max(os.cpu_count() // workers, 1), 0)  # before the strategy starts TensorFlow
    strategy = distribute.create_strategy("multi_worker" if workers > 1 else "none")
    reset_process_state(0, False, "float32")
    strategy = strategy if workers > 1 else None
    splits = data.make_splits("mnist", batch_size=batch, eval_batch_size=1000)
    with (strategy or tf.distribute.get_strategy()).scope():
        trainer = Trainer(build_model(model_name), build_optimizer("adam", 1e-3), strategy=strategy)
    trainer.warm_up(batch)
    per_call = min(STEPS_PER_EXECUTION, steps)
    chunks = iter(distributed(trainer.strategy, lambda shard: splits.train_chunks(0, 0, per_call, shard=shard)))
    trainer.train_steps(*next(chunks))  # the first distributed chunk may trace again
    float(trainer.train_loss.result())
    start, done = time.perf_counter(), 0
    while done < steps:
        done += int(trainer.train_steps(*next(chunks)))
    float(trainer.train_loss.result())  # waits for the last step
    result = {"images_per_second": done * batch / (time.perf_counter() - start)}
    if workers > 1:
        variables = trainer.model.trainable_variables
        result["gradient_bytes"] = sum(v.shape.num_elements() * 4 for v in variables)
        result["allreduce_seconds"] = {
            "/".join(map(str, setting)): time_allreduce(strategy, [v.shape for v in variables], *setting)
            for setting in SETTINGS
        }
        result["scalar_seconds"] = time_allreduce(strategy, [[]], "ring", 0, "float32")
    return result


def time_allreduce(strategy, shapes, implementation, bytes_per_pack, dtype):
    """Median seconds of one all-reduce (SUM) of tensors of `shapes` across the job's replicas."""
    options = tf.distribute.experimental.CommunicationOptions(
        bytes_per_pack=bytes_per_pack,
        implementation=tf.distribute.experimental.CommunicationImplementation[implementation.upper()],
    )
    tensors = [tf.ones(shape, dtype) for shape in shapes]

    @tf.function
    def allreduce():
        reduced = strategy.run(
            lambda: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tensors, options)
        )
        return strategy.experimental_local_results(reduced)[0][0]

    seconds = []
    for repeat in range(REPEATS + 3):  # 3 to warm up
        start = time.perf_counter()
        allreduce().numpy()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[3:])


def run_job(model_name, steps, batch, workers, timeout=600):
    """Start a job of `workers` processes of this script; the chief's (or the only one's) result."""
    ports = distribute.free_ports(workers)
    processes = []
    for index in range(workers):
        env = dict(os.environ)
        env.pop("TF_CONFIG", None)
        if workers > 1:
            env["TF_CONFIG"] = json.dumps(distribute.cluster_tf_config([f"localhost:{p}" for p in ports], index))
        command = [sys.executable, __file__, "--worker", model_name, str(steps), str(batch), str(workers)]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    try:
        outputs = [process.communicate(timeout=timeout)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    if any(process.returncode for process in processes):
        raise SystemExit(f"the {workers}-worker job of {model_name} failed")
    return json.loads(outputs[0].strip().splitlines()[-1])


def efficiency(images_per_second, batch, gradient_bytes, latency, machines, gbit_per_s):
    """The formula of the module's docstring."""
    compute = batch / images_per_second
    hops = 2 * (machines - 1)
    allreduce = hops / machines * gradient_bytes / (gbit_per_s * 1e9 / 8) + 2 * hops * latency
    return compute / (compute + allreduce)


def render(results, batch, steps):
    lines = [
        "# Scaling across workers",
        "",
        f"Written by `benchmarks/scaling.py` on {cpu_model()}, {os.cpu_count()} cores, TensorFlow {tf.__version__}: "
        f"float32, Adam, global batch {batch}, no augmentation, up to {STEPS_PER_EXECUTION} steps per call; "
        "images/s over the timed steps after warm-up (" + ", ".join(f"{m} {steps[m]}" for m in results) + " steps). "
        "The 2 workers are 2 processes on this machine, sharing its cores: they measure the cost of the "
        "collectives, not a second machine's speed.",
        "",
        "| model | gradients (MB) | 1 process (img/s) | 2 workers (img/s) | all-reduce ring (ms) | auto (ms) | ring, 4 MiB packs (ms) | ring, bfloat16 (ms) | scalar round (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model_name, (one, two) in results.items():
        times = [two["allreduce_seconds"]["/".join(map(str, setting))] * 1e3 for setting in SETTINGS]
        lines.append(
            f"| {model_name} | {two['gradient_bytes'] / 1e6:.1f} | {one['images_per_second']:,.0f} | "
            f"{two['images_per_second']:,.0f} | " + " | ".join(f"{t:.2f}" for t in times) + f" | {two['scalar_seconds'] * 1e3:.2f} |"
        )
    lines += [
        "",
        "Projected efficiency of N machines like this one (speed-up = N × efficiency), from the figures above:",
        "",
        "    t_compute = batch per machine / images/s of one process",
        "    t_allreduce(N) = 2 (N - 1) / N × S / bandwidth + 2 × 2 (N - 1) × latency",
        "    efficiency(N) = t_compute / (t_compute + t_allreduce(N))",
        "",
        "Each step all-reduces the gradients (S bytes, ring) and two numbers (the global batch's size and loss); "
        "each all-reduce takes 2 (N - 1) hops of `latency`, half the scalar round measured on localhost "
        "(a lower bound for a network hop). No overlap of communication with compute is assumed: TensorFlow "
        "all-reduces after the backward pass. The defaults are float32 gradients and the recipe's batch; "
        "bfloat16 gradients and a 4× batch per machine are the projection's what-ifs.",
        "",
        "| model | batch per machine | gradients | bandwidth | " + " | ".join(f"N={n}" for n in MACHINES) + " |",
        "|---|---:|---|---:|" + "---:|" * len(MACHINES),
    ]
    for model_name, (one, two) in results.items():
        latency = two["scalar_seconds"] / 2
        for per_machine, dtype in ((batch, "float32"), (batch, "bfloat16"), (4 * batch, "float32")):
            size = two["gradient_bytes"] / (2 if dtype == "bfloat16" else 1)
            for gbit in GBIT_PER_S:
                cells = [efficiency(one["images_per_second"], per_machine, size, latency, n, gbit) for n in MACHINES]
                lines.append(
                    f"| {model_name} | {per_machine} | {dtype} | {gbit} Gbit/s | " + " | ".join(f"{e:.0%}" for e in cells) + " |"
                )
    return "\n".join([*lines, "", *settings_notes(results)]) + "\n"


def settings_notes(results):
    """What moves the projection, with the measured all-reduce times of each setting (ms)."""
    ms = {m: {k: v * 1e3 for k, v in two["allreduce_seconds"].items()} for m, (_, two) in results.items()}
    each = lambda key: ", ".join(f"{m} {t[key]:.1f}" for m, t in ms.items())  # noqa: E731
    return [
        "Which settings move the projection:",
        "",
        f"* All-reduce implementation (`distribute.all_reduce`): on CPUs `auto` picks the ring (ms: ring {each('ring/0/float32')}; "
        f"auto {each('auto/0/float32')}), and NCCL on GPUs, so `auto` is the default.",
        f"* Packing (`distribute.bytes_per_pack`): fewer, larger messages shorten the latency term (4 MiB packs, ms: "
        f"{each('ring/4194304/float32')}, against TensorFlow's own choice above); the default is 4 MiB, "
        "which took a third less than TensorFlow's choice for AlexNet's gradients when measured with the cores free.",
        f"* bfloat16 gradients halve S, the bandwidth term: a few points for AlexNet at 10 Gbit/s, nothing for the "
        f"latency-bound MLP. Measured here the bfloat16 all-reduce took (ms) {each('ring/0/bfloat16')}, against "
        "float32's above; the loop all-reduces the gradients as Keras computes them, in float32.",
        "* A larger batch per machine (`train.batch_size` = machines × batch per machine; `optimizer.lr_batch_size` scales "
        "the learning rate with it) lengthens t_compute against the same all-reduce: the strongest setting, and the only "
        "one that helps the MLP, whose 0.4 MB of gradients take longer to all-reduce than its step takes to compute.",
    ]


def main():
    if sys.argv[1:2] == ["--worker"]:
        model_name, steps, batch, workers = sys.argv[2], *map(int, sys.argv[3:6])
        print(json.dumps(measure(model_name, steps, batch, workers)), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(STEPS), default=list(STEPS))
    parser.add_argument(
        "--steps", type=int, nargs="+", help="timed steps per measurement: one for all models, or one per model (default: mlp 400, alexnet 10)"
    )
    parser.add_argument("--batch", type=int, default=64, help="the global batch (the default recipe's)")
    parser.add_argument("--write", action="store_true", help="also write benchmarks/SCALING.md")
    args = parser.parse_args()
    if args.steps and len(args.steps) not in (1, len(args.models)):
        parser.error("--steps takes one number, or one per model of --models")
    counts = args.steps * len(args.models) if args.steps and len(args.steps) == 1 else args.steps
    steps = {model_name: counts[i] if counts else STEPS[model_name] for i, model_name in enumerate(args.models)}
    results = {}
    for model_name in args.models:
        results[model_name] = [run_job(model_name, steps[model_name], args.batch, workers) for workers in (1, 2)]
        print(model_name, json.dumps(results[model_name]), flush=True)
    table = render(results, args.batch, steps)
    print(table)
    if args.write:
        (Path(__file__).parent / "SCALING.md").write_text(table)


if __name__ == "__main__":
    main()
