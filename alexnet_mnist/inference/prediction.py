"""Classify image files or .npy batches with a saved `.keras` or `.tflite` model."""

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from alexnet_mnist.config import Invert
from alexnet_mnist.errors import UserError
from alexnet_mnist.inference.preparation import BlankImage, prepare_digit
from alexnet_mnist.inference.saved_models import load_model
from alexnet_mnist.inference.tflite_model import TFLiteModel
from alexnet_mnist.models.base import INPUT_SHAPE

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def load_inputs(paths, invert=Invert.auto):
    """Images as float32 `[N, 28, 28, 1]` in [0, 1] with a name per image.

    A PNG/JPEG file of any size holds one digit, which `prepare.prepare_digit` prepares as MNIST's
    were (inverted if dark on light under `Invert.auto`, or as `invert` says). A `.npy` file holds
    one image or a batch already prepared (`[28, 28]`, `[N, 28, 28]` or `[N, 28, 28, 1]`; uint8 in
    0..255 or floats in [0, 1]), taken as it is unless `invert` is `Invert.true`.
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
            images.append(_read_image(path, invert)[None, ..., None])
            names.append(str(path))
    return np.concatenate(images), names


def _read_image(path, invert):
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(f"input {path} is not a PNG, JPEG or .npy file")
    try:
        with Image.open(path) as image:
            # Phone photos are often stored sideways with an EXIF note saying which way is up.
            return prepare_digit(ImageOps.exif_transpose(image), invert)
    except BlankImage as error:
        raise UserError(f"input {path} is blank: {error}") from None
    except (OSError, ValueError, UnidentifiedImageError) as error:
        raise UserError(f"cannot read input {path}: {error}") from error


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


def predict(model_path, images):
    """(labels, probabilities of those labels) of `images` under the `.keras` or `.tflite` model."""
    model = load_model(model_path)
    logits = model(images) if isinstance(model, TFLiteModel) else model.predict(images, verbose=0)
    # Every model of the package, ensembles included, outputs logits.
    probabilities = tf.nn.softmax(logits).numpy()
    labels = probabilities.argmax(1)
    return labels, probabilities[np.arange(len(labels)), labels]
