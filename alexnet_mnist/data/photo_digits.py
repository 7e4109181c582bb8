"""Photo-like digits: MNIST test digits written large into scenes like phone photos, one kind of
difficulty per case, to measure how well a preparation finds the stroke in real images.

`photo_digits(digits, labels)` gives `(image, label, case)` triples, `per_case` for each case of
`CASES`, deterministically for a `seed`. Case k takes the digits `k * per_case` to
`(k + 1) * per_case - 1` of the array it is given, so pass digits no model trained on: MNIST's test
split (`data.load("mnist", "test[:N]")`).

Each digit is rewritten as a pen would write it (`pen_strokes.pen_path`: its centre line, and each
loop its writer filled, filled), widened to the case's pen and scaled to the case's size. It is laid
on paper as ink (darkening it, or lightening a board), and the scene goes through the case's
lighting, noise and camera.

| case | what makes it hard |
|---|---|
| `ballpoint` | nothing much: a ballpoint pen on white paper, light grain (the reference) |
| `thin_pen` | a fine liner, about 1 % of the digit's height wide, on grey paper |
| `thin_pen_grainy` | the same on grainy grey paper: Gaussian grain, coarse grain and salt-and-pepper pixels |
| `marker` | a thick marker, 10 to 14 % of the digit's height wide |
| `ruled` | ruled paper: faint blue lines, closer together than the digit is tall, through the digit |
| `uneven_light` | light falling off across the page (a gradient) and a vignette |
| `shadow` | the shadow of the phone or a hand over part of the digit, with a soft edge |
| `small_in_large` | a 1200x900 photo in which the digit is about 8 % of the height |
| `specks` | 6 to 16 stray dots of ink, crumbs or dust, some near the digit |
| `pencil` | a pencil: low contrast, grey, its line broken by the paper's grain |
| `jpeg` | strong JPEG compression (quality 10 to 25) of a grey, grainy photo |
| `rotated` | the page turned by up to 15 degrees and seen at a slant (a perspective transform) |
| `blue_pen` | blue ink on cream paper, in colour |
| `chalkboard` | chalk on a dark green board: light on dark, its line broken, the board smudged |
| `sketchpad` | a finger's stroke on an 800x800 RGBA canvas, black on white, as a drawing page gives it |
"""

import io
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from alexnet_mnist.data.pen_strokes import RENDER, ink, pen_path

CASES = (
    "ballpoint",
    "thin_pen",
    "thin_pen_grainy",
    "marker",
    "ruled",
    "uneven_light",
    "shadow",
    "small_in_large",
    "specks",
    "pencil",
    "jpeg",
    "rotated",
    "blue_pen",
    "chalkboard",
    "sketchpad",
)
# Framings beyond the set's cases, in SCENES for benchmarks/other_sources.py: the page does not fill the photo.
FRAMINGS = ("page_on_table", "page_edge", "note_on_table", "form_box", "page_rule")
# Pen widths in pixels at RENDER (a MaxFilter's odd size): 1 is about 1 % of the digit's height.
THIN, PEN, MARKER = 1, 3, 13


class PhotoDigit(NamedTuple):
    image: Image.Image
    label: int
    case: str


def photo_digits(digits, labels, per_case=20, seed=0, cases=CASES) -> list[PhotoDigit]:
    """`per_case` photo-like images for each of `cases`, from uint8 `digits` (`[N, 28, 28]` or
    `[N, 28, 28, 1]`, light on black as MNIST's) and their `labels`; N must be at least
    `per_case * len(CASES)`."""
    digits = np.asarray(digits).reshape(-1, 28, 28)
    if len(digits) < per_case * len(CASES):
        raise ValueError(f"{len(digits)} digits: {per_case * len(CASES)} are needed for {per_case} per case")
    photos = []
    for case in cases:
        k = CASES.index(case)
        for i in range(k * per_case, (k + 1) * per_case):
            rng = np.random.default_rng([seed, k, i])
            photos.append(PhotoDigit(SCENES[case](pen_path(digits[i]), rng), int(labels[i]), case))
    return photos


def _place(coverage, shape, rng, top=None, left=None):
    """`coverage` placed at a random position (or the one given) in a zero field of `shape`."""
    field = np.zeros(shape, np.float32)
    side = coverage.shape[0]
    top = rng.integers(0, max(1, shape[0] - side)) if top is None else top
    left = rng.integers(0, max(1, shape[1] - side)) if left is None else left
    field[top : top + side, left : left + side] = coverage[: shape[0] - top, : shape[1] - left]
    return field


def _scene_size(rng):
    return int(rng.integers(300, 400)), int(rng.integers(360, 480))  # height, width


def _smooth_noise(shape, scale, rng):
    """Low-frequency noise with unit standard deviation at about `scale` pixels."""
    small = rng.normal(size=(max(2, shape[0] // scale), max(2, shape[1] // scale))).astype(np.float32)
    large = np.asarray(Image.fromarray(small).resize((shape[1], shape[0]), Image.Resampling.BICUBIC))
    return large / max(1e-6, large.std())


def lighting(shape, rng, strength):
    """A gradient in a random direction times a vignette: 1 at the brightest, 1 - strength at the darkest."""
    rows = np.arange(shape[0], dtype=np.float32)[:, None] / shape[0] - 0.5
    cols = np.arange(shape[1], dtype=np.float32)[None, :] / shape[1] - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    gradient = rows * np.sin(angle) + cols * np.cos(angle)
    light = 1 - strength * (0.7 * (gradient + 0.71) / 1.42 + 0.3 * 2 * (rows**2 + cols**2))
    return light.astype(np.float32)


def photographed(gray_or_rgb, rng, noise=0.015, blur=0.7):
    """The scene through a camera: a little blur and sensor noise, 8 bits."""
    pixels = np.clip(gray_or_rgb, 0, 1)
    image = Image.fromarray((pixels * 255).round().astype(np.uint8))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(image, np.float32) / 255 + noise * rng.standard_normal(pixels.shape, np.float32)
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8))


def _on_paper(coverage, paper, darkness):
    """Ink that lets `1 - darkness` of the paper's light through where it covers it."""
    return paper * (1 - darkness * coverage)


def _written(line, rng, pen, size=(0.45, 0.75), shape=None):
    shape = shape or _scene_size(rng)
    height = int(rng.uniform(*size) * shape[0])
    return _place(ink(line, height, pen, rng), shape, rng), shape


def _ballpoint(line, rng):
    coverage, shape = _written(line, rng, PEN)
    paper = np.full(shape, rng.uniform(0.8, 0.95), np.float32)
    return photographed(_on_paper(coverage, paper, rng.uniform(0.6, 0.8)), rng)


def _grey_paper(shape, rng):
    return np.full(shape, rng.uniform(0.5, 0.7), np.float32) * lighting(shape, rng, 0.2)


def _thin_pen(line, rng):
    coverage, shape = _written(line, rng, THIN)
    return photographed(_on_paper(coverage, _grey_paper(shape, rng), rng.uniform(0.45, 0.65)), rng, noise=0.03)


def _grainy(pixels, rng, amount):
    """Gaussian grain, coarse grain and `amount` of the pixels set to black or white (salt and pepper)."""
    pixels = pixels + 0.05 * rng.standard_normal(pixels.shape, np.float32) + 0.03 * _smooth_noise(pixels.shape, 3, rng)
    flips = rng.random(pixels.shape)
    pixels[flips < amount / 2] = 0.0
    pixels[flips > 1 - amount / 2] = 1.0
    return pixels


def _thin_pen_grainy(line, rng):
    coverage, shape = _written(line, rng, THIN)
    pixels = _on_paper(coverage, _grey_paper(shape, rng), rng.uniform(0.45, 0.65))
    return photographed(_grainy(pixels, rng, rng.uniform(0.005, 0.02)), rng, noise=0.01, blur=0)


def _marker(line, rng):
    coverage, shape = _written(line, rng, MARKER)
    paper = np.full(shape, rng.uniform(0.75, 0.95), np.float32) * lighting(shape, rng, 0.15)
    return photographed(_on_paper(coverage, paper, rng.uniform(0.8, 0.9)), rng)


def _ruled(line, rng):
    coverage, shape = _written(line, rng, PEN)
    paper = np.ones((*shape, 3), np.float32) * np.float32([0.96, 0.95, 0.9]) * rng.uniform(0.85, 1.0)
    spacing = int(rng.uniform(0.12, 0.2) * shape[0])
    rule = np.float32([0.55, 0.7, 0.95])  # light blue
    for row in range(int(rng.integers(0, spacing)), shape[0], spacing):
        paper[row : row + 2] *= rule
    paper *= lighting(shape, rng, 0.15)[..., None]
    pen = np.float32([0.15, 0.15, 0.2])  # the light a black ballpoint lets through
    return photographed(paper * (1 - coverage[..., None] * (1 - pen)), rng)


def _uneven_light(line, rng):
    coverage, shape = _written(line, rng, PEN)
    paper = rng.uniform(0.8, 0.95) * lighting(shape, rng, rng.uniform(0.5, 0.7))
    return photographed(_on_paper(coverage, paper, rng.uniform(0.6, 0.8)), rng, noise=0.02)


def _shadow(line, rng):
    coverage, shape = _written(line, rng, PEN)
    rows, cols = np.arange(shape[0], dtype=np.float32)[:, None], np.arange(shape[1], dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    # A straight shadow edge through a random point near the middle, blurred over about 15 pixels.
    across = (rows - shape[0] * rng.uniform(0.3, 0.7)) * np.sin(angle) + (cols - shape[1] * rng.uniform(0.3, 0.7)) * np.cos(angle)
    shade = 1 - rng.uniform(0.4, 0.55) / (1 + np.exp(-across / 6))
    paper = rng.uniform(0.8, 0.95) * shade
    return photographed(_on_paper(coverage, paper, rng.uniform(0.6, 0.8)), rng, noise=0.02)


def _small_in_large(line, rng):
    shape = (900, 1200)
    coverage, _ = _written(line, rng, PEN, size=(0.07, 0.09), shape=shape)
    paper = rng.uniform(0.7, 0.9) * lighting(shape, rng, 0.3)
    return photographed(_on_paper(coverage, paper, rng.uniform(0.6, 0.8)), rng, noise=0.025)


def _specks(line, rng):
    coverage, shape = _written(line, rng, PEN, size=(0.4, 0.6))
    dots = Image.new("L", shape[::-1], 0)
    for _ in range(rng.integers(6, 17)):
        radius = rng.uniform(1, 0.012 * shape[0])
        row, col = rng.uniform(0, 1, 2) * shape
        ImageDraw.Draw(dots).ellipse([col - radius, row - radius, col + radius, row + radius], fill=255)
    coverage = np.maximum(coverage, np.asarray(dots.filter(ImageFilter.GaussianBlur(0.5)), np.float32) / 255)
    paper = np.full(shape, rng.uniform(0.75, 0.95), np.float32)
    return photographed(_on_paper(coverage, paper, rng.uniform(0.6, 0.8)), rng)


def _pencil(line, rng):
    coverage, shape = _written(line, rng, PEN)
    grain = np.clip(0.6 + 0.4 * _smooth_noise(shape, 1, rng), 0, 1)  # graphite catches on the fibres
    paper = rng.uniform(0.75, 0.9) * lighting(shape, rng, 0.2)
    return photographed(_on_paper(coverage * grain, paper, rng.uniform(0.2, 0.35)), rng, noise=0.02)


def _jpeg(line, rng):
    coverage, shape = _written(line, rng, PEN)
    pixels = _on_paper(coverage, _grey_paper(shape, rng), rng.uniform(0.5, 0.7))
    photo = photographed(pixels, rng, noise=0.04)
    encoded = io.BytesIO()
    photo.save(encoded, "JPEG", quality=int(rng.integers(10, 26)))
    return Image.open(encoded).copy()


def _rotated(line, rng):
    coverage, shape = _written(line, rng, PEN, size=(0.4, 0.55))
    paper = np.full(shape, rng.uniform(0.8, 0.95), np.float32)
    photo = photographed(_on_paper(coverage, paper, rng.uniform(0.6, 0.8)), rng)
    turned = photo.rotate(rng.uniform(-15, 15), Image.Resampling.BICUBIC, fillcolor=int(paper[0, 0] * 255))
    height, width = shape
    # A slant: the page's far edge narrower than its near edge, by up to 15 %.
    pinch = rng.uniform(0, 0.15) * width / 2
    quad = (pinch, 0, 0, height, width, height, width - pinch, 0)
    return turned.transform(turned.size, Image.Transform.QUAD, quad, Image.Resampling.BICUBIC, fillcolor=int(paper[0, 0] * 255))


def _blue_pen(line, rng):
    coverage, shape = _written(line, rng, PEN)
    paper = np.float32([0.97, 0.93, 0.8]) * rng.uniform(0.8, 0.95) * lighting(shape, rng, 0.2)[..., None]
    pen = np.float32([0.25, 0.35, 0.85])  # blue ink lets blue through
    return photographed(paper * (1 - coverage[..., None] * (1 - pen)), rng)


def _chalkboard(line, rng):
    coverage, shape = _written(line, rng, PEN + 2)
    board = np.float32([0.18, 0.27, 0.22]) * (1 + 0.15 * _smooth_noise(shape, 40, rng))[..., None]
    chalk = coverage * np.clip(0.7 + 0.35 * _smooth_noise(shape, 1, rng), 0, 1)  # chalk skips on the board
    pixels = board + chalk[..., None] * (np.float32([0.9, 0.92, 0.88]) - board)
    return photographed(pixels, rng, noise=0.02)


def _sketchpad(line, rng):
    side = 800
    # A finger's stroke: about 6 % of the canvas wide, the digit 50 to 85 % of the canvas high.
    height = int(rng.uniform(0.5, 0.85) * side)
    coverage = _place(ink(line, height, int(0.06 * side * RENDER / height) | 1, rng), (side, side), rng)
    gray = ((1 - coverage) * 255).round().astype(np.uint8)
    rgba = np.stack([gray, gray, gray, np.full_like(gray, 255)], axis=-1)
    return Image.fromarray(rgba, "RGBA")


def _page_on_table(line, rng):
    """The page in the middle of the photo, a dark grained table around it (5 to 20 % of each side)."""
    shape = _scene_size(rng)
    light = rng.uniform(0.1, 0.3) + 0.04 * _smooth_noise(shape, 8, rng)
    top, left = (int(rng.uniform(0.05, 0.2) * side) for side in shape)
    bottom, right = (side - int(rng.uniform(0.05, 0.2) * side) for side in shape)
    light[top:bottom, left:right] = rng.uniform(0.8, 0.95)
    height = int(0.55 * (bottom - top))
    coverage = _place(ink(line, height, PEN, rng), shape, rng, top + int(rng.integers(0, bottom - top - height)),
                      left + int(rng.integers(0, max(1, right - left - height))))
    return photographed(_on_paper(coverage, light, rng.uniform(0.6, 0.8)), rng)


def _page_edge(line, rng):
    """The page's edge in view: a strip of dark table, 5 to 12 % of the width, along one side."""
    coverage, shape = _written(line, rng, PEN, size=(0.4, 0.5))
    light = np.full(shape, rng.uniform(0.8, 0.95), np.float32)
    strip = int(rng.uniform(0.05, 0.12) * shape[1])
    table = slice(0, strip) if rng.random() < 0.5 else slice(shape[1] - strip, shape[1])
    light[:, table] = rng.uniform(0.1, 0.3)
    coverage[:, max(0, table.start - 10) : table.stop + 10] = 0  # the digit is on the page
    return photographed(_on_paper(coverage, light, rng.uniform(0.6, 0.8)), rng)


def _note_on_table(line, rng):
    """A note or a card, 25 to 70 % of the photo's height, somewhere on a grained table (10 to 40 % of its light)."""
    shape = _scene_size(rng)
    light = rng.uniform(0.1, 0.4) + 0.04 * _smooth_noise(shape, 8, rng)
    side = int(rng.uniform(0.25, 0.7) * shape[0])
    top, left = int(rng.integers(0, shape[0] - side)), int(rng.integers(0, shape[1] - side))
    light[top : top + side, left : left + side] = rng.uniform(0.8, 0.95)
    margin = side // 5  # the digit is 60 % of the note's height
    coverage = _place(ink(line, side - 2 * margin, PEN, rng), shape, rng, top + margin, left + margin)
    return photographed(_on_paper(coverage, light, rng.uniform(0.6, 0.8)), rng)


def _form_box(line, rng):
    """A digit written in a form's printed box: a grey to black frame 15 to 35 % of the digit's height from it."""
    coverage, shape = _written(line, rng, PEN)
    light = np.full(shape, rng.uniform(0.8, 0.95), np.float32)
    rows, cols = np.nonzero(coverage > 0.5)
    gap = int(rng.uniform(0.15, 0.35) * (rows.max() - rows.min()))
    top, left = max(0, rows.min() - gap), max(0, cols.min() - gap)
    bottom, right = min(shape[0], rows.max() + gap), min(shape[1], cols.max() + gap)
    frame = np.zeros(shape, np.float32)
    frame[top:bottom, left:right] = 1
    frame[top + 2 : bottom - 2, left + 2 : right - 2] = 0  # printed lines 2 pixels wide
    return photographed(_on_paper(np.maximum(coverage, rng.uniform(0.6, 1.0) * frame), light, 0.8), rng)


def _page_rule(line, rng):
    """A dark line down the whole page, through or beside the digit: a notebook's margin, a fold."""
    coverage, shape = _written(line, rng, PEN)
    column = int(rng.uniform(0.05, 0.95) * shape[1])
    coverage[:, column : column + 3] = np.maximum(coverage[:, column : column + 3], rng.uniform(0.4, 0.6))
    return photographed(_on_paper(coverage, np.full(shape, rng.uniform(0.8, 0.95), np.float32), 0.8), rng)


SCENES = {
    "ballpoint": _ballpoint,
    "thin_pen": _thin_pen,
    "thin_pen_grainy": _thin_pen_grainy,
    "marker": _marker,
    "ruled": _ruled,
    "uneven_light": _uneven_light,
    "shadow": _shadow,
    "small_in_large": _small_in_large,
    "specks": _specks,
    "pencil": _pencil,
    "jpeg": _jpeg,
    "rotated": _rotated,
    "blue_pen": _blue_pen,
    "chalkboard": _chalkboard,
    "sketchpad": _sketchpad,
    "page_on_table": _page_on_table,
    "page_edge": _page_edge,
    "note_on_table": _note_on_table,
    "form_box": _form_box,
    "page_rule": _page_rule,
}
