"""What every model of the package shares: its input, its output and how it is built."""

import contextlib

import keras

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


class ImageClassifier(keras.Model):
    """A subclassed model from `[N, 28, 28, 1]` floats in [0, 1] to `[N, num_classes]` logits.

    Subclasses create their layers in `__init__` and then call `self.build((None, *INPUT_SHAPE))`,
    so weights exist (and `summary()` works) before the first batch.
    """

    def build(self, input_shape):
        # Keras's default build() of a subclassed model creates no weights: trace call()
        # symbolically so every layer builds itself with the right input shape.
        self.call(keras.KerasTensor(input_shape))
        super().build(input_shape)


@contextlib.contextmanager
def preserved_dtype_policy():
    """Put Keras's global dtype policy back as it was on leaving: it is process-wide, and models
    built later (the caller's own too) take it."""
    previous = keras.mixed_precision.global_policy()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
