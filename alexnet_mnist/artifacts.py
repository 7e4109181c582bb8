"""Finding and loading the models that runs leave behind."""

import glob
from pathlib import Path

import keras

from alexnet_mnist.errors import UserError

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


def load_model(path) -> keras.Model:
    """A saved model of the package, for inference."""
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as error:
        raise UserError(f"cannot load the model {path}: {error}") from error
