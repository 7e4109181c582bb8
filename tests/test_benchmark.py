"""The benchmarks run end to end (smoke runs: their figures are not judged here)."""

import re
import subprocess
import sys

import pytest
from conftest import REPO


def smoke_run(script):
    """stdout of `benchmarks/<script> --smoke`, which must succeed."""
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--smoke"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.real_data
def test_benchmark_smoke_run_prints_its_table(tfds_data_dir):
    stdout = smoke_run("train_throughput.py")
    rows = re.findall(r"^\| mlp \| (float32|mixed_bfloat16) \| ([\d,]+) \| ([\d,]+) \|", stdout, re.M)
    assert [precision for precision, _, _ in rows] == ["float32", "mixed_bfloat16"]
    assert all(int(loop.replace(",", "")) > 0 and int(fit.replace(",", "")) > 0 for _, loop, fit in rows)
    assert "Input pipeline alone, with the default augmentation:" in stdout and "TensorFlow 2." in stdout


@pytest.mark.real_data
def test_op_profile_smoke_run_sums_kernels_by_kind(tfds_data_dir):
    stdout = smoke_run("op_profile.py")
    header = re.search(r"^\| kernels \| (.*) \|$", stdout, re.M).group(1).split(" | ")
    assert header == [f"{name} {precision}" for precision in ("float32", "mixed_bfloat16") for name in ("loop before", "loop", "fit")]
    matmul = re.search(r"^\| dense \(matmul\) \| (.*) \|$", stdout, re.M).group(1).split(" | ")
    assert all(float(ms) > 0 for ms in matmul)  # the MLP's kernels were found in every profile
    busy = re.search(r"^\| busy share of the span \| (.*) \|$", stdout, re.M).group(1).split(" | ")
    assert all(0 < float(share.rstrip("%")) <= 100 for share in busy)


@pytest.mark.real_data
def test_epoch_time_smoke_run_compares_whole_epochs(tfds_data_dir):
    stdout = smoke_run("epoch_time.py")
    assert "## Epochs end to end: mlp" in stdout
    loop = re.search(r"^\| project loop \| ([\d., ]+) \|", stdout, re.M).group(1).split(", ")
    fit = re.search(r"^\| Keras fit \| ([\d., ]+) \|", stdout, re.M).group(1).split(", ")
    assert len(loop) == len(fit) == 2 and all(float(s) > 0 for s in loop + fit)
    assert re.search(r"\| [\d.]+× faster \|$", stdout, re.M)
    # Each loop epoch set against its own compute: a positive step time and prediction.
    epochs = re.findall(r"^\| (\d) \| [\d.]+ \| ([\d.]+) \| [\d.]+ \| ([\d.]+) \| [+-][\d.]+% \|", stdout, re.M)
    assert [number for number, _, _ in epochs] == ["1", "2"]
    assert all(float(step) > 0 and float(predicted) > 0 for _, step, predicted in epochs)


@pytest.mark.real_data
def test_scaling_run_measures_two_workers_and_projects(tfds_data_dir):
    result = subprocess.run(
        [sys.executable, "benchmarks/scaling.py", "--models", "mlp", "--steps", "20"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    row = re.search(r"^\| mlp \| [\d.]+ \| ([\d,]+) \| ([\d,]+) \| (.*) \|$", result.stdout, re.M)
    assert int(row.group(1).replace(",", "")) > 0 and int(row.group(2).replace(",", "")) > 0
    assert all(float(ms) > 0 for ms in row.group(3).split(" | "))
    projected = re.findall(r"^\| mlp \| \d+ \| \w+ \| (10|100) Gbit/s \| (.*) \|$", result.stdout, re.M)
    assert len(projected) == 6 and all(0 < int(e.rstrip("%")) <= 100 for _, cells in projected for e in cells.split(" | "))
