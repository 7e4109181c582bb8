"""`train_and_evaluate`, the work behind one run: the data, the model, the epochs, the run's files."""

import dataclasses
import logging
import sys
import time
from pathlib import Path

import tensorflow as tf
from tqdm import tqdm

from alexnet_mnist import data
from alexnet_mnist.atomic_files import write_json
from alexnet_mnist.config import Config, Logger
from alexnet_mnist.data.augmentation import Augmentation
from alexnet_mnist.inference.classes import DATASETS
from alexnet_mnist.inference.saved_models import MODEL_FILE, save_model
from alexnet_mnist.models import build_model
from alexnet_mnist.models.base import preserved_dtype_policy
from alexnet_mnist.reporting import run_report
from alexnet_mnist.training import distribute, summaries
from alexnet_mnist.training.optimizers import build_optimizer, scaled_lr
from alexnet_mnist.training.run_state import (
    HISTORY_FIELDS,
    RunState,
    seconds_to_val_accuracy,
)
from alexnet_mnist.training.runtime import reset_process_state, set_thread_counts
from alexnet_mnist.training.trainer import NonFiniteLoss, Trainer

log = logging.getLogger(__name__)

# metrics.json reports the wall time until validation accuracy first reached each of these.
VAL_ACCURACY_MILESTONES = (0.99, 0.995)


def make_splits(config: Config) -> data.Splits:
    """The data splits a run with `config` trains and evaluates on."""
    augment = Augmentation(**dataclasses.asdict(config.augment))
    if augment.pen and DATASETS[config.data.name].preparation != "digit":
        # A product redrawn as its centre line is no product: the pen is for handwriting.
        log.info("augment.pen=%s redraws handwriting: off for data=%s", augment.pen, config.data.name)
        augment = dataclasses.replace(augment, pen=0.0)
    return data.make_splits(
        config.data.name,
        batch_size=config.train.batch_size,
        eval_batch_size=config.train.eval_batch_size,
        val_fraction=config.data.val_fraction,
        seed=config.seed,
        data_dir=config.data.data_dir,
        download=config.data.download,
        train_examples=config.data.train_examples,
        eval_examples=config.data.eval_examples,
        augment=augment if augment.enabled else None,
    )


def train_and_evaluate(config: Config, workdir, strategy=None) -> dict:
    """Train `config.model` on `config.data`, keep the best weights by validation accuracy,
    evaluate them on the test split and write the run's files into `workdir`.

    With `config.train.resume`, a run directory that holds checkpoints continues from the latest
    one: weights, optimizer, metrics and position within the epoch, early-stopping state, history.
    The caller's global dtype policy is back in place when this returns.

    Args:
        config: the run's settings, as the command line composes them from `conf/`.
        workdir: the run directory: `model.keras`, `metrics.json`, `history.csv`, `timing.csv`,
            `checkpoints/` and the pictures go there.
        strategy: a tf.distribute strategy, or None for one process. Made by
            `alexnet_mnist.training.distribute.create_strategy` before TensorFlow's first op; under
            it `train.batch_size` is the global batch and only the chief writes into `workdir`, the
            other workers writing their checkpoints into temporary directories.

    Returns:
        The metrics that `metrics.json` holds (`test_accuracy`, `test_loss`, `best_val_accuracy`,
            `epochs`, `train_seconds`, `train_images_per_second`, `params` and the seconds to 99.0
            and 99.5 % validation accuracy).
    """
    with preserved_dtype_policy(), distribute.worker_directory(strategy, workdir) as own_dir, distribute.peers_watched(strategy):
        return _train_and_evaluate(config, Path(workdir), own_dir, strategy)


def _train_and_evaluate(config: Config, run_dir: Path, workdir: Path, strategy) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    train_cfg = config.train
    set_thread_counts(config.runtime.intra_op_threads, config.runtime.inter_op_threads)
    precision = reset_process_state(config.seed, config.deterministic, config.precision.value)
    log.info("precision %s", precision)
    chief = distribute.is_chief(strategy)
    if strategy is not None:
        distribute.check_batch_size(train_cfg.batch_size, strategy)
        role = "the chief" if chief else "a worker (the chief writes the run directory)"
        log.info("%s over %d replicas; this process is %s", type(strategy).__name__, strategy.num_replicas_in_sync, role)

    splits = make_splits(config)
    with (strategy or tf.distribute.get_strategy()).scope():
        model = build_model(**dataclasses.asdict(config.model))
        optimizer = build_optimizer(
            config.optimizer.name,
            scaled_lr(config.optimizer.lr, config.optimizer.lr_batch_size, train_cfg.batch_size),
            config.optimizer.momentum,
            schedule=config.optimizer.schedule.value,
            total_steps=train_cfg.epochs * splits.steps_per_epoch,
            warmup_steps=int(config.optimizer.warmup_epochs * splits.steps_per_epoch),
            weight_decay=config.optimizer.weight_decay,
            loss_scaling=precision == "mixed_float16",
        )
        trainer = Trainer(
            model,
            optimizer,
            run_eagerly=train_cfg.run_eagerly,
            jit_compile=train_cfg.jit_compile,
            jit_optimizer=train_cfg.jit_optimizer,
            label_smoothing=train_cfg.label_smoothing,
            strategy=strategy,
        )
    model.summary(print_fn=lambda text, **_: log.info("\n%s", text))
    # Asynchronous writes only in a single process: a distributed save takes part in collectives,
    # which every worker must run in the same order.
    state = RunState(workdir, trainer, train_cfg.checkpoints_to_keep, shared_dir=run_dir, asynchronous=strategy is None)
    if train_cfg.resume:
        state.restore(fallback=train_cfg.resume_fallback)
    start = time.perf_counter()
    trainer.warm_up(train_cfg.batch_size, train_cfg.eval_batch_size)
    state.warm_up()
    log.info("warmed up the train and evaluation steps and the checkpoints in %.1f s", time.perf_counter() - start)

    writer = summaries.create_writer(workdir, chief and config.logger == Logger.tensorboard)
    try:
        _fit(config, splits, trainer, state, writer)
        state.restore_best()
        test_loss, test_accuracy = trainer.evaluate(distributed(trainer.strategy, splits.test_batches))
    except NonFiniteLoss:
        state.sync()
        if state.best.latest_checkpoint:
            state.restore_best()
            save_model(model, workdir / MODEL_FILE)
        raise

    log.info(
        "test accuracy %.4f (loss %.4f) with the best weights (val_accuracy %.4f)",
        test_accuracy, test_loss, float(state.best_val_accuracy),
    )
    save_model(model, workdir / MODEL_FILE)
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "best_val_accuracy": float(state.best_val_accuracy),
        "epochs": len(state.history),
        "train_seconds": float(state.train_seconds),
        "train_images_per_second": float(state.train_images) / float(state.train_seconds),
        "params": model.count_params(),
        **seconds_to_val_accuracy(state.history, state.timing, VAL_ACCURACY_MILESTONES),
        "target_val_accuracy": train_cfg.target_val_accuracy,
        "target_reached": train_cfg.target_val_accuracy is not None
        and max(row["val_accuracy"] for row in state.history) >= train_cfg.target_val_accuracy,
    }
    write_json(workdir / "metrics.json", metrics)
    if chief:
        _draw_pictures(config, workdir, model, splits, state.history, writer)
    writer.close()
    return metrics


def _draw_pictures(config, workdir, model, splits, history, writer):
    """The run's pictures as PNGs (report.plots) and as TensorBoard images (logger=tensorboard)."""
    if config.report.plots or config.logger == Logger.tensorboard:
        figures = run_report.make_figures(model, splits.test, history, splits.class_names)
        if config.report.plots:
            run_report.save_figures(figures, workdir)
        summaries.log_figures(writer, figures)


def distributed(strategy, make_dataset):
    """`make_dataset(shard)` as `strategy` consumes it: under a tf.distribute strategy each input
    pipeline makes only its own replicas' parts of every batch."""
    return strategy.distribute_datasets_from_function(lambda context: make_dataset(data.Shard.of(context)))


def _fit(config, splits, trainer, state, writer):
    """The epochs of a run from where `state` stands, with progress, checkpoints, early stopping."""
    train_cfg = config.train
    stop = False
    # One iterator for every epoch left: dropping an iterator, or starting one, costs time at each
    # epoch boundary, which the pipeline otherwise fills with the next epoch's first batches.
    first_epoch, first_step, epochs = int(state.epoch) + 1, int(state.step), train_cfg.epochs - int(state.epoch)
    chunks = iter(distributed(trainer.strategy, lambda shard: splits.train_chunks(
        first_epoch, first_step, train_cfg.steps_per_execution, epochs=epochs, shard=shard
    )))  # fmt: skip
    val_batches = distributed(trainer.strategy, splits.val_batches)  # built once: each epoch only iterates it
    next(iter(val_batches), None)  # a pipeline's first pass sets up its functions: not in the first epoch's clock
    while state.epoch < train_cfg.epochs and not stop:
        epoch = int(state.epoch) + 1
        start = time.perf_counter()
        with tqdm(
            total=splits.steps_per_epoch,
            initial=int(state.step),
            desc=f"epoch {epoch}/{train_cfg.epochs}",
            unit="step",
            file=sys.stdout,
            disable=None if config.progress else True,  # None: only on a terminal
            leave=False,
        ) as bar, writer.as_default():
            if state.step == 0:
                trainer.reset_train_metrics()
            shown = previous = int(state.step)
            # Reading the metrics waits for the steps and costs eager ops: only when someone reads
            # them. Across replicas a read is a collective: every worker reads, on a terminal or not.
            displayed = config.progress if trainer.strategy.num_replicas_in_sync > 1 else not bar.disable
            watched = displayed or config.logger == Logger.tensorboard
            for done in trainer.train_epoch(chunks, previous, splits.steps_per_epoch):
                state.step.assign(done)
                if watched and (done - shown >= train_cfg.log_every_steps or done == splits.steps_per_epoch):
                    results = trainer.train_results()
                    bar.update(done - shown)
                    bar.set_postfix(results)
                    summaries.log_step(trainer.optimizer.iterations, *results.values(), trainer.optimizer.learning_rate)
                    shown = done
                every = train_cfg.checkpoint_every_steps
                if every and done // every > previous // every and done < splits.steps_per_epoch:
                    state.save()  # the end of the epoch is saved with its results below
                previous = done
        seconds = time.perf_counter() - start
        loss, accuracy = trainer.train_results().values()
        val_loss, val_accuracy = trainer.evaluate(val_batches)
        eval_seconds = time.perf_counter() - start - seconds
        log.info(
            "epoch %d/%d: loss %.4f accuracy %.4f val_loss %.4f val_accuracy %.4f (%.1f s, %.0f images/s; evaluation %.1f s)",
            epoch, train_cfg.epochs, loss, accuracy, val_loss, val_accuracy, seconds, splits.num_train / seconds, eval_seconds,
        )
        row = dict(zip(HISTORY_FIELDS, (epoch, loss, accuracy, val_loss, val_accuracy)))
        summaries.log_epoch(writer, row, trainer.optimizer.learning_rate)
        stop = state.end_epoch(row, seconds, splits.num_train, train_cfg.early_stopping.patience)
        state.record_time(epoch, seconds, eval_seconds, time.perf_counter() - start)
        if stop:
            log.info("early stopping: no better val_accuracy for %d epochs", int(state.stale_epochs))
        elif train_cfg.target_val_accuracy is not None and val_accuracy >= train_cfg.target_val_accuracy:
            stop = True
            log.info("val_accuracy %.4f reached train.target_val_accuracy=%s: stopping", val_accuracy, train_cfg.target_val_accuracy)

