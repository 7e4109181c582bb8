"""AlexNet (5 conv + 3 fully connected layers, torchvision's widths) adapted to 28x28x1 inputs."""

import keras

from alexnet_mnist.models.base import INPUT_SHAPE, NUM_CLASSES, ImageClassifier
from alexnet_mnist.models.dropout import Dropout
from alexnet_mnist.models.lrn import LocalResponseNormalization


@keras.saving.register_keras_serializable(package="alexnet_mnist")
class AlexNet(ImageClassifier):
    """AlexNet for 28x28 digits: 7,703,242 parameters at the defaults.

    conv1 64@5x5 -> pool (14x14) -> LRN; conv2 192@5x5 -> pool (7x7) -> LRN; conv3 384@3x3;
    conv4 256@3x3; conv5 256@3x3 -> pool (4x4); Dropout -> FC 1024 -> Dropout -> FC 1024 -> FC logits.
    Every conv and hidden FC layer is followed by ReLU; pools are 3x3 with stride 2, "same" padded.

    The LRN normalises after pooling, as CaffeNet does: on a 4x smaller tensor than the paper's
    conv -> LRN -> pool, where the float32 LRN and its casts took about a fifth of a mixed-bfloat16
step's kernel time (benchmarks/PROFILE.md).
    `lrn_after_pool=False` is the paper's order.

    Called on float32 `[N, 28, 28, 1]` images in [0, 1], it returns `[N, num_classes]` logits.

    Args:
        num_classes: the number of classes, so of logits.
        dropout: the rate of the dropouts before fc6 and before fc7.
        lrn: whether pool1 and pool2 (conv1 and conv2, see `lrn_after_pool`) are followed by local
            response normalization.
        fc_units: the width of fc6 and fc7.
        lrn_after_pool: normalise the pooled tensor (CaffeNet) rather than the convolution's (the paper).
        kernel_sizes: the kernel side of conv1 ... conv5 (ensembles mix sizes to make members differ).
        batch_norm: batch normalization between each conv and its ReLU (off: the AlexNet of the paper).
        **kwargs: passed on to `keras.Model` (`name`, `dtype`, ...).
    """

    def __init__(
        self,
        num_classes=NUM_CLASSES,
        dropout=0.5,
        lrn=True,
        fc_units=1024,
        lrn_after_pool=True,
        kernel_sizes=(5, 5, 3, 3, 3),
        batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.lrn = bool(lrn)
        self.fc_units = int(fc_units)
        self.lrn_after_pool = bool(lrn_after_pool)
        self.kernel_sizes = tuple(int(size) for size in kernel_sizes)
        if len(self.kernel_sizes) != 5:
            raise ValueError(f"kernel_sizes needs one size per conv layer (5), not {self.kernel_sizes}")
        self.batch_norm = bool(batch_norm)

        def conv(filters, size, name):
            # With batch normalization, ReLU follows it, and its shift makes the conv's bias redundant.
            activation, bias = (None, False) if self.batch_norm else ("relu", True)
            return keras.layers.Conv2D(filters, size, padding="same", activation=activation, use_bias=bias, name=name)

        def pool(name):
            return keras.layers.MaxPooling2D(3, strides=2, padding="same", name=name)

        def norm(name):
            return LocalResponseNormalization(name=name) if self.lrn else keras.layers.Identity(name=name)

        k1, k2, k3, k4, k5 = self.kernel_sizes
        self.conv1, self.norm1, self.pool1 = conv(64, k1, "conv1"), norm("lrn1"), pool("pool1")
        self.conv2, self.norm2, self.pool2 = conv(192, k2, "conv2"), norm("lrn2"), pool("pool2")
        self.conv3 = conv(384, k3, "conv3")
        self.conv4 = conv(256, k4, "conv4")
        self.conv5, self.pool5 = conv(256, k5, "conv5"), pool("pool5")
        self.batch_norms = [keras.layers.BatchNormalization(name=f"bn{i}") for i in range(1, 6)] if self.batch_norm else []
        self.flatten = keras.layers.Flatten()
        self.drop6 = Dropout(self.dropout)
        self.fc6 = keras.layers.Dense(self.fc_units, activation="relu", name="fc6")
        self.drop7 = Dropout(self.dropout)
        self.fc7 = keras.layers.Dense(self.fc_units, activation="relu", name="fc7")
        # Logits stay float32 under mixed precision so the loss is computed in float32.
        self.logits = keras.layers.Dense(self.num_classes, dtype="float32", name="logits")
        self.build((None, *INPUT_SHAPE))

    def call(self, inputs, training=False):
        x = self._normalized_pool(self._conv(0, inputs, training), self.norm1, self.pool1)
        x = self._normalized_pool(self._conv(1, x, training), self.norm2, self.pool2)
        x = self._conv(3, self._conv(2, x, training), training)
        x = self.pool5(self._conv(4, x, training))
        x = self.fc6(self.drop6(self.flatten(x), training=training))
        x = self.fc7(self.drop7(x, training=training))
        return self.logits(x)

    def _conv(self, i, x, training):
        x = (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5)[i](x)
        if not self.batch_norm:
            return x
        return keras.ops.relu(self.batch_norms[i](x, training=training))

    def _normalized_pool(self, x, norm, pool):
        return norm(pool(x)) if self.lrn_after_pool else pool(norm(x))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "lrn": self.lrn,
            "fc_units": self.fc_units,
            "lrn_after_pool": self.lrn_after_pool,
            "kernel_sizes": self.kernel_sizes,
            "batch_norm": self.batch_norm,
        }

    @classmethod
    def from_config(cls, config):
        # Models saved before the option existed normalised before pooling: they load as they were.
        return cls(**{"lrn_after_pool": False, **config})
