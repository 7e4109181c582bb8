"""Shared fixtures and helpers: composing the real configs, locating the prepared datasets, the
optional extras, and what a run's log and checkpoint index say."""

import importlib.util
import os
import re
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


def unavailable(message):
    """Skip a test whose prerequisite (real data, an optional extra) is missing; in CI, where every
    prerequisite is installed on purpose, its absence is a failure."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def tfds_data_dir():
    """The folder holding the prepared `mnist` copy (TFDS_DATA_DIR); in CI its absence is a failure."""
    data_dir = os.environ.get("TFDS_DATA_DIR")
    if data_dir and (Path(data_dir) / "mnist").is_dir():
        return data_dir
    unavailable(f"the prepared MNIST copy is not in TFDS_DATA_DIR={data_dir!r}")


def installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package (hydra_plugins) is missing
        return False


def require_extra(extra, module):
    """Skip unless the optional `extra` that provides `module` is installed; fail in CI."""
    if not installed(module):
        unavailable(f"the {extra} extra ({module}) is not installed")


# RunState.restore's line: the checkpoint read, the epoch it continues and the steps already done in it.
RESUMED = re.compile(r"resumed from (\S+): epoch (\d+), step (\d+)")


def resumes(log):
    """(checkpoint path, epoch, step) of every resume that the text of a run's log reports."""
    return [(path, int(epoch), int(step)) for path, epoch, step in RESUMED.findall(log)]


def latest_checkpoint_number(checkpoints):
    """N of the latest ckpt-N in the index file of the directory `checkpoints` (0 before the first).
    Numbers only grow, so waiting for one to reach a value cannot miss it, as polling for a name
    that lives only until the next few saves can."""
    try:
        match = re.search(r'^model_checkpoint_path: ".*ckpt-(\d+)"', (Path(checkpoints) / "checkpoint").read_text(), re.M)
    except FileNotFoundError:
        return 0
    return int(match.group(1)) if match else 0


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
