"""Prepare a photographed or scanned image the way its dataset's images were prepared.

`PREPARATIONS` maps a style to its function: "digit" (MNIST, `prepare_digit`) and "clothing"
(Fashion-MNIST, `prepare_clothing`).

MNIST's digits are light on a black field: each digit's bounding box was scaled to fit 20x20 with
its aspect ratio kept (antialiased, hence grey edges) and placed in a 28x28 field with its centre
of mass at the centre. `prepare_digit` does the same to an image of any size:

1. grayscale, shrunk to at most `WORKING_SIZE` pixels on the longer side (speed; the digit ends
   up 20 pixels tall anyway);
2. polarity: with `Invert.auto` the image is inverted when its ink is darker than its background
   (the median of a border strip): the darkest pixels lie further below the background than the
   brightest lie above it;
3. background removal: the paper's brightness, estimated on a coarse grid (block medians, each
   block then taking the darkest of its 3x3 neighbourhood so that blocks covered by a thick stroke
   do not count as paper) and interpolated bilinearly, is subtracted, so unevenly lit paper goes
   to 0; what is left within `NOISE_SIGMAS` noise deviations (estimated from the median absolute
   deviation) of the paper goes to 0 as well;
4. the ink's bounding box, trimmed of the outermost `BOX_TRIM` of the ink's mass on each side so
   that specks far from the digit do not stretch it, is resized (antialiased) so that its longer
   side is 20 pixels;
5. it is placed in the 28x28 field with its centre of mass at row 14, column 14 (counting from 0;
   where MNIST's test digits have theirs, give or take 0.3), shifted by whole pixels and kept
   inside the field;
6. intensities are stretched so that the brightest `SATURATED` of the ink is 1, as in MNIST,
   where 39 % of the test digits' ink pixels are 250 or more (the background is already 0).
"""

import numpy as np
from PIL import Image

from alexnet_mnist.config import Invert

FIELD = 28  # MNIST's image side
BOX = 20  # the side of the square MNIST fitted each digit's bounding box into
WORKING_SIZE = 256  # pixels on the longer side: ample for a 20-pixel digit, fast for a 12 MP photo
GRID = 8  # background blocks along the longer side
NOISE_SIGMAS = 4.0  # few pixels of a clean background pass 4 sigma; specks left are trimmed by BOX_TRIM
BOX_TRIM = 0.0025
BORDER = 0.05  # the border strip, as a fraction of each side, that shows the background
SATURATED = 0.4  # MNIST's share of ink at full intensity
TRIM_DISTANCE = 0.05  # Fashion-MNIST trims edges within 5 % of the background's intensity


class BlankImage(ValueError):
    """No digit stands out from the background."""


def prepare_digit(image: Image.Image, invert: Invert = Invert.auto) -> np.ndarray:
    """The digit in `image` as MNIST shows digits: float32 `[28, 28]` in [0, 1], light on black."""
    gray = _working_copy(image)
    if invert == Invert.true or (invert == Invert.auto and _dark_on_light(gray)):
        gray = 1.0 - gray
    ink = _remove_background(gray)
    if not ink.any():
        raise BlankImage("no digit stands out from the background")
    digit = _fit_box(_crop_to_ink(ink))
    field = _centre(digit)
    full = np.quantile(field[field > 0], 1.0 - SATURATED)
    return np.minimum(field / full, 1.0)


def _working_copy(image):
    gray = image.convert("L")
    scale = WORKING_SIZE / max(gray.size)
    if scale < 1:
        size = tuple(max(1, round(side * scale)) for side in gray.size)
        gray = gray.resize(size, Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.float32) / 255.0


def _border(gray):
    rows, cols = (max(1, round(BORDER * side)) for side in gray.shape)
    return np.concatenate([gray[:rows].ravel(), gray[-rows:].ravel(), gray[:, :cols].ravel(), gray[:, -cols:].ravel()])


def _dark_on_light(gray):
    background = np.median(_border(gray))
    darkest, brightest = np.percentile(gray, [0.1, 99.9])
    return background - darkest > brightest - background


def _remove_background(gray):
    """Light-on-dark `gray` less its (possibly uneven) background, with the noise floor at 0."""
    height, width = gray.shape
    block = max(1, -(-max(height, width) // GRID))
    grid_h, grid_w = -(-height // block), -(-width // block)
    padded = np.pad(gray, ((0, grid_h * block - height), (0, grid_w * block - width)), mode="edge")
    blocks = np.median(padded.reshape(grid_h, block, grid_w, block), axis=(1, 3))
    # A block mostly covered by a thick stroke is brighter than paper: take its darkest neighbour.
    neighbours = np.lib.stride_tricks.sliding_window_view(np.pad(blocks, 1, mode="edge"), (3, 3))
    blocks = neighbours.min(axis=(2, 3)).astype(np.float32)
    background = np.asarray(Image.fromarray(blocks).resize((width, height), Image.Resampling.BILINEAR))
    residual = gray - background
    noise = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    return np.clip(residual - NOISE_SIGMAS * noise, 0.0, None)


def _crop_to_ink(ink):
    rows = _mass_span(ink.sum(axis=1))
    cols = _mass_span(ink.sum(axis=0))
    return ink[rows, cols]


def _mass_span(mass):
    """The slice holding all but the outermost `BOX_TRIM` of `mass` on either side."""
    cumulative = np.cumsum(mass) / mass.sum()
    first = np.searchsorted(cumulative, BOX_TRIM, side="right")
    last = np.searchsorted(cumulative, 1.0 - BOX_TRIM, side="left")
    return slice(first, last + 1)


def _fit_box(ink):
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Pillow's resize filters over the whole source footprint when it shrinks: an antialiased result.
    return np.asarray(Image.fromarray(np.ascontiguousarray(ink)).resize(size, Image.Resampling.BILINEAR))


def _centre(digit):
    rows, cols = np.indices(digit.shape)
    mass = digit.sum()
    centre = ((rows * digit).sum() / mass, (cols * digit).sum() / mass)
    field = np.zeros((FIELD, FIELD), np.float32)
    # Whole-pixel shifts keep the strokes sharp; the clip keeps all of the digit in the field.
    top, left = (
        int(np.clip(np.floor(FIELD / 2 - c + 0.5), 0, FIELD - side)) for c, side in zip(centre, digit.shape)
    )
    field[top : top + digit.shape[0], left : left + digit.shape[1]] = np.clip(digit, 0.0, None)
    return field


def prepare_clothing(image: Image.Image, invert: Invert = Invert.auto) -> np.ndarray:
    """The product in `image` as Fashion-MNIST shows products: float32 `[28, 28]` in [0, 1], light on black.

    Fashion-MNIST's own recipe (its README): trim the background (the edges whose colour is close to the
    corners'), resize the longest edge to 28, centre the image in the 28x28 field, negate it.
    """
    gray = _working_copy(image)
    if invert == Invert.true or (invert == Invert.auto and _dark_on_light(gray)):
        gray = 1.0 - gray
    background = np.median(_border(gray))
    ink = np.clip(gray - background, 0.0, None)
    rows, cols = np.nonzero(ink > TRIM_DISTANCE)
    if not len(rows):
        raise BlankImage("nothing stands out from the background")
    product = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = product.shape
    scale = FIELD / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    product = np.asarray(Image.fromarray(np.ascontiguousarray(product)).resize(size, Image.Resampling.BILINEAR))
    field = np.zeros((FIELD, FIELD), np.float32)
    top, left = (FIELD - product.shape[0]) // 2, (FIELD - product.shape[1]) // 2
    field[top : top + product.shape[0], left : left + product.shape[1]] = np.clip(product, 0.0, None)
    return np.minimum(field, 1.0)  # intensities as the negated photo has them, as in Fashion-MNIST


PREPARATIONS = {"digit": prepare_digit, "clothing": prepare_clothing}
