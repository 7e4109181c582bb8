"""How well a trained model reads photo-like digits through `prepare_digit`, now and before.

    python benchmarks/photo_accuracy.py --run RUN_OR_FILE [--before COMMIT] [--per-case 20] [--seed 0] [--write]

The set is `alexnet_mnist.data.photo_digits` (15 cases of photo-like scenes, see its docstring) made
from the first `--per-case` x 15 digits of MNIST's test split (TFDS_DATA_DIR), seed 0. Each image is
prepared with the current `prepare_digit`, and with the one of `--before` (the file
alexnet_mnist/inference/preparation.py at that commit, read with `git show`; `--before none` skips
it), and the model (`--run`: a run directory, `.keras` or `.tflite`) classifies the prepared
images. The accuracy is given overall and per case, with the model's accuracy on the same digits as
MNIST gives them (its ceiling here), and the median time to prepare one image. `--write` writes its
section of benchmarks/RESULTS.md. `--seed S` (S > 0) makes another set of the same size the same way,
from the test digits after the first S sets' (S x 300 to S x 300 + 299 at 20 per case), with scene
seed S: development sets, to decide changes on without looking at the reported one; printed, never
written.
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from results_file import write_section  # noqa: E402
from train_throughput import cpu_model  # noqa: E402

from alexnet_mnist import data  # noqa: E402
from alexnet_mnist.data.pen_strokes import pen_path  # noqa: E402
from alexnet_mnist.data.photo_digits import CASES, SCENES, photo_digits  # noqa: E402
from alexnet_mnist.inference import preparation  # noqa: E402
from alexnet_mnist.inference.prediction import Classifier  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BEFORE = "6765f43"  # the last commit before the preparation was rewritten for photos (issue 28)


def preparation_at(commit, scratch, current):
    """The function named as `current` as it was at `commit`: in the file that defines it now, or in
    alexnet_mnist/inference/preparation.py, which held every preparation before clothing's moved out."""
    for file in (current.__module__.replace(".", "/") + ".py", "alexnet_mnist/inference/preparation.py"):
        shown = subprocess.run(["git", "show", f"{commit}:{file}"], cwd=REPO, capture_output=True, text=True)
        if shown.returncode == 0 and f"def {current.__name__}(" in shown.stdout:
            break
    else:
        raise SystemExit(f"--before {commit}: no {current.__name__} at that commit")
    path = Path(scratch) / "preparation_before.py"
    path.write_text(shown.stdout)
    spec = importlib.util.spec_from_file_location("preparation_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, current.__name__)


def comparison_arguments(parser, before):
    """`--run`, `--before` (default `before`) and `--write`, as the preparation benchmarks take them."""
    parser.add_argument("--run", required=True, help="a trained model: run directory, .keras or .tflite")
    parser.add_argument("--before", default=before, help=f"the commit whose preparation is 'before' (default {before}); none: skip")
    parser.add_argument("--write", action="store_true")


def preparations(before, scratch, current=preparation.prepare_digit):
    """{"before": the function named as `current` at commit `before` (left out if it is "none"), "after": `current`}."""
    after = {"after": current}
    return after if before == "none" else {"before": preparation_at(before, scratch, current), **after}


def prepared(photos, prepare):
    """The prepared images `[N, 28, 28, 1]` (a blank one for an image the preparation refuses) and
    the milliseconds each took."""
    images, times = [], []
    for photo in photos:
        start = time.perf_counter()
        try:
            images.append(prepare(photo.image))
        except ValueError:  # BlankImage: nothing found counts as a wrong answer
            images.append(np.zeros((28, 28), np.float32))
        times.append(1000 * (time.perf_counter() - start))
    return np.stack(images)[..., None], times


def enlarged(pixels):
    """A 28x28 uint8 image (a digit, a product) enlarged 10 times, bicubic: a copy a user saves to try a model."""
    return Image.fromarray(pixels).resize((280, 280), Image.Resampling.BICUBIC)


def framings(description, framed, dataset, first, function, title, script, before):
    """The section of RESULTS.md that compares how the model `--run` reads `--count` test images of
    `dataset` from `first` on, each framed by every function of `framed` ({name: (image, rng) ->
    PIL image}), prepared by `function` and by the one of its name at commit `before` (`--before`); printed,
    and written with `--write`. `description` begins the script's own docstring."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    comparison_arguments(parser, before)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()

    items, labels, _ = data.load(dataset, f"test[{first}:{first + args.count}]")
    items = items[..., 0]
    classifier = Classifier(args.run)
    ceiling = (classifier.probabilities(items[..., None].astype(np.float32) / 255).argmax(axis=1) == labels).mean()
    load = os.getloadavg()[0]
    images = {
        name: [SimpleNamespace(image=frame(item, np.random.default_rng([first + i]))) for i, item in enumerate(items)]
        for name, frame in framed.items()
    }
    columns = {}
    with tempfile.TemporaryDirectory() as scratch:
        for column, prepare in preparations(args.before, scratch, function).items():
            columns[column] = {}
            for name, shots in images.items():
                pixels, _ = prepared(shots, prepare)
                columns[column][name] = (classifier.probabilities(pixels).argmax(axis=1) == labels).mean()
                print(f"{column} {name}: {100 * columns[column][name]:.1f} %", flush=True)

    names = list(columns)
    section = "\n".join([
        f"# {title}",
        "",
        f"CPU: {cpu_model()}, {os.cpu_count()} cores. Model: `{args.run}`, which reads {100 * ceiling:.1f} % of "
        f"the `{dataset}` test images {first} to {first + args.count - 1} as TFDS gives them, each framed as the "
        "script's docstring says; a refused image counts as wrong. "
        f"*Before*: `{function.__name__}` as it was at commit {args.before}; *after*: as it is now. Load average "
        f"(1 minute) at the start: {load:.1f}. Written by `benchmarks/{script}`.",
        "",
        "| framing | " + " | ".join(f"{column} (accuracy)" for column in names) + " |",
        "|---|" + "---:|" * len(names),
        *(f"| {name} | " + " | ".join(f"{100 * columns[column][name]:.1f} %" for column in names) + " |" for name in framed),
    ])
    print(section)
    if args.write:
        write_section(section)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    comparison_arguments(parser, BEFORE)
    parser.add_argument("--per-case", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="0: the reported set; above 0: a development set (see above)")
    args = parser.parse_args()
    if args.seed and args.write:
        parser.error("--write: only the reported set (--seed 0) has a section in RESULTS.md")

    size = args.per_case * len(CASES)
    digits, labels, _ = data.load("mnist", f"test[{args.seed * size}:{(args.seed + 1) * size}]")
    photos = photo_digits(digits, labels, per_case=args.per_case, seed=args.seed)
    truth = np.array([photo.label for photo in photos])
    cases = np.array([photo.case for photo in photos])
    classifier = Classifier(args.run)
    ceiling = (classifier.probabilities(digits.astype(np.float32) / 255).argmax(axis=1) == labels).mean()
    # The same digits redrawn as the set redraws them, with a ballpoint on white paper: what the
    # redrawing leaves readable, whatever the scene.
    redrawn = [SCENES["ballpoint"](pen_path(digit), np.random.default_rng(i)) for i, digit in enumerate(digits[..., 0])]
    redrawn = np.stack([preparation.prepare_digit(image) for image in redrawn])[..., None]
    readable = classifier.probabilities(redrawn).argmax(axis=1) == labels
    load = os.getloadavg()[0]

    columns = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, prepare in preparations(args.before, scratch).items():
            images, times = prepared(photos, prepare)
            correct = classifier.probabilities(images).argmax(axis=1) == truth
            columns[name] = ({case: correct[cases == case].mean() for case in CASES}, correct.mean(), statistics.median(times))
            print(f"{name}: {100 * correct.mean():.1f} % of {len(photos)}, {statistics.median(times):.1f} ms per image", flush=True)

    names = list(columns)
    rows = [f"| {case} | " + " | ".join(f"{100 * columns[name][0][case]:.0f} %" for name in names) + " |" for case in CASES]
    section = "\n".join([
        "# Photo-like digits",
        "",
        f"CPU: {cpu_model()}, {os.cpu_count()} cores. Model: `{args.run}`, which reads "
        f"{100 * ceiling:.1f} % of the same {len(photos)} MNIST test digits as MNIST gives them, and "
        f"{100 * readable.mean():.1f} % of them redrawn as the set redraws them, with a ballpoint on white paper "
        f"(the redrawing's ceiling; misread: {', '.join(str(i) for i in np.nonzero(~readable)[0]) or 'none'}). Set: "
        f"`alexnet_mnist.data.photo_digits`, {args.per_case} images per case from MNIST's test digits "
        f"{args.seed * size} to {(args.seed + 1) * size - 1}, seed {args.seed}. *Before*: `prepare_digit` as it was at commit "
        f"{args.before}; *after*: as it is now. Load average (1 minute) at the start: {load:.1f} (above 2, other "
        "jobs shared the 2 cores and slowed the timings). Written by `benchmarks/photo_accuracy.py`.",
        "",
        "| case | " + " | ".join(f"{name} (accuracy)" for name in names) + " |",
        "|---|" + "---:|" * len(names),
        *rows,
        f"| **all {len(photos)}** | " + " | ".join(f"**{100 * columns[name][1]:.1f} %**" for name in names) + " |",
        "| ms per image (median) | " + " | ".join(f"{columns[name][2]:.1f}" for name in names) + " |",
    ])
    print(section)
    if args.write:
        write_section(section)


if __name__ == "__main__":
    main()
