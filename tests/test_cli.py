"""The command line as users run it: a subprocess, from the repo and from an installed wheel."""

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import tensorflow_datasets as tfds
from conftest import QUIET, REPO, make_config, resumes

from alexnet_mnist.cli import modes
from alexnet_mnist.errors import UserError
from alexnet_mnist.inference import export
from alexnet_mnist.models import MLP

# The console script pip installs beside this Python.
CONSOLE_SCRIPT = Path(sys.executable).parent / "alexnet-mnist"
RUN_FILES = ["metrics.json", "history.csv", "model.keras", "alexnet_mnist.log", ".hydra/config.yaml", "checkpoints/checkpoint"]


def run_cli(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "alexnet_mnist", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def run_cli_on_mock_data(*args, cwd, weights=None):
    """`python -m alexnet_mnist ARGS...`, the same Hydra app, on 200 TFDS mock examples per split
    (`tests/spy_run.py`, which also copies the weights a run saves to `weights`, an .npz file)."""
    weights = weights or Path(tempfile.mkdtemp()) / "weights.npz"
    command = [sys.executable, str(REPO / "tests" / "spy_run.py"), str(weights), "--mock", "200", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def error_lines(result):
    return [line for line in result.stdout.splitlines() if "[ERROR]" in line]


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


def test_resume_dir_continues_that_run_with_its_own_config_and_writes_into_it(tmp_path):
    run, session = tmp_path / "run", tmp_path / "session"
    # A run with a config of its own (the MLP, 2 epochs, seed 3), not the defaults (AlexNet, 5 epochs).
    own = ("model=mlp", "train.epochs=2", "seed=3", "deterministic=true", "debug=smoke", *QUIET)
    assert run_cli_on_mock_data(*own, f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    whole = (run / "history.csv").read_text()
    # Wind it back to the end of its first epoch (ckpt-1), as if it had died in the second.
    (run / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-1"\n')
    (run / "history.csv").write_text("".join(whole.splitlines(keepends=True)[:2]))
    for name in ("metrics.json", "model.keras"):
        (run / name).unlink()

    result = run_cli_on_mock_data(f"resume={run}", f"hydra.run.dir={session}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    log = (session / "alexnet_mnist.log").read_text()
    assert resumes(log) == [(str(run / "checkpoints" / "ckpt-1"), 2, 0)] and "Total params: 101,770" in log
    assert "epoch 2/2:" in log and "epoch 3/" not in log
    # The run's files are in the run directory, the same as if it had never stopped; this session's
    # own directory keeps its log only.
    assert (run / "history.csv").read_text() == whole
    assert json.loads((run / "metrics.json").read_text())["params"] == 101_770 and (run / "model.keras").is_file()
    assert sorted(path.name for path in session.iterdir()) == [".hydra", "alexnet_mnist.log"]
    assert result.stdout.splitlines()[-1].endswith("run directory run: model.keras, metrics.json, history.csv")


def test_mode_export_writes_beside_the_checkpoint_and_nothing_in_outputs(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    MLP(hidden_units=(16,)).save(run / "model.keras")
    for args, written in [
        ([f"checkpoint={run}"], ["export.json", "model.keras", "model.tflite"]),
        ([f"checkpoint={run / 'model.keras'}", "export.quantization=dynamic"],
         ["export.json", "export_dynamic.json", "model.keras", "model.tflite", "model_dynamic.tflite"]),
    ]:  # fmt: skip
        result = run_cli_on_mock_data("mode=export", *args, cwd=tmp_path)  # Hydra's default outputs/DATE/TIME
        assert result.returncode == 0, result.stdout + result.stderr
        assert sorted(path.name for path in run.iterdir()) == written
        assert not (tmp_path / "outputs").exists()
    float32, dynamic = (json.loads((run / name).read_text()) for name in ("export.json", "export_dynamic.json"))
    assert (float32["file"], float32["quantization"], float32["test_images"]) == (str(run / "model.tflite"), "none", 200)
    assert float32["agreement"] >= export.MIN_FLOAT32_AGREEMENT and float32["size_bytes"] == (run / "model.tflite").stat().st_size
    assert (dynamic["file"], dynamic["quantization"]) == (str(run / "model_dynamic.tflite"), "dynamic")


def test_a_float32_export_that_disagrees_with_keras_is_refused_and_not_written(tmp_path, monkeypatch):
    MLP(hidden_units=(16,)).save(tmp_path / "model.keras")
    # The converter hands back another model's file: the check runs for real, on a file that disagrees.
    other = export.convert(MLP(hidden_units=(16,)))
    monkeypatch.setattr(export, "convert", lambda *args, **kwargs: other)
    message = r"the float32 export agrees with the Keras model on \d+\.\d\d% of the test images, below 99\.9%; not writing "
    with tfds.testing.mock_data(num_examples=200), pytest.raises(UserError, match=message + str(tmp_path / "model.tflite")):
        modes.export_checkpoint(make_config("mode=export", f"checkpoint={tmp_path}"), tmp_path / "session")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.keras"]


def test_a_nan_loss_stops_the_command_with_one_line_naming_its_step_and_keeps_the_run(tmp_path):
    run = tmp_path / "run"
    # At lr 1e30 the first step moves every weight by about 1e30: the second step's loss overflows.
    result = run_cli_on_mock_data("model=mlp", "debug=smoke", "optimizer.lr=1e30", *QUIET, f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    (line,) = error_lines(result)
    assert line.endswith("the training loss became NaN or infinite at step 2; the checkpoints and model.keras of the "
                         "last good epoch are kept; try a lower optimizer.lr")  # fmt: skip
    # It did some work: its directory and log stay, though no epoch was good enough to keep.
    assert line in (run / "alexnet_mnist.log").read_text() and "Total params: 101,770" in (run / "alexnet_mnist.log").read_text()
    assert (run / ".hydra" / "config.yaml").is_file() and not (run / "history.csv").exists()
