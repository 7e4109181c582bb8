"""Prepare a photographed, scanned or drawn digit the way MNIST's digits were prepared:
`prepare_digit`, with the helpers that `clothing_preparation` (Fashion-MNIST's products) shares.

MNIST's digits are light on a black field: each digit's bounding box was scaled to fit 20x20 with
its aspect ratio kept (antialiased, hence grey edges) and placed in a 28x28 field with its centre
of mass at the centre. `prepare_digit` does the same to a photo, a scan or a drawing of any size,
after finding which of its pixels are the digit's stroke rather than the paper's grain, lighting,
rules or specks:

1. grayscale (transparent pixels count as white paper, as black behind light ink; 16-bit and
   floating-point pixels are scaled to 8 bits, not clipped), shrunk to at most
   `WORKING_SIZE` pixels on the longer side (speed: the digit ends up 20 pixels tall anyway); an
   image under `SMALLEST` pixels (a 16x16 scan such as USPS's, which fills its frame) is enlarged to
   that and given MNIST's margin of paper, and so is an image whose digit, found without it, meets
   the image's edge (a photo cropped to the digit). What lies around the page (regions off its light
   by a factor of 3, or by a factor of 1.5 with 3 times its grain over the region, that run along
   most of a side: a table, a wall around a board) is painted over with the page's level (see
   `page.on_paper`); a page that lies within the photo, a note on a table that fills the rest, is
   cut out first and prepared alone (`page.page_in_photo`);
2. polarity: with `Invert.auto` the image is inverted when its ink is darker than its background:
   the darkest pixels lie further below the local background (a median over a third of the image)
   than the brightest lie above it, in ratios of light (so the lit side of a shadow's edge does not
   outshine dark ink in the shade); where both lie far off it (strokes so bold that they are the
   local background in places: a clean drawing, an enlarged MNIST digit), when the median pixel is
   lighter than the mean (the ink, the lesser part, is dark); a framed image, whose strokes may
   outweigh its paper anywhere, is inverted when the level along its edges (its paper's, which
   also fills the margin) is lighter than its mean;
3. denoising: pixels far from their 3x3 median with no neighbour that differs the same way (salt
   and pepper) take the median's value, which leaves a one-pixel pen line whole (a plain median
   filter would erase it); a slight Gaussian blur then averages the grain;
4. background removal: the paper, estimated by a morphological opening (minimum, then maximum, over
   `OPENING` pixels), which takes out every stroke narrower than it and follows a shadow's edge or
   the page's, is subtracted, and the difference divided by the room left above the background (for
   dark ink, the paper's brightness: ink in shadow counts as much as ink in light); so is each row's
   20th percentile where it is above 0, which takes out ruled lines across the page, since a digit
   covers far less of a row, and each column's where it stands above the paper's noise (a line
   down the page: a notebook's margin, a fold);
5. the stroke: hysteresis thresholds set by the ink's level (the brightest of the residual) and the
   paper's noise (from the median absolute deviation): pixels above the high one are ink for sure,
   those above the low one are ink if they touch them;
6. specks: the ink's connected parts (after bridging gaps of a few pixels, so that a broken pencil
   or chalk line stays one part) are kept if they belong to the digit: the heaviest part, then any
   other near it that is long (a fifth of the digit's extent) or heavy (a third of its mass). Dots,
   crumbs and grain far from or small beside the digit are dropped, and so is a frame around it (a
   part nearly all along its own box's sides, around another part: a form's printed box);
7. a small digit in a large photo is found on the shrunk copy and prepared again from the original
   pixels around it, so that a thin line is not averaged away;
8. stroke width: a line thinner than MNIST's (a tenth of the digit's height) is widened to it
   (a maximum filter over a round nib, so diagonals are no wider than uprights), so a fine pen reads
   like MNIST's pens;
9. the ink's bounding box is resized (antialiased) so that its longer side is 20 pixels;
10. it is placed in the 28x28 field with its centre of mass at row 14, column 14 (counting from 0;
    where MNIST's test digits have theirs, give or take 0.3), shifted by whole pixels and kept
    inside the field;
11. intensities are stretched so that the brightest `SATURATED` of the ink is 1, as in MNIST,
    where 39 % of the test digits' ink pixels are 250 or more (the background is already 0).
"""

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from alexnet_mnist.config import Invert
from alexnet_mnist.inference.page import DIM, block_medians, on_paper, page_in_photo

FIELD = 28  # MNIST's image side
BOX = 20  # the side of the square MNIST fitted each digit's bounding box into
WORKING_SIZE = 256  # pixels on the longer side: ample for a 20-pixel digit, fast for a 12 MP photo
POLARITY_CELL, POLARITY_CELLS = 16, 5  # a median over 5x5 cells of 16x16 pixels: a third of the working copy
# Pure black and white sit 21 times off each other (DIM): ratios both ways from a local background beyond
# 3 (a shadow's lit edge) were, of the 900 photo-like digits, only clean drawings' and bold markers'.
BOTH_WAYS = 3
SHADE = 0.1  # the darkest paper (or least room above a board) whose ink's contrast is scaled up
OPENING = 36  # working pixels, wider than a marker's stroke
IMPULSE_SIGMAS = 4.0  # a pixel this many noise deviations from its 3x3 median is an outlier
BLUR = 0.7  # the Gaussian's sigma, in working pixels, that averages the grain without erasing a thin line
RULED = 20  # the percentile of a row that is a ruled line, not the digit
HIGH, LOW = 0.5, 0.3  # hysteresis thresholds, as fractions of the ink's level
HIGH_SIGMAS, LOW_SIGMAS = 6.0, 3.5  # and as multiples of the paper's noise, whichever is larger
BRIDGE = 5  # a maximum filter's size: gaps in a line up to 4 pixels do not split it into parts
NEAR = 0.3  # parts within this fraction of the digit's extent of its box are near it
LONG, HEAVY = 0.2, 0.33  # a part near the digit is kept when this long or heavy, relative to the digit
FRAME_BAND, FRAMED = 0.05, 0.9  # a part with 90 % of its pixels within 5 % of its box's sides is a frame
SMALLEST = 128  # pixels on the longer side: a smaller image (a 16x16 scan) is enlarged to it
MARGIN = 0.15  # paper added on each side of such an image, a share of its longer side (MNIST: 4 of 28)
TOUCH = 2  # working pixels: a digit this close to a side of the image meets its edge
ENLARGED = 2  # a digit this many times larger at the original's resolution is prepared again from it
STROKE = 0.1  # MNIST's stroke width relative to the digit's height
SATURATED = 0.4  # MNIST's share of ink at full intensity
BORDER = 0.05  # the border strip, as a fraction of each side, that shows the paper or background
DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # Pillow's grey modes with more than 8 bits


class BlankImage(ValueError):
    """No digit stands out from the background."""


def prepare_digit(image: Image.Image, invert: Invert = Invert.auto) -> np.ndarray:
    """The digit in `image` as MNIST shows digits: float32 `[28, 28]` in [0, 1], light on black."""
    light_ink = _light_ink(image)
    denoised = _denoise(working_copy(image, light_ink))
    # A drawing's transparent canvas is its page already; a small scan has no table around it.
    page = page_in_photo(denoised) if max(image.size) >= SMALLEST and not _transparent(image) else None
    if page is not None:  # a note on a table: the digit is prepared from the note alone
        return _prepare(_note(image, *page, max(image.size) / max(denoised.shape)), invert)
    return _prepare(image, invert, denoised)


def _note(image, box, on_page, scale):
    """The note of `page_in_photo`'s `box` (working pixels, `scale` original pixels each) cut from
    `image`, what lies off it in the box (the table in the corners of a turned note, off
    `on_page`) painted over with the note's colour."""
    top, bottom, left, right = (round(edge * scale) for edge in box)
    crop = _eight_bit(image).crop((left, top, right, bottom)).convert("RGB")
    mask = Image.fromarray(on_page.astype(np.uint8) * 255).resize(crop.size, Image.Resampling.NEAREST)
    colour = np.median(np.asarray(crop)[np.asarray(mask) > 0], axis=0).round().astype(int)
    return Image.composite(crop, Image.new("RGB", crop.size, tuple(colour)), mask)


def _prepare(image, invert, denoised=None):
    """`prepare_digit` for an image whose page fills it; `denoised`: its working copy, if made already."""
    light_ink = _light_ink(image)
    denoised = _denoise(working_copy(image, light_ink)) if denoised is None else denoised
    scale = max(image.size) / max(denoised.shape)
    # A small scan (MNIST's, USPS's) often fills its frame: it gets MNIST's margin of paper.
    framed = max(image.size) < SMALLEST
    try:
        ink, box, margin, inverted = _framed_stroke(denoised, framed, invert)
        again = not framed and _meets_edge(box, denoised.shape)
    except BlankImage:
        if framed:
            raise
        again = True
    if again:
        # A digit that meets the image's edge (cropped to its box, drawn to the canvas's edge) has no
        # paper beyond it: the opening takes its strokes there for paper, and the table rule its
        # strokes along the edge for a table. It is found again with MNIST's margin of paper.
        ink, box, margin, inverted = _framed_stroke(denoised, True, invert)
    side = max(box[1] - box[0], box[3] - box[2])
    # The digit at the original's resolution, in a crop with as much margin as the digit is large:
    # worth preparing again if it comes out at least twice as large as in the shrunk copy.
    if min(side * scale, WORKING_SIZE / 3) >= ENLARGED * side:
        top, bottom = (max(0, round((edge - margin) * scale)) for edge in (box[0] - side, box[1] + side))
        left, right = (max(0, round((edge - margin) * scale)) for edge in (box[2] - side, box[3] + side))
        crop = image.crop((left, top, min(image.width, right), min(image.height, bottom)))
        ink, box = _stroke(on_paper(_denoise(working_copy(crop, light_ink))), inverted)
    digit = resize_longest(_widen(ink[box[0] : box[1], box[2] : box[3]]), BOX)
    field = _centre(digit)
    full = np.quantile(field[field > 0], 1.0 - SATURATED)
    return np.minimum(field / full, 1.0)


def _framed_stroke(denoised, framed, invert):
    """The digit's ink and box in `denoised` (`BlankImage` if none stands out), given MNIST's margin
    of paper if `framed`, with that margin and whether the image was inverted."""
    margin = round(MARGIN * max(denoised.shape)) if framed else 0
    # A framed image has no lighting to follow, and its strokes may outweigh its paper: its paper is
    # the commonest level along its edges, which a digit's strokes meet only here and there.
    paper = border_level(denoised) if framed else None
    gray = on_paper(denoised, margin, paper)
    dark_ink = paper > denoised.mean() if framed else dark_on_light(gray)
    inverted = invert == Invert.true or (invert == Invert.auto and dark_ink)
    return *_stroke(gray, inverted), margin, inverted


def _meets_edge(box, shape):
    """Whether the digit's `box` (top, bottom, left, right) comes within `TOUCH` pixels of a side of `shape`."""
    height, width = shape
    return box[0] <= TOUCH or box[1] >= height - TOUCH or box[2] <= TOUCH or box[3] >= width - TOUCH


def working_copy(image, light_ink=False):
    """`image` in grey, 8 bits, transparent pixels counted as white paper (black if `light_ink`)."""
    if _transparent(image):
        paper = Image.new("RGBA", image.size, "black" if light_ink else "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    gray = _eight_bit(image).convert("L")
    longest = np.clip(max(gray.size), SMALLEST, WORKING_SIZE)  # a small scan is enlarged
    if longest != max(gray.size):
        size = tuple(max(1, round(side * longest / max(gray.size))) for side in gray.size)
        gray = gray.resize(size, Image.Resampling.BOX if longest < max(gray.size) else Image.Resampling.BICUBIC)
    return np.asarray(gray, dtype=np.float32) / 255.0


def _eight_bit(image):
    """`image`, if 16-bit, 32-bit or floating-point grey, in 8 bits, scaled by the smallest of the
    usual ranges (1, 255, 65535) that holds its pixels, or by its largest: Pillow's own conversion
    clips them at 255, which turns a 16-bit scan's paper and ink alike to white."""
    if image.mode not in DEEP_MODES:
        return image
    pixels = np.asarray(image, np.float32)
    top = next((limit for limit in (1.0, 255.0, 65535.0) if pixels.max() <= limit), pixels.max())
    return Image.fromarray((np.clip(pixels / top, 0.0, 1.0) * 255).round().astype(np.uint8))


def _transparent(image):
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _light_ink(image):
    """Whether `image` is light ink on transparent pixels: what is visible covers under half of it and
    is mostly light (a white brush on a transparent canvas), so white paper would hide it."""
    if not _transparent(image):
        return False
    rgba = image.convert("RGBA")
    visible = np.asarray(rgba.getchannel("A")) > 127
    return 0 < visible.mean() < 0.5 and np.median(np.asarray(rgba.convert("L"))[visible]) > 127


def border_strip(shape):
    """A mask of the strip `BORDER` of each side wide along the edges of an image of `shape`."""
    rows, cols = (max(1, round(BORDER * side)) for side in shape)
    strip = np.ones(shape, bool)
    strip[rows:-rows, cols:-cols] = False
    return strip


def border_level(gray):
    """The median of `gray` along its border strip: the paper's or background's level where what
    lies on it may outweigh it (a framed scan, a product that fills its frame)."""
    return np.median(gray[border_strip(gray.shape)])


def dark_on_light(gray):
    """Whether the darkest pixels lie further below the local background (a median over a third of
    the image, where paper outweighs even a marker's strokes) than the brightest lie above it, in
    ratios of light: dark ink takes most of the paper's light even in shadow, while the lit side of
    a shadow's edge, beside a background the shadow darkened, is only a few times brighter. Where
    both lie `BOTH_WAYS` times or more off it, strokes so bold that the background is ink in places
    (a clean drawing, an enlarged MNIST digit), the ink is the lesser part: dark if the median pixel
    is lighter than the mean."""
    small = Image.fromarray(block_medians(gray, POLARITY_CELL)).filter(ImageFilter.MedianFilter(POLARITY_CELLS))
    background = np.asarray(small.resize(gray.shape[::-1], Image.Resampling.BILINEAR))
    ratio = np.log((gray + DIM) / (background + DIM))
    darkest, brightest = np.percentile(ratio, [0.1, 99.9])
    if min(-darkest, brightest) > np.log(BOTH_WAYS):
        return np.median(gray) > gray.mean()
    return -darkest > brightest


def _stroke(gray, inverted):
    """The digit's ink in denoised `gray` (light on dark, or dark on light if `inverted`), float32
    with 0 off the digit, and its box (top, bottom, left, right)."""
    if inverted:
        gray = 1.0 - gray
    # The paper: a morphological opening (the minimum, then the maximum) takes out every stroke
    # narrower than it, and follows a shadow's edge.
    background = ndimage.grey_opening(gray, size=OPENING, mode="nearest")
    # Dark ink takes a share of the paper's light: in shadow its contrast is as much smaller. So the
    # residual counts in shares of the room left above the background (for dark ink, of the paper's
    # brightness), which keeps an image and its negative prepared alike.
    residual = (gray - background) / np.maximum(1.0 - background, SHADE)
    residual -= np.clip(np.percentile(residual, RULED, axis=1, keepdims=True), 0.0, None)
    sample = residual[::2, ::2]  # a quarter of the pixels estimate the paper's noise as well, 4 times faster
    noise = 1.4826 * np.median(np.abs(sample - np.median(sample)))
    # A line down the page (a notebook's margin, a fold) goes as ruled lines do, but only where it
    # stands above the paper's noise: on grainy paper the columns' percentiles, like the rows', are
    # mostly noise (taken out whatever their level, they changed 55 of 900 photo-like digits).
    columns = np.percentile(residual, RULED, axis=0, keepdims=True)
    residual -= np.where(columns > LOW_SIGMAS * noise, columns, 0.0)
    level = residual.max()
    high, low = max(HIGH * level, HIGH_SIGMAS * noise), max(LOW * level, LOW_SIGMAS * noise)
    if level <= high or not (residual > high).any():
        raise BlankImage("no digit stands out from the background")
    weak = residual > low
    keep = _digit_parts(weak, residual > high, np.where(weak, residual, 0.0))
    ink = np.where(keep, np.clip(residual - low, 0.0, None), 0.0).astype(np.float32)
    rows, cols = np.nonzero(ink)
    return ink, (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)


def _denoise(gray):
    median = _median3(gray)
    deviation = gray - median
    limit = IMPULSE_SIGMAS * 1.4826 * np.median(np.abs(deviation))
    cleaned = gray.copy()
    for outlier in (deviation > limit, deviation < -limit):
        # An impulse stands out from its median alone; a line's pixels have neighbours that do too.
        lone = outlier & (_neighbours(outlier) <= 1)
        cleaned[lone] = median[lone]
    return ndimage.gaussian_filter(cleaned, BLUR, mode="nearest", radius=int(np.ceil(3 * BLUR)))


def _median3(gray):
    """The median of each pixel's 3x3 neighbourhood (edges repeated), by Paeth's 19-exchange
    network for 9 values: a seventh of the time of scipy.ndimage.median_filter (2 against 14 ms on
    a 256x192 working copy), a tenth of Pillow's."""
    padded = np.pad(gray, 1, mode="edge")
    height, width = gray.shape
    p = [padded[dr : dr + height, dc : dc + width] for dr in range(3) for dc in range(3)]
    for a, b in ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8), (4, 7),
                 (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2)):
        p[a], p[b] = np.minimum(p[a], p[b]), np.maximum(p[a], p[b])
    return p[4]


def _neighbours(mask):
    """How many of each pixel's 8 neighbours are in `mask`."""
    padded = np.pad(mask, 1).astype(np.int8)
    height, width = mask.shape
    return sum(padded[1 + dr : 1 + dr + height, 1 + dc : 1 + dc + width] for dr in (-1, 0, 1) for dc in (-1, 0, 1)) - mask


def _digit_parts(weak, strong, mass):
    """The pixels of `weak` that make the digit: its connected parts (8-connected, gaps up to
    `BRIDGE` - 1 pixels bridged) that hold a `strong` pixel, the heaviest by `mass`, and those near
    it that are long or heavy."""
    bridged = ndimage.maximum_filter(weak, size=BRIDGE, mode="nearest")
    labels, count = ndimage.label(bridged, structure=np.ones((3, 3)))
    labels = np.where(weak, labels, 0)
    parts = np.arange(1, count + 1)
    weight = np.bincount(labels.ravel(), mass.ravel(), count + 1)[1:]
    held = np.bincount(labels.ravel(), strong.ravel(), count + 1)[1:] > 0
    # Each part's box (top, bottom, left, right); every bridged part holds pixels of `weak`.
    boxes = np.array([(rows.start, rows.stop, cols.start, cols.stop) for rows, cols in ndimage.find_objects(labels, count)])
    extent = np.maximum(boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2])
    held &= ~_frames(labels, boxes, held)
    main = int(np.argmax(np.where(held, weight, -1.0)))
    kept = np.zeros(count, bool)
    kept[main] = True
    box = boxes[main].copy()
    while True:
        size = max(box[1] - box[0], box[3] - box[2])
        margin = NEAR * size
        near = (
            (boxes[:, 0] < box[1] + margin) & (boxes[:, 1] > box[0] - margin)
            & (boxes[:, 2] < box[3] + margin) & (boxes[:, 3] > box[2] - margin)
        )
        joining = ~kept & held & near & ((extent >= LONG * size) | (weight >= HEAVY * weight[main]))
        if not joining.any():
            break
        kept |= joining
        chosen = boxes[kept]
        box = np.array([chosen[:, 0].min(), chosen[:, 1].max(), chosen[:, 2].min(), chosen[:, 3].max()])
    return np.isin(labels, parts[kept])


def _frames(labels, boxes, held):
    """Which parts are frames around another part that holds ink (a form's box around the digit):
    nearly all of their pixels (`FRAMED`) lie within `FRAME_BAND` of their box's sides, where a
    ring's lie only in part (57 % of a circle's)."""
    frames = np.zeros(len(boxes), bool)
    for part, (top, bottom, left, right) in enumerate(boxes):
        inside = (boxes[:, 0] > top) & (boxes[:, 1] < bottom) & (boxes[:, 2] > left) & (boxes[:, 3] < right) & held
        if not inside.any():
            continue
        band = max(2, round(FRAME_BAND * min(bottom - top, right - left)))
        rows, cols = np.nonzero(labels[top:bottom, left:right] == part + 1)
        near_side = np.minimum(np.minimum(rows, bottom - top - 1 - rows), np.minimum(cols, right - left - 1 - cols)) < band
        frames[part] = near_side.mean() > FRAMED
    return frames


def _widen(ink):
    """`ink` with its stroke widened to `STROKE` of its height if it is thinner."""
    mask = ink > 0
    area = mask.sum()
    edge = (mask & (_neighbours(mask) < 8)).sum()
    width = 2.0 * area / max(1, edge)  # a ribbon's area over half its outline
    missing = round(STROKE * max(ink.shape) - width)
    if missing < 2:
        return ink
    size = (missing + 1) | 1  # a maximum filter of size k widens a line by k - 1
    # A round nib: a square one would widen a diagonal line 1.4 times as much as an upright one.
    rows, cols = np.indices((size, size)) - size // 2
    nib = rows**2 + cols**2 <= (size // 2) ** 2 + size // 2
    return ndimage.maximum_filter(np.pad(ink, size // 2), footprint=nib, mode="nearest")


def resize_longest(pixels, side):
    """`pixels` resized, aspect ratio kept, so that the longer side is `side`."""
    height, width = pixels.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Pillow's resize filters over the whole source footprint when it shrinks: an antialiased result.
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize(size, Image.Resampling.BILINEAR))


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
