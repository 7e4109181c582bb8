"""Where a training step's time goes: TensorFlow profiler op times for the loop and for Keras fit.

    python benchmarks/op_profile.py [--write] [--smoke]

For float32 and mixed bfloat16, each contender of `train_throughput.py` trains a few warm-up steps and
then a few steps under `tf.profiler`; the kernels it ran are summed by kind, per step. Two kernels can
run at once (one per inter-op thread), so the sums may exceed the step's wall time; "busy" is the
share of the profiled span in which at least one kernel ran: what is left is all that a faster loop
could remove. The last lines bound the bfloat16 speed-up without AMX: at most 2x for the convolutions
and matrix products (AVX512-BF16 does twice float32's multiply-adds per instruction), none for the
rest. `--write` also writes benchmarks/PROFILE.md; `--smoke` profiles the MLP for a few steps.
"""

import argparse
import collections
import functools
import tempfile
from pathlib import Path

import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2
from train_throughput import BATCH, PRECISIONS, cpu_model, keras_fit, project_loop

from alexnet_mnist import data

# Kernel kind -> group, tried in order on the op type (oneDNN's are named _MklNative...). The
# first DOT_PRODUCTS groups are the convolutions and matrix products, which bfloat16 can speed up.
DOT_PRODUCTS = 4
GROUPS = (
    ("Conv2DBackpropFilter", "conv backward, filters"),
    ("Conv2DBackpropInput", "conv backward, inputs"),
    ("Conv2D", "conv forward"),
    ("MatMul", "dense (matmul)"),
    ("LRNGrad", "LRN backward (float32)"),
    ("LRN", "LRN forward (float32)"),
    ("Cast", "casts"),
)
OPTIMIZER = "optimizer (Adam)"
OTHER = "other (pooling, ReLU, dropout, loss, metrics)"
TABLE_ROWS = [group for _, group in GROUPS] + [OPTIMIZER, OTHER]
# Events on the compute threads that are not kernels: the function and loop ops around them, and
# the thread pool's own bookkeeping.
NOT_KERNELS = {"Process", "Run", "Record", "StartRegion", "StopRegion", "While", "StatefulPartitionedCall",
               "PartitionedCall", "Start", "Done", "Execute"}
# The XLA executable's span (its launch and thunks, listed above, lie inside it): the only XLA code of
# the step is the optimizer's update (train.jit_optimizer).
XLA_EXECUTABLE = "ExecuteAsyncOnStream"


def group_of(op_name, op_type):
    if "/adam/" in op_name or "/adam_w/" in op_name or op_type == XLA_EXECUTABLE:
        return OPTIMIZER
    return next((group for kind, group in GROUPS if kind in op_type), OTHER)


def kernel_events(logdir):
    """(name, type, start ns, end ns) of every kernel the profile in `logdir` holds."""
    space = xplane_pb2.XSpace()
    space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op_name, _, op_type = name.rpartition(":")
                if op_name and op_type not in NOT_KERNELS and not op_type.lstrip().startswith("__"):
                    start = line.timestamp_ns + event.offset_ps / 1e3
                    yield op_name, op_type, start, start + event.duration_ps / 1e3


def dot_products_and_rest(ms):
    """Milliseconds of a profile's convolutions and matmuls, and of everything else."""
    dot = sum(ms[group] for _, group in GROUPS[:DOT_PRODUCTS])
    return dot, sum(ms.values()) - dot


def busy_share(intervals):
    """Share of the span from the first start to the last end covered by at least one interval."""
    intervals = sorted(intervals)
    covered, reach = 0.0, intervals[0][0]
    for start, end in intervals:
        covered += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return covered / (reach - intervals[0][0])


def profile(window, steps):
    """Per-step milliseconds by group and the busy share of `steps` steps of `window`."""
    window(steps)  # warm-up: traces and first-step allocations stay out of the profile
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        window(steps)
        tf.profiler.experimental.stop()
        events = list(kernel_events(logdir))
    ms = collections.Counter()
    for op_name, op_type, start, end in events:
        ms[group_of(op_name, op_type)] += (end - start) / 1e6 / steps
    return ms, busy_share([(start, end) for *_, start, end in events])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="also write benchmarks/PROFILE.md")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run on the MLP")
    args = parser.parse_args()

    model_name, steps = ("mlp", 20) if args.smoke else ("alexnet", 8)
    splits = data.make_splits(
        "mnist", batch_size=BATCH, eval_batch_size=1000, train_examples=BATCH * 40 if args.smoke else None
    )
    columns = {}
    for precision in PRECISIONS:
        contenders = (
            ("loop before", functools.partial(project_loop, before=True)),
            ("loop", project_loop),
            ("fit", keras_fit),
        )
        for name, contender in contenders:
            columns[(precision, name)] = profile(contender(model_name, precision, splits, 4), steps)
            print(f"profiled {model_name} {precision} {name}", flush=True)
    table = render(model_name, columns)
    print(table)
    if args.write:
        (Path(__file__).parent / "PROFILE.md").write_text(table)


def render(model_name, columns):
    keys = list(columns)
    lines = [
        f"# Where the time of a training step goes: {model_name}",
        "",
        f"CPU: {cpu_model()}, 2 cores; TensorFlow {tf.__version__}; batch {BATCH}, Adam; milliseconds of kernel time per step, summed by "
        "kind (`python benchmarks/op_profile.py`). Kernels on the two inter-op threads can overlap, so a sum "
        "can exceed the step's wall time; busy: the share of the profiled span in which a kernel ran.",
        "",
        "| kernels | " + " | ".join(f"{name} {precision}" for precision, name in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for group in TABLE_ROWS:
        if not any(columns[key][0][group] for key in keys):
            continue
        lines.append(f"| {group} | " + " | ".join(f"{columns[key][0][group]:.1f}" for key in keys) + " |")
    lines.append("| **all kernels** | " + " | ".join(f"{sum(columns[k][0].values()):.1f}" for k in keys) + " |")
    lines.append("| busy share of the span | " + " | ".join(f"{columns[k][1]:.1%}" for k in keys) + " |")
    dot, rest = dot_products_and_rest(columns[("float32", "loop")][0])
    bf16_dot, bf16_rest = dot_products_and_rest(columns[("mixed_bfloat16", "loop")][0])
    old_dot, old_rest = dot_products_and_rest(columns[("mixed_bfloat16", "loop before")][0])
    lines += [
        "",
        f"*Loop before*: the step before issue 29 (the paper's conv → LRN → pool order, the optimizer update not "
        f"XLA-compiled). Its bfloat16 kernel time over the loop's: {(old_dot + old_rest) / (bf16_dot + bf16_rest):.2f}× "
        f"(the rest beside convolutions and matmuls {old_rest:.0f} → {bf16_rest:.0f} ms). Bound of the bfloat16 loop "
        f"if everything but the convolutions and matmuls took no time: {(bf16_dot + bf16_rest) / bf16_dot:.2f}× "
        "its kernel time now.",
        f"Loop kernel time, float32 over bfloat16: {(dot + rest) / (bf16_dot + bf16_rest):.2f}× "
        f"(convolutions and matmuls {dot / bf16_dot:.2f}×, the rest {rest / bf16_rest:.2f}×).",
        f"Bound without AMX: convolutions and matmuls 2× faster, the rest as in float32, no casts: "
        f"{(dot + rest) / (dot / 2 + rest):.2f}×.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
