"""Transformed copies of test images, for measuring how robust a model is to what no run trains on.

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

import tensorflow as tf

from alexnet_mnist.data import augmentation
from alexnet_mnist.data.augmentation import SIZE


def _shift(rows, cols):
    """Translate by (rows, cols) pixels, down and right for positive values, filling with 0."""

    def shift(images):
        padded = tf.pad(images, [[0, 0], [max(rows, 0), max(-rows, 0)], [max(cols, 0), max(-cols, 0)], [0, 0]])
        return padded[:, max(-rows, 0) : max(-rows, 0) + SIZE, max(-cols, 0) : max(-cols, 0) + SIZE, :]

    return shift


def _affine(degrees=0.0, scale=1.0):
    """Rotate counter-clockwise (as displayed) by `degrees` and scale by `scale` about the centre."""

    def transform(images):
        same = tf.ones([tf.shape(images)[0]])
        return augmentation.affine(images, (0 * same, 0 * same), math.radians(degrees) * same, scale * same, 0 * same)

    return transform


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
    "dilate_1": augmentation.dilate,
    "erode_1": augmentation.erode,
    "blur_1": lambda images: augmentation.gaussian_blur(images, 1.0),
    "contrast_0.6": _contrast(0.6),
    "lowres_10": _low_resolution(10),
}
