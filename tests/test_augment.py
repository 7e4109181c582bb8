"""Training-time augmentation: shapes, ranges and labels kept, a function of (seed, epoch, step)
alone, never applied to validation or test data, and resumable bit for bit."""

import logging

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import latest_checkpoint_number, make_config, resumes

from alexnet_mnist import data
from alexnet_mnist.data.augmentation import Augmentation, dilate, erode
from alexnet_mnist.training.run_state import RunState
from alexnet_mnist.training.train import train_and_evaluate

EVERYTHING = Augmentation(
    translate=2, rotate=12, scale=0.12, shear=10, elastic_alpha=2, elastic_sigma=5,
    stroke=0.6, thick=0.2, blur=0.6, lowres=0.5, contrast=0.5, brightness=0.05, erase=0.3, flip=0.5,
)  # fmt: skip


@pytest.fixture
def mock_mnist():
    with tfds.testing.mock_data(num_examples=200):
        yield


def splits(augment, batch_size=32):
    return data.make_splits("mnist", batch_size=batch_size, eval_batch_size=50, val_fraction=0.25, seed=3, augment=augment)


def epoch_batches(splits, epoch, first_step=0, steps_per_chunk=2):
    """(images, labels) of the epoch's batches from `first_step`, unstacked from their chunks."""
    chunks = list(splits.train_chunks(epoch, first_step, steps_per_chunk))
    images = np.concatenate([np.reshape(x, (-1, 28, 28, 1)) for x, _ in chunks])
    return images, np.concatenate([np.ravel(y) for _, y in chunks])


def test_augmentation_keeps_shapes_ranges_and_labels(mock_mnist):
    plain, augmented = epoch_batches(splits(None), 1), epoch_batches(splits(EVERYTHING), 1)
    assert augmented[0].shape == plain[0].shape == (150, 28, 28, 1) and augmented[0].dtype == np.float32
    assert 0.0 <= augmented[0].min() and augmented[0].max() <= 1.0
    np.testing.assert_array_equal(augmented[1], plain[1])
    assert np.abs(augmented[0] - plain[0]).mean() > 0.01  # it did transform them


def test_augmentation_is_a_function_of_seed_epoch_and_step(mock_mnist):
    a, b = splits(EVERYTHING), splits(EVERYTHING)
    np.testing.assert_array_equal(epoch_batches(a, 1)[0], epoch_batches(b, 1)[0])
    assert not np.array_equal(epoch_batches(a, 1)[0], epoch_batches(a, 2)[0])
    # The same batch whatever chunk it falls in, and from a resume point in the middle of the epoch.
    whole = epoch_batches(a, 1, steps_per_chunk=3)[0]
    np.testing.assert_array_equal(whole, epoch_batches(a, 1, steps_per_chunk=1)[0])
    np.testing.assert_array_equal(whole[64:], epoch_batches(a, 1, first_step=2)[0])


def test_augmentation_never_touches_validation_or_test(mock_mnist):
    plain, augmented = splits(None), splits(EVERYTHING)
    for name in ("val", "test"):
        for (x, y), (x_aug, y_aug) in zip(getattr(plain, name), getattr(augmented, name)):
            np.testing.assert_array_equal(x, x_aug)
            np.testing.assert_array_equal(y, y_aug)
    # Nor the plain batches of train(epoch), which calibrate int8 exports.
    np.testing.assert_array_equal(next(iter(plain.train(1)))[0], next(iter(augmented.train(1)))[0])


def test_each_transform_changes_images_and_off_means_identity():
    images = tf.random.stateless_uniform([8, 28, 28, 1], [1, 2]) * tf.cast(
        tf.random.stateless_uniform([8, 28, 28, 1], [3, 4]) > 0.8, tf.float32
    )
    seed = tf.constant([5, 6], tf.int64)
    np.testing.assert_array_equal(Augmentation()(images, seed), images)
    assert not Augmentation().enabled and EVERYTHING.enabled
    for name, magnitude in [("translate", 3), ("rotate", 20), ("scale", 0.2), ("shear", 15), ("elastic_alpha", 2),
                            ("stroke", 1), ("thick", 1), ("blur", 1), ("lowres", 1), ("contrast", 0.5), ("brightness", 0.2), ("erase", 1), ("flip", 1)]:  # fmt: skip
        out = Augmentation(**{name: magnitude})(images, seed)
        assert out.shape == images.shape and float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 1
        assert float(tf.reduce_mean(tf.abs(out - images))) > 1e-3, name


def test_stroke_width_moves_towards_dilation_or_erosion():
    digit = np.zeros([1, 28, 28, 1], np.float32)
    digit[0, 8:20, 12:15] = 1.0  # a 3-pixel-wide bar
    ink = lambda x: float(tf.reduce_sum(x))  # noqa: E731
    assert ink(erode(digit)) < ink(digit) < ink(dilate(digit))
    widths = {ink(Augmentation(stroke=1.0)(digit, tf.constant([0, s], tf.int64))) for s in range(6)}
    assert min(widths) < ink(digit) < max(widths)  # some draws thinner, some thicker
    # Above 1 the step is clipped: the whole erosion and the whole dilation become common draws.
    whole = [Augmentation(stroke=1.5)(digit, tf.constant([1, s], tf.int64)) for s in range(12)]
    assert any(np.array_equal(x, erode(digit)) for x in whole) and any(np.array_equal(x, dilate(digit)) for x in whole)
    # `thick`: that share two pixels thicker instead, the others as the stroke step leaves them.
    digits = np.repeat(digit, 200, axis=0)
    thick = Augmentation(stroke=1.5, thick=0.5)(digits, tf.constant([1, 0], tf.int64)).numpy()
    stepped = Augmentation(stroke=1.5)(digits, tf.constant([1, 0], tf.int64)).numpy()
    twice = [np.array_equal(x, dilate(dilate(digit))[0]) for x in thick]
    assert 70 < sum(twice) < 130
    assert all(np.array_equal(x, y) for x, y, t in zip(thick, stepped, twice) if not t)


def test_erase_puts_one_rectangle_of_noise_on_its_share_of_the_images():
    out = Augmentation(erase=0.5)(tf.zeros([200, 28, 28, 1]), tf.constant([1, 2], tf.int64)).numpy()[..., 0] > 0
    erased = out[out.any(axis=(1, 2))]
    assert 70 < len(erased) < 130
    for noise in erased:
        rows, columns = np.flatnonzero(noise.any(axis=1)), np.flatnonzero(noise.any(axis=0))
        box = noise[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        assert box.all() and box.sum() == noise.sum()  # one filled rectangle, nothing outside it
        assert 0.015 * 28**2 <= box.size <= 0.45 * 28**2


def test_flip_mirrors_its_share_of_the_images_left_right_and_nothing_else():
    images = tf.random.stateless_uniform([200, 28, 28, 1], [3, 4])
    out = Augmentation(flip=0.5)(images, tf.constant([1, 2], tf.int64)).numpy()
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images.numpy())]
    unchanged = [np.array_equal(o, i) for o, i in zip(out, images.numpy())]
    assert 70 < sum(mirrored) < 130 and sum(mirrored) + sum(unchanged) == 200
    # Its own key: the other transforms draw as they did without it.
    both = Augmentation(contrast=0.5, flip=1.0)(images, tf.constant([1, 2], tf.int64))
    alone = Augmentation(contrast=0.5)(images, tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(both, tf.reverse(alone, axis=[2]), atol=1e-6)


def test_probability_leaves_the_other_images_as_they_are():
    images = tf.random.stateless_uniform([64, 28, 28, 1], [1, 2])
    seed = tf.constant([7, 8], tf.int64)
    changed = [not np.array_equal(a, b) for a, b in zip(Augmentation(contrast=0.5, probability=0.5)(images, seed), images)]
    assert 16 < sum(changed) < 48
    assert not Augmentation(contrast=0.5, probability=0.0).enabled


class Killed(Exception):
    """Stands for the process dying at once."""


def test_resume_mid_epoch_with_augmentation_is_bit_identical(mock_mnist, tmp_path, monkeypatch, caplog):
    # 150 examples in batches of 16: 10 steps an epoch, a checkpoint every 4 steps and at each epoch's
    # end: ckpt-1 and -2 after steps 4 and 8 of epoch 1, ckpt-3 at its end, ckpt-4 after step 4 of epoch 2.
    args = (
        "model=mlp", "debug=smoke", "progress=false", "report.plots=false", "deterministic=true", "augment=elastic",
        "train.epochs=3", "train.batch_size=16", "train.checkpoint_every_steps=4", "train.checkpoints_to_keep=20",
    )  # fmt: skip
    whole, run = tmp_path / "whole", tmp_path / "resumed"
    train_and_evaluate(make_config(*args), whole)
    assert latest_checkpoint_number(whole / "checkpoints") == 9
    # The same run dies as soon as ckpt-4 is on disk.
    save = RunState.save

    def save_then_die(state):
        save(state)
        if int(state.latest.checkpoint.save_counter) == 4:
            state.sync()
            raise Killed

    monkeypatch.setattr(RunState, "save", save_then_die)
    with pytest.raises(Killed):
        train_and_evaluate(make_config(*args), run)
    monkeypatch.undo()
    assert len((run / "history.csv").read_text().splitlines()) == 2  # the header and epoch 1
    caplog.set_level(logging.INFO, logger="alexnet_mnist")
    train_and_evaluate(make_config(*args, "train.resume=true"), run)
    assert resumes(caplog.text) == [(str(run / "checkpoints" / "ckpt-4"), 2, 4)]
    assert (run / "history.csv").read_text() == (whole / "history.csv").read_text()
    assert latest_checkpoint_number(run / "checkpoints") == 9  # numbered on from ckpt-4, as in the whole run
