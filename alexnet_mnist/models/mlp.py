"""The MLP baseline of the Keras MNIST tutorials."""

import keras

from alexnet_mnist.models.base import INPUT_SHAPE, NUM_CLASSES, ImageClassifier
from alexnet_mnist.models.dropout import Dropout


@keras.saving.register_keras_serializable(package="alexnet_mnist")
class MLP(ImageClassifier):
    """Flatten -> [Dense -> activation -> Dropout] per hidden layer -> Dense(num_classes) logits.

    At the defaults: 785 * 128 + 129 * 10 = 101,770 parameters. `hidden_units=(900,)` is the
    tutorials' wide variant. Called on float32 `[N, 28, 28, 1]` images in [0, 1], it returns
    `[N, num_classes]` logits.

    Args:
        hidden_units: the width of each hidden layer, first to last.
        activation: the hidden layers' activation, by its Keras name.
        dropout: the rate of the dropout after each hidden layer.
        num_classes: the number of classes, so of logits.
        **kwargs: passed on to `keras.Model` (`name`, `dtype`, ...).
    """

    def __init__(
        self, hidden_units=(128,), activation="relu", dropout=0.2, num_classes=NUM_CLASSES, **kwargs
    ):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(units) for units in hidden_units)
        self.activation = str(activation)
        self.dropout = float(dropout)
        self.num_classes = int(num_classes)

        self.flatten = keras.layers.Flatten()
        self.hidden = [
            keras.layers.Dense(units, activation=self.activation, name=f"dense_{i}")
            for i, units in enumerate(self.hidden_units)
        ]
        self.dropouts = [Dropout(self.dropout) for _ in self.hidden_units]
        # Logits stay float32 under mixed precision so the loss is computed in float32.
        self.logits = keras.layers.Dense(self.num_classes, dtype="float32", name="logits")
        self.build((None, *INPUT_SHAPE))

    def call(self, inputs, training=False):
        x = self.flatten(inputs)
        for dense, dropout in zip(self.hidden, self.dropouts):
            x = dropout(dense(x), training=training)
        return self.logits(x)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "activation": self.activation,
            "dropout": self.dropout,
            "num_classes": self.num_classes,
        }
