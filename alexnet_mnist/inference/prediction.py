"""Classify images with a saved `.keras` or `.tflite` model: one path for mode=predict and the web page."""

import threading
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from alexnet_mnist.config import Invert
from alexnet_mnist.errors import UserError
from alexnet_mnist.inference.clothing_preparation import prepare_clothing
from alexnet_mnist.inference.preparation import BlankImage, prepare_digit
from alexnet_mnist.inference.saved_models import load_model
from alexnet_mnist.inference.tflite_model import TFLiteModel
from alexnet_mnist.models.base import INPUT_SHAPE

BATCH = 256  # images per model call: bounds AlexNet's activations for a large .npy batch
# A dataset's preparation style (`classes.Dataset.preparation`) and its function.
PREPARATIONS = {"digit": prepare_digit, "clothing": prepare_clothing}


def load_inputs(paths, invert=Invert.auto, preparation="digit"):
    """Images as float32 `[N, 28, 28, 1]` in [0, 1] with a name per image.

    An image file of any size and any format Pillow reads (PNG, JPEG, WebP, TIFF, BMP, ...) holds
    one digit or product, which `read_image` prepares in the `preparation` style (see
    `PREPARATIONS`). A `.npy` file holds one image or a batch already prepared (`[28, 28]`,
    `[N, 28, 28]` or `[N, 28, 28, 1]`; uint8 in 0..255 or floats in [0, 1]), taken as it is unless
    `invert` is `Invert.true`.
    """
    invert = Invert(invert)
    images, names = [], []
    for path in map(Path, paths):
        if not path.is_file():
            raise UserError(f"input {path} does not exist")
        if path.suffix.lower() == ".npy":
            batch = _read_npy(path)
            images.append(1.0 - batch if invert == Invert.true else batch)
            names += [f"{path}[{i}]" for i in range(len(batch))]
        else:
            images.append(read_image(path, preparation, invert)[None, ..., None])
            names.append(str(path))
    return np.concatenate(images), names


def read_image(source, preparation="digit", invert=Invert.auto) -> np.ndarray:
    """The image file `source` (a path) prepared in the `preparation` style: float32 `[28, 28]` in [0, 1].

    Raises `UserError` for a file that is not an image, or in which nothing stands out."""
    image = open_image(source)
    try:
        return PREPARATIONS[preparation](image, Invert(invert))
    except BlankImage as error:
        raise UserError(f"input {source} is blank: {error}") from None


def open_image(source) -> Image.Image:
    """The image in the file `source`, upright; `UserError` if it is not an image Pillow reads."""
    try:
        with Image.open(source) as image:
            # Phone photos are often stored sideways with an EXIF note saying which way is up.
            return ImageOps.exif_transpose(image)
    except (OSError, ValueError, UnidentifiedImageError) as error:
        what = "not an image Pillow reads (PNG, JPEG, WebP, TIFF, ...) nor a .npy batch"
        raise UserError(f"cannot read input {source}: {what}: {error}") from error


def _read_npy(path):
    try:
        pixels = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read input {path}: {error}") from error
    if pixels.ndim in (2, 3) and pixels.shape[-2:] == INPUT_SHAPE[:2]:
        pixels = pixels[..., None]  # [28, 28] or [N, 28, 28]: add the channel
    if pixels.ndim < 3 or pixels.shape[-3:] != INPUT_SHAPE:
        raise UserError(f"input {path} holds an array of shape {pixels.shape}, not 28x28 images")
    pixels = pixels.reshape(-1, *INPUT_SHAPE)
    return pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels.astype(np.float32)


class Classifier:
    """A saved model (run directory, `.keras` or `.tflite`; ensembles too), loaded once, that gives
    class probabilities for batches of prepared images. Safe to call from several threads."""

    def __init__(self, path):
        model = load_model(path)
        if isinstance(model, TFLiteModel):
            self._logits = model
        else:
            # One graph traced for any batch size: for one image it answers in a fraction of the time
            # of model.predict, which builds a dataset and an iterator on every call.
            self._logits = tf.function(
                lambda images: model(images, training=False),
                input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)],
            )
        # One call at a time: the LiteRT interpreter is not thread-safe, and two calls at once would
        # only share the same cores.
        self._lock = threading.Lock()

    def probabilities(self, images) -> np.ndarray:
        """Float32 `[N, 10]` probabilities of float32 `[N, 28, 28, 1]` images in [0, 1]."""
        images = np.asarray(images, np.float32)
        with self._lock:
            logits = [np.asarray(self._logits(images[i : i + BATCH])) for i in range(0, len(images), BATCH)]
        # Every model of the package, ensembles included, outputs logits.
        return tf.nn.softmax(np.concatenate(logits)).numpy()


def answer(probabilities, class_names) -> str:
    """The top class of one image's `probabilities` and its probability, e.g. `Sneaker (0.9731)`."""
    label = int(np.argmax(probabilities))
    return f"{class_names[label]} ({probabilities[label]:.4f})"
