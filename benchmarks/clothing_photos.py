"""How a trained Fashion-MNIST model reads products photographed as a user would, through
`prepare_clothing` now and at an earlier commit.

    python benchmarks/clothing_photos.py --run RUN_OR_FILE [--before COMMIT] [--count 300] [--write]

The products are Fashion-MNIST test images 5000 to 5000 + `--count` (TFDS_DATA_DIR). They come as
Fashion-MNIST gives them, and as photos: Fashion-MNIST made its images from product photos on white,
negated; each image is turned back into such a photo (negated, enlarged to 280 pixels, on a 400x400
white page), then shot:

| framing | what it is |
|---|---|
| `fashion_png` | the image as Fashion-MNIST gives it, a 28x28 PNG, light on black, the product touching two sides |
| `fashion_png_dark_on_light` | the same, negated: a product photo cropped to the product |
| `fashion_enlarged` | the 28x28 image enlarged 10 times (280x280, bicubic), light on black |
| `on_white` | even light, a little blur and sensor noise (1.5 %) |
| `uneven_light` | light falling off across the page by up to 30 % (a gradient and a vignette) |
| `grey_and_noisy` | a dimmer page (80 % of white) and more sensor noise (4 %) |

`--write` writes its section of benchmarks/RESULTS.md.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from photo_accuracy import enlarged, framings  # noqa: E402

from alexnet_mnist.data.photo_digits import lighting, photographed  # noqa: E402
from alexnet_mnist.inference.clothing_preparation import prepare_clothing  # noqa: E402

BEFORE = "198dc97"  # the preparation before clothing photos were looked at
FIRST = 5000


def _page(product):
    """The product as its photo on white was: negated, enlarged, with a margin of white."""
    page = np.ones((400, 400), np.float32)
    page[60:340, 60:340] = np.asarray(Image.fromarray(255 - product).resize((280, 280), Image.Resampling.BICUBIC)) / 255
    return page


FRAMED = {
    "fashion_png": lambda product, rng: Image.fromarray(product),
    "fashion_png_dark_on_light": lambda product, rng: Image.fromarray(255 - product),
    "fashion_enlarged": lambda product, rng: enlarged(product),
    "on_white": lambda product, rng: photographed(_page(product), rng),
    "uneven_light": lambda product, rng: photographed(_page(product) * lighting((400, 400), rng, 0.3), rng),
    "grey_and_noisy": lambda product, rng: photographed(0.8 * _page(product), rng, noise=0.04),
}


def main():
    framings(__doc__, FRAMED, "fashion_mnist", FIRST, prepare_clothing, "Photographed clothing", "clothing_photos.py", BEFORE)


if __name__ == "__main__":
    main()
