"""The throughput benchmark runs end to end (a smoke run: its figures are not judged here)."""

import re
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.real_data
def test_benchmark_smoke_run_prints_its_table(tfds_data_dir):
    result = subprocess.run(
        [sys.executable, "benchmarks/train_throughput.py", "--smoke"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^\| mlp \| (float32|mixed_bfloat16) \| ([\d,]+) \| ([\d,]+) \|", result.stdout, re.M)
    assert [precision for precision, _, _ in rows] == ["float32", "mixed_bfloat16"]
    assert all(int(loop.replace(",", "")) > 0 and int(fit.replace(",", "")) > 0 for _, loop, fit in rows)
    assert "Input pipeline alone:" in result.stdout and "TensorFlow 2." in result.stdout
