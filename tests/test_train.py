import json
import logging
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import make_config

from alexnet_mnist import data
from alexnet_mnist.atomic_files import read_csv
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


def read_history(run_dir):
    return [{key: float(value) for key, value in row.items()} for row in read_csv(run_dir / "history.csv")]


def test_run_eagerly_runs_the_same_steps_eagerly_to_the_same_results(mock_mnist, tmp_path, monkeypatch):
    # Each train step records whether it runs eagerly: a tf.function runs its Python once, to trace.
    eager_steps = []
    train_step = Trainer._train_step

    def recording_step(self, images, labels):
        eager_steps.append(tf.executing_eagerly())
        return train_step(self, images, labels)

    monkeypatch.setattr(Trainer, "_train_step", recording_step)
    runs = {}
    for eager in (False, True):
        eager_steps.clear()
        config = make_config(*SMOKE, "deterministic=true", "precision=float32", f"train.run_eagerly={eager}", "train.batch_size=50")
        runs[eager] = train_and_evaluate(config, tmp_path / str(eager))
        assert eager_steps == ([True] * (1 + 4) if eager else [False])  # warm-up and 180 examples in batches of 50
    metrics = runs[False]
    assert metrics["epochs"] == 1 and metrics["params"] == 101_770
    assert json.loads((tmp_path / "False" / "metrics.json").read_text()) == metrics
    assert (tmp_path / "False" / "history.csv").read_text().splitlines()[0] == "epoch,loss,accuracy,val_loss,val_accuracy"
    assert (tmp_path / "False" / "model.keras").is_file() and (tmp_path / "False" / "checkpoints" / "checkpoint").is_file()
    # The same arithmetic: bit for bit here in float32, the tolerance allowing for other CPUs' kernels.
    # (In mixed bfloat16 a graph's fused kernels round less often: 2e-5 apart in val_loss here.)
    graph, eager = read_history(tmp_path / "False"), read_history(tmp_path / "True")
    assert graph[0].keys() == eager[0].keys() and all(eager[0][key] == pytest.approx(graph[0][key], rel=1e-6) for key in graph[0])
    assert runs[True]["test_accuracy"] == metrics["test_accuracy"]
    assert runs[True]["test_loss"] == pytest.approx(metrics["test_loss"], rel=1e-6)


def test_jit_compile_compiles_the_steps_and_changes_no_result_without_dropout(mock_mnist, tmp_path, monkeypatch):
    # XLA draws other random numbers than TensorFlow's kernels for the same stateless seed
    # (tensorflow/tensorflow#121243), so dropout masks differ: compared without dropout.
    trainers = []
    monkeypatch.setattr(train, "Trainer", lambda *args, **kwargs: trainers.append(Trainer(*args, **kwargs)) or trainers[-1])
    args = (*SMOKE, "report.plots=false", "deterministic=true", "precision=float32", "model.dropout=0", "train.epochs=2")
    plain = train_and_evaluate(make_config(*args), tmp_path / "plain")
    compiled = train_and_evaluate(make_config(*args, "train.jit_compile=true"), tmp_path / "xla")
    batch = (tf.zeros([50, 28, 28, 1]), tf.zeros([50], tf.int64))
    assert "HloModule" in trainers[1].train_step.experimental_get_compiler_ir(*batch)(stage="hlo")
    assert "HloModule" in trainers[1].eval_step.experimental_get_compiler_ir(*batch)(stage="hlo")
    with pytest.raises(ValueError, match="jit_compile"):
        trainers[0].train_step.experimental_get_compiler_ir(*batch)
    # XLA fuses ops and orders float32 sums its own way: 2e-7 apart after two epochs here, so 1e-5
    # leaves a wide margin while a changed step (a lost label smoothing, a skipped batch) moves
    # the loss by more than 1e-3. The accuracies count the same predictions.
    for a, b in zip(read_history(tmp_path / "plain"), read_history(tmp_path / "xla"), strict=True):
        assert a.keys() == b.keys() and all(b[key] == pytest.approx(a[key], rel=1e-5) for key in a)
    assert compiled["test_accuracy"] == plain["test_accuracy"]
    assert compiled["test_loss"] == pytest.approx(plain["test_loss"], rel=1e-5)


def test_early_stopping_keeps_the_best_epoch_and_stops_patience_epochs_after_it(mock_mnist, tmp_path):
    # Random labels: validation accuracy cannot keep improving, so patience 2 ends the run early.
    config = make_config(
        *SMOKE, "report.plots=false", "deterministic=true", "precision=float32", "train.epochs=30",
        "train.early_stopping.patience=2", "optimizer.lr=0.05",
    )  # fmt: skip
    metrics = train_and_evaluate(config, tmp_path)
    history = read_history(tmp_path)
    accuracies = [row["val_accuracy"] for row in history]
    best = accuracies.index(max(accuracies))  # the first to reach it: an equal later one is no improvement
    assert metrics["epochs"] == len(history) == best + 1 + 2 < 30
    assert metrics["best_val_accuracy"] == pytest.approx(accuracies[best])
    # model.keras holds the best epoch's weights: it scores that epoch's validation loss, which
    # the last epoch's weights do not; the test metrics are those weights' scores too.
    splits, trainer = train.make_splits(config), Trainer(keras.models.load_model(tmp_path / "model.keras"), None)
    val_loss, val_accuracy = trainer.evaluate(splits.val)
    assert val_accuracy == pytest.approx(accuracies[best]) and val_loss == pytest.approx(history[best]["val_loss"], rel=1e-6)
    assert history[-1]["val_loss"] != pytest.approx(history[best]["val_loss"], rel=1e-3)
    assert (metrics["test_loss"], metrics["test_accuracy"]) == pytest.approx(trainer.evaluate(splits.test), rel=1e-6)


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


def test_auto_precision_without_native_bfloat16_or_with_a_gpu_is_float32(monkeypatch):
    monkeypatch.setattr(runtime, "_cpu_has_native_bfloat16", lambda: False)
    assert runtime.resolve_precision("auto") == "float32"
    monkeypatch.setattr(runtime, "_cpu_has_native_bfloat16", lambda: True)
    monkeypatch.setattr(runtime.tf.config, "list_physical_devices", lambda kind=None: ["a GPU"])
    assert runtime.resolve_precision("auto") == "float32"
    assert runtime.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert make_config(*SMOKE).precision.value == "auto"


def test_auto_precision_reads_this_cpu_and_the_run_log_names_it(mock_mnist, tmp_path, caplog):
    flags = {flag for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags") for flag in line.split()}
    native = bool(flags & {"avx512_bf16", "amx_bf16"}) and not tf.config.list_physical_devices("GPU")
    expected = "mixed_bfloat16" if native else "float32"
    assert runtime.resolve_precision("auto") == expected
    caplog.set_level(logging.INFO, logger="alexnet_mnist")
    train_and_evaluate(make_config(*SMOKE, "report.plots=false", "data.train_examples=64"), tmp_path)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("precision ")] == [f"precision {expected}"]


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
        # steps 0, 15 (half the warm-up), 30 (its end), 65 (half the decay) and 100 (the last) of 100
        ("onecycle", 0, (1e-3 / 25, (1e-3 / 25 + 1e-3) / 2, 1e-3, (1e-3 + 1e-3 / 250_000) / 2, 1e-3 / 250_000)),
        ("cosine", 30, (0.0, 1e-3 / 2, 1e-3, 1e-3 / 2, 0.0)),
    ],
)
def test_warm_up_then_decay(schedule, warmup, expected):
    optimizer = build_optimizer("adamw", 1e-3, schedule=schedule, total_steps=100, warmup_steps=warmup, weight_decay=0.05)
    schedule_fn = optimizer._learning_rate
    rates = [float(schedule_fn(step)) for step in (0, 15, 30, 65, 100)]
    # Relative to each rate, so that the one-cycle's last, lr / 250,000 = 4e-9, is told from 0 and from lr / 25,000.
    np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-15)
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
