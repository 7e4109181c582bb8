"""MLP and AlexNet-28 classifiers for MNIST-class images, as subclassed `tf.keras` models.

Importing the package registers its models with Keras, so `keras.models.load_model` can restore a
saved `model.keras`.
"""

from alexnet_mnist import _startup

_startup.start_tensorflow()

from alexnet_mnist.models import MLP, AlexNet, Ensemble, LocalResponseNormalization, build_model  # noqa: E402

__all__ = ["MLP", "AlexNet", "Ensemble", "LocalResponseNormalization", "build_model"]
