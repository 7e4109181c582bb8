"""Process-wide TensorFlow state a run sets: precision, seeds, determinism and thread pools.

TensorFlow keeps these per process, and Hydra multirun jobs share the process: each run sets them
anew.
"""

from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from alexnet_mnist.errors import UserError


def resolve_precision(precision):
    """The dtype policy `precision` names; `auto` is the faster one for training here: mixed
    bfloat16 on a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX) when no GPU is visible
    (1.3-1.6x the float32 rate at the same accuracy, docs/performance.md), float32 otherwise."""
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU") or not _cpu_has_native_bfloat16():
        return "float32"
    return "mixed_bfloat16"


def _cpu_has_native_bfloat16():
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: do not guess
        return False
    flags = set(cpuinfo.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def reset_process_state(seed, deterministic, precision="float32"):
    """Set what a run needs, undoing what an earlier run in this process set (Hydra multirun jobs
    share the process). Returns the dtype policy's name (`precision` resolved)."""
    keras.backend.clear_session()
    precision = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        # TensorFlow exports only the switch on; its counterpart lives beside it.
        tf_config.disable_op_determinism()
    return precision


def set_thread_counts(intra_op, inter_op):
    """TensorFlow's thread pools (0: its own choice); fixed once TensorFlow has run its first op."""
    threading = tf.config.threading
    if (intra_op, inter_op) == (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()):
        return
    try:
        threading.set_intra_op_parallelism_threads(intra_op)
        threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        raise UserError(
            "runtime.intra_op_threads / runtime.inter_op_threads can only be set once per process, "
            "before TensorFlow starts (not per job of a sweep)"
        ) from None

