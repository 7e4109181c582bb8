"""Shared fixtures: composing the real configs, and locating the prepared datasets."""

import os
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from alexnet_mnist.config import register_schemas

REPO = Path(__file__).resolve().parents[1]
# Command-line overrides for runs whose pictures, export and progress bars a test does not look at.
QUIET = ("progress=false", "report.plots=false", "export.tflite=false")


def make_config(*overrides):
    """The typed `Config` that `python -m alexnet_mnist OVERRIDES...` would run with."""
    register_schemas()
    with initialize_config_module("alexnet_mnist.conf", version_base="1.3"):
        return OmegaConf.to_object(compose("config", overrides=list(overrides)))


@pytest.fixture
def tfds_data_dir():
    """The folder holding the prepared `mnist` copy (TFDS_DATA_DIR); in CI its absence is a failure."""
    data_dir = os.environ.get("TFDS_DATA_DIR")
    if data_dir and (Path(data_dir) / "mnist").is_dir():
        return data_dir
    message = f"the prepared MNIST copy is not in TFDS_DATA_DIR={data_dir!r}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def temporary_files_under_pytest(tmp_path_factory):
    """Temporary files of the tests and their subprocesses go under pytest's own temporary folder, which
    it prunes: TFDS leaves an empty directory behind for every builder of a dataset it cannot find
    (mock data, missing datasets), hundreds a run, that would otherwise pile up in /tmp."""
    directory = str(tmp_path_factory.mktemp("tmp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", directory)
        patch.setattr(tempfile, "tempdir", directory)
        yield
