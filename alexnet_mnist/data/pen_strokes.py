"""How a pen writes an MNIST digit: the path it retraces (`pen_path`) and its ink at a pen width and
a size (`ink`). The photo-like sets (`photo_digits`, benchmarks/other_sources.py) write with these."""

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

RENDER = 112  # the side at which a digit's centre line is found and widened: 4x MNIST's 28
# Ink this many times the stroke's half-width from the shape's edge is a filled loop, not a stroke:
# a disc as wide as two strokes fits in it, which a crossing of two strokes (1.4 half-widths) does not.
FILLED = 2.0


def pen_path(digit) -> np.ndarray:
    """What a pen retraces of a uint8 28x28 `digit`, boolean `[RENDER, RENDER]`: the one-pixel centre
    line of its strokes, and each loop its writer filled with ink, filled. Thinned to a line, a filled
    loop would leave another digit: a 9 a 7, a 6 a 1, an 8 a 9."""
    large = Image.fromarray(np.asarray(digit, np.uint8)).resize((RENDER, RENDER), Image.Resampling.BICUBIC)
    shape = np.asarray(large) > 100
    line = _thin(shape)
    if not line.any():
        return line
    depth = ndimage.distance_transform_edt(shape)
    reach = FILLED * np.median(depth[line])  # the stroke's half-width is the depth along its centre line
    core = depth >= reach
    return line | (shape & (ndimage.distance_transform_edt(~core) <= reach)) if core.any() else line


def _thin(mask):
    """Zhang and Suen's thinning (1984): peel border pixels that do not join two parts, in two
    alternating sub-steps, until a one-pixel-wide line with the same connections is left."""
    m = np.pad(mask, 1)
    while True:
        changed = False
        for step in (0, 1):
            c = m[1:-1, 1:-1]
            # P2..P9: north, north-east, east, ... clockwise around each pixel.
            p = [m[:-2, 1:-1], m[:-2, 2:], m[1:-1, 2:], m[2:, 2:], m[2:, 1:-1], m[2:, :-2], m[1:-1, :-2], m[:-2, :-2]]
            count = sum(n.astype(np.int8) for n in p)
            crossings = sum((~p[j] & p[(j + 1) % 8]).astype(np.int8) for j in range(8))
            n, e, s, w = p[0], p[2], p[4], p[6]
            keep = (n & e & s) | (e & s & w) if step == 0 else (n & e & w) | (n & s & w)
            peel = c & (count >= 2) & (count <= 6) & (crossings == 1) & ~keep
            if peel.any():
                m[1:-1, 1:-1] = c & ~peel
                changed = True
        if not changed:
            return m[1:-1, 1:-1]


def ink(line, height, pen, rng) -> np.ndarray:
    """The `line` of `pen_path` written with a pen `pen` pixels wide at RENDER, as float32 coverage in
    [0, 1] of a square `height` pixels high, tilted by up to 3 degrees as a hand writes."""
    wide = Image.fromarray(line.astype(np.uint8) * 255)
    if pen > 1:
        wide = wide.filter(ImageFilter.MaxFilter(pen))
    wide = wide.rotate(rng.uniform(-3, 3), Image.Resampling.BILINEAR)
    scale = height / RENDER
    large = wide.resize((height, height), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(0.6 * scale))
    coverage = np.asarray(large, np.float32) / 255
    # A pen's edge: the blurred line made solid, with a one-pixel antialiased rim.
    return np.clip((coverage - 0.15) * 4, 0, 1)
