"""The custom GradientTape training loop and `train_and_evaluate`, the work behind one run."""

import csv
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config
from tqdm import tqdm

from alexnet_mnist import data, report, summaries
from alexnet_mnist.config import Config, Logger
from alexnet_mnist.models import build_model

log = logging.getLogger(__name__)

OPTIMIZERS = {
    "adam": lambda lr, momentum: keras.optimizers.Adam(learning_rate=lr),
    "sgd": lambda lr, momentum: keras.optimizers.SGD(learning_rate=lr, momentum=momentum),
    "rmsprop": lambda lr, momentum: keras.optimizers.RMSprop(learning_rate=lr, momentum=momentum),
}
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def build_optimizer(name, lr, momentum=0.0):
    """A Keras optimizer by name: "adam", "sgd" or "rmsprop"."""
    try:
        return OPTIMIZERS[name](lr, momentum)
    except KeyError:
        raise ValueError(f"optimizer {name!r} is unknown; choose one of {sorted(OPTIMIZERS)}") from None


class Trainer:
    """Train and evaluation steps for one model and optimizer, with metrics created once.

    The steps are `tf.function`s (optionally XLA-compiled) unless `run_eagerly`; they only update
    variables and metrics, so reading a metric is the single point where Python waits for them.
    """

    def __init__(self, model, optimizer, *, run_eagerly=False, jit_compile=False):
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
        self.train_loss = keras.metrics.Mean("loss")
        self.train_accuracy = keras.metrics.SparseCategoricalAccuracy("accuracy")
        self.eval_loss = keras.metrics.Mean("val_loss")
        self.eval_accuracy = keras.metrics.SparseCategoricalAccuracy("val_accuracy")
        self.train_step = self._train_step
        self.eval_step = self._eval_step
        if not run_eagerly:
            self.train_step = tf.function(self._train_step, jit_compile=jit_compile)
            self.eval_step = tf.function(self._eval_step, jit_compile=jit_compile)

    def _train_step(self, images, labels):
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            # Averaged over the global batch, so the step stays right under a tf.distribute strategy.
            loss = tf.nn.compute_average_loss(self.loss_fn(labels, logits))
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
        gradients = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        self.train_loss.update_state(loss, sample_weight=tf.shape(labels)[0])
        self.train_accuracy.update_state(labels, logits)

    def _eval_step(self, images, labels):
        logits = self.model(images, training=False)
        self.eval_loss.update_state(self.loss_fn(labels, logits))
        self.eval_accuracy.update_state(labels, logits)

    def train_epoch(self, dataset, bar, log_every_steps):
        """One pass over `dataset`; the bar advances every `log_every_steps` steps. Returns (loss, acc)."""
        self.train_loss.reset_state()
        self.train_accuracy.reset_state()
        pending = 0
        for images, labels in dataset:
            self.train_step(images, labels)
            pending += 1
            if pending == log_every_steps:
                bar.update(pending)
                loss, accuracy = self.train_loss.result(), self.train_accuracy.result()
                bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.4f}")
                summaries.log_step(self.optimizer.iterations, loss, accuracy, self.optimizer.learning_rate)
                pending = 0
        bar.update(pending)
        return float(self.train_loss.result()), float(self.train_accuracy.result())

    def evaluate(self, dataset):
        """Mean loss and accuracy over `dataset`."""
        self.eval_loss.reset_state()
        self.eval_accuracy.reset_state()
        for images, labels in dataset:
            self.eval_step(images, labels)
        return float(self.eval_loss.result()), float(self.eval_accuracy.result())


def reset_process_state(seed, deterministic):
    """Undo what an earlier run in this process set (Hydra multirun jobs share the process)."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        # TensorFlow exports only the switch on; its counterpart lives beside it.
        tf_config.disable_op_determinism()


def train_and_evaluate(config: Config, workdir) -> dict:
    """Train `config.model` on `config.data`, keep the best weights by validation accuracy,
    evaluate them on the test split and write the run's files into `workdir`. Returns the metrics."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train_cfg = config.train
    reset_process_state(config.seed, config.deterministic)

    splits = data.make_splits(
        config.data.name,
        batch_size=train_cfg.batch_size,
        eval_batch_size=train_cfg.eval_batch_size,
        val_fraction=config.data.val_fraction,
        seed=config.seed,
        data_dir=config.data.data_dir,
        download=config.data.download,
        train_examples=config.data.train_examples,
        eval_examples=config.data.eval_examples,
    )
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model = build_model(**dataclasses.asdict(config.model))
        optimizer = build_optimizer(config.optimizer.name, config.optimizer.lr, config.optimizer.momentum)
    model.summary(print_fn=lambda text, **_: log.info("\n%s", text))
    trainer = Trainer(model, optimizer, run_eagerly=train_cfg.run_eagerly, jit_compile=train_cfg.jit_compile)

    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, workdir / "checkpoints", max_to_keep=train_cfg.checkpoints_to_keep)
    writer = summaries.create_writer(workdir, config.logger == Logger.tensorboard)

    history, best_weights, best_val_accuracy, stale_epochs = [], None, -1.0, 0
    train_seconds, train_images = 0.0, 0
    for epoch in range(1, train_cfg.epochs + 1):
        with tqdm(
            total=splits.steps_per_epoch,
            desc=f"epoch {epoch}/{train_cfg.epochs}",
            unit="step",
            file=sys.stdout,
            disable=None if config.progress else True,  # None: only on a terminal
            leave=False,
        ) as bar, writer.as_default():
            start = time.perf_counter()
            loss, accuracy = trainer.train_epoch(splits.train(epoch), bar, train_cfg.log_every_steps)
            seconds = time.perf_counter() - start
        val_loss, val_accuracy = trainer.evaluate(splits.val)
        train_seconds += seconds
        train_images += splits.num_train
        history.append(dict(zip(HISTORY_FIELDS, (epoch, loss, accuracy, val_loss, val_accuracy))))
        summaries.log_epoch(writer, history[-1], optimizer.learning_rate)
        log.info(
            "epoch %d/%d: loss %.4f accuracy %.4f val_loss %.4f val_accuracy %.4f (%.1f s, %.0f images/s)",
            epoch, train_cfg.epochs, loss, accuracy, val_loss, val_accuracy, seconds, splits.num_train / seconds,
        )
        epoch_var.assign(epoch)
        manager.save(checkpoint_number=epoch)
        _write_history(workdir / "history.csv", history)
        if val_accuracy > best_val_accuracy:
            best_weights, best_val_accuracy, stale_epochs = model.get_weights(), val_accuracy, 0
        else:
            stale_epochs += 1
            if stale_epochs >= train_cfg.early_stopping.patience:
                log.info("early stopping: no better val_accuracy for %d epochs", stale_epochs)
                break

    model.set_weights(best_weights)
    test_loss, test_accuracy = trainer.evaluate(splits.test)
    log.info("test accuracy %.4f (loss %.4f) with the best weights (val_accuracy %.4f)", test_accuracy, test_loss, best_val_accuracy)
    model.save(workdir / "model.keras")
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "best_val_accuracy": best_val_accuracy,
        "epochs": len(history),
        "train_seconds": train_seconds,
        "train_images_per_second": train_images / train_seconds,
        "params": model.count_params(),
    }
    (workdir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _draw_pictures(config, workdir, model, splits, history, writer)
    return metrics


def _draw_pictures(config, workdir, model, splits, history, writer):
    """The run's pictures as PNGs (report.plots) and as TensorBoard images (logger=tensorboard)."""
    if config.report.plots or config.logger == Logger.tensorboard:
        figures = report.make_figures(model, splits.test, history, splits.class_names)
        if config.report.plots:
            report.save_figures(figures, workdir)
        summaries.log_figures(writer, figures)
    writer.close()


def _write_history(path, history):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(history)
