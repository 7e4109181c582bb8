"""The package's models, and a factory that builds one by name."""

from alexnet_mnist.models.alexnet import AlexNet
from alexnet_mnist.models.ensemble import Ensemble
from alexnet_mnist.models.lrn import LocalResponseNormalization
from alexnet_mnist.models.mlp import MLP

MODELS = {"mlp": MLP, "alexnet": AlexNet}


def build_model(name, **kwargs):
    """Build the model registered under `name` ("mlp" or "alexnet") with its constructor kwargs.

    Raises:
        ValueError: `name` is not a model of the package.
    """
    try:
        model_class = MODELS[name]
    except KeyError:
        raise ValueError(f"model {name!r} is unknown; choose one of {sorted(MODELS)}") from None
    return model_class(**kwargs)


__all__ = ["MODELS", "AlexNet", "Ensemble", "LocalResponseNormalization", "MLP", "build_model"]
