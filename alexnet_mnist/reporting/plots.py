"""The pictures of a run, drawn from plain arrays as matplotlib Figures.

Figures are made without pyplot: they render with the Agg backend whatever the display, and no
global figure list keeps them alive between the jobs of a sweep. Sizes are fixed (no tight bounding
box) so every run's PNGs have the same pixel size.
"""

import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100
GRID = 5  # samples.png and errors.png show up to GRID x GRID digits
SIZES = {"curves": (10, 4), "confusion": (8, 7), "samples": (8, 9), "errors": (8, 9)}  # inches


def curves(history) -> Figure:
    """Loss and accuracy per epoch, training and validation; `history` is rows of history.csv."""
    fig = Figure(figsize=SIZES["curves"], dpi=DPI, layout="constrained")
    epochs = [row["epoch"] for row in history]
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        ax.plot(epochs, [row[metric] for row in history], "o-", markersize=7, label="training")
        ax.plot(epochs, [row["val_" + metric] for row in history], "s--", markersize=6, label="validation")
        # Half an epoch of margin: one epoch gets a real axis (ticked 1), not 0.945...1.050.
        ax.set(title=metric, xlabel="epoch", xlim=(min(epochs) - 0.5, max(epochs) + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def confusion(labels, predictions, class_names) -> Figure:
    """The confusion matrix with the count in every cell: true classes down, predicted across."""
    n = len(class_names)
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (labels, predictions), 1)
    fig = Figure(figsize=SIZES["confusion"], dpi=DPI, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    for (true, predicted), count in np.ndenumerate(counts):
        color = "white" if count > counts.max() / 2 else "black"
        ax.text(predicted, true, count, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    accuracy = np.trace(counts) / max(len(labels), 1)
    ax.set(xlabel="predicted", ylabel="true", title=f"test split: {accuracy:.2%} of {len(labels)} correct")
    return fig


def samples(images, labels, predictions, class_names) -> Figure:
    """The first test digits, each titled with its predicted and true label; mistakes in red."""
    shown = range(min(GRID * GRID, len(labels)))
    titles = [f"pred {class_names[predictions[i]]}\ntrue {class_names[labels[i]]}" for i in shown]
    colors = ["black" if predictions[i] == labels[i] else "red" for i in shown]
    return _digit_grid(images[: len(titles)], titles, colors, f"the first {len(titles)} test images", "samples")


def errors(images, labels, predictions, confidences, class_names) -> Figure:
    """The misclassified test digits, most confident mistakes first, with their confidence."""
    wrong = np.flatnonzero(predictions != labels)
    shown = wrong[np.argsort(-confidences[wrong], kind="stable")][: GRID * GRID]
    titles = [f"pred {class_names[predictions[i]]} {confidences[i]:.0%}\ntrue {class_names[labels[i]]}" for i in shown]
    title = f"{len(wrong)} of {len(labels)} test images misclassified; the {len(shown)} most confident mistakes"
    return _digit_grid(images[shown], titles, ["red"] * len(shown), title, "errors")


def to_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _digit_grid(images, titles, colors, title, name) -> Figure:
    # Fixed margins: a constrained layout of 25 titled axes costs seconds per figure.
    fig = Figure(figsize=SIZES[name], dpi=DPI)
    axes = fig.subplots(GRID, GRID, gridspec_kw=dict(left=0.02, right=0.98, bottom=0.01, top=0.9, hspace=0.5, wspace=0.1))
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, text, color in zip(axes.flat, images, titles, colors):
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(text, color=color, fontsize=8)
    fig.suptitle(title)
    return fig
