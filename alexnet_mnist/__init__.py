"""MLP and AlexNet-28 classifiers for MNIST-class images, as subclassed `tf.keras` models.

The public names load on first use, so `import alexnet_mnist` stays light and the command line
answers `--help` and configuration errors before TensorFlow starts:

- the models `MLP`, `AlexNet`, `Ensemble`, `LocalResponseNormalization` and `build_model`;
- `load_model(path)`: a saved `.keras` or `.tflite` file (or a run directory) ready to predict;
  loading any model of the package needs nothing else imported first;
- `train_and_evaluate(config, workdir)`: one training run, and `Config`, its typed settings.

The package's parts, each importing only from those listed before it: `config`, `errors`, `quiet`
and `atomic_files` (shared by all); `models`; `data`; `inference`; `reporting`; `training`; `cli`.
"""

import importlib

_PUBLIC = {
    "MLP": "alexnet_mnist.models",
    "AlexNet": "alexnet_mnist.models",
    "Ensemble": "alexnet_mnist.models",
    "LocalResponseNormalization": "alexnet_mnist.models",
    "build_model": "alexnet_mnist.models",
    "load_model": "alexnet_mnist.inference.saved_models",
    "train_and_evaluate": "alexnet_mnist.training",
    "Config": "alexnet_mnist.config",
}
__all__ = list(_PUBLIC)


def __getattr__(name):
    # PEP 562: a public name loads its module on first use; submodules import as usual.
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'alexnet_mnist' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
