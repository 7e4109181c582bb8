"""What every model of the package shares: its input, its output and how it is built."""

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
