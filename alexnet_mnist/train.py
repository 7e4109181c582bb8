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

from alexnet_mnist import data
from alexnet_mnist.config import Config
from alexnet_mnist.errors import UserError
from alexnet_mnist.models import build_model

log = logging.getLogger(__name__)

OPTIMIZERS = {
    "adam": lambda lr, momentum: keras.optimizers.Adam(learning_rate=lr),
    "sgd": lambda lr, momentum: keras.optimizers.SGD(learning_rate=lr, momentum=momentum),
    "rmsprop": lambda lr, momentum: keras.optimizers.RMSprop(learning_rate=lr, momentum=momentum),
}
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def build_optimizer(name, lr, momentum=0.0, schedule="constant", decay_steps=None, loss_scaling=False):
    """A Keras optimizer by name: "adam", "sgd" or "rmsprop".

    `schedule="cosine"` decays the learning rate from `lr` to 0 over `decay_steps`; `loss_scaling`
    wraps it for float16 training.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is unknown; choose one of {sorted(OPTIMIZERS)}")
    if schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=decay_steps)
    elif schedule != "constant":
        raise ValueError(f"schedule {schedule!r} is unknown; choose constant or cosine")
    optimizer = OPTIMIZERS[name](lr, momentum)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer


class Trainer:
    """Train and evaluation steps for one model and optimizer, with metrics created once.

    The steps are `tf.function`s (optionally XLA-compiled) unless `run_eagerly`; they only update
    variables and metrics, so reading a metric is the single point where Python waits for them.
    """

    def __init__(self, model, optimizer, *, steps_per_execution=1, run_eagerly=False, jit_compile=False):
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
        self.train_loss = keras.metrics.Mean("loss")
        self.train_accuracy = keras.metrics.SparseCategoricalAccuracy("accuracy")
        self.eval_loss = keras.metrics.Mean("val_loss")
        self.eval_accuracy = keras.metrics.SparseCategoricalAccuracy("val_accuracy")
        self.steps_per_execution = steps_per_execution
        self.train_step = self._train_step
        self.train_steps = self._train_steps
        self.eval_step = self._eval_step
        if not run_eagerly:
            self.train_step = tf.function(self._train_step, jit_compile=jit_compile)
            # The loop pulls from a dataset iterator, which XLA cannot compile: only its step is.
            self.train_steps = tf.function(self._train_steps)
            self.eval_step = tf.function(self._eval_step, jit_compile=jit_compile)

    def _train_step(self, images, labels):
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            # Averaged over the global batch, so the step stays right under a tf.distribute strategy.
            loss = tf.nn.compute_average_loss(self.loss_fn(labels, logits))
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
            # Identity unless the optimizer is a LossScaleOptimizer, which unscales in apply.
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        self.train_loss.update_state(loss, sample_weight=tf.shape(labels)[0])
        self.train_accuracy.update_state(labels, logits)

    def _train_steps(self, iterator, steps):
        for _ in tf.range(steps):
            self.train_step(*next(iterator))

    def _eval_step(self, images, labels):
        logits = self.model(images, training=False)
        self.eval_loss.update_state(self.loss_fn(labels, logits))
        self.eval_accuracy.update_state(labels, logits)

    def train_epoch(self, dataset, steps, bar, log_every_steps):
        """One pass of `steps` steps over `dataset`, run `steps_per_execution` at a time; the bar and
        its loss/accuracy advance about every `log_every_steps` steps. Returns (loss, accuracy)."""
        self.train_loss.reset_state()
        self.train_accuracy.reset_state()
        iterator = iter(dataset)
        done = shown = 0
        while done < steps:
            chunk = min(self.steps_per_execution, steps - done)
            self.train_steps(iterator, tf.constant(chunk))
            done += chunk
            if done - shown >= log_every_steps or done == steps:
                bar.update(done - shown)
                bar.set_postfix(loss=f"{self.train_loss.result():.4f}", acc=f"{self.train_accuracy.result():.4f}")
                shown = done
        return float(self.train_loss.result()), float(self.train_accuracy.result())

    def evaluate(self, dataset):
        """Mean loss and accuracy over `dataset`."""
        self.eval_loss.reset_state()
        self.eval_accuracy.reset_state()
        for images, labels in dataset:
            self.eval_step(images, labels)
        return float(self.eval_loss.result()), float(self.eval_accuracy.result())


def reset_process_state(seed, deterministic, precision="float32"):
    """Set what a run needs, undoing what an earlier run in this process set (Hydra multirun jobs
    share the process)."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision)
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
    set_thread_counts(config.runtime.intra_op_threads, config.runtime.inter_op_threads)
    reset_process_state(config.seed, config.deterministic, config.precision.value)

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
        optimizer = build_optimizer(
            config.optimizer.name,
            config.optimizer.lr,
            config.optimizer.momentum,
            schedule=config.optimizer.schedule.value,
            decay_steps=train_cfg.epochs * splits.steps_per_epoch,
            loss_scaling=config.precision.value == "mixed_float16",
        )
    model.summary(print_fn=lambda text, **_: log.info("\n%s", text))
    trainer = Trainer(
        model,
        optimizer,
        steps_per_execution=train_cfg.steps_per_execution,
        run_eagerly=train_cfg.run_eagerly,
        jit_compile=train_cfg.jit_compile,
    )

    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, workdir / "checkpoints", max_to_keep=train_cfg.checkpoints_to_keep)

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
        ) as bar:
            start = time.perf_counter()
            loss, accuracy = trainer.train_epoch(
                splits.train(epoch), splits.steps_per_epoch, bar, train_cfg.log_every_steps
            )
            seconds = time.perf_counter() - start
        val_loss, val_accuracy = trainer.evaluate(splits.val)
        train_seconds += seconds
        train_images += splits.num_train
        history.append(dict(zip(HISTORY_FIELDS, (epoch, loss, accuracy, val_loss, val_accuracy))))
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
    float32_copy(model).save(workdir / "model.keras")
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
    return metrics


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


def float32_copy(model):
    """`model` computing in float32, for saving and export after mixed-precision training."""
    if model.dtype_policy.name == "float32":
        return model
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = type(model).from_config({**model.get_config(), "dtype": "float32"})
    finally:
        keras.mixed_precision.set_global_policy(policy)
    copy.set_weights(model.get_weights())
    return copy


def _write_history(path, history):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(history)
