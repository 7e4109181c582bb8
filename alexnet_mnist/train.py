"""The custom GradientTape training loop and `train_and_evaluate`, the work behind one run."""

import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config
from tqdm import tqdm

from alexnet_mnist import data, distribute, report, summaries
from alexnet_mnist.artifacts import MODEL_FILE, save_model
from alexnet_mnist.augment import Augmentation
from alexnet_mnist.config import Config, Logger
from alexnet_mnist.errors import UserError
from alexnet_mnist.files import read_csv, write_csv, write_json
from alexnet_mnist.models import build_model
from alexnet_mnist.models.base import INPUT_SHAPE, preserved_dtype_policy

log = logging.getLogger(__name__)

OPTIMIZERS = {
    "adam": lambda lr, momentum, decay: keras.optimizers.Adam(learning_rate=lr, weight_decay=decay or None),
    "adamw": lambda lr, momentum, decay: keras.optimizers.AdamW(learning_rate=lr, weight_decay=decay),
    "sgd": lambda lr, momentum, decay: keras.optimizers.SGD(learning_rate=lr, momentum=momentum, weight_decay=decay or None),
    "rmsprop": lambda lr, momentum, decay: keras.optimizers.RMSprop(learning_rate=lr, momentum=momentum, weight_decay=decay or None),
}
# One-cycle (Smith & Topin 2019): warm up from lr / 25, anneal to lr / 25 / 1e4.
ONECYCLE_DIVISOR, ONECYCLE_FINAL_DIVISOR, ONECYCLE_WARMUP = 25.0, 1e4, 0.3
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
# Wall times are kept apart from history.csv, which deterministic runs reproduce byte for byte.
TIMING_FIELDS = ("epoch", "train_seconds", "eval_seconds", "epoch_seconds")
# metrics.json reports the wall time until validation accuracy first reached each of these.
VAL_ACCURACY_MILESTONES = (0.99, 0.995)


def build_optimizer(
    name, lr, momentum=0.0, schedule="constant", total_steps=None, warmup_steps=0, weight_decay=0.0, loss_scaling=False
):
    """A Keras optimizer by name: "adam", "adamw", "sgd" or "rmsprop", with decoupled `weight_decay`.

    Over a run of `total_steps`: `schedule="cosine"` warms the learning rate up linearly from 0 to
    `lr` over `warmup_steps`, then decays it to 0; `"onecycle"` warms up from lr / 25 over
    `warmup_steps` (30 % of the run if 0), then anneals to lr / 250,000. `loss_scaling` wraps the
    optimizer for float16 training.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is unknown; choose one of {sorted(OPTIMIZERS)}")
    schedules = keras.optimizers.schedules
    if schedule == "cosine":
        lr = schedules.CosineDecay(
            0.0 if warmup_steps else lr,
            decay_steps=total_steps - warmup_steps,
            warmup_target=lr if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    elif schedule == "onecycle":
        warmup_steps = warmup_steps or int(ONECYCLE_WARMUP * total_steps)
        lr = schedules.CosineDecay(
            lr / ONECYCLE_DIVISOR,
            decay_steps=total_steps - warmup_steps,
            alpha=1 / (ONECYCLE_DIVISOR * ONECYCLE_FINAL_DIVISOR),
            warmup_target=lr,
            warmup_steps=warmup_steps,
        )
    elif schedule != "constant":
        raise ValueError(f"schedule {schedule!r} is unknown; choose constant, cosine or onecycle")
    optimizer = OPTIMIZERS[name](lr, momentum, weight_decay)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer


def scaled_lr(lr, lr_batch_size, batch_size):
    """`lr`, meant for batches of `lr_batch_size` (None: any), scaled linearly to `batch_size`."""
    return lr if lr_batch_size is None else lr * batch_size / lr_batch_size


class Trainer:
    """Train and evaluation steps for one model and optimizer, with metrics created once.

    The steps are `tf.function`s (optionally XLA-compiled) unless `run_eagerly`; they only update
    variables and metrics, so reading a metric is the single point where Python waits for them.

    Under a tf.distribute `strategy` the Trainer is created in its scope (so the metrics sum over
    the replicas when read), the steps run through `strategy.run` on distributed datasets, and every
    worker must read the metrics at the same points: a read is a collective.
    """

    def __init__(self, model, optimizer, *, run_eagerly=False, jit_compile=False, label_smoothing=0.0, strategy=None):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
        # Training targets may be smoothed; evaluation always scores the true labels.
        self.train_loss_fn = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing, reduction="none"
        )
        self.train_loss = keras.metrics.Mean("loss")
        self.train_accuracy = keras.metrics.SparseCategoricalAccuracy("accuracy")
        self.eval_loss = keras.metrics.Mean("val_loss")
        self.eval_accuracy = keras.metrics.SparseCategoricalAccuracy("val_accuracy")
        self.train_step = self._train_step
        self.train_steps = self._train_steps
        self.train_chunk = self._train_chunk
        self.eval_step = self._eval_step
        if not run_eagerly:
            # One trace each, for chunks of any length and batches of any size (an epoch's last
            # ones are smaller), so that `warm_up` leaves nothing to trace for the epochs. Values
            # spread over replicas have no TensorSpec: there, shapes are relaxed on the second
            # trace, and a step synchronizing the replicas cannot be a tf.function of its own.
            batch = (tf.TensorSpec([None, *INPUT_SHAPE], tf.float32), tf.TensorSpec([None], tf.int64))
            chunk = (tf.TensorSpec([None, None, *INPUT_SHAPE], tf.float32), tf.TensorSpec([None, None], tf.int64))
            if strategy is None:
                self.train_step = tf.function(self._train_step, jit_compile=jit_compile, input_signature=batch)
            else:
                batch = chunk = None
            self.train_steps = tf.function(self._train_steps, input_signature=chunk, reduce_retracing=True)
            chunks = None if chunk is None else [tf.data.IteratorSpec(chunk)]
            self.train_chunk = tf.function(self._train_chunk, input_signature=chunks, reduce_retracing=True)
            self.eval_step = tf.function(
                self._eval_step, jit_compile=jit_compile and strategy is None, input_signature=batch, reduce_retracing=True
            )

    def warm_up(self, batch_size, eval_batch_size=None):
        """Trace the steps and run each once on blank batches (of `batch_size` to train, of
        `eval_batch_size`, default the same, to evaluate) and read the metrics, then put every
        variable back: the first epoch then pays neither for tracing and graph optimization nor for
        the kernels' first-call setup, and training goes on exactly as without the warm-up."""
        variables = [*self.model.variables, *self.optimizer.variables, *self.train_loss.variables, *self.train_accuracy.variables]
        values = [variable.numpy() for variable in variables]
        batch, eval_batch = (size // self.strategy.num_replicas_in_sync for size in (batch_size, eval_batch_size or batch_size))
        blank = lambda shape: (tf.zeros([*shape, *INPUT_SHAPE]), tf.zeros(shape, tf.int64))  # noqa: E731
        # Repeated: a pipeline feeding several replicas hands each its own element.
        chunks = self.strategy.distribute_datasets_from_function(lambda _: tf.data.Dataset.from_tensors(blank([1, batch])).repeat())
        self.train_chunk(iter(chunks))
        self.eval_step(*self.strategy.experimental_distribute_values_from_function(lambda _: blank([eval_batch])))
        self.train_results()
        for variable, value in zip(variables, values):
            variable.assign(value)

    def _train_step(self, images, labels):
        """One step on this replica's part of a global batch; returns the global batch's loss."""
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            targets = tf.one_hot(labels, tf.shape(logits)[-1])
            local_sum = tf.reduce_sum(self.train_loss_fn(targets, logits))
            # One collective tells every replica the global batch's size (the parts of an epoch's
            # last batch may differ by one) and loss; over that size, the replicas' gradients sum
            # to the global batch's.
            count = tf.cast(tf.shape(labels)[0], local_sum.dtype)
            size, total = tf.unstack(
                tf.distribute.get_replica_context().all_reduce(
                    tf.distribute.ReduceOp.SUM, tf.stop_gradient(tf.stack([count, local_sum]))
                )
            )
            loss = local_sum / size
            regularization = tf.add_n(self.model.losses) if self.model.losses else 0.0
            loss += tf.nn.scale_regularization_loss(regularization)
            # Identity unless the optimizer is a LossScaleOptimizer, which unscales in apply.
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        # The same on every replica, so they agree on stopping at a NaN; weighted by each part's
        # size, the replicas' metric sums read as the global mean.
        loss = total / size + regularization
        self.train_loss.update_state(loss, sample_weight=count)
        self.train_accuracy.update_state(labels, logits)
        return loss

    def _train_steps(self, images, labels):
        """A train step per batch of a chunk (`[k, batch, ...]` images and labels, on each replica);
        returns how many ran before a loss turned NaN or infinite."""
        ran, finite = tf.constant(0), tf.constant(True)
        step = lambda images, labels, i: self.train_step(images[i], labels[i])  # noqa: E731
        while finite and ran < tf.shape(self._local(labels))[0]:
            loss = self.strategy.run(step, args=(images, labels, ran))
            finite = tf.math.is_finite(self._local(loss))  # the global loss: the same on every replica
            ran += 1
        return ran if finite else ran - 1

    def _train_chunk(self, chunks):
        """Train on the next chunk of the iterator `chunks`; returns the chunk's number of batches
        and how many of them ran (fewer when a loss turned NaN or infinite). Taking the chunk inside
        the graph spares each call the Python side of the iterator (about 0.2-0.5 ms)."""
        images, labels = next(chunks)
        return tf.shape(self._local(labels))[0], self.train_steps(images, labels)

    def _eval_step(self, images, labels):
        self.strategy.run(self._replica_eval_step, args=(images, labels))

    def _local(self, value):
        """This process's first replica's part of `value` (the value itself outside a strategy)."""
        return self.strategy.experimental_local_results(value)[0]

    def _replica_eval_step(self, images, labels):
        logits = self.model(images, training=False)
        self.eval_loss.update_state(self.loss_fn(labels, logits))
        self.eval_accuracy.update_state(labels, logits)

    @property
    def train_metrics(self):
        return (self.train_loss, self.train_accuracy)

    def reset_train_metrics(self):
        for metric in self.train_metrics:
            metric.reset_state()

    def train_results(self):
        """The epoch's running mean loss and accuracy so far (waits for the steps in flight)."""
        return {metric.name: float(metric.result()) for metric in self.train_metrics}

    def train_epoch(self, chunks, first_step, steps_per_epoch):
        """Train on the chunks of stacked batches that `chunks` (an iterator over
        `Splits.train_chunks`) yields until the epoch's last step, one call each, yielding the number
        of steps done in the epoch after each. Raises `NonFiniteLoss`."""
        done = first_step
        while done < steps_per_epoch:
            steps, ran = (int(count) for count in self.train_chunk(chunks))
            if ran < steps:
                raise NonFiniteLoss(int(self.optimizer.iterations.numpy()))
            done += steps
            yield done

    def evaluate(self, dataset):
        """Mean loss and accuracy over `dataset`."""
        self.eval_loss.reset_state()
        self.eval_accuracy.reset_state()
        for images, labels in dataset:
            self.eval_step(images, labels)
        return float(self.eval_loss.result()), float(self.eval_accuracy.result())


def resolve_precision(precision):
    """The dtype policy `precision` names; `auto` is the faster one for training here: mixed
    bfloat16 on a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX) when no GPU is visible
    (1.3-1.6x the float32 rate at the same accuracy, README "Performance"), float32 otherwise."""
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


def make_splits(config: Config) -> data.Splits:
    """The data splits a run with `config` trains and evaluates on."""
    augment = Augmentation(**dataclasses.asdict(config.augment))
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
    evaluate them on the test split and write the run's files into `workdir`. Returns the metrics.

    With `config.train.resume`, a run directory that holds checkpoints continues from the latest
    one: weights, optimizer, metrics and position within the epoch, early-stopping state, history.
    The caller's global dtype policy is back in place when this returns.

    Under a tf.distribute `strategy` (made by `alexnet_mnist.distribute.create_strategy` before
    TensorFlow's first op), `train.batch_size` is the global batch and only the chief writes into
    `workdir`; the other workers write their checkpoints into temporary directories.
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
    }
    write_json(workdir / "metrics.json", metrics)
    if chief:
        _draw_pictures(config, workdir, model, splits, state.history, writer)
    writer.close()
    return metrics


def _draw_pictures(config, workdir, model, splits, history, writer):
    """The run's pictures as PNGs (report.plots) and as TensorBoard images (logger=tensorboard)."""
    if config.report.plots or config.logger == Logger.tensorboard:
        figures = report.make_figures(model, splits.test, history, splits.class_names)
        if config.report.plots:
            report.save_figures(figures, workdir)
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


class RunState:
    """Everything a run needs to continue after a crash, and its checkpoints in `workdir`.

    `checkpoints/` holds the latest states (model, optimizer, metrics, counters), written each epoch
    and every `train.checkpoint_every_steps`; `checkpoints/best/` the weights of the best epoch;
    `history.csv` the finished epochs, `timing.csv` their wall times (training, evaluation, and the
    whole epoch with its checkpoint).

    `asynchronous` checkpoints are written by a background thread from a copy of the variables taken
    at the save, so training goes on meanwhile; reading a checkpoint waits for the writes.
    """

    def __init__(self, workdir, trainer, checkpoints_to_keep, shared_dir=None, asynchronous=False):
        self.workdir = Path(workdir)
        # A resume reads the chief's files, which every worker of a multi-worker job can reach.
        self.shared_dir = Path(shared_dir or workdir)
        self.model = trainer.model
        counter = lambda name, dtype=tf.int64: tf.Variable(0, dtype=dtype, trainable=False, name=name)  # noqa: E731
        self.epoch = counter("epoch")  # finished epochs
        self.step = counter("step")  # steps done in the current epoch
        self.stale_epochs = counter("stale_epochs")
        self.train_images = counter("train_images")
        self.best_val_accuracy = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_val_accuracy")
        self.train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="train_seconds")
        self.history = []
        self.timing = []
        # Keras 3 keeps layers in lists that tf.train.Checkpoint does not see into, so the
        # checkpoints track the variables themselves (in their fixed creation order): the
        # TensorFlow variables behind Keras's, which asynchronous saving cannot copy. Both are
        # written under the same keys.
        with trainer.strategy.scope():
            trainer.optimizer.build(trainer.model.trainable_variables)
        weights = [variable.value for variable in trainer.model.variables]
        checkpoint = tf.train.Checkpoint(
            model=weights,
            optimizer=[variable.value for variable in trainer.optimizer.variables],
            metrics=[[variable.value for variable in metric.variables] for metric in trainer.train_metrics],
            epoch=self.epoch, step=self.step, stale_epochs=self.stale_epochs, train_images=self.train_images,
            best_val_accuracy=self.best_val_accuracy, train_seconds=self.train_seconds,
        )  # fmt: skip
        checkpoints = self.workdir / "checkpoints"
        self.latest = tf.train.CheckpointManager(checkpoint, checkpoints, max_to_keep=checkpoints_to_keep)
        self.best = tf.train.CheckpointManager(tf.train.Checkpoint(model=weights), checkpoints / "best", 1)
        self.options = tf.train.CheckpointOptions(experimental_enable_async_checkpoint=asynchronous)

    def warm_up(self):
        """Write both checkpoints twice into a scratch directory: TensorFlow builds its saver on an
        object's first write, and traces an asynchronous one's copy on the second, which would
        otherwise lengthen the first epochs. A manager's first save adds its checkpoint's save
        counter: made here, it is in the warm-up's writes too."""
        with tempfile.TemporaryDirectory() as scratch:
            for manager in (self.latest, self.best):
                manager.checkpoint.save_counter  # noqa: B018 (made on first access)
                for _ in range(2):
                    manager.checkpoint.write(f"{scratch}/checkpoint", options=self.options)
                    manager.checkpoint.sync()

    def save(self):
        self.latest.save(options=self.options)

    def sync(self):
        """Wait until every checkpoint is written."""
        self.latest.checkpoint.sync()
        self.best.checkpoint.sync()

    def end_epoch(self, row, seconds, images, patience):
        """Record a finished epoch and checkpoint it; returns whether early stopping ends the run."""
        self.history.append(row)
        self.epoch.assign_add(1)
        self.step.assign(0)
        self.train_seconds.assign_add(seconds)
        self.train_images.assign_add(images)
        if row["val_accuracy"] > self.best_val_accuracy:
            self.best_val_accuracy.assign(row["val_accuracy"])
            self.stale_epochs.assign(0)
            self.best.save(options=self.options)
        else:
            self.stale_epochs.assign_add(1)
        write_csv(self.workdir / "history.csv", self.history, HISTORY_FIELDS)
        self.save()
        return bool(self.stale_epochs >= patience)

    def record_time(self, epoch, train_seconds, eval_seconds, epoch_seconds):
        self.timing.append(dict(zip(TIMING_FIELDS, (epoch, train_seconds, eval_seconds, epoch_seconds))))
        write_csv(self.workdir / "timing.csv", self.timing, TIMING_FIELDS)

    def restore(self, fallback=False):
        """Continue from the latest checkpoint (or, with `fallback`, the newest one that reads)."""
        saved = tf.train.get_checkpoint_state(str(self.shared_dir / "checkpoints"))
        candidates = list(reversed(saved.all_model_checkpoint_paths)) if saved else []
        if not candidates:
            log.info("train.resume: no checkpoint in %s, starting afresh", self.shared_dir / "checkpoints")
            return
        for path in candidates:
            try:
                self.latest.checkpoint.restore(path).assert_existing_objects_matched()
                break
            except Exception as error:  # a damaged file fails in many ways (OpError, IndexError, ...)
                if not fallback:
                    raise UserError(
                        f"checkpoint {path} cannot be read ({type(error).__name__}); "
                        "set train.resume_fallback=true to resume from the one before it"
                    ) from error
                log.warning("checkpoint %s cannot be read (%s); trying the one before it", path, type(error).__name__)
        else:
            raise UserError(f"no checkpoint in {self.shared_dir / 'checkpoints'} can be read")
        self.history = _read_epochs(self.shared_dir / "history.csv", int(self.epoch))
        self.timing = _read_epochs(self.shared_dir / "timing.csv", int(self.epoch))
        log.info("resumed from %s: epoch %d, step %d", path, int(self.epoch) + 1, int(self.step))

    def restore_best(self):
        self.sync()
        best = tf.train.latest_checkpoint(str(self.shared_dir / "checkpoints" / "best"))
        self.best.checkpoint.restore(best).assert_existing_objects_matched()


def seconds_to_val_accuracy(history, timing, milestones):
    """{"seconds_to_val_accuracy_<m>": wall seconds of the epochs until val_accuracy first reached m,
    or None} for each milestone m; `history` and `timing` are the rows of history.csv and timing.csv."""
    results = {}
    for milestone in milestones:
        elapsed, results[f"seconds_to_val_accuracy_{milestone}"] = 0.0, None
        for row, times in zip(history, timing):
            elapsed += times["epoch_seconds"]
            if row["val_accuracy"] >= milestone:
                results[f"seconds_to_val_accuracy_{milestone}"] = elapsed
                break
    return results


def _read_epochs(path, count):
    """The first `count` rows of a per-epoch CSV file (none if it is missing), numbers as numbers."""
    if not path.is_file():
        return []
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in read_csv(path)][:count]


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


class NonFiniteLoss(UserError):
    def __init__(self, step):
        super().__init__(
            f"the training loss became NaN or infinite at step {step}; the checkpoints and model.keras "
            "of the last good epoch are kept; try a lower optimizer.lr"
        )
