"""Resume after a crash, nothing half-written, and clear errors for bad input."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import QUIET, latest_checkpoint_number, make_config, resumes
from test_cli import run_cli

from alexnet_mnist import data
from alexnet_mnist.atomic_files import atomic_path
from alexnet_mnist.config import check_ranges
from alexnet_mnist.errors import UserError
from alexnet_mnist.models import MLP
from alexnet_mnist.training.optimizers import build_optimizer
from alexnet_mnist.training.train import train_and_evaluate
from alexnet_mnist.training.trainer import NonFiniteLoss, Trainer

SMOKE = ("model=mlp", "debug=smoke", "progress=false", "deterministic=true")


@pytest.fixture
def mock_mnist():
    with tfds.testing.mock_data(num_examples=200):
        yield


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_non_finite_loss_stops_at_its_step():
    images = np.random.default_rng(0).random((4, 8, 28, 28, 1), np.float32)
    images[2, 0, 0, 0, 0] = np.nan  # the third batch
    chunks = tf.data.Dataset.from_tensor_slices((images, np.zeros((4, 8), np.int64))).batch(2)
    # A linear MLP lets the NaN through (oneDNN's ReLU may turn NaN into 0).
    model = MLP(hidden_units=(8,), activation="linear")
    trainer = Trainer(model, build_optimizer("sgd", 0.01))
    with pytest.raises(NonFiniteLoss, match="at step 3;"):
        list(trainer.train_epoch(iter(chunks), 0, 4))


def test_nan_loss_exits_with_one_line_and_keeps_the_last_good_model(mock_mnist, tmp_path):
    config = make_config(*SMOKE, "train.epochs=2")
    train_and_evaluate(config, tmp_path)
    before = keras.models.load_model(tmp_path / "model.keras").get_weights()
    exploding = make_config(*SMOKE, "train.epochs=4", "train.resume=true", "optimizer.lr=1e30")
    with pytest.raises(NonFiniteLoss, match="NaN or infinite at step"):
        train_and_evaluate(exploding, tmp_path)
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 3  # header and the 2 good epochs
    after = keras.models.load_model(tmp_path / "model.keras").get_weights()  # saved again, from the best epoch
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_corrupted_latest_checkpoint_is_named_and_can_fall_back(mock_mnist, tmp_path, caplog):
    train_and_evaluate(make_config(*SMOKE, "train.epochs=2"), tmp_path)
    first_epoch = (tmp_path / "history.csv").read_text().splitlines()[:2]
    (latest,) = tmp_path.glob("checkpoints/ckpt-2.data-*")
    latest.write_bytes(b"\0" * 64)
    resumed = make_config(*SMOKE, "train.epochs=3", "train.resume=true")
    with pytest.raises(UserError, match=r"checkpoint .*ckpt-2 cannot be read.*resume_fallback"):
        train_and_evaluate(resumed, tmp_path)
    caplog.set_level(logging.INFO, logger="alexnet_mnist")
    fallback = make_config(*SMOKE, "train.epochs=3", "train.resume=true", "train.resume_fallback=true")
    metrics = train_and_evaluate(fallback, tmp_path)
    # Epoch 2 again from the end of epoch 1 (ckpt-1), then epoch 3.
    assert f"checkpoint {tmp_path / 'checkpoints' / 'ckpt-2'} cannot be read" in caplog.text
    assert resumes(caplog.text) == [(str(tmp_path / "checkpoints" / "ckpt-1"), 2, 0)]
    history = (tmp_path / "history.csv").read_text().splitlines()
    assert metrics["epochs"] == 3 and len(history) == 4 and history[:2] == first_epoch
    assert latest_checkpoint_number(tmp_path / "checkpoints") == 3  # epoch 2's again over the damaged ckpt-2


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.batch_size=0", "train.batch_size=0 is out of range: it must be >= 1"),
        ("train.epochs=0", "train.epochs=0 is out of range"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5 is out of range: it must be in (0, 1)"),
        ("model.dropout=1", "model.dropout=1.0 is out of range: it must be in [0, 1)"),
        ("ensemble.members=0", "ensemble.members=0 is out of range: it must be >= 1"),
        ("distribute.logical_cpus=-1", "distribute.logical_cpus=-1 is out of range: it must be >= 0"),
        ("distribute.timeout_seconds=0", "distribute.timeout_seconds=0.0 is out of range: it must be > 0"),
        ("augment.probability=2", "augment.probability=2.0 is out of range: it must be in [0, 1]"),
        ("augment.stroke=-1", "augment.stroke=-1.0 is out of range: it must be >= 0"),
        ("optimizer.warmup_epochs=8", "optimizer.warmup_epochs=8.0 is out of range: it must be in [0, train.epochs)"),
        ("train.label_smoothing=1", "train.label_smoothing=1.0 is out of range: it must be in [0, 1)"),
    ],
)
def test_out_of_range_values_name_the_key_and_what_is_allowed(override, message):
    with pytest.raises(UserError) as error:
        check_ranges(make_config(override))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.lr=-1", "optimizer.lr=-1.0 is out of range: it must be > 0"),
        ("resume=/nonexistent/run", "resume=/nonexistent/run: not a run directory"),
    ],
)
def test_bad_values_are_one_line_errors_before_any_training(override, message, tmp_path):
    result = run_cli(override, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert message in output and "Traceback" not in output and "Total params" not in output


def test_verbose_shows_the_traceback(tmp_path):
    result = run_cli("optimizer.lr=-1", "verbose=true", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" in result.stderr


@pytest.mark.real_data
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tfds_data_dir, tmp_path):
    args = [
        "model=mlp", "train.epochs=3", "data.train_examples=14400", "data.eval_examples=2000", "train.batch_size=64",
        "train.steps_per_execution=20", "train.checkpoint_every_steps=50", "deterministic=true", *QUIET,
    ]  # fmt: skip
    whole = run_cli(*args, f"hydra.run.dir={tmp_path / 'whole'}", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr

    run = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "alexnet_mnist", *args, f"hydra.run.dir={run}"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # 225 steps an epoch, run 20 at a time: saved after steps 60, 100, 160 and 200 (the first calls
    # past each multiple of 50) and at the end, so ckpt-5 ends epoch 1 and ckpt-7 is after step 100
    # of epoch 2. Wait until the index names ckpt-7 or a later one, then kill without warning.
    saved_at = [(epoch, step) for epoch in (1, 2, 3) for step in (60, 100, 160, 200, 225)]
    checkpoints, deadline = run / "checkpoints", time.monotonic() + 300
    while latest_checkpoint_number(checkpoints) < 7:
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run / "metrics.json").exists()
    latest = latest_checkpoint_number(checkpoints)

    resumed = run_cli(*args, "train.resume=true", f"hydra.run.dir={run}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    # From the latest checkpoint, at the step it was saved after (the next epoch's start for an epoch's end).
    epoch, step = saved_at[latest - 1]
    position = (epoch + 1, 0) if step == 225 else (epoch, step)
    assert resumes((run / "alexnet_mnist.log").read_text()) == [(str(checkpoints / f"ckpt-{latest}"), *position)]
    assert latest_checkpoint_number(checkpoints) == latest_checkpoint_number(tmp_path / "whole" / "checkpoints") == 15
    assert (run / "history.csv").read_text() == (tmp_path / "whole" / "history.csv").read_text()
    read = lambda d: json.loads((d / "metrics.json").read_text())  # noqa: E731
    assert read(run)["test_accuracy"] == read(tmp_path / "whole")["test_accuracy"]


@pytest.mark.real_data
def test_corrupted_dataset_shard_is_named(tfds_data_dir, tmp_path):
    copy = tmp_path / "mnist" / "3.0.1"
    shutil.copytree(Path(tfds_data_dir) / "mnist" / "3.0.1", copy)
    (shard,) = copy.glob("mnist-test.tfrecord-*")
    content = bytearray(shard.read_bytes())
    content[len(content) // 2 : len(content) // 2 + 4096] = bytes(4096)  # a damaged stretch of records
    shard.chmod(0o644)
    shard.write_bytes(content)
    with pytest.raises(UserError, match=rf"dataset 'mnist' \(test\) in {copy} is corrupted"):
        data.load("mnist", "test", data_dir=str(tmp_path))
