"""`python tests/spy_run.py WEIGHTS [--mock N] ARGS...`: `python -m alexnet_mnist ARGS...`, the same
Hydra app, that also copies the final weights this process saves (the chief into its run directory,
another worker into a temporary one) to WEIGHTS (.npz); `--mock N` trains on N mock examples
(tfds.testing.mock_data) instead of a prepared dataset.
"""

import contextlib
import sys

import numpy as np
import tensorflow_datasets as tfds

from alexnet_mnist.cli import app
from alexnet_mnist.training import train

weights_file, args = sys.argv[1], sys.argv[2:]
mock = contextlib.nullcontext()
if args[:1] == ["--mock"]:
    mock, args = tfds.testing.mock_data(num_examples=int(args[1])), args[2:]
save_model = train.save_model


def save_and_copy(model, path):
    save_model(model, path)
    np.savez(weights_file, *[variable.numpy() for variable in model.weights])


train.save_model = save_and_copy
sys.argv = [sys.argv[0], *args]
with mock:
    app.main()
