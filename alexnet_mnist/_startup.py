"""Keep TensorFlow's C++ start-up lines off the command line's output.

`python -m alexnet_mnist` imports this package, and with it TensorFlow, before the app can read its
`verbose` override; TensorFlow then writes oneDNN and CUDA-probing lines straight to file descriptor 2,
ignoring TF_CPP_MIN_LOG_LEVEL. So for the command line only (runpy sets argv[0] to "-m" while it
imports the package) and unless `verbose=true` is among the arguments, stderr is closed to those
lines while TensorFlow is imported. Devices are not created here, so thread counts can still be set.
Importing the package from Python changes nothing.
"""

import contextlib
import os
import sys


def _cli_wants_quiet() -> bool:
    return sys.argv[:1] == ["-m"] and not any(arg.lower() in ("verbose=true", "verbose=1") for arg in sys.argv)


@contextlib.contextmanager
def quiet_stderr_fd():
    """Send file descriptor 2 to /dev/null (C++ code writes there directly), then restore it."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_tensorflow():
    """On the command line, import TensorFlow with its start-up lines silenced."""
    if not _cli_wants_quiet():
        return
    # The lines TensorFlow logs once running (the CUDA probe's error among them) do honour this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quiet_stderr_fd():
        import tensorflow  # noqa: F401
