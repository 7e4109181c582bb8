"""How a trained model reads digits framed otherwise than in the photo-like set, through
`prepare_digit` now and at an earlier commit.

    python benchmarks/other_sources.py --run RUN_OR_FILE [--before COMMIT] [--count 300] [--write]

The digits are MNIST test digits 5000 to 5000 + `--count` (TFDS_DATA_DIR): neither the photo-like
set's nor those the preparation's changes were tried on. Each comes in these framings:

| framing | what it is |
|---|---|
| `mnist_png` | the digit as MNIST gives it, a 28x28 PNG, light on black |
| `mnist_png_dark_on_light` | the same, negated |
| `mnist_enlarged` | the 28x28 digit enlarged 10 times (280x280, bicubic), light on black: a copy saved to try a model |
| `mnist_enlarged_dark_on_light` | the same, negated |
| `scan16` | cropped to the digit and scaled to 16x16, as USPS's scans are: it fills its frame |
| `scan16_dark_on_light` | the same, negated |
| `scan16_binary_dark_on_light` | the same, black or white only, as Semeion's scans are |
| `tight_crop` | cropped to the digit and enlarged to 200 pixels high, dark on light: a photo cropped to the digit |
| `page_on_table` | a ballpoint digit on a page photographed on a dark table, which shows around it |
| `page_edge` | the same with a strip of table along one side |
| `note_on_table` | a note or a card, 25 to 70 % of the photo's height, on a grained table that fills the rest |
| `form_box` | a ballpoint digit written in a form's printed box, grey to black |
| `page_rule` | a dark line down the whole page, through or beside the digit: a margin, a fold (`photo_digits.SCENES`) |

`--write` writes its section of benchmarks/RESULTS.md.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from photo_accuracy import enlarged, framings  # noqa: E402

from alexnet_mnist.data.pen_strokes import pen_path  # noqa: E402
from alexnet_mnist.data.photo_digits import FRAMINGS, SCENES  # noqa: E402
from alexnet_mnist.inference.preparation import prepare_digit  # noqa: E402

BEFORE = "e19d021"  # the preparation before small scans, tight crops and tables were looked at
FIRST = 5000


def _cropped(digit):
    rows, cols = np.nonzero(digit > 30)
    return Image.fromarray(digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])


def _scan16(digit, binary=False):
    scan = np.asarray(_cropped(digit).resize((16, 16), Image.Resampling.BILINEAR))
    return np.where(scan > 100, 255, 0).astype(np.uint8) if binary else scan


def _tight_crop(digit):
    crop = _cropped(digit)
    return 255 - np.asarray(crop.resize((max(8, round(200 * crop.width / crop.height)), 200), Image.Resampling.BICUBIC))


FRAMED = {
    "mnist_png": lambda digit, rng: Image.fromarray(digit),
    "mnist_png_dark_on_light": lambda digit, rng: Image.fromarray(255 - digit),
    "mnist_enlarged": lambda digit, rng: enlarged(digit),
    "mnist_enlarged_dark_on_light": lambda digit, rng: enlarged(255 - digit),
    "scan16": lambda digit, rng: Image.fromarray(_scan16(digit)),
    "scan16_dark_on_light": lambda digit, rng: Image.fromarray(255 - _scan16(digit)),
    "scan16_binary_dark_on_light": lambda digit, rng: Image.fromarray(255 - _scan16(digit, binary=True)),
    "tight_crop": lambda digit, rng: Image.fromarray(_tight_crop(digit)),
    **{name: (lambda digit, rng, name=name: SCENES[name](pen_path(digit), rng)) for name in FRAMINGS},
}


def main():
    framings(__doc__, FRAMED, "mnist", FIRST, prepare_digit, "Other sources and framings", "other_sources.py", BEFORE)


if __name__ == "__main__":
    main()
