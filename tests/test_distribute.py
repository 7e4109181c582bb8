"""Training under tf.distribute: mirrored replicas, multi-worker jobs on localhost and the submitit launcher.

Every job is one or more subprocesses with a hard timeout: collectives are configured once per
process, before TensorFlow's first op, and a broken job must fail the test rather than hang it.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import QUIET, REPO, latest_checkpoint_number, require_extra, resumes
from test_cli import run_cli

from alexnet_mnist import data
from alexnet_mnist.errors import UserError
from alexnet_mnist.training import distribute

SPY = REPO / "tests" / "spy_run.py"
# Runs whose replicas must agree with one process: no random draws that differ per replica.
EXACT = ("model=mlp", "model.dropout=0", "augment=none", "precision=float32", "deterministic=true", *QUIET)
JOB_SECONDS = 240  # the limit of any one process of a job; each takes well under a minute here


def start(tmp_path, name, args, tf_config=None, mock=None):
    """A running `spy_run.py` process: the command line with `args`, its final weights kept in
    tmp_path/NAME.npz, its output in tmp_path/NAME.out, its temporary files in tmp_path/NAME.tmp/."""
    env = {**os.environ, "TMPDIR": str(tmp_path / f"{name}.tmp")}
    (tmp_path / f"{name}.tmp").mkdir(exist_ok=True)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    mock_args = ["--mock", str(mock)] if mock else []
    out = open(tmp_path / f"{name}.out", "w")
    return subprocess.Popen(
        [sys.executable, str(SPY), str(tmp_path / f"{name}.npz"), *mock_args, *args],
        cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
    )


def finish(processes, timeout=JOB_SECONDS):
    """Wait for every process (killing all of them past `timeout`); their exit codes."""
    deadline = time.monotonic() + timeout
    try:
        return [process.wait(max(deadline - time.monotonic(), 0.1)) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def start_workers(tmp_path, name, args, mock=None, count=2):
    """A `count`-worker multi_worker job on localhost, every worker with the same run directory."""
    workers = [f"localhost:{port}" for port in distribute.free_ports(count)]
    return [
        start(tmp_path, f"{name}{index}", ["distribute=multi_worker", *args], distribute.cluster_tf_config(workers, index), mock)
        for index in range(count)
    ]


def output(tmp_path, name):
    return (tmp_path / f"{name}.out").read_text()


def weights(tmp_path, name):
    with np.load(tmp_path / f"{name}.npz") as saved:
        return [saved[key] for key in saved.files]


def history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]


def test_every_pipeline_makes_only_its_replicas_parts_of_each_batch():
    with tfds.testing.mock_data(num_examples=200):
        splits = data.make_splits("mnist", batch_size=40, eval_batch_size=50, val_fraction=0.105, seed=3)
    whole = [labels for _, labels in splits.train_chunks(1, 0, 2)]  # 179 examples: 4 batches of 40 and 19
    pipelines = [data.Shard(replicas=4, first=first, count=2) for first in (0, 2)]
    parts = [[labels for _, labels in splits.train_chunks(1, 0, 2, shard=shard)] for shard in pipelines]
    # Each pipeline hands its 2 replicas their chunks in turn; the 4 replicas' parts make each chunk.
    for chunk, *replica_chunks in zip(whole, parts[0][0::2], parts[0][1::2], parts[1][0::2], parts[1][1::2]):
        np.testing.assert_array_equal(chunk, np.concatenate(replica_chunks, axis=1))
    assert [chunk.shape[1] for chunk in parts[0][-2:] + parts[1][-2:]] == [4, 5, 5, 5]  # the last batch's parts
    val = [labels for _, labels in splits.val_batches(data.Shard(replicas=2, first=1, count=1))]
    assert [len(labels) for labels in val] == [11]  # the second half of the 21 validation examples


def test_tf_config_comes_from_the_slurm_job_of_submitit(monkeypatch):
    slurm = dict(
        SUBMITIT_EXECUTOR="slurm", SLURM_JOB_ID="1234", SLURM_NTASKS="4", SLURM_JOB_NUM_NODES="2",
        SLURM_NODEID="1", SLURM_PROCID="3", SLURM_LOCALID="1", SLURM_JOB_NODELIST="node[1-2]",
    )
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    assert distribute.tf_config_from_submitit(29500) == {
        "cluster": {"worker": ["node1:29500", "node1:29501", "node2:29500", "node2:29501"]},
        "task": {"type": "worker", "index": 3},
    }
    ports = {int(worker.split(":")[1]) for worker in distribute.tf_config_from_submitit()["cluster"]["worker"]}
    assert len(ports) == 2 and min(ports) >= distribute.PORT_RANGE[0] and max(ports) < distribute.PORT_RANGE[1]
    monkeypatch.delenv("SUBMITIT_EXECUTOR")
    assert distribute.tf_config_from_submitit() is None


def test_a_batch_that_does_not_divide_among_the_replicas_is_rejected():
    class ThreeReplicas:
        num_replicas_in_sync = 3

    assert distribute.check_batch_size(96, ThreeReplicas()) == 32
    with pytest.raises(UserError, match=r"^train.batch_size=64 does not divide among the 3 replicas .* multiple of 3$"):
        distribute.check_batch_size(64, ThreeReplicas())


@pytest.mark.parametrize(
    "args, message",
    [
        (["distribute=mirrored", "distribute.logical_cpus=3", "train.batch_size=64"],
         "train.batch_size=64 does not divide among the 3 replicas of this run: use a multiple of 3"),
        (["distribute=multi_worker"], "distribute=multi_worker needs its cluster: set TF_CONFIG in every worker"),
        (["distribute=mirrored", "ensemble.members=2"], "ensemble.members=2 is out of range: it must be 1 under distribute"),
    ],
)
def test_distribute_errors_are_one_line(args, message, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    result = subprocess.run(
        [sys.executable, str(SPY), str(tmp_path / "w.npz"), "--mock", "200", "model=mlp", *args, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=JOB_SECONDS,
    )
    assert result.returncode == 1
    assert message in result.stdout + result.stderr and "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "run").exists()


def test_mirrored_replicas_train_as_one_process_on_the_global_batch(tmp_path):
    # 179 training examples in batches of 40: the last batch's 19 split 9 + 10 between the replicas.
    args = [*EXACT, "train.batch_size=40", "data.val_fraction=0.105", "train.epochs=1"]
    single = start(tmp_path, "single", [*args, f"hydra.run.dir={tmp_path / 'single'}"], mock=200)
    mirrored = start(
        tmp_path, "mirrored",
        [*args, "distribute=mirrored", "distribute.logical_cpus=2", f"hydra.run.dir={tmp_path / 'mirrored'}"], mock=200,
    )
    assert finish([single, mirrored]) == [0, 0], output(tmp_path, "mirrored")
    assert "over 2 replicas" in output(tmp_path, "mirrored")
    for a, b in zip(weights(tmp_path, "single"), weights(tmp_path, "mirrored"), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # The logged loss is the global batch's (not 1/replicas of it), and so are the metrics.
    (one,), (two,) = history(tmp_path / "single"), history(tmp_path / "mirrored")
    assert one.keys() == two.keys() and all(two[key] == pytest.approx(one[key], abs=1e-5) for key in one)


@pytest.mark.real_data
def test_a_two_worker_job_agrees_writes_once_and_resumes_after_a_kill(tfds_data_dir, tmp_path):
    args = ["model=mlp", "debug=smoke", "train.epochs=2", "train.checkpoint_every_steps=2", "deterministic=true", *QUIET]
    whole = tmp_path / "whole"
    job = start_workers(tmp_path, "whole", [*args, f"hydra.run.dir={whole}"])
    assert finish(job) == [0, 0], output(tmp_path, "whole1")
    assert all(np.array_equal(a, b) for a, b in zip(weights(tmp_path, "whole0"), weights(tmp_path, "whole1"), strict=True))
    assert sorted(path.name for path in whole.iterdir()) == [
        ".hydra", "alexnet_mnist.log", "checkpoints", "history.csv", "metrics.json", "model.keras", "timing.csv",
    ]
    log = (whole / "alexnet_mnist.log").read_text()
    assert "over 2 replicas; this process is the chief" in log and "this process is a worker" not in log
    assert "this process is a worker" in output(tmp_path, "whole1")
    # The other worker's checkpoints went to a temporary directory, removed at the end.
    assert not any((tmp_path / "whole1.tmp").iterdir())

    run = tmp_path / "killed"
    job = start_workers(tmp_path, "killed", [*args, f"hydra.run.dir={run}"])
    # 8 steps an epoch, a checkpoint every 2: ckpt-2 is after step 4 of epoch 1, ckpt-4 ends it.
    # Wait until the index names ckpt-2 or a later one: a number cannot be missed as a name can,
    # and an early one leaves the poller an epoch and a half to wake before the job ends.
    saved_at = [(epoch, step) for epoch in (1, 2) for step in (2, 4, 6, 8)]
    checkpoints, deadline = run / "checkpoints", time.monotonic() + JOB_SECONDS
    while latest_checkpoint_number(checkpoints) < 2:
        assert all(worker.poll() is None for worker in job) and time.monotonic() < deadline, "the job ended too soon"
        time.sleep(0.05)
    for worker in job:
        worker.send_signal(signal.SIGKILL)
    finish(job)
    assert not (run / "metrics.json").exists()
    latest = latest_checkpoint_number(checkpoints)

    resumed = start_workers(tmp_path, "resumed", [*args, "train.resume=true", f"hydra.run.dir={run}"])
    assert finish(resumed) == [0, 0], output(tmp_path, "resumed1")
    # Both workers read the chief's latest checkpoint and go on from the step it was saved after.
    epoch, step = saved_at[latest - 1]
    resumed_from = [(str(checkpoints / f"ckpt-{latest}"), *((epoch + 1, 0) if step == 8 else (epoch, step)))]
    assert resumes((run / "alexnet_mnist.log").read_text()) == resumes(output(tmp_path, "resumed1")) == resumed_from
    assert latest_checkpoint_number(checkpoints) == latest_checkpoint_number(whole / "checkpoints") == 8
    assert (run / "history.csv").read_text() == (whole / "history.csv").read_text()
    assert all(np.array_equal(a, b) for a, b in zip(weights(tmp_path, "resumed0"), weights(tmp_path, "whole0")))


def test_checkpoints_move_between_one_process_and_two_workers(tmp_path):
    run = tmp_path / "run"
    args = [*EXACT, "train.batch_size=20", f"hydra.run.dir={run}"]
    assert finish([start(tmp_path, "single", [*args, "train.epochs=1"], mock=200)]) == [0]
    job = start_workers(tmp_path, "worker", [*args, "train.epochs=2", "train.resume=true"], mock=200)
    assert finish(job) == [0, 0], output(tmp_path, "worker1")
    assert finish([start(tmp_path, "again", [*args, "train.epochs=3", "train.resume=true"], mock=200)]) == [0]
    # Each continues from the end of the epoch before: ckpt-1 of the process, ckpt-2 of the job.
    for name, epoch in (("worker1", 2), ("again", 3)):
        assert resumes(output(tmp_path, name)) == [(str(run / "checkpoints" / f"ckpt-{epoch - 1}"), epoch, 0)]
        assert f"epoch {epoch}/{epoch}:" in output(tmp_path, name)
    assert [row["epoch"] for row in history(run)] == [1, 2, 3]


def test_a_dead_worker_stops_the_other_with_one_line(tmp_path):
    run = tmp_path / "run"
    job = start_workers(
        tmp_path, "worker",
        [*EXACT, "train.epochs=50", "train.batch_size=20", "distribute.timeout_seconds=30", f"hydra.run.dir={run}"],
        mock=200,
    )
    index, deadline = run / "history.csv", time.monotonic() + JOB_SECONDS
    while not index.is_file():  # an epoch is done: both workers are training
        assert all(worker.poll() is None for worker in job) and time.monotonic() < deadline, "the job ended too soon"
        time.sleep(0.05)
    job[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    assert finish(job[:1], timeout=60) == [1]
    assert time.monotonic() - killed < 60
    text = output(tmp_path, "worker0")
    (line,) = [line for line in text.splitlines() if "another worker of this job died or stopped answering" in line]
    assert line.endswith("stopping too: rerun the job with train.resume=true") and "Traceback" not in text


@pytest.mark.real_data
def test_submitit_local_launcher_runs_a_two_task_job(tfds_data_dir, tmp_path):
    require_extra("cluster", "hydra_plugins.hydra_submitit_launcher")
    result = run_cli(
        "-m", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2", "distribute=multi_worker",
        "model=mlp", "debug=smoke", *QUIET, f"hydra.sweep.dir={tmp_path}", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "summary.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["params"] == "101770"
    log = (tmp_path / "0" / "alexnet_mnist.log").read_text()
    assert "over 2 replicas; this process is the chief" in log and "this process is a worker" not in log


DROPOUT_MASKS = """
import numpy as np, tensorflow as tf
from alexnet_mnist.training import distribute
from alexnet_mnist.models import MLP
strategy = distribute.create_strategy("mirrored", logical_cpus=2)
with strategy.scope():
    layer = MLP(hidden_units=(1000,), dropout=0.5).dropouts[0]
masks = tf.function(lambda: strategy.run(lambda: layer(tf.ones([4, 1000]), training=True)))()
np.save("masks.npy", np.stack([mask.numpy() != 0 for mask in strategy.experimental_local_results(masks)]))
"""


def test_dropout_draws_its_own_mask_on_each_replica(tmp_path):
    result = subprocess.run([sys.executable, "-c", DROPOUT_MASKS], cwd=tmp_path, capture_output=True, text=True, timeout=JOB_SECONDS)
    assert result.returncode == 0, result.stderr
    first, second = np.load(tmp_path / "masks.npy")
    assert 0.45 < first.mean() < 0.55 and 0.45 < second.mean() < 0.55
    assert 0.45 < (first == second).mean() < 0.55  # independent masks agree on half the units
