"""What a model's ten outputs mean: the class names and the preparation style of the dataset it learnt.

The names are kept here rather than read from TFDS, so that a user with only a model file (and no
prepared dataset) still gets names; tests check that they equal what TFDS's builders report.
"""

from pathlib import Path
from typing import NamedTuple

from alexnet_mnist.errors import UserError
from alexnet_mnist.inference.saved_models import saved_data


class Dataset(NamedTuple):
    name: str
    class_names: tuple[str, ...]
    preparation: str  # a key of prediction.PREPARATIONS


DATASETS = {
    "mnist": Dataset("mnist", tuple(str(digit) for digit in range(10)), "digit"),
    "fashion_mnist": Dataset(
        "fashion_mnist",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "clothing",
    ),
}


def trained_on(model_path, default: str) -> Dataset:
    """The dataset the model at `model_path` learnt: its run directory's `.hydra/config.yaml` says, else
    `default` (the `data=` of the command, for a model file that left its run directory)."""
    saved = saved_data(Path(model_path).parent)
    name = saved.name if saved is not None else default
    if name not in DATASETS:
        raise UserError(f"data={name}: class names and a preparation are known for {' and '.join(DATASETS)} only")
    return DATASETS[name]
