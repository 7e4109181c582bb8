"""How a trained model reads digits framed otherwise than in the photo-like set, through
`prepare_digit` now and at an earlier commit.

    python benchmarks/other_sources.py --run RUN_OR_FILE [--before COMMIT] [--count 300] [--write]

The digits are MNIST test digits 5000 to 5000 + `--count` (TFDS_DATA_DIR): neither the photo-like
set's nor those the preparation's changes were tried on. Each comes in these framings:

| framing | what it is |
|---|---|
| `mnist_png` | the digit as MNIST gives it, a 28x28 PNG, light on black |
| `mnist_png_dark_on_light` | the same, negated |
| `scan16` | cropped to the digit and scaled to 16x16, as USPS's scans are: it fills its frame |
| `scan16_dark_on_light` | the same, negated |
| `scan16_binary_dark_on_light` | the same, black or white only, as Semeion's scans are |
| `tight_crop` | cropped to the digit and enlarged to 200 pixels high, dark on light: a photo cropped to the digit |
| `page_on_table` | a ballpoint digit on a page photographed on a dark table, which shows around it |
| `page_edge` | the same with a strip of table along one side (`photo_digits.SCENES`) |

`--write` writes its section of benchmarks/RESULTS.md.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from photo_accuracy import comparison_arguments, prepared, preparations  # noqa: E402
from results_file import write_section  # noqa: E402
from train_throughput import cpu_model  # noqa: E402

from alexnet_mnist import data  # noqa: E402
from alexnet_mnist.data.photo_digits import FRAMINGS, SCENES, centre_line  # noqa: E402
from alexnet_mnist.inference.prediction import Classifier  # noqa: E402

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
    "scan16": lambda digit, rng: Image.fromarray(_scan16(digit)),
    "scan16_dark_on_light": lambda digit, rng: Image.fromarray(255 - _scan16(digit)),
    "scan16_binary_dark_on_light": lambda digit, rng: Image.fromarray(255 - _scan16(digit, binary=True)),
    "tight_crop": lambda digit, rng: Image.fromarray(_tight_crop(digit)),
    **{name: (lambda digit, rng, name=name: SCENES[name](centre_line(digit), rng)) for name in FRAMINGS},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    comparison_arguments(parser, BEFORE)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()

    digits, labels, _ = data.load("mnist", f"test[{FIRST}:{FIRST + args.count}]")
    digits = digits[..., 0]
    classifier = Classifier(args.run)
    ceiling = (classifier.probabilities(digits[..., None].astype(np.float32) / 255).argmax(axis=1) == labels).mean()
    load = os.getloadavg()[0]
    images = {
        name: [SimpleNamespace(image=frame(digit, np.random.default_rng([FIRST + i]))) for i, digit in enumerate(digits)]
        for name, frame in FRAMED.items()
    }
    columns = {}
    with tempfile.TemporaryDirectory() as scratch:
        for column, prepare in preparations(args.before, scratch).items():
            columns[column] = {}
            for name, framed in images.items():
                pixels, _ = prepared(framed, prepare)
                columns[column][name] = (classifier.probabilities(pixels).argmax(axis=1) == labels).mean()
                print(f"{column} {name}: {100 * columns[column][name]:.1f} %", flush=True)

    names = list(columns)
    section = "\n".join([
        "# Other sources and framings",
        "",
        f"CPU: {cpu_model()}, {os.cpu_count()} cores. Model: `{args.run}`, which reads {100 * ceiling:.1f} % of "
        f"MNIST's test digits {FIRST} to {FIRST + args.count - 1} as MNIST gives them. Each digit framed as "
        "another source or a user might give it (see the script's docstring); a refused image counts as wrong. "
        f"*Before*: `prepare_digit` as it was at commit {args.before}; *after*: as it is now. Load average "
        f"(1 minute) at the start: {load:.1f}. Written by `benchmarks/other_sources.py`.",
        "",
        "| framing | " + " | ".join(f"{column} (accuracy)" for column in names) + " |",
        "|---|" + "---:|" * len(names),
        *(f"| {name} | " + " | ".join(f"{100 * columns[column][name]:.1f} %" for column in names) + " |" for name in FRAMED),
    ])
    print(section)
    if args.write:
        write_section(section)


if __name__ == "__main__":
    main()
