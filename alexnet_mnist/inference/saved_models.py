"""Finding and loading the models that runs leave behind."""

import glob
from pathlib import Path

import keras
from omegaconf import OmegaConf

# Importing the models registers them with Keras, which load_model needs to restore them.
from alexnet_mnist import models  # noqa: F401
from alexnet_mnist.atomic_files import atomic_path
from alexnet_mnist.errors import UserError
from alexnet_mnist.inference.tflite_model import TFLiteModel
from alexnet_mnist.models.base import preserved_dtype_policy

MODEL_FILE = "model.keras"


def model_path(path, suffixes=(".keras",)) -> Path:
    """`path` itself if it is a model file with one of `suffixes`, else the run directory's model.keras."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if path.suffix not in suffixes:
        raise UserError(f"{path} is not a run directory or a {' or '.join(suffixes)} file")
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    return path


def expand(patterns) -> list[Path]:
    """The model files of run directories, .keras files and globs over them, in the given order."""
    paths = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(pattern))) if glob.has_magic(str(pattern)) else [pattern]
        # A glob over a multirun sweep also matches its .hydra/ and multirun.yaml: keep the runs.
        runs = [m for m in matches if Path(m).suffix == ".keras" or (Path(m) / MODEL_FILE).is_file()]
        if not runs:
            raise UserError(f"{pattern} matches no run directory or .keras file")
        paths += [model_path(run) for run in runs]
    return paths


def saved_data(run_dir):
    """The `data` settings of the run in `run_dir`, from its .hydra/config.yaml (None without one)."""
    saved = Path(run_dir) / ".hydra" / "config.yaml"
    return OmegaConf.load(saved).data if saved.is_file() else None


def load_model(path):
    """A saved model of the package, for inference.

    Nothing needs to be imported first: loading registers the package's models with Keras.

    Args:
        path: a `.keras` file, a `.tflite` file, or a run directory (which stands for its
            `model.keras`).

    Returns:
        A `keras.Model` for a `.keras` file (loaded in Keras's safe mode, so no code from the file
        runs), a `TFLiteModel` for a `.tflite` file. Either, called on float32 `[N, 28, 28, 1]`
        images in [0, 1], returns `[N, num_classes]` logits.

    Raises:
        UserError: the file is missing or is not a model (one line, naming it).
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    try:
        if path.suffix == ".tflite":
            return TFLiteModel(path.read_bytes())
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        raise UserError(f"cannot load the model {path}: {error}") from error


def save_model(model, path):
    """Save `model` in float32 (whatever precision it trained in) without ever leaving a partial file."""
    with atomic_path(path) as temporary:
        float32_copy(model).save(temporary)


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` itself if it computes in float32, else a float32 twin with the same weights.

    A mixed-precision model would put float16 casts (and float16 kernels) into the file; the
    variables are float32 either way, so a twin built under the float32 policy takes them as they are.
    """
    if all(layer.compute_dtype == "float32" for layer in model._flatten_layers()):
        return model
    config = _with_float32_dtypes(keras.saving.serialize_keras_object(model))
    with preserved_dtype_policy():
        keras.mixed_precision.set_global_policy("float32")
        twin = keras.saving.deserialize_keras_object(config)
    twin.set_weights(model.get_weights())
    return twin


def _with_float32_dtypes(config):
    if isinstance(config, dict):
        return {key: "float32" if key == "dtype" else _with_float32_dtypes(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_with_float32_dtypes(value) for value in config]
    return config
