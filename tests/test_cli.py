"""The command line as users run it: a subprocess, from the repo and from an installed wheel."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

# The console script pip installs beside this Python.
CONSOLE_SCRIPT = Path(sys.executable).parent / "alexnet-mnist"
RUN_FILES = ["metrics.json", "history.csv", "model.keras", "alexnet_mnist.log", ".hydra/config.yaml", "checkpoints/checkpoint"]


def run_cli(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "alexnet_mnist", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.real_data
def test_smoke_run_writes_every_file_and_a_clean_log(tfds_data_dir, tmp_path):
    result = run_cli("debug=smoke", f"hydra.run.dir={tmp_path}", cwd=REPO)
    assert result.returncode == 0, result.stderr
    for name in RUN_FILES:
        assert (tmp_path / name).exists(), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["params"] == 7_703_242 and metrics["epochs"] == 1
    assert set(metrics) >= {"test_accuracy", "test_loss", "best_val_accuracy", "train_seconds", "train_images_per_second"}
    log = (tmp_path / "alexnet_mnist.log").read_text()
    assert "Total params: 7,703,242" in log and "epoch 1/1:" in log and "test accuracy" in log
    # TensorFlow's C++ start-up lines are hidden, and nothing is logged twice.
    assert "oneDNN" not in result.stderr + result.stdout and "cuda" not in (result.stderr + result.stdout).lower()
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert lines and len(lines) == len(set(lines))
    assert lines[-1].endswith(f"run directory {tmp_path}: model.keras, model.tflite, metrics.json, history.csv, "
                              "confusion.png, curves.png, errors.png, samples.png")


def test_bad_value_is_one_clear_error_before_tensorflow_starts(tmp_path):
    result = run_cli("train.batch_size=abc", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 1
    assert "train.batch_size" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.real_data
@pytest.mark.slow
def test_installed_wheel_runs_outside_the_repo(tfds_data_dir, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", REPO],
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("alexnet_mnist-*.whl")
    assert "alexnet_mnist/conf/config.yaml" in zipfile.ZipFile(wheel).namelist()
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel], check=True)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import alexnet_mnist; print(alexnet_mnist.__file__)"],
        cwd=workdir, env=env, capture_output=True, text=True, check=True,
    )
    assert where.stdout.strip().startswith(str(site))
    result = run_cli("model=mlp", "debug=smoke", "hydra.run.dir=run", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    assert (workdir / "run" / "metrics.json").is_file() and (workdir / "run" / "model.keras").is_file()


def test_missing_dataset_names_the_dataset_and_folder_quietly_and_leaves_nothing(tmp_path):
    # The installed console script: TensorFlow starts (and probes for CUDA) before the data are read.
    env = {**os.environ, "TFDS_DATA_DIR": str(tmp_path / "empty")}
    result = subprocess.run(
        [CONSOLE_SCRIPT, "model=mlp", "data=fashion_mnist"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "dataset 'fashion_mnist' is not prepared in " + str(tmp_path / "empty") in result.stdout
    assert "TFDS_DATA_DIR" in result.stdout and result.stderr == ""
    assert not list(tmp_path.iterdir())  # no outputs/DATE/TIME with just Hydra's files


def test_help_offers_only_real_choices(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "model: alexnet, mlp\n" in result.stdout and "optimizer: adam, adamw, rmsprop, sgd\n" in result.stdout
    assert "base_" not in result.stdout and "schema" not in result.stdout


@pytest.mark.parametrize("args", [["optimizer.lr=-1"], ["mode=predict", "checkpoint=no/such/run", "inputs=[x.png]"]])
def test_a_rejected_command_leaves_nothing_behind(args, tmp_path):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout.count("ERROR") == 1
    assert not list(tmp_path.iterdir())
