"""Training-time augmentation of whole batches inside the tf.data graph.

Two kinds of variation between the digits a model trains on and those it meets:
- geometry: random affine transforms (translation, rotation, scale, shear) by
  `tf.raw_ops.ImageProjectiveTransformV3`, and elastic distortion (as Simard et al. 2003: a smooth
  random displacement field, here interpolated bicubically from a coarse grid), sampled bilinearly;
- writers and scanners: stroke width (towards a 3×3 dilation or erosion, or a 5×5 dilation), a pen's
  even stroke (the digit thinned to its centre line and drawn again 2 to 3 pixels wide), blur
  (towards a Gaussian of σ = 1), resolution loss (down to 10–20 pixels and back), contrast and brightness;
- occlusion: random erasing (Zhong et al. 2017), a rectangle of noise over part of the image;
- mirroring left-right, for data whose classes it preserves (clothes, not digits).

Every random number is drawn by stateless ops from the seed passed in, which the pipeline derives from
(seed, epoch, step) alone: a batch is augmented identically in a rerun, after a resume, and whatever
`train.steps_per_execution` groups it with.
"""

import dataclasses
import math

import tensorflow as tf

from alexnet_mnist.config import AugmentConfig

SIZE = 28
CENTRE = (SIZE - 1) / 2
# Keys folded into the batch's seed, apart from the four split from it for the first transforms, so
# that each later one draws its own numbers: turning it on or off leaves every other draw as it was.
PICK, ERASE, FLIP, THICK, PEN = 1, 2, 3, 4, 5
THINNING_PASSES = 6  # Zhang-Suen passes, each a pixel off both sides of a stroke: up to 12 pixels wide, MNIST's blobs included
PEN_SIGMA = 0.8  # the redrawn line's blur, pixels: with the gains below, a pen 2 to 3 pixels wide
PEN_GAIN = (2.5, 4.5)


@dataclasses.dataclass
class Augmentation(AugmentConfig):
    """The transforms with the magnitudes of `AugmentConfig` (the `augment=` keys); 0 turns one off."""

    @property
    def enabled(self) -> bool:
        """Whether any magnitude is set (`elastic_sigma` is a length scale, not a magnitude) for a
        share of the images above 0."""
        magnitudes = dataclasses.asdict(self)
        del magnitudes["elastic_sigma"], magnitudes["probability"]
        return self.probability > 0 and any(magnitudes.values())

    def __call__(self, images, seed):
        """`images` (float32 `[N, 28, 28, 1]` in [0, 1]) transformed with the stateless `seed` ([2] ints);
        with `probability` below 1, only that share of them (drawn per image), the others as they are."""
        augmented = self._transform(images, seed)
        if self.probability >= 1:
            return augmented
        picked = _picked(images, self.probability, tf.random.experimental.stateless_fold_in(seed, PICK))
        return tf.where(picked, augmented, images)

    def _transform(self, images, seed):
        # One seed per transform, so that turning one on or off leaves the others' draws alone.
        keys = tf.unstack(tf.random.experimental.stateless_split(seed, num=4))
        n = tf.shape(images)[0]
        if self.flip:
            mirrored = _picked(images, self.flip, tf.random.experimental.stateless_fold_in(seed, FLIP))
            images = tf.where(mirrored, tf.reverse(images, axis=[2]), images)

        def uniform(key, columns):
            """[n, columns] draws in [-1, 1), one row per image."""
            return tf.random.stateless_uniform([n, columns], key, minval=-1.0, maxval=1.0)

        if self.translate or self.rotate or self.scale or self.shear:
            draws = uniform(keys[0], 5)
            images = affine(
                images,
                shift=(draws[:, 0] * self.translate, draws[:, 1] * self.translate),
                angle=draws[:, 2] * math.radians(self.rotate),
                zoom=1.0 + draws[:, 3] * self.scale,
                shear=draws[:, 4] * math.radians(self.shear),
            )
        if self.elastic_alpha:
            # Displacements drawn every `elastic_sigma` pixels, bicubic in between: a smooth random
            # field like Simard's Gaussian-smoothed one, at a fraction of the cost of a wide blur.
            nodes = max(2, round(SIZE / self.elastic_sigma) + 1)
            field = tf.random.stateless_uniform([n, nodes, nodes, 2], keys[1], minval=-1.0, maxval=1.0)
            images = _warp(images, tf.image.resize(field, [SIZE, SIZE], "bicubic") * self.elastic_alpha)
        # Per-image steps: stroke in [-1, 1) (thinner below 0), blur in [0, 1), contrast in [0, 1), brightness in [-1, 1).
        stroke, blur, contrast, brightness = tf.unstack(_per_image(uniform(keys[2], 4)), axis=-1)
        stroked = images
        if self.stroke:
            # Above 1 the whole one-pixel step becomes common (1.5: a third of the images).
            step = tf.clip_by_value(stroke * self.stroke, -1.0, 1.0)
            stroked += tf.nn.relu(step) * (dilate(images) - images) + tf.nn.relu(-step) * (erode(images) - images)
        if self.thick:
            # Broad pens and blotting scans, beyond the one-pixel step.
            thick = _picked(images, self.thick, tf.random.experimental.stateless_fold_in(seed, THICK))
            stroked = tf.where(thick, dilate(dilate(images)), stroked)
        if self.pen:
            # A pen or a finger on the drawing page writes every stroke equally wide, unlike MNIST's
            # writers, whose strokes swell and fill small loops.
            pen_seed, gain_seed = tf.unstack(tf.random.experimental.stateless_split(tf.random.experimental.stateless_fold_in(seed, PEN), num=2))
            gain = tf.random.stateless_uniform([n, 1, 1, 1], gain_seed, minval=PEN_GAIN[0], maxval=PEN_GAIN[1])
            redrawn = tf.minimum(gain * gaussian_blur(centre_line(images), PEN_SIGMA), 1.0)
            stroked = tf.where(_picked(images, self.pen, pen_seed), redrawn, stroked)
        images = stroked
        if self.blur:
            images += tf.abs(blur) * self.blur * (gaussian_blur(images, 1.0) - images)
        if self.lowres:
            images = _lowres(images, self.lowres, keys[3])
        if self.contrast or self.brightness:
            mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
            images = (images - mean) * (1.0 - tf.abs(contrast) * self.contrast) + mean + brightness * self.brightness
        images = tf.clip_by_value(images, 0.0, 1.0)
        if self.erase:
            images = _erase(images, self.erase, tf.random.experimental.stateless_fold_in(seed, ERASE))
        return images


def _picked(images, share, seed):
    """[N, 1, 1, 1] booleans: True for a random `share` of the images, one draw each."""
    return tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) < share


def _per_image(values):
    """[n, k] values as [n, 1, 1, 1, k], to scale [n, 28, 28, 1] images once unstacked."""
    return values[:, None, None, None, :]


def affine(images, shift, angle, zoom, shear):
    """Each image shifted by (columns, rows), rotated counter-clockwise as displayed by `angle`, zoomed
    and sheared (radians) about its centre, bilinearly, zeros filled in; one value of each per image."""
    cos, sin = tf.cos(angle), tf.sin(angle)
    # ImageProjectiveTransformV3 maps each output pixel to the input pixel it samples, so the rows
    # below are the inverse of the transform the digit undergoes (its parameters are symmetric).
    a0, a1 = cos / zoom, (-sin + tf.tan(shear) * cos) / zoom
    b0, b1 = sin / zoom, (cos + tf.tan(shear) * sin) / zoom
    a2 = CENTRE - a0 * CENTRE - a1 * CENTRE - shift[0]
    b2 = CENTRE - b0 * CENTRE - b1 * CENTRE - shift[1]
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=[SIZE, SIZE],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _warp(images, displacement):
    """Each pixel sampled bilinearly at its position plus `displacement` ([N, 28, 28, (dy, dx)]), zeros outside."""
    grid = tf.cast(tf.stack(tf.meshgrid(tf.range(SIZE), tf.range(SIZE), indexing="ij"), axis=-1), tf.float32)
    position = grid + displacement
    corner = tf.floor(position)
    weight = position - corner
    corner = tf.cast(corner, tf.int32)
    padded = tf.pad(images[..., 0], [[0, 0], [1, 1], [1, 1]])  # a zero border for samples outside
    batch = tf.broadcast_to(tf.range(tf.shape(images)[0])[:, None, None], tf.shape(corner)[:3])
    result = 0.0
    for dy in (0, 1):
        for dx in (0, 1):
            y = tf.clip_by_value(corner[..., 0] + dy + 1, 0, SIZE + 1)
            x = tf.clip_by_value(corner[..., 1] + dx + 1, 0, SIZE + 1)
            pixels = tf.gather_nd(padded, tf.stack([batch, y, x], axis=-1))
            wy = weight[..., 0] if dy else 1.0 - weight[..., 0]
            wx = weight[..., 1] if dx else 1.0 - weight[..., 1]
            result += wy * wx * pixels
    return result[..., None]


def gaussian_blur(images, sigma):
    """`images` ([N, H, W, C]) convolved with a Gaussian of `sigma` pixels (±3σ taps), zero-padded."""
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = tf.exp(-tf.square(tf.range(-radius, radius + 1, dtype=tf.float32)) / (2 * sigma**2))
    taps /= tf.reduce_sum(taps)
    channels = images.shape[-1]
    rows = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, channels, 1])
    columns = tf.reshape(rows, [1, -1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(images, rows, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(blurred, columns, [1, 1, 1, 1], "SAME")


def centre_line(images):
    """The one-pixel centre line of each digit's strokes (pixels above 0.5), by `THINNING_PASSES` of
    Zhang and Suen's thinning (1984): border pixels that do not join two parts are peeled, in two
    alternating sub-steps."""
    line = tf.cast(images[..., 0] > 0.5, tf.float32)
    for _ in range(THINNING_PASSES):
        for step in (0, 1):
            padded = tf.pad(line, [[0, 0], [1, 1], [1, 1]])
            # North, north-east, east, ... clockwise around each pixel.
            p = [padded[:, r : r + SIZE, c : c + SIZE] for r, c in ((0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0))]
            count = tf.add_n(p)
            crossings = tf.add_n([(1.0 - p[j]) * p[(j + 1) % 8] for j in range(8)])
            n, e, s, w = p[0], p[2], p[4], p[6]
            keep = n * e * s + e * s * w if step == 0 else n * e * w + n * s * w
            peel = (count >= 2) & (count <= 6) & tf.equal(crossings, 1.0) & tf.equal(keep, 0.0)
            line *= 1.0 - tf.cast(peel, tf.float32)
    return line[..., None]


def dilate(images):
    """Strokes one pixel thicker: the 3×3 maximum."""
    return tf.nn.max_pool2d(images, 3, 1, "SAME")


def erode(images):
    """Strokes one pixel thinner: the 3×3 minimum."""
    return -tf.nn.max_pool2d(-images, 3, 1, "SAME")


def _lowres(images, share, seed):
    """A random `share` of the images brought down to one size of 10-20 pixels (drawn per batch)
    and back up, as a coarse scan or a small photo would be."""
    size_seed, pick_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    size = tf.random.stateless_uniform([], size_seed, minval=10, maxval=21, dtype=tf.int32)
    coarse = tf.image.resize(tf.image.resize(images, [size, size], "area"), [SIZE, SIZE], "bilinear")
    return tf.where(_picked(images, share, pick_seed), coarse, images)


def _erase(images, share, seed):
    """Random erasing (Zhong et al. 2017): in a random `share` of the images, one rectangle of 2-40 % of
    the image, aspect ratio 1/3 to 3, anywhere inside it, replaced by uniform noise in [0, 1)."""
    n = tf.shape(images)[0]
    shape_seed, place_seed, noise_seed, pick_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=4))
    area, aspect = tf.unstack(tf.random.stateless_uniform([2, n], shape_seed), axis=0)
    area = (0.02 + 0.38 * area) * SIZE**2
    aspect = tf.exp((2.0 * aspect - 1.0) * math.log(3.0))  # log-uniform in [1/3, 3]
    extent = tf.minimum(tf.stack([tf.sqrt(area * aspect), tf.sqrt(area / aspect)], axis=1), SIZE)  # [n, (rows, columns)]
    start = tf.random.stateless_uniform([n, 2], place_seed) * (SIZE - extent)
    pixels = tf.range(SIZE, dtype=tf.float32) + 0.5  # pixel centres
    inside = (pixels >= start[:, :, None]) & (pixels < (start + extent)[:, :, None])  # [n, 2, 28]
    box = (inside[:, 0, :, None] & inside[:, 1, None, :])[..., None] & _picked(images, share, pick_seed)
    return tf.where(box, tf.random.stateless_uniform(tf.shape(images), noise_seed), images)
