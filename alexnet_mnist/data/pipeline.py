"""The tf.data input pipeline over a TFDS image-classification dataset held in memory."""

import functools
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from alexnet_mnist.errors import UserError
from alexnet_mnist.models.base import INPUT_SHAPE, NUM_CLASSES


@dataclass(frozen=True)
class Shard:
    """The replicas an input pipeline feeds: `count` of them from number `first`, of `replicas` in
    all. Each replica gets its own part of every global batch, so no pipeline reads the others'."""

    replicas: int = 1
    first: int = 0
    count: int = 1

    @classmethod
    def of(cls, input_context: tf.distribute.InputContext) -> "Shard":
        """The shard of the pipeline that tf.distribute describes by `input_context`."""
        count = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        return cls(input_context.num_replicas_in_sync, input_context.input_pipeline_id * count, count)

    def per_replica(self, make_dataset: Callable[[int], tf.data.Dataset]) -> tf.data.Dataset:
        """The datasets `make_dataset(replica)` of this pipeline's replicas, one element of each in
        turn: tf.distribute hands a pipeline's successive elements to its successive replicas."""
        datasets = [make_dataset(replica) for replica in range(self.first, self.first + self.count)]
        if len(datasets) == 1:
            return datasets[0]
        return tf.data.Dataset.choose_from_datasets(datasets, tf.data.Dataset.range(len(datasets)).repeat())

    def part(self, indices: tf.Tensor, replica: int) -> tf.Tensor:
        """`replica`'s part of a batch's `indices` (parts differ in size by one at most)."""
        if self.replicas == 1:
            return indices
        size = tf.size(indices, out_type=tf.int64)
        return indices[replica * size // self.replicas : (replica + 1) * size // self.replicas]


WHOLE = Shard()  # one pipeline feeding one replica: no tf.distribute strategy


@dataclass
class Splits:
    """Training examples (batched anew each epoch) and the fixed validation and test batches."""

    train_images: tf.Tensor
    train_labels: tf.Tensor
    val_batches: Callable[[Shard], tf.data.Dataset]
    test_batches: Callable[[Shard], tf.data.Dataset]
    class_names: list
    batch_size: int
    seed: int
    augment: Optional[Callable] = None  # (images, stateless seed) -> images, for training batches only

    @property
    def val(self) -> tf.data.Dataset:
        return self.val_batches(WHOLE)

    @property
    def test(self) -> tf.data.Dataset:
        return self.test_batches(WHOLE)

    @property
    def num_train(self) -> int:
        return int(self.train_labels.shape[0])

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_train // self.batch_size)

    def train(self, epoch: int) -> tf.data.Dataset:
        """The training batches of `epoch`: a shuffle that depends only on (seed, epoch)."""
        return _batched(self.train_images, self.train_labels, self.batch_size, order=self._order(epoch))

    def train_chunks(
        self, epoch: int, first_step: int, steps_per_chunk: int, epochs: int = 1, shard: Shard = WHOLE
    ) -> tf.data.Dataset:
        """The batches of `epochs` consecutive epochs of `train`, from batch `first_step` of `epoch` on,
        augmented, stacked `steps_per_chunk` at a time (`[k, batch, 28, 28, 1]` images, `[k, batch]`
        labels), so that one element feeds k train steps. A chunk never spans two epochs, and an
        epoch's smaller last batch comes alone. Under a tf.distribute strategy, `shard`'s replicas
        each get their part of every batch, in turn.

        One dataset, and so one iterator, serves a whole run: each epoch's order is computed inside
        the pipeline, so nothing waits at epoch boundaries. Each batch is augmented on its own with a
        seed made of (seed, epoch, step), and the replica when there are several, so a batch is the
        same whatever chunk it falls in, and when a run resumes in the middle of an epoch."""

        def replica_chunks(replica):
            chunks = self._epoch_chunks(tf.constant(epoch, tf.int64), first_step, steps_per_chunk, shard, replica)
            later = tf.data.Dataset.range(epoch + 1, epoch + epochs)
            return chunks.concatenate(later.flat_map(lambda e: self._epoch_chunks(e, 0, steps_per_chunk, shard, replica)))

        return shard.per_replica(replica_chunks).prefetch(PARALLEL_BATCHES).with_options(FIXED_PARALLELISM)

    def _epoch_chunks(self, epoch, first_step, steps_per_chunk, shard, replica):
        order = self._order(epoch)
        full = self.num_train // self.batch_size
        batches = tf.reshape(order[: full * self.batch_size], [full, self.batch_size])
        steps = tf.data.Dataset.range(first_step, full)
        chunks = tf.data.Dataset.zip(steps, tf.data.Dataset.from_tensor_slices(batches[first_step:]))
        chunks = self._load_train_batches(chunks, epoch, shard, replica).batch(steps_per_chunk)
        if self.num_train % self.batch_size:
            last = tf.data.Dataset.from_tensors((tf.constant(full, tf.int64), order[full * self.batch_size :]))
            chunks = chunks.concatenate(self._load_train_batches(last, epoch, shard, replica).batch(1))
        return chunks

    def _load_train_batches(self, steps_and_indices, epoch, shard, replica):
        images, labels = self.train_images, self.train_labels  # already tensors: captured, not copied
        epoch_seed = self._epoch_seed(epoch)

        def load(step, indices):
            indices = shard.part(indices, replica)
            batch = _scaled(tf.gather(images, indices))
            if self.augment:
                seed = tf.random.experimental.stateless_fold_in(epoch_seed, step)
                if shard.replicas > 1:  # each replica its own draws; a single process keeps its old ones
                    seed = tf.random.experimental.stateless_fold_in(seed, replica)
                batch = self.augment(batch, seed)
            return batch, tf.gather(labels, indices)

        return steps_and_indices.map(load, num_parallel_calls=PARALLEL_BATCHES, deterministic=True)

    def _order(self, epoch):
        """A permutation of the training examples drawn from (seed, epoch) alone, by graph ops."""
        order = tf.range(self.num_train, dtype=tf.int64)
        return tf.random.experimental.stateless_shuffle(order, self._epoch_seed(epoch), alg="philox")

    def _epoch_seed(self, epoch):
        """The stateless seed of `epoch`'s shuffle and augmentation."""
        return tf.stack([tf.constant(self.seed, tf.int64), tf.cast(epoch, tf.int64)])


def load(name, split, data_dir=None, download=False):
    """All of one TFDS split in memory.

    Args:
        name: a TFDS dataset of 28x28x1 images in 10 classes: "mnist" or "fashion_mnist".
        split: "train" or "test" (or any TFDS split of it).
        data_dir: the folder of prepared datasets; None: TFDS's default, which honours TFDS_DATA_DIR.
        download: whether TFDS may download the dataset.

    Returns:
        uint8 images `[N, 28, 28, 1]`, int64 labels `[N]` and the class names.

    Raises:
        UserError: the dataset is unknown, not prepared, of another shape, or corrupted (one line).
    """
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

    Args:
        name: the TFDS dataset, as for `load`.
        batch_size: the training batch.
        eval_batch_size: the validation and test batch.
        val_fraction: the share of the training split carved out for validation.
        seed: seeds the carve, and each epoch's shuffle with the epoch's number.
        data_dir: as for `load`.
        download: as for `load`.
        train_examples: keep only the first N training examples (None: all).
        eval_examples: keep only the first N validation and test examples (None: all).
        augment: `(images, stateless seed) -> images`, applied to the training batches of
            `train_chunks`; None: none.

    Returns:
        The splits, their batches scaled to float32 in [0, 1].
    """
    images, labels, class_names = load(name, "train", data_dir, download)
    order = np.random.default_rng(seed).permutation(len(labels))
    num_val = int(round(val_fraction * len(order)))
    val_idx, train_idx = order[:num_val], order[num_val:]
    train_idx, val_idx = train_idx[:train_examples], val_idx[:eval_examples]

    test_images, test_labels, _ = load(name, "test", data_dir, download)
    test_images, test_labels = test_images[:eval_examples], test_labels[:eval_examples]
    # Each split becomes a tensor once: evaluations build their pipelines over it without a copy.
    return Splits(
        train_images=tf.constant(images[train_idx]),
        train_labels=tf.constant(labels[train_idx]),
        val_batches=functools.partial(_batched, tf.constant(images[val_idx]), tf.constant(labels[val_idx]), eval_batch_size),
        test_batches=functools.partial(_batched, tf.constant(test_images), tf.constant(test_labels), eval_batch_size),
        class_names=list(class_names),
        batch_size=batch_size,
        seed=seed,
        augment=augment,
    )


def make_test_split(name, *, batch_size, data_dir=None, download=False, examples=None):
    """The first `examples` (default all) of the test split, batched in their fixed order.

    Returns:
        A `tf.data.Dataset` of (float32 images in [0, 1], labels) batches, and the class names.
    """
    images, labels, class_names = load(name, "test", data_dir, download)
    return _batched(images[:examples], labels[:examples], batch_size), list(class_names)


def _batched(images, labels, batch_size, shard=WHOLE, order=None):
    """Batches of (float32 images in [0, 1], labels) in the given index order (default: as they
    are; `shard`'s replicas' parts of each, in turn).

    Gathering whole batches by index from the in-memory arrays, and scaling after batching, keeps
    the per-element work of tf.data off the hot path.
    """
    images, labels = tf.convert_to_tensor(images), tf.convert_to_tensor(labels)
    if order is None:
        order = tf.range(tf.shape(labels, out_type=tf.int64)[0])
    indices = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    def replica_batches(replica):
        def gather(idx):
            idx = shard.part(idx, replica)
            return _scaled(tf.gather(images, idx)), tf.gather(labels, idx)

        return indices.map(gather, num_parallel_calls=PARALLEL_BATCHES, deterministic=True)

    return shard.per_replica(replica_batches).prefetch(PARALLEL_BATCHES).with_options(FIXED_PARALLELISM)


def _scaled(images):
    return tf.cast(images, tf.float32) / 255.0


# Dropping an autotuned iterator waits for tf.data's autotuning thread, whose sleep doubles up to 60 s,
# and every epoch and evaluation drops one: with autotuning off there is no such thread. Two batches
# gathered at once keep the pipeline hundreds of times faster than training (benchmarks/RESULTS.md).
PARALLEL_BATCHES = 2
FIXED_PARALLELISM = tf.data.Options()
FIXED_PARALLELISM.autotune.enabled = False
