"""Where the page lies in a photo, for `preparation.prepare_digit`: a page that lies within the photo
(`page_in_photo`: a note on a table), and what lies around a page that fills most of it, painted
over with the page's level (`on_paper`: a table, a wall around a board).

Both work on blocks of `PAGE_CELL` pixels and their medians, which stay the paper's level where a
stroke crosses a block, and compare levels in ratios of light.
"""

import numpy as np
from scipy import ndimage, spatial

DIM = 0.05  # added to intensities before their ratio: black ink on black paper is not infinitely dark
TINY = 1e-6  # the least grain of a page, so that a perfectly smooth one still has a ratio
PAGE, PAGE_CELL = 0.33, 8  # blocks of 8x8 pixels with under a third (or over 3 times) of the page's light are off it
GRAINED, GRAIN = 0.67, 3  # or with under 2/3 of it and 3 times the page's grain
EDGE_RUN = 0.6  # a region along more than this share of a side of the image is not the page
# A page within the photo spans at least this share of each side of the image and fills this much
# of its convex hull, or this much with the digit's holes filled.
PAGE_SIDE, SOLID, FILLED = 0.15, 0.7, 0.75
STROKE_CONTRAST = 1.25  # a page holds pixels (half a percent) this much darker or lighter than its paper
# ... that lie inside it: of 160 photo-like notes' and pages' ink, at most 9 % lies within 3 pixels of
# the page's edge; of enlarged light-on-dark MNIST digits taken for notes, 5 to 100 %...
INK_AT_EDGE, EDGE_PIXELS = 0.3, 3
# ... are at most 1.5 times as wide as the paper around them (the field inside a light 0's loop is
# wider than its stroke; a thick marker's digit on a note narrower than the note's margin), on a page
# that fills 95 % of its convex hull (the photo-like notes and pages 97.6 % or more; a light 6's or
# 9's outline, taken for a note, 45 to 90 %).
INK_WIDTH, CONVEX = 1.5, 0.95


def block_medians(gray, factor):
    """The median of each `factor` x `factor` block of `gray` (edges repeated): unlike a block's mean,
    it stays the background's level where ink crosses the block (a 28x28 digit has only 4 blocks)."""
    height, width = gray.shape
    padded = np.pad(gray, ((0, -height % factor), (0, -width % factor)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return np.median(blocks, axis=(1, 3)).astype(np.float32)


def commonest_level(light):
    """The commonest of the blocks' log `light` levels: a page's, where it fills most of the image."""
    counts, edges = np.histogram(light, bins=32)
    return edges[np.argmax(counts)] + (edges[1] - edges[0]) / 2


def page_in_photo(gray):
    """The box (top, bottom, left, right; pixels of `gray`) of a page that lies within the photo,
    a note or a card on a table, with a mask of the page's pixels in the box; or None. The page: a
    region of blocks lighter than the commonest level by a factor 1 / `GRAINED` (where the table is
    the commonest), or the largest region at that level (where the page is), that is large and
    solid and meets at most one side of the image (`_page_like`) and holds a stroke
    (`_holds_stroke`); the largest such region, inside its edge by a block (the edge's blocks mix
    table and paper)."""
    light = np.log(block_medians(gray, PAGE_CELL) + DIM)
    common = commonest_level(light)
    pages = []
    for lighter in (True, False):
        mask = light - common > -np.log(GRAINED) if lighter else np.abs(light - common) <= -np.log(GRAINED)
        labels, count = ndimage.label(mask)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        for part, box in enumerate(ndimage.find_objects(labels)):
            # At the commonest level, the paper inside a 0 is a region too: only the largest counts.
            if not lighter and sizes[part] < sizes.max():
                continue
            region = labels[box] == part + 1
            if not _page_like(region, box, light.shape):
                continue
            # The page's edge blocks mix table and paper: a block inside it, and the table in the
            # box's corners around a turned note, are left out.
            inner = ndimage.binary_erosion(ndimage.binary_fill_holes(region))
            if inner.any() and _holds_stroke(gray, inner, box):
                pages.append((sizes[part], box, inner))
    if not pages:
        return None
    _, (rows, cols), inner = max(pages, key=lambda page: page[0])
    inner = inner[1:-1, 1:-1]
    box = tuple(PAGE_CELL * edge for edge in (rows.start + 1, rows.stop - 1, cols.start + 1, cols.stop - 1))
    return box, _per_pixel(inner, (box[1] - box[0], box[3] - box[2]))


def _holds_stroke(gray, inner, box):
    """Whether the pixels of `gray` in the blocks `inner` of a region within `box` (its holes
    filled, a block inside its edge) hold a digit as a note does: pixels (half a percent or more)
    off its level by `STROKE_CONTRAST`, the ink, that lie inside it (at most `INK_AT_EDGE` of them
    within `EDGE_PIXELS` of its edge) and are at most `INK_WIDTH` times as wide as the paper around
    them, on a page that fills `CONVEX` of its convex hull, pixel by pixel. The paper inside a 0,
    whose edge blocks hold the 0's stroke, holds none; nor does a light digit on a dark field (an
    enlarged MNIST digit, thick chalk), whose strokes would be the paper: its stroke's shaded sides
    and the field inside its loops would be the ink, and the page the digit's outline."""
    rows, cols = box
    window = np.log(gray[rows.start * PAGE_CELL : rows.stop * PAGE_CELL, cols.start * PAGE_CELL : cols.stop * PAGE_CELL] + DIM)
    on_page = _per_pixel(inner, window.shape)
    off_level = np.abs(window - np.median(window[on_page]))
    ink = on_page & (off_level > np.log(STROKE_CONTRAST))
    if ink.sum() < 0.005 * on_page.sum():
        return False
    at_edge = ink & ndimage.binary_dilation(~on_page, iterations=EDGE_PIXELS)
    widest = [ndimage.distance_transform_edt(mask).max() for mask in (ink, on_page & ~ink)]
    if at_edge.sum() > INK_AT_EDGE * ink.sum() or widest[0] > INK_WIDTH * widest[1]:
        return False
    # The page: the pixels at the paper's level joined to most of the inner blocks', and the ink they enclose.
    labels, _ = ndimage.label(off_level <= -np.log(GRAINED))
    counts = np.bincount(labels[on_page])
    counts[0] = 0
    page = ndimage.binary_fill_holes(labels == counts.argmax())
    return page.sum() >= CONVEX * _hull_area(page)


def _hull_area(mask):
    """The area of the convex hull of `mask`'s cells, each a unit square (so never a degenerate hull)."""
    edge = mask ^ ndimage.binary_erosion(mask)
    corners = np.argwhere(edge)[:, None, :] + np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    return spatial.ConvexHull(corners.reshape(-1, 2)).volume  # a 2-D hull's volume is its area


def _page_like(region, box, shape):
    """Whether a `region` of blocks within its `box` (slices of an image of `shape` blocks) spans
    `PAGE_SIDE` of each side of the image, meets at most one side of it and fills `SOLID` of its
    convex hull (`FILLED` once the digit's holes are filled: a digit's stroke fills far less)."""
    rows, cols = box
    sides = (rows.start == 0) + (cols.start == 0) + (rows.stop == shape[0]) + (cols.stop == shape[1])
    if min(region.shape) < 3 or min(region.shape[0] / shape[0], region.shape[1] / shape[1]) < PAGE_SIDE or sides > 1:
        return False  # too small to hold a block inside its edge, or a shadow's lit half
    hull = _hull_area(region)  # a turned note fills its hull, not its box
    return region.sum() >= SOLID * hull and ndimage.binary_fill_holes(region).sum() >= FILLED * hull


def on_paper(gray, margin=0, paper=None):
    """`gray` with `margin` pixels of the level `paper` added on every side (MNIST's margin, for an
    image whose digit fills its frame), then what lies around the page painted over with the
    page's level. What lies around the page: regions of `PAGE_CELL` blocks whose light is off
    the commonest blocks' by more than a factor 1 / `PAGE` (or by 1 / `GRAINED`, over a region
    whose median block has `GRAIN` times the page's grain) and that run along more than
    `EDGE_RUN` of a side of the image (a table around white paper or a strip of it, a wall
    around a board), widened by a block to cover the page's edge; a digit's stroke meets the
    edge of a photo over no more than its width. Left there, white paper beside a dark table
    would pass for light ink, and the table's grain for ink in deep shade."""
    framed = np.pad(gray, margin, constant_values=paper) if margin else gray
    light = np.log(block_medians(framed, PAGE_CELL) + DIM)
    page = commonest_level(light)
    on_page = np.abs(light - page) <= -np.log(PAGE)
    # A grained region off the page's light by less (a lighter table) is beside the page too; a
    # shadow as deep is as smooth as the paper it falls on. Grain within a block (fine) or between
    # neighbouring blocks (coarse), relative to the page's, is judged over the whole region: a
    # table's smoother patches do not split it into pieces left behind as ink.
    fine = block_medians(np.abs(framed - _per_pixel(np.exp(light) - DIM, framed.shape)), PAGE_CELL)
    coarse = np.abs(light - ndimage.median_filter(light, size=3, mode="nearest"))
    rough = np.maximum(*(grain / max(np.median(grain[on_page]), TINY) for grain in (fine, coarse)))
    regions, count = ndimage.label(np.abs(light - page) > -np.log(GRAINED))
    grained = np.isin(regions, 1 + np.flatnonzero(ndimage.median(rough, regions, np.arange(1, count + 1)) > GRAIN))
    labels, count = ndimage.label(~on_page | grained)
    sides = (labels[0], labels[-1], labels[:, 0], labels[:, -1])
    run = np.max([np.bincount(side, minlength=count + 1)[1:] / len(side) for side in sides], axis=0)
    off = np.isin(labels, 1 + np.flatnonzero(run > EDGE_RUN))
    off = ndimage.maximum_filter(_per_pixel(off, framed.shape), size=2 * PAGE_CELL + 1)
    level = np.median(framed[~off]) if not off.all() else np.median(framed)
    return np.where(off, level, framed).astype(np.float32)


def _per_pixel(blocks, shape):
    """A value per `PAGE_CELL` block repeated over its pixels, cut to `shape`."""
    return np.repeat(np.repeat(blocks, PAGE_CELL, 0), PAGE_CELL, 1)[: shape[0], : shape[1]]
