"""MLP and AlexNet-28 classifiers for MNIST-class images, as subclassed `tf.keras` models.

`import alexnet_mnist` is light: the models (and TensorFlow) load on first use of one of the names
below, so the command line answers `--help` and configuration errors before TensorFlow starts.
Importing `alexnet_mnist.models` (which any of these names does) registers the models with Keras,
so `keras.models.load_model` can restore a saved `model.keras`.
"""

import importlib

__all__ = ["MLP", "AlexNet", "Ensemble", "LocalResponseNormalization", "build_model"]


def __getattr__(name):
    # PEP 562: only the model names load alexnet_mnist.models; submodules import as usual.
    if name in __all__:
        return getattr(importlib.import_module("alexnet_mnist.models"), name)
    raise AttributeError(f"module 'alexnet_mnist' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
