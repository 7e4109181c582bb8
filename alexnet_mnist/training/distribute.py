"""tf.distribute strategies from plain settings, and the cluster that a multi-worker job runs in.

A multi-worker job is one process per worker. `MultiWorkerMirroredStrategy` reads its cluster from
`TF_CONFIG`, as Kubernetes operators and hand-started workers provide it; under Hydra's submitit
launcher each task builds `TF_CONFIG` from submitit's job environment instead (TensorFlow's
`SlurmClusterResolver` calls nvidia-smi and fails on CPU-only nodes).
"""

import contextlib
import functools
import json
import os
import re
import shutil
import socket
import tempfile
import zlib
from pathlib import Path

import tensorflow as tf

from alexnet_mnist.errors import PeerLost, UserError

# Where a submitit job's workers listen when no port is set: a range derived from the job id, so
# that jobs sharing a node (a sweep on submitit_local) do not collide.
PORT_RANGE = (20000, 60000)


def create_strategy(name, *, logical_cpus=0, all_reduce="auto", bytes_per_pack=0, timeout_seconds=60.0, port=None):
    """The strategy `name` names: "none" (TensorFlow's default), "mirrored" (this machine's devices,
    or `logical_cpus` logical CPU devices) or "multi_worker" (cluster from TF_CONFIG, else from the
    submitit job environment with the workers' first `port`).

    Collective ops must be configured before TensorFlow runs its first op: call this at the start of
    a run, before any data are loaded. A process keeps one multi-worker strategy for its lifetime.
    """
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if logical_cpus:
            configure_logical_cpus(logical_cpus)
        devices = [device.name for device in tf.config.list_logical_devices("GPU")]
        devices = devices or [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            tf_config = tf_config_from_submitit(port)
            if tf_config is None:
                raise UserError(
                    "distribute=multi_worker needs its cluster: set TF_CONFIG in every worker, or launch "
                    "with hydra/launcher=submitit_local or submitit_slurm (the `cluster` extra)"
                )
            os.environ["TF_CONFIG"] = json.dumps(tf_config)
        return _multi_worker_strategy(all_reduce, bytes_per_pack, timeout_seconds)
    raise ValueError(f"distribute {name!r} is unknown; choose none, mirrored or multi_worker")


@functools.cache
def _multi_worker_strategy(all_reduce, bytes_per_pack, timeout_seconds):
    # Collectives are configured once per process: a sweep's later jobs reuse the first one's strategy.
    options = tf.distribute.experimental.CommunicationOptions(
        bytes_per_pack=bytes_per_pack,
        timeout_seconds=timeout_seconds,
        implementation=tf.distribute.experimental.CommunicationImplementation[all_reduce.upper()],
    )
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (ValueError, RuntimeError) as error:
        raise UserError(f"distribute=multi_worker cannot start: {str(error).splitlines()[0]}") from error


def configure_logical_cpus(count):
    """Split the CPU into `count` logical devices (possible only before TensorFlow starts its runtime)."""
    (cpu,) = tf.config.list_physical_devices("CPU")
    wanted = [tf.config.LogicalDeviceConfiguration()] * count
    if len(tf.config.get_logical_device_configuration(cpu) or [None]) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        raise UserError(
            f"distribute.logical_cpus={count} can only be set once per process, before TensorFlow starts "
            "(not per job of a sweep)"
        ) from None


def tf_config_from_submitit(port=None):
    """TF_CONFIG (a dict) for this task of a submitit job, or None outside one: worker i is task i,
    listening on its node at `port` + its local rank (`port` None: derived from the job id)."""
    try:
        import submitit
    except ImportError:
        return None
    try:
        env = submitit.JobEnvironment()
    except RuntimeError:  # how submitit says that this process is no task of a job
        return None
    if env.cluster not in ("local", "slurm"):  # submitit's "debug" executor runs in the caller's process
        return None
    if port is None:
        low, high = PORT_RANGE
        port = low + zlib.crc32(env.job_id.encode()) % (high - low - env.num_tasks)
    tasks_per_node = env.num_tasks // env.num_nodes
    workers = [f"{env.hostnames[rank // tasks_per_node]}:{port + rank % tasks_per_node}" for rank in range(env.num_tasks)]
    return cluster_tf_config(workers, env.global_rank)


def cluster_tf_config(workers, index):
    """TF_CONFIG (a dict) of worker `index` in a cluster of `workers` ("host:port" each); worker 0 is the chief."""
    return {"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}}


def free_ports(count):
    """`count` TCP ports free on this machine now (for workers on localhost)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]


def is_chief(strategy):
    """Whether this process writes the run's files: always outside a multi-worker job, else worker 0
    (or the task named "chief")."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


@contextlib.contextmanager
def worker_directory(strategy, run_dir):
    """The directory this process writes to: `run_dir` for the chief, a temporary one (removed
    afterwards) for the other workers, which must take part in every checkpoint save."""
    if is_chief(strategy):
        yield Path(run_dir)
        return
    resolver = strategy.cluster_resolver
    directory = Path(tempfile.mkdtemp(prefix=f"alexnet_mnist_{resolver.task_type}{resolver.task_id}_"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def peers_watched(strategy):
    """Turn the error of a collective whose peer died or stopped answering (after the strategy's
    `timeout_seconds`) into one line: the job cannot go on without it."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError) as error:
        if strategy is None or strategy.num_replicas_in_sync == 1:
            raise
        reason = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", error.message.splitlines()[0])
        raise PeerLost(
            f"another worker of this job died or stopped answering ({type(error).__name__}: {reason}); "
            "stopping too: rerun the job with train.resume=true"
        ) from error


def check_batch_size(batch_size, strategy, setting="train.batch_size"):
    """The batch per replica; a global batch that does not divide among the replicas is a UserError."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise UserError(
            f"{setting}={batch_size} does not divide among the {replicas} replicas of this run: "
            f"use a multiple of {replicas}"
        )
    return batch_size // replicas
