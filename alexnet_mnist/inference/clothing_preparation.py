"""Prepare a photographed product the way Fashion-MNIST's images were prepared: `prepare_clothing`."""

import numpy as np
from PIL import Image
from scipy import ndimage

from alexnet_mnist.config import Invert
from alexnet_mnist.inference.preparation import FIELD, BlankImage, border_level, border_strip, resize_longest, working_copy

TRIM_DISTANCE = 0.05  # Fashion-MNIST trims edges within 5 % of the background's intensity
OUTLIER_SIGMAS = 3.0  # border pixels this many deviations off the fitted plane are the product, not the background
TRIM_BLUR = 1.0  # the Gaussian's sigma, in working pixels, that averages a photo's noise before the trim


def prepare_clothing(image: Image.Image, invert: Invert = Invert.auto) -> np.ndarray:
    """The product in `image` as Fashion-MNIST shows products: float32 `[28, 28]` in [0, 1], light on black.

    Fashion-MNIST's own recipe (its README): trim the background (the edges whose colour is close to the
    corners'), resize the longest edge to 28, centre the image in the 28x28 field, negate it. Its
    photos were shot on even white; a user's photo has uneven light and sensor noise, so the
    background is a plane fitted to the border strip, and the edges are trimmed on a slightly
    blurred copy (a noisy pixel near the border would otherwise stop the trim).
    """
    gray = working_copy(image)
    # A product fills much of its frame (Fashion-MNIST's touch two opposite sides), so the background
    # is what lies along the border: lighter than the image's mean, the product is dark on it.
    if invert == Invert.true or (invert == Invert.auto and border_level(gray) > gray.mean()):
        gray = 1.0 - gray
    ink = np.clip(gray - _border_plane(gray), 0.0, None)
    rows, cols = np.nonzero(ndimage.gaussian_filter(ink, TRIM_BLUR) > TRIM_DISTANCE)
    if not len(rows):
        raise BlankImage("nothing stands out from the background")
    product = resize_longest(ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], FIELD)
    field = np.zeros((FIELD, FIELD), np.float32)
    top, left = (FIELD - product.shape[0]) // 2, (FIELD - product.shape[1]) // 2
    field[top : top + product.shape[0], left : left + product.shape[1]] = np.clip(product, 0.0, None)
    return np.minimum(field, 1.0)  # intensities as the negated photo has them, as in Fashion-MNIST


def _border_plane(gray):
    """The plane `a + b * row + c * column` that fits `gray` along its border strip best (least
    squares), fitted again without the pixels off it by over `OUTLIER_SIGMAS` deviations: the
    product where it meets the border (a Fashion-MNIST image's, a tight crop's)."""
    rows, cols = np.indices(gray.shape, dtype=np.float32)
    strip = border_strip(gray.shape)
    terms, levels = np.stack([np.ones_like(rows), rows, cols]), gray[strip]

    def fit(kept):
        return np.linalg.lstsq(terms[:, strip][:, kept].T, levels[kept], rcond=None)[0]

    coefficients = fit(np.ones(len(levels), bool))
    residual = np.abs(levels - np.tensordot(coefficients, terms[:, strip], axes=1))
    coefficients = fit(residual <= max(OUTLIER_SIGMAS * 1.4826 * np.median(residual), TRIM_DISTANCE / 2))
    return np.tensordot(coefficients, terms, axes=1)
