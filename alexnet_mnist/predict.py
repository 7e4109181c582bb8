"""Classify image files or .npy batches with a saved `.keras` or `.tflite` model."""

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from alexnet_mnist.artifacts import load_model
from alexnet_mnist.errors import UserError
from alexnet_mnist.export import TFLiteModel
from alexnet_mnist.models.base import INPUT_SHAPE

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def load_inputs(paths, invert=False):
    """Images as float32 `[N, 28, 28, 1]` in [0, 1] with a name per image.

    A PNG/JPEG file becomes one grayscale 28x28 image; a `.npy` file holds one image or a batch
    (`[28, 28]`, `[N, 28, 28]` or `[N, 28, 28, 1]`; uint8 in 0..255 or floats in [0, 1]). MNIST
    digits are light on dark: `invert` turns dark-on-light images round.
    """
    images, names = [], []
    for path in map(Path, paths):
        batch = _read(path)
        images.append(batch)
        names += [f"{path}[{i}]" for i in range(len(batch))] if path.suffix.lower() == ".npy" else [str(path)]
    images = np.concatenate(images)
    return (1.0 - images if invert else images), names


def _read(path):
    if not path.is_file():
        raise UserError(f"input {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in IMAGE_SUFFIXES:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("L").resize(INPUT_SHAPE[:2], Image.Resampling.BILINEAR))
        elif suffix == ".npy":
            pixels = np.load(path, allow_pickle=False)
        else:
            raise UserError(f"input {path} is not a PNG, JPEG or .npy file")
    except (OSError, ValueError, UnidentifiedImageError) as error:
        raise UserError(f"cannot read input {path}: {error}") from error
    if pixels.ndim in (2, 3) and pixels.shape[-2:] == INPUT_SHAPE[:2]:
        pixels = pixels[..., None]  # [28, 28] or [N, 28, 28]: add the channel
    if pixels.ndim < 3 or pixels.shape[-3:] != INPUT_SHAPE:
        raise UserError(f"input {path} holds an array of shape {pixels.shape}, not 28x28 images")
    pixels = pixels.reshape(-1, *INPUT_SHAPE)
    return pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels.astype(np.float32)


def predict(model_path, images):
    """(labels, probabilities of those labels) of `images` under the `.keras` or `.tflite` model."""
    model_path = Path(model_path)
    if model_path.suffix == ".tflite":
        logits = TFLiteModel(model_path.read_bytes())(images)
    else:
        logits = load_model(model_path).predict(images, verbose=0)
    # Every model of the package, ensembles included, outputs logits.
    probabilities = tf.nn.softmax(logits).numpy()
    labels = probabilities.argmax(1)
    return labels, probabilities[np.arange(len(labels)), labels]
