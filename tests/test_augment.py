"""Training-time augmentation: shapes, ranges and labels kept, a function of (seed, epoch, step)
alone, never applied to validation or test data, and resumable bit for bit."""

import logging

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from scipy import ndimage
from conftest import latest_checkpoint_number, make_config, resumes

from alexnet_mnist import data
from alexnet_mnist.data.augmentation import Augmentation, centre_line, dilate, erode, gaussian_blur
from alexnet_mnist.training.run_state import RunState
from alexnet_mnist.training.train import make_splits, train_and_evaluate

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


def test_each_transform_keeps_the_range_and_off_means_identity():
    images = tf.random.stateless_uniform([8, 28, 28, 1], [1, 2]) * tf.cast(
        tf.random.stateless_uniform([8, 28, 28, 1], [3, 4]) > 0.8, tf.float32
    )
    seed = tf.constant([5, 6], tf.int64)
    np.testing.assert_array_equal(Augmentation()(images, seed), images)
    assert not Augmentation().enabled and EVERYTHING.enabled
    for name, magnitude in [("translate", 3), ("rotate", 20), ("scale", 0.2), ("shear", 15), ("elastic_alpha", 2),
                            ("stroke", 1), ("thick", 1), ("pen", 1), ("blur", 1), ("lowres", 1), ("contrast", 0.5), ("brightness", 0.2), ("erase", 1), ("flip", 1)]:  # fmt: skip
        out = Augmentation(**{name: magnitude})(images, seed)
        assert out.shape == images.shape and float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 1, name


SEED = tf.constant([5, 6], tf.int64)
ROWS, COLUMNS = np.indices((28, 28))


def batch(image, count=32):
    return np.repeat(np.asarray(image, np.float32)[None, :, :, None], count, axis=0)


def sampled_points(augmentation):
    """Where each output pixel of 32 images transformed by `augmentation` samples its input: the
    (x, y) = (column, row) points, and where that point lies inside the image. Read from ramps, as
    bilinear sampling returns a linear ramp's value at the point sampled; the same seed draws the
    same transforms for each ramp."""
    x, y = ((ramp + 1) / 32 for ramp in (COLUMNS, ROWS))
    out_x, out_y, flat = (augmentation(batch(image), SEED).numpy()[..., 0] for image in (x, y, np.full((28, 28), 0.5)))
    return out_x * 32 - 1, out_y * 32 - 1, np.abs(flat - 0.5) < 1e-5  # flat: no zeros from outside mixed in


def affine_maps(augmentation):
    """Each image's sampling map fitted as A @ (x, y) + b: [(A, b)], after checking that it is affine."""
    maps = []
    for x, y, inside in zip(*sampled_points(augmentation)):
        design = np.stack([COLUMNS[inside], ROWS[inside], np.ones(inside.sum())], axis=1)
        target = np.stack([x[inside], y[inside]], axis=1)
        fitted, *_ = np.linalg.lstsq(design, target, rcond=None)
        assert np.abs(design @ fitted - target).max() < 1e-3
        maps.append((fitted[:2].T, fitted[2]))
    return maps


def about_the_centre(A, b):
    centre = np.array([13.5, 13.5])
    return np.allclose(A @ centre + b, centre, atol=1e-3)


def test_translate_moves_each_image_by_up_to_its_pixels():
    shifts = []
    for A, b in affine_maps(Augmentation(translate=3)):
        np.testing.assert_allclose(A, np.eye(2), atol=1e-4)
        shifts.append(b)
    assert np.abs(shifts).max() <= 3 + 1e-3 and np.abs(shifts).max() > 2.5  # drawn over the whole range


def test_rotate_turns_each_image_about_its_centre_by_up_to_its_degrees():
    angles = []
    for A, b in affine_maps(Augmentation(rotate=20)):
        np.testing.assert_allclose(A @ A.T, np.eye(2), atol=1e-4)  # a rotation: no scale, no shear
        assert about_the_centre(A, b) and np.linalg.det(A) > 0
        angles.append(np.degrees(np.arctan2(A[1, 0], A[0, 0])))
    assert np.abs(angles).max() <= 20 + 1e-2 and np.abs(angles).max() > 15 and min(angles) < 0 < max(angles)


def test_scale_zooms_each_image_about_its_centre_by_up_to_its_share():
    zooms = []
    for A, b in affine_maps(Augmentation(scale=0.2)):
        assert about_the_centre(A, b) and abs(A[0, 1]) < 1e-4 and abs(A[1, 0]) < 1e-4 and A[0, 0] == pytest.approx(A[1, 1], abs=1e-4)
        zooms.append(1 / A[0, 0])  # the map samples the input: its inverse is the digit's zoom
    assert 0.8 - 1e-4 <= min(zooms) < 0.85 and 1.15 < max(zooms) <= 1.2 + 1e-4


def test_shear_slants_each_image_about_its_centre_by_up_to_its_degrees():
    slants = []
    for A, b in affine_maps(Augmentation(shear=15)):
        assert about_the_centre(A, b)
        np.testing.assert_allclose([A[0, 0], A[1, 0], A[1, 1]], [1, 0, 1], atol=1e-4)  # rows slide sideways
        slants.append(np.degrees(np.arctan(A[0, 1])))
    assert np.abs(slants).max() <= 15 + 1e-2 and np.abs(slants).max() > 11


@pytest.mark.parametrize("sigma", [5.0, 2.5])
def test_elastic_moves_pixels_by_up_to_alpha_in_a_field_smooth_over_sigma(sigma):
    x, y, inside = sampled_points(Augmentation(elastic_alpha=2, elastic_sigma=sigma))
    dx, dy = x - COLUMNS, y - ROWS
    # Nodes drawn in [-alpha, alpha], interpolated bicubically (Keys, a = -0.5), which overshoots
    # by at most 1.25 along each axis.
    assert np.abs(dx[inside]).max() <= 2 * 1.25**2 and np.abs(dy[inside]).max() <= 2 * 1.25**2
    assert np.hypot(dx, dy)[inside].max() > 2
    # Smooth: between neighbouring pixels the field changes by about alpha / sigma, not by up to
    # 2 alpha as independent draws would; and it is no affine transform.
    neighbours = inside[:, :, 1:] & inside[:, :, :-1]
    assert np.abs(np.diff(dx, axis=2))[neighbours].mean() < 2 / sigma
    with pytest.raises(AssertionError):
        affine_maps(Augmentation(elastic_alpha=2, elastic_sigma=sigma))


def test_a_shorter_elastic_sigma_makes_a_rougher_field():
    roughness = []
    for sigma in (5.0, 2.5):
        x, _, inside = sampled_points(Augmentation(elastic_alpha=2, elastic_sigma=sigma))
        roughness.append(np.abs(np.diff(x - COLUMNS, axis=2))[inside[:, :, 1:] & inside[:, :, :-1]].mean())
    assert roughness[1] > 1.4 * roughness[0]


def mid_grey_images(count=32):
    """Images in [0.25, 0.75]: contrast, brightness and blur steps stay clear of the clipping."""
    return 0.25 + 0.5 * tf.random.stateless_uniform([count, 28, 28, 1], [1, 2]).numpy()


def per_image_fit(change, direction):
    """The factor k of each image's `change` = k * `direction` (least squares), and the largest misfit."""
    k = (change * direction).sum(axis=(1, 2, 3)) / (direction**2).sum(axis=(1, 2, 3))
    return k, np.abs(change - k[:, None, None, None] * direction).max()


def test_blur_steps_each_image_towards_its_gaussian_blur():
    images = mid_grey_images()
    out = Augmentation(blur=1.0)(images, SEED).numpy()
    steps, misfit = per_image_fit(out - images, gaussian_blur(images, 1.0).numpy() - images)
    assert misfit < 1e-5 and 0 <= steps.min() < 0.2 and 0.8 < steps.max() <= 1


def test_contrast_scales_each_images_deviations_from_its_mean_by_a_factor_in_range():
    images = mid_grey_images()
    out = Augmentation(contrast=0.5)(images, SEED).numpy()
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), images.mean(axis=(1, 2, 3)), atol=1e-5)
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    factors, misfit = per_image_fit(out - mean, images - mean)
    assert misfit < 1e-5 and 0.5 - 1e-5 <= factors.min() < 0.6 and 0.9 < factors.max() <= 1 + 1e-5


def test_brightness_adds_one_shift_in_range_to_each_image():
    images = mid_grey_images()
    shifts = (Augmentation(brightness=0.2)(images, SEED).numpy() - images).reshape(len(images), -1)
    np.testing.assert_allclose(shifts, shifts[:, :1].repeat(28 * 28, axis=1), atol=1e-6)  # one shift per image
    assert np.abs(shifts).max() <= 0.2 + 1e-6 and shifts.min() < -0.15 and shifts.max() > 0.15


def test_lowres_brings_its_share_of_the_images_down_to_10_to_20_pixels_and_back():
    def coarse(images, size):
        return tf.image.resize(tf.image.resize(images, [size, size], "area"), [28, 28], "bilinear").numpy()

    def sizes(images, out):
        return [size for size in range(2, 28) if np.allclose(out, coarse(images, size), atol=1e-6)]

    images = tf.random.stateless_uniform([64, 28, 28, 1], [1, 2]).numpy()
    out = Augmentation(lowres=0.5)(images, SEED).numpy()
    unchanged = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert 20 < unchanged.sum() < 44 and len(sizes(images[~unchanged], out[~unchanged])) == 1
    # One size per batch, drawn afresh for each from 10 to 20 pixels.
    drawn = [sizes(images[:4], Augmentation(lowres=1.0)(images[:4], tf.constant([s, 0], tf.int64)).numpy()) for s in range(50)]
    assert all(len(size) == 1 for size in drawn) and {size for (size,) in drawn} == set(range(10, 21))


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


def test_pen_redraws_its_share_as_the_centre_line_with_one_width_whatever_the_stroke():
    bars = np.zeros([2, 28, 28, 1], np.float32)
    bars[0, 6:22, 13:16] = 1.0  # 3 pixels wide
    bars[1, 6:22, 11:18] = 1.0  # 7 pixels wide, as a broad nib or a filled loop
    ring = np.zeros([1, 28, 28, 1], np.float32)
    ring[0, 6:22, 6:22] = 1.0
    ring[0, 10:18, 10:18] = 0.0  # a 0 written 4 pixels thick
    lines = centre_line(np.concatenate([bars, ring])).numpy()[..., 0]
    # One pixel wide, down the bars' middle column, as long as they are less their width (ends peeled as sides).
    for line, width in zip(lines[:2], (3, 7)):
        assert np.nonzero(line)[1].tolist() == [14] * int(line.sum()) and line.sum() == 16 - width
    # The ring stays one closed loop, one pixel wide: its hole is still apart from the outside.
    _, regions = ndimage.label(lines[2] == 0)
    assert regions == 2 and lines[2][14, :14].sum() == 1
    # Redrawn, both bars hold 2 to 3 pixels' worth of ink across, whatever they held (the pen is drawn per image).
    seed = tf.constant([2, 0], tf.int64)
    redrawn = Augmentation(pen=1.0)(np.repeat(bars, 20, axis=0), seed).numpy()[..., 0]
    across = redrawn[:, 11:16].sum(axis=2)
    assert 2.0 < across.min() < 2.4 and 2.9 < across.max() < 3.5
    # `pen`: that share redrawn, the others as the stroke step leaves them.
    digits = np.repeat(bars[1:], 200, axis=0)
    pen = Augmentation(stroke=1.5, pen=0.5)(digits, seed).numpy()
    stepped = Augmentation(stroke=1.5)(digits, seed).numpy()
    thin = (pen[:, 14, :, 0] > 0.5).sum(axis=1) <= 3
    assert 70 < thin.sum() < 130
    assert all(np.array_equal(x, y) for x, y, t in zip(pen, stepped, thin) if not t)


def test_the_default_pen_redraws_handwriting_not_clothing(mock_mnist, caplog):
    caplog.set_level(logging.INFO)
    pens = {name: make_splits(make_config(f"data={name}")).augment.pen for name in ("mnist", "fashion_mnist")}
    assert pens == {"mnist": 0.3, "fashion_mnist": 0.0}
    assert "augment.pen=0.3 redraws handwriting: off for data=fashion_mnist" in caplog.text


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
