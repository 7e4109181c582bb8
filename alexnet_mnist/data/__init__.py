"""The data: TFDS loaders and the tf.data pipeline, the training augmentation, the test corruptions.

The loaders are importable from here: `from alexnet_mnist.data import make_splits`.
"""

from alexnet_mnist.data.pipeline import (
    Shard,
    Splits,
    load,
    make_splits,
    make_test_split,
)

__all__ = ["Shard", "Splits", "load", "make_splits", "make_test_split"]
