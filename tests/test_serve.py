"""mode=serve's command line without a browser: its settings, and what it says when it cannot run."""

import os
import subprocess
import sys

import pytest
from conftest import make_config

from alexnet_mnist import MLP
from alexnet_mnist.config import check_ranges
from alexnet_mnist.errors import UserError


def run_cli(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "alexnet_mnist", *args], cwd=cwd, env=env or os.environ, capture_output=True, text=True,
        timeout=300,
    )


def test_serve_settings_default_to_this_machine_only():
    serve = make_config("mode=serve").serve
    assert (serve.host, serve.port, serve.max_file_mb) == ("127.0.0.1", 7860, 5.0)


@pytest.mark.parametrize(
    "override, message",
    [("serve.port=0", "serve.port=0 is out of range: it must be in [1, 65536)"),
     ("serve.port=70000", "serve.port=70000 is out of range: it must be in [1, 65536)"),
     ("serve.max_file_mb=0", "serve.max_file_mb=0.0 is out of range: it must be > 0")],
)
def test_bad_serve_settings_are_one_line_errors(override, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        check_ranges(make_config("mode=serve", override))


def test_without_gradio_serve_says_what_to_install_in_one_line(tmp_path):
    MLP(hidden_units=(8,)).save(tmp_path / "model.keras")
    # A `gradio` that cannot be imported, ahead of the installed one on the path.
    (tmp_path / "hide" / "gradio").mkdir(parents=True)
    (tmp_path / "hide" / "gradio" / "__init__.py").write_text("raise ImportError(\"No module named 'gradio'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "hide"), os.environ.get("PYTHONPATH", "")])}
    result = run_cli("mode=serve", f"checkpoint={tmp_path}", cwd=tmp_path, env=env)
    assert result.returncode == 1
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line]
    assert len(errors) == 1 and errors[0].endswith('mode=serve needs Gradio, an optional extra: pip install "alexnet_mnist[demo]"')
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_port_in_use_is_one_line(tmp_path):
    import socket

    MLP(hidden_units=(8,)).save(tmp_path / "model.keras")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("mode=serve", f"checkpoint={tmp_path}", f"serve.port={port}", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"serve.host=127.0.0.1 serve.port={port}: cannot listen there" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
