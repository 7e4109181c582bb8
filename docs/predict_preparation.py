"""Draw the README's example of mode=predict's preparation: a photo-like digit and what it becomes.

    python docs/predict_preparation.py

writes docs/pictures/photo_digit.jpg (a '2' in dark ink on unevenly lit, grainy grey paper, off
centre and slightly blurred, as a phone might take it) and docs/pictures/predict_preparation.png
(that photo beside the 28x28 image `prepare.prepare_digit` makes of it).
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFilter

from alexnet_mnist.inference.preparation import prepare_digit

PICTURES = Path(__file__).resolve().parent / "pictures"


def photo_of_a_two(width=320, height=240, seed=0):
    """A hand-drawn-looking '2' on grey paper lit from the left, with grain and a little blur."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    light = 0.85 - 0.25 * cols / width - 0.1 * ((rows / height - 0.4) ** 2)
    ink = Image.new("L", (width, height), 0)
    pen = ImageDraw.Draw(ink)
    pen.arc([150, 40, 250, 130], start=190, end=40, fill=255, width=11)  # the top curve
    pen.line([(242, 105), (160, 190)], fill=255, width=11)
    pen.line([(160, 190), (258, 186)], fill=255, width=11)
    ink = np.asarray(ink.filter(ImageFilter.GaussianBlur(1.5)), np.float32) / 255
    paper = light * (1 - 0.75 * ink) + rng.normal(0, 0.025, light.shape)
    return Image.fromarray((np.clip(paper, 0, 1) * 255).astype(np.uint8))


def figure(photo, prepared) -> Figure:
    fig = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[4, 3])
    left.imshow(photo, cmap="gray", vmin=0, vmax=255)
    left.set_title(f"input: {photo.width}x{photo.height} photo-like image")
    right.imshow(prepared, cmap="gray", vmin=0, vmax=1)
    right.set_title("prepared: 28x28, as MNIST's digits")
    right.plot([14], [14], "r+", markersize=12)  # where the centre of mass goes
    for ax in (left, right):
        ax.set(xticks=[], yticks=[])
    return fig


def main():
    photo = photo_of_a_two()
    photo.save(PICTURES / "photo_digit.jpg", quality=90)
    with Image.open(PICTURES / "photo_digit.jpg") as saved:
        figure(saved.copy(), prepare_digit(saved)).savefig(PICTURES / "predict_preparation.png")


if __name__ == "__main__":
    main()
