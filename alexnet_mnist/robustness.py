"""Accuracy on transformed copies of the test split: how robust a model is to what no run trains on.

Each corruption maps a float32 batch `[N, 28, 28, 1]` in [0, 1] to a batch of the same shape and
range, deterministically, with TensorFlow ops on the whole batch. Rows and columns count from the
top left; the field's centre is (13.5, 13.5), between the four middle pixels.

| name | definition |
|---|---|
| `shift_up3`, `shift_down3`, `shift_left3`, `shift_right3` | translated by 3 pixels; the pixels moved in are 0 |
| `rotate_+15`, `rotate_-15` | rotated by 15° about the centre, + counter-clockwise as displayed; bilinear, 0 outside |
| `scale_0.8` | shrunk to 0.8 of its size about the centre; bilinear, 0 outside |
| `dilate_1` | strokes thickened by one pixel: the maximum over each pixel's 3x3 window |
| `erode_1` | strokes thinned by one pixel: the minimum over each pixel's 3x3 window (within the image) |
| `blur_1` | Gaussian blur, σ = 1 pixel: a 7-tap kernel (±3σ, normalised to sum 1) along rows and columns, 0 outside |
| `contrast_0.6` | each image's deviations from its own mean intensity times 0.6 (`tf.image.adjust_contrast`) |
| `lowres_10` | resized to 10x10 by area averaging and back to 28x28 bilinearly |

Every definition averages or picks from the pixels and the zero fill, so none leaves [0, 1].
"""

import math

import numpy as np
import tensorflow as tf

SIZE = 28
CENTRE = (SIZE - 1) / 2


def _shift(rows, cols):
    """Translate by (rows, cols) pixels, down and right for positive values, filling with 0."""

    def shift(images):
        padded = tf.pad(images, [[0, 0], [max(rows, 0), max(-rows, 0)], [max(cols, 0), max(-cols, 0)], [0, 0]])
        return padded[:, max(-rows, 0) : max(-rows, 0) + SIZE, max(-cols, 0) : max(-cols, 0) + SIZE, :]

    return shift


def _affine(degrees=0.0, scale=1.0):
    """Rotate counter-clockwise (as displayed) by `degrees` and scale by `scale` about the centre."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    # The op maps each output pixel (x, y) = (column, row) back to the input point it samples.
    transform = tf.constant(
        [[cos, -sin, CENTRE - cos * CENTRE + sin * CENTRE, sin, cos, CENTRE - sin * CENTRE - cos * CENTRE, 0.0, 0.0]],
        tf.float32,
    )

    def affine(images):
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=tf.repeat(transform, tf.shape(images)[0], axis=0),
            output_shape=[SIZE, SIZE],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )

    return affine


def _dilate(images):
    return tf.nn.max_pool2d(images, ksize=3, strides=1, padding="SAME")


def _erode(images):
    return -tf.nn.max_pool2d(-images, ksize=3, strides=1, padding="SAME")


def _blur(sigma):
    taps = np.arange(-3 * sigma, 3 * sigma + 1)
    kernel = np.exp(-(taps**2) / (2 * sigma**2))
    kernel = tf.constant(kernel / kernel.sum(), tf.float32)
    down, across = tf.reshape(kernel, [-1, 1, 1, 1]), tf.reshape(kernel, [1, -1, 1, 1])

    def blur(images):
        along_columns = tf.nn.depthwise_conv2d(images, down, strides=[1, 1, 1, 1], padding="SAME")
        return tf.nn.depthwise_conv2d(along_columns, across, strides=[1, 1, 1, 1], padding="SAME")

    return blur


def _contrast(factor):
    def contrast(images):
        return tf.image.adjust_contrast(images, factor)

    return contrast


def _low_resolution(side):
    def low_resolution(images):
        small = tf.image.resize(images, [side, side], method="area")
        return tf.image.resize(small, [SIZE, SIZE], method="bilinear")

    return low_resolution


CORRUPTIONS = {
    "shift_up3": _shift(-3, 0),
    "shift_down3": _shift(3, 0),
    "shift_left3": _shift(0, -3),
    "shift_right3": _shift(0, 3),
    "rotate_+15": _affine(degrees=15),
    "rotate_-15": _affine(degrees=-15),
    "scale_0.8": _affine(scale=0.8),
    "dilate_1": _dilate,
    "erode_1": _erode,
    "blur_1": _blur(1),
    "contrast_0.6": _contrast(0.6),
    "lowres_10": _low_resolution(10),
}


def evaluate_robustness(model, dataset) -> dict:
    """{"clean": accuracy, then each name of CORRUPTIONS: accuracy} of a logits `model` over a
    batched (images, labels) `dataset` such as `data.make_test_split(...)[0]`."""
    names = ["clean", *CORRUPTIONS]
    transforms = [tf.identity, *CORRUPTIONS.values()]

    @tf.function(reduce_retracing=True)
    def correct(images, labels):
        # Every corruption of a batch in one graph: one pass over the data serves them all.
        counts = []
        for transform in transforms:
            predictions = tf.argmax(model(transform(images), training=False), axis=-1)
            counts.append(tf.reduce_sum(tf.cast(predictions == tf.cast(labels, predictions.dtype), tf.int64)))
        return tf.stack(counts)

    totals, seen = np.zeros(len(names), np.int64), 0
    for images, labels in dataset:
        totals += correct(images, labels).numpy()
        seen += int(tf.shape(labels)[0])
    return {name: total / seen for name, total in zip(names, totals)}
