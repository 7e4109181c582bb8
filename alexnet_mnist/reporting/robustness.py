"""Accuracy on transformed copies of the test split (`alexnet_mnist.data.corruptions`): how robust a
model is to what no run trains on."""

import numpy as np
import tensorflow as tf

from alexnet_mnist.data.corruptions import CORRUPTIONS


def evaluate_robustness(model, dataset) -> dict:
    """{"clean": accuracy, then each name of CORRUPTIONS: accuracy} of a logits `model` over a
    batched (images, labels) `dataset` such as `data.make_test_split(...)[0]`."""
    names = ["clean", *CORRUPTIONS]
    transforms = [tf.identity, *CORRUPTIONS.values()]

    @tf.function(reduce_retracing=True)
    def correct(images, labels):
        # Every corruption of a batch in one graph: one pass over the data serves them all.
        counts = []
        for transform in transforms:
            predictions = tf.argmax(model(transform(images), training=False), axis=-1)
            counts.append(tf.reduce_sum(tf.cast(predictions == tf.cast(labels, predictions.dtype), tf.int64)))
        return tf.stack(counts)

    totals, seen = np.zeros(len(names), np.int64), 0
    for images, labels in dataset:
        totals += correct(images, labels).numpy()
        seen += int(tf.shape(labels)[0])
    return {name: total / seen for name, total in zip(names, totals)}
