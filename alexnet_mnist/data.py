"""The tf.data input pipeline over a TFDS image-classification dataset held in memory."""

import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from alexnet_mnist.errors import UserError
from alexnet_mnist.models.base import INPUT_SHAPE, NUM_CLASSES


@dataclass
class Splits:
    """Training examples (batched anew each epoch) and the fixed validation and test datasets."""

    train_images: tf.Tensor
    train_labels: tf.Tensor
    val: tf.data.Dataset
    test: tf.data.Dataset
    class_names: list
    batch_size: int
    seed: int
    augment: Optional[Callable] = None  # (images, stateless seed) -> images, for training batches only

    @property
    def num_train(self) -> int:
        return int(self.train_labels.shape[0])

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_train // self.batch_size)

    def train(self, epoch: int) -> tf.data.Dataset:
        """The training batches of `epoch`: a shuffle that depends only on (seed, epoch)."""
        return _batched(self.train_images, self.train_labels, self.batch_size, self._order(epoch))

    def train_chunks(self, epoch: int, first_step: int, steps_per_chunk: int, epochs: int = 1) -> tf.data.Dataset:
        """The batches of `epochs` consecutive epochs of `train`, from batch `first_step` of `epoch` on,
        augmented, stacked `steps_per_chunk` at a time (`[k, batch, 28, 28, 1]` images, `[k, batch]`
        labels), so that one element feeds k train steps. A chunk never spans two epochs, and an
        epoch's smaller last batch comes alone.

        One dataset, and so one iterator, serves a whole run: each epoch's order is computed inside
        the pipeline, so nothing waits at epoch boundaries. Each batch is augmented on its own with a
        seed made of (seed, epoch, step), so a batch is the same whatever chunk it falls in, and when
        a run resumes in the middle of an epoch."""
        chunks = self._epoch_chunks(tf.constant(epoch, tf.int64), first_step, steps_per_chunk)
        later = tf.data.Dataset.range(epoch + 1, epoch + epochs)
        chunks = chunks.concatenate(later.flat_map(lambda e: self._epoch_chunks(e, 0, steps_per_chunk)))
        return chunks.prefetch(PARALLEL_BATCHES).with_options(FIXED_PARALLELISM)

    def _epoch_chunks(self, epoch, first_step, steps_per_chunk):
        order = self._order(epoch)
        full = self.num_train // self.batch_size
        batches = tf.reshape(order[: full * self.batch_size], [full, self.batch_size])
        steps = tf.data.Dataset.range(first_step, full)
        chunks = tf.data.Dataset.zip(steps, tf.data.Dataset.from_tensor_slices(batches[first_step:]))
        chunks = self._load_train_batches(chunks, epoch).batch(steps_per_chunk)
        if self.num_train % self.batch_size:
            last = tf.data.Dataset.from_tensors((tf.constant(full, tf.int64), order[full * self.batch_size :]))
            chunks = chunks.concatenate(self._load_train_batches(last, epoch).batch(1))
        return chunks

    def _load_train_batches(self, steps_and_indices, epoch):
        images, labels = self.train_images, self.train_labels  # already tensors: captured, not copied
        epoch_seed = tf.stack([tf.constant(self.seed, tf.int64), epoch])

        def load(step, indices):
            batch = _scaled(tf.gather(images, indices))
            if self.augment:
                batch = self.augment(batch, tf.random.experimental.stateless_fold_in(epoch_seed, step))
            return batch, tf.gather(labels, indices)

        return steps_and_indices.map(load, num_parallel_calls=PARALLEL_BATCHES, deterministic=True)

    def _order(self, epoch):
        """A permutation of the training examples drawn from (seed, epoch) alone, by graph ops."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(epoch, tf.int64)])
        return tf.random.experimental.stateless_shuffle(tf.range(self.num_train, dtype=tf.int64), seed, alg="philox")


def load(name, split, data_dir=None, download=False):
    """All of one TFDS split in memory: (uint8 images [N, 28, 28, 1], int64 labels [N]), class names."""
    try:
        dataset, info = tfds.load(
            name, split=split, data_dir=data_dir, download=download, as_supervised=True, with_info=True
        )
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(f"data.name={name!r} is not a TFDS dataset; use mnist or fashion_mnist") from None
    except AssertionError as error:  # how TFDS says that the prepared files are missing
        searched = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
        raise UserError(
            f"dataset {name!r} is not prepared in {searched} (data.data_dir, else TFDS_DATA_DIR): point "
            f"TFDS_DATA_DIR at the folder that holds {name}/<version>/, or set data.download=true online"
        ) from error
    shape, classes = info.features["image"].shape, info.features["label"].num_classes
    if (shape, classes) != (INPUT_SHAPE, NUM_CLASSES):
        raise UserError(f"data.name={name!r} has {shape} images in {classes} classes; the models need {INPUT_SHAPE} in {NUM_CLASSES}")
    try:
        images, labels = zip(*dataset.batch(10_000).as_numpy_iterator())
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        raise UserError(
            f"dataset {name!r} ({split}) in {info.data_dir} is corrupted: {error.message.splitlines()[0]}; "
            "prepare it again or restore its files"
        ) from error
    return np.concatenate(images), np.concatenate(labels), info.features["label"].names


def make_splits(
    name,
    *,
    batch_size,
    eval_batch_size,
    val_fraction=0.1,
    seed=0,
    data_dir=None,
    download=False,
    train_examples=None,
    eval_examples=None,
    augment=None,
) -> Splits:
    """Train and validation from the training split (a seeded random carve), test from the test split.
    `augment` ((images, stateless seed) -> images) transforms the training batches of `train_chunks`."""
    images, labels, class_names = load(name, "train", data_dir, download)
    order = np.random.default_rng(seed).permutation(len(labels))
    num_val = int(round(val_fraction * len(order)))
    val_idx, train_idx = order[:num_val], order[num_val:]
    train_idx, val_idx = train_idx[:train_examples], val_idx[:eval_examples]

    test, _ = make_test_split(name, batch_size=eval_batch_size, data_dir=data_dir, download=download, examples=eval_examples)
    return Splits(
        train_images=tf.constant(images[train_idx]),
        train_labels=tf.constant(labels[train_idx]),
        val=_batched(images, labels, eval_batch_size, val_idx),
        test=test,
        class_names=list(class_names),
        batch_size=batch_size,
        seed=seed,
        augment=augment,
    )


def make_test_split(name, *, batch_size, data_dir=None, download=False, examples=None):
    """The first `examples` (default all) of the test split, batched in their fixed order, and the class names."""
    images, labels, class_names = load(name, "test", data_dir, download)
    return _batched(images, labels, batch_size, np.arange(len(labels))[:examples]), list(class_names)


def _batched(images, labels, batch_size, order):
    """Batches of (float32 images in [0, 1], labels) in the given index order."""
    return _gathered(images, labels, tf.data.Dataset.from_tensor_slices(order).batch(batch_size))


def _gathered(images, labels, indices):
    """(float32 images in [0, 1], labels) at each element of `indices`, a dataset of index arrays.

    Gathering whole batches by index from the in-memory arrays, and scaling after batching, keeps
    the per-element work of tf.data off the hot path.
    """
    images, labels = tf.constant(images), tf.constant(labels)

    def gather(idx):
        return _scaled(tf.gather(images, idx)), tf.gather(labels, idx)

    batches = indices.map(gather, num_parallel_calls=PARALLEL_BATCHES, deterministic=True).prefetch(PARALLEL_BATCHES)
    return batches.with_options(FIXED_PARALLELISM)


def _scaled(images):
    return tf.cast(images, tf.float32) / 255.0


# Dropping an autotuned iterator waits for tf.data's autotuning thread, whose sleep doubles up to 60 s,
# and every epoch and evaluation drops one: with autotuning off there is no such thread. Two batches
# gathered at once keep the pipeline hundreds of times faster than training (benchmarks/RESULTS.md).
PARALLEL_BATCHES = 2
FIXED_PARALLELISM = tf.data.Options()
FIXED_PARALLELISM.autotune.enabled = False
