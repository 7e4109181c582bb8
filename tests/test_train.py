import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import make_config

from alexnet_mnist import data
from alexnet_mnist.models import build_model
from alexnet_mnist.training import optimizers, run_state, runtime, train
from alexnet_mnist.training.optimizers import build_optimizer
from alexnet_mnist.training.train import train_and_evaluate
from alexnet_mnist.training.trainer import Trainer

SMOKE = ("model=mlp", "debug=smoke", "progress=false")


@pytest.fixture
def mock_mnist():
    with tfds.testing.mock_data(num_examples=200):
        yield


def test_splits_carve_validation_from_train_by_seed(mock_mnist):
    a = data.make_splits("mnist", batch_size=32, eval_batch_size=50, val_fraction=0.25, seed=3)
    b = data.make_splits("mnist", batch_size=32, eval_batch_size=50, val_fraction=0.25, seed=3)
    assert (a.num_train, sum(len(y) for _, y in a.val), sum(len(y) for _, y in a.test)) == (150, 50, 200)
    np.testing.assert_array_equal(a.train_labels, b.train_labels)
    images, labels = next(iter(a.train(1)))
    assert images.dtype == "float32" and images.shape == (32, 28, 28, 1)
    assert 0.0 <= float(np.min(images)) and float(np.max(images)) <= 1.0
    # Each epoch has its own order, fixed by (seed, epoch).
    epoch1 = np.concatenate([y for _, y in a.train(1)])
    assert not np.array_equal(epoch1, np.concatenate([y for _, y in a.train(2)]))
    np.testing.assert_array_equal(epoch1, np.concatenate([y for _, y in b.train(1)]))
    np.testing.assert_array_equal(np.sort(epoch1), np.sort(a.train_labels))


def test_train_chunks_stack_the_epochs_batches_from_any_step(mock_mnist):
    splits = data.make_splits("mnist", batch_size=32, eval_batch_size=50, val_fraction=0.25, seed=3)
    batches = list(splits.train(1))  # 150 examples: 4 batches of 32 and one of 22
    chunks = list(splits.train_chunks(1, first_step=1, steps_per_chunk=2))
    assert [tuple(images.shape) for images, _ in chunks] == [(2, 32, 28, 28, 1), (1, 32, 28, 28, 1), (1, 22, 28, 28, 1)]
    np.testing.assert_array_equal(
        np.concatenate([np.reshape(images, (-1, 28, 28, 1)) for images, _ in chunks]),
        np.concatenate([images for images, _ in batches[1:]]),
    )
    np.testing.assert_array_equal(
        np.concatenate([np.ravel(labels) for _, labels in chunks]), np.concatenate([y for _, y in batches[1:]])
    )


@pytest.mark.parametrize("eager", [False, True], ids=["tf_function", "run_eagerly"])
def test_one_epoch_on_mock_data_writes_the_run_files(mock_mnist, tmp_path, eager):
    config = make_config(*SMOKE, f"train.run_eagerly={eager}", "train.batch_size=50")
    metrics = train_and_evaluate(config, tmp_path)
    assert metrics["epochs"] == 1 and metrics["params"] == 101_770
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert (tmp_path / "history.csv").read_text().splitlines()[0] == "epoch,loss,accuracy,val_loss,val_accuracy"
    assert (tmp_path / "model.keras").is_file()
    assert (tmp_path / "checkpoints" / "checkpoint").is_file()


def test_early_stopping_restores_the_best_epoch(mock_mnist, tmp_path):
    # Random labels: validation accuracy cannot keep improving, so patience 1 ends the run early.
    config = make_config(*SMOKE, "train.epochs=30", "train.early_stopping.patience=1", "optimizer.lr=0.05")
    metrics = train_and_evaluate(config, tmp_path)
    assert metrics["epochs"] < 30
    history = (tmp_path / "history.csv").read_text().splitlines()[1:]
    assert len(history) == metrics["epochs"]
    assert metrics["best_val_accuracy"] == max(float(row.split(",")[4]) for row in history)


def test_same_seed_twice_gives_identical_history(mock_mnist, tmp_path):
    config = make_config(*SMOKE, "train.epochs=2", "deterministic=true", "seed=5")
    train_and_evaluate(config, tmp_path / "a")
    train_and_evaluate(config, tmp_path / "b")
    assert (tmp_path / "a" / "history.csv").read_text() == (tmp_path / "b" / "history.csv").read_text()
    other = make_config(*SMOKE, "train.epochs=2", "deterministic=true", "seed=6")
    train_and_evaluate(other, tmp_path / "c")
    assert (tmp_path / "a" / "history.csv").read_text() != (tmp_path / "c" / "history.csv").read_text()


def test_steps_per_execution_does_not_change_training(mock_mnist, tmp_path):
    histories = []
    for steps in (1, 3):
        config = make_config(*SMOKE, "deterministic=true", f"train.steps_per_execution={steps}", "train.batch_size=16")
        train_and_evaluate(config, tmp_path / str(steps))
        histories.append((tmp_path / str(steps) / "history.csv").read_text())
    assert histories[0] == histories[1]


def test_mixed_bfloat16_training_saves_a_float32_model(mock_mnist, tmp_path):
    config = make_config("model=alexnet", "debug=smoke", "progress=false", "precision=mixed_bfloat16")
    metrics = train_and_evaluate(config, tmp_path)
    assert metrics["params"] == 7_703_242
    # The policy is process-wide: the run leaves the caller's in place.
    assert keras.mixed_precision.global_policy().name == "float32"
    model = keras.models.load_model(tmp_path / "model.keras")
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    assert {weight.dtype for weight in model.weights} == {"float32"}


@pytest.mark.parametrize("native_bfloat16, expected", [(True, "mixed_bfloat16"), (False, "float32")])
def test_auto_precision_follows_the_cpu(monkeypatch, native_bfloat16, expected):
    monkeypatch.setattr(runtime, "_cpu_has_native_bfloat16", lambda: native_bfloat16)
    monkeypatch.setattr(runtime.tf.config, "list_physical_devices", lambda kind=None: [])
    assert runtime.resolve_precision("auto") == expected
    assert runtime.resolve_precision("float32") == "float32"
    assert make_config(*SMOKE).precision.value == "auto"


def test_one_training_dataset_serves_every_epoch_of_a_run(mock_mnist, tmp_path, monkeypatch):
    # An iterator made per epoch costs time at every epoch boundary, and building a pipeline per
    # evaluation does too: a run builds one training, one validation and one test pipeline.
    made, built = [], []
    train_chunks, distributed = data.Splits.train_chunks, train.distributed
    monkeypatch.setattr(data.Splits, "train_chunks", lambda *args, **kwargs: made.append(args[1:]) or train_chunks(*args, **kwargs))
    monkeypatch.setattr(train, "distributed", lambda *args: built.append(args) or distributed(*args))
    train_and_evaluate(make_config(*SMOKE, "train.epochs=3", "train.steps_per_execution=2"), tmp_path)
    assert made == [(1, 0, 2)]
    assert len(built) == 3


def test_asynchronous_checkpoints_read_back_and_read_older_ones(tmp_path):
    def state(directory, asynchronous=True):
        trainer = Trainer(build_model("mlp"), build_optimizer("adam", 1e-3))
        return run_state.RunState(directory, trainer, 2, asynchronous=asynchronous)

    def same_weights(a, b):
        return all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.model.variables, b.model.variables))

    written = state(tmp_path / "new")
    written.epoch.assign(4)
    written.save()
    written.sync()  # the file on disk is complete, as when the run's process ends
    fresh = state(tmp_path / "new")
    fresh.restore()
    assert int(fresh.epoch) == 4 and same_weights(fresh, written)
    # Runs before asynchronous saving checkpointed the Keras variables themselves: the same keys.
    older = state(tmp_path / "old", asynchronous=False)
    tf.train.Checkpoint(model=older.model.variables).write(str(tmp_path / "old" / "best"))
    fresh = state(tmp_path / "old")
    fresh.best.checkpoint.read(str(tmp_path / "old" / "best")).assert_existing_objects_matched()
    assert same_weights(fresh, older) and not same_weights(fresh, written)


def test_the_runs_stream_holds_each_epochs_batches_in_turn(mock_mnist):
    splits = data.make_splits("mnist", batch_size=32, eval_batch_size=50, val_fraction=0.25, seed=3)
    stream = [labels.numpy() for _, labels in splits.train_chunks(2, first_step=3, steps_per_chunk=2, epochs=3)]
    per_epoch = [labels.numpy() for epoch, first in ((2, 3), (3, 0), (4, 0)) for _, labels in splits.train_chunks(epoch, first, 2)]
    # 150 examples in batches of 32: steps 3 and 4 (a batch of 22) of epoch 2, then whole epochs.
    assert [len(x) for x in stream] == [1, 1, 2, 2, 1, 2, 2, 1]
    assert len(stream) == len(per_epoch) and all(np.array_equal(a, b) for a, b in zip(stream, per_epoch))


def test_no_dataset_starts_tf_data_autotuning(mock_mnist):
    # Dropping an autotuned iterator waits for its autotuning thread (up to 60 s), and every epoch
    # and evaluation drops one: none of the run's datasets may autotune.
    splits = data.make_splits("mnist", batch_size=32, eval_batch_size=50, seed=3)
    for dataset in (splits.train_chunks(1, 0, 4), splits.train(1), splits.val, splits.test):
        assert dataset.options().autotune.enabled is False


def test_epochs_reuse_the_step_traced_before_the_first(mock_mnist):
    # Chunks of 3 and 1 batches of 32, and a last batch of 22: one trace serves them all.
    splits = data.make_splits("mnist", batch_size=32, eval_batch_size=50, val_fraction=0.25, seed=3)
    trainer = Trainer(build_model("mlp"), build_optimizer("adam", 1e-3))
    before = [v.numpy() for v in trainer.model.variables]
    trainer.warm_up(32)
    assert int(trainer.optimizer.iterations.numpy()) == 0  # the warm-up leaves no trace
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, trainer.model.variables))
    chunks = iter(splits.train_chunks(1, 0, 3, epochs=2))
    for _ in (1, 2):
        assert list(trainer.train_epoch(chunks, 0, 5)) == [3, 4, 5]
        trainer.evaluate(splits.val)
    assert trainer.train_chunk.experimental_get_tracing_count() == 1
    assert trainer.train_steps.experimental_get_tracing_count() == 1
    assert trainer.eval_step.experimental_get_tracing_count() == 1


def test_timing_and_time_to_accuracy_are_recorded(mock_mnist, tmp_path):
    metrics = train_and_evaluate(make_config(*SMOKE, "train.epochs=2"), tmp_path)
    rows = (tmp_path / "timing.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_seconds,eval_seconds,epoch_seconds" and len(rows) == 3
    for row in rows[1:]:
        _, train_seconds, eval_seconds, epoch_seconds = map(float, row.split(","))
        assert 0 < train_seconds + eval_seconds <= epoch_seconds
    # Random mock labels never reach 99 % validation accuracy.
    assert metrics["seconds_to_val_accuracy_0.99"] is None and metrics["seconds_to_val_accuracy_0.995"] is None


def test_time_to_accuracy_sums_the_epochs_until_the_first_that_reached_it():
    history = [{"val_accuracy": v} for v in (0.98, 0.992, 0.991, 0.996)]
    timing = [{"epoch_seconds": s} for s in (10.0, 20.0, 30.0, 40.0)]
    assert run_state.seconds_to_val_accuracy(history, timing, (0.99, 0.995, 0.999)) == {
        "seconds_to_val_accuracy_0.99": 30.0,
        "seconds_to_val_accuracy_0.995": 100.0,
        "seconds_to_val_accuracy_0.999": None,
    }



@pytest.mark.parametrize(
    "schedule, warmup, expected",
    [
        # step 0, end of warm-up (step 30 of 100), last step
        ("onecycle", 0, (1e-3 / 25, 1e-3, 0.0)),
        ("cosine", 30, (0.0, 1e-3, 0.0)),
    ],
)
def test_warm_up_then_decay(schedule, warmup, expected):
    optimizer = build_optimizer("adamw", 1e-3, schedule=schedule, total_steps=100, warmup_steps=warmup, weight_decay=0.05)
    schedule_fn = optimizer._learning_rate
    rates = [float(schedule_fn(step)) for step in (0, 30, 100)]
    np.testing.assert_allclose(rates, expected, atol=1e-8)
    assert optimizer.weight_decay == 0.05 and type(optimizer).__name__ == "AdamW"


def test_learning_rate_scales_with_batch_size():
    assert optimizers.scaled_lr(1e-3, None, 256) == 1e-3
    assert optimizers.scaled_lr(1e-3, 64, 256) == pytest.approx(4e-3)


def test_label_smoothing_changes_only_the_training_targets():
    logits = np.array([[4.0, 0.0] + [0.0] * 8], np.float32)
    plain = Trainer(build_model("mlp"), None, label_smoothing=0.0)
    smooth = Trainer(build_model("mlp"), None, label_smoothing=0.1)
    one_hot = np.eye(10, dtype=np.float32)[[0]]
    assert float(smooth.train_loss_fn(one_hot, logits)[0]) > float(plain.train_loss_fn(one_hot, logits)[0])
    labels = np.array([0])
    assert float(smooth.loss_fn(labels, logits)[0]) == float(plain.loss_fn(labels, logits)[0])
