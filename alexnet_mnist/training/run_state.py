"""A run's state for resuming after a crash, its checkpoints, and its per-epoch files."""

import logging
import tempfile
from pathlib import Path

import tensorflow as tf

from alexnet_mnist.atomic_files import read_csv, write_csv
from alexnet_mnist.errors import UserError

log = logging.getLogger(__name__)

HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
# Wall times are kept apart from history.csv, which deterministic runs reproduce byte for byte.
TIMING_FIELDS = ("epoch", "train_seconds", "eval_seconds", "epoch_seconds")


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
        # Asynchronous saves store a stale save counter (0): numbered from it, the next checkpoint
        # would be ckpt-1 again, over an older one. Number it after the one read instead.
        self.latest.checkpoint.save_counter.assign(int(Path(path).name.rsplit("-", 1)[1]))
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

