"""The corruptions of the robustness evaluation and the evaluation itself (fast, synthetic images)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from alexnet_mnist.reporting.robustness import CORRUPTIONS, evaluate_robustness


def strokes(count=4, seed=0):
    """Digit-like images: a few bright random segments, antialiased by a blur, away from the border."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28, 1), np.float32)
    for image in images:
        for _ in range(3):
            (r0, c0), (r1, c1) = rng.integers(6, 22, (2, 2))
            for t in np.linspace(0, 1, 40):
                image[round(r0 + t * (r1 - r0)), round(c0 + t * (c1 - c0))] = 1.0
    # A one-pixel line peaks near 0.4 after the blur: doubled and clipped, it has a solid core.
    return np.clip(CORRUPTIONS["blur_1"](images).numpy() / 0.5, 0, 1)


IMAGES = strokes()


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_keeps_shape_dtype_and_range_and_is_deterministic(name):
    corrupted = CORRUPTIONS[name](IMAGES)
    assert corrupted.shape == IMAGES.shape and corrupted.dtype == tf.float32
    assert 0 <= np.min(corrupted) and np.max(corrupted) <= 1 + 1e-6
    assert not np.allclose(corrupted, IMAGES)
    np.testing.assert_array_equal(CORRUPTIONS[name](IMAGES), corrupted)


@pytest.mark.parametrize("name, step", [("shift_right3", (0, 3)), ("shift_left3", (0, -3)), ("shift_down3", (3, 0)), ("shift_up3", (-3, 0))])
def test_shifts_move_a_pixel_by_three_and_fill_with_zeros(name, step):
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 10, 12] = 1.0
    image[0, :, 0] = image[0, :, -1] = image[0, 0] = image[0, -1] = 0.5  # a frame that must not wrap round
    shifted = CORRUPTIONS[name](image).numpy()[0, ..., 0]
    assert shifted[10 + step[0], 12 + step[1]] == 1.0
    assert shifted.sum() < image.sum()  # part of the frame left the field; nothing came round
    edge = {"shift_right3": shifted[:, :3], "shift_left3": shifted[:, -3:], "shift_down3": shifted[:3], "shift_up3": shifted[-3:]}
    assert edge[name].max() == 0


def test_rotations_undo_each_other_inside_the_field_and_turn_counter_clockwise():
    back = CORRUPTIONS["rotate_-15"](CORRUPTIONS["rotate_+15"](IMAGES)).numpy()
    interior = (slice(None), slice(7, 21), slice(7, 21))
    assert np.abs(back - IMAGES)[interior].mean() < 0.05
    point = np.zeros((1, 28, 28, 1), np.float32)
    point[0, 13:15, 23:25] = 1.0  # right of the centre (13.5, 13.5)
    rows, cols = np.nonzero(CORRUPTIONS["rotate_+15"](point).numpy()[0, ..., 0] > 0.2)
    assert rows.mean() < 13 and cols.mean() > 20  # moved up, as counter-clockwise does on screen


def test_scale_shrinks_towards_the_centre():
    square = np.zeros((1, 28, 28, 1), np.float32)
    square[0, 4:24, 4:24] = 1.0
    rows = np.flatnonzero(CORRUPTIONS["scale_0.8"](square).numpy()[0, :, 14, 0] > 0.5)
    assert (rows.min(), rows.max()) == (6, 21)  # 20 pixels become 16, still centred


def test_dilation_adds_ink_erosion_removes_it_and_blur_keeps_it():
    ink = IMAGES.sum()
    assert CORRUPTIONS["dilate_1"](IMAGES).numpy().sum() > 1.5 * ink
    assert CORRUPTIONS["erode_1"](IMAGES).numpy().sum() < 0.5 * ink
    np.testing.assert_allclose(CORRUPTIONS["blur_1"](IMAGES).numpy().sum(), ink, rtol=1e-3)  # ink is off the border
    # A point dilates to its 3x3 window, which erodes back to the point.
    point = np.zeros((1, 28, 28, 1), np.float32)
    point[0, 10, 12] = 1.0
    square = np.zeros_like(point)
    square[0, 9:12, 11:14] = 1.0
    np.testing.assert_array_equal(CORRUPTIONS["dilate_1"](point), square)
    np.testing.assert_array_equal(CORRUPTIONS["erode_1"](square), point)


def test_blur_spreads_a_point_into_a_gaussian_of_sigma_one():
    point = np.zeros((1, 28, 28, 1), np.float32)
    point[0, 14, 14] = 1.0
    taps = np.exp(-np.arange(-3, 4) ** 2 / 2)  # +-3 sigma, normalised
    expected = np.zeros((28, 28))
    expected[11:18, 11:18] = np.outer(taps, taps) / taps.sum() ** 2
    np.testing.assert_allclose(CORRUPTIONS["blur_1"](point).numpy()[0, ..., 0], expected, atol=1e-7)


def test_contrast_reduces_the_spread_and_keeps_the_mean():
    lowered = CORRUPTIONS["contrast_0.6"](IMAGES).numpy()
    np.testing.assert_allclose(lowered.std(axis=(1, 2, 3)), 0.6 * IMAGES.std(axis=(1, 2, 3)), rtol=1e-4)
    np.testing.assert_allclose(lowered.mean(axis=(1, 2, 3)), IMAGES.mean(axis=(1, 2, 3)), rtol=1e-4)


def test_low_resolution_wipes_out_a_fine_checkerboard():
    checkerboard = (np.indices((28, 28)).sum(0) % 2).astype(np.float32)[None, ..., None]
    flattened = CORRUPTIONS["lowres_10"](checkerboard).numpy()
    assert flattened.std() < 0.1 * checkerboard.std()


REPORT = ["clean", "shift_up3", "shift_down3", "shift_left3", "shift_right3", "rotate_+15", "rotate_-15", "scale_0.8",
          "dilate_1", "erode_1", "blur_1", "contrast_0.6", "lowres_10"]  # fmt: skip


def test_evaluate_robustness_reports_each_corruptions_own_accuracy():
    # A model whose top class changes with any visible change of the image (the sine of a steep random
    # projection): the classes of an image's copies under two transforms agree by chance, 1 time in 1,000.
    projection = keras.layers.Dense(1000, kernel_initializer=keras.initializers.GlorotUniform(seed=0))
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), projection, keras.layers.Activation(lambda x: tf.sin(50 * x))])
    transforms = [tf.identity, *(CORRUPTIONS[name] for name in REPORT[1:])]
    # The k-th entry's own 2k + 1 images are labelled as the model classifies their copies under its
    # transform, so that each entry has an accuracy of its own, about (2k + 1) / 169.
    owner = np.repeat(np.arange(len(REPORT)), 2 * np.arange(len(REPORT)) + 1)
    images = strokes(count=len(owner), seed=1)
    predictions = np.stack([np.argmax(model(transform(images)), axis=1) for transform in transforms])
    labels = predictions[owner, np.arange(len(owner))]
    expected = {name: np.mean(predicted == labels) for name, predicted in zip(REPORT, predictions)}
    assert len(set(expected.values())) == len(REPORT)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)  # a smaller last batch too
    accuracy = evaluate_robustness(model, dataset)
    assert list(accuracy) == REPORT and accuracy == pytest.approx(expected, abs=1e-9)
