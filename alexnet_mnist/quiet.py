"""Keep the native libraries' chatter off the command line's output, unless `verbose=true`.

TensorFlow's start-up, the TFLite converter and the LiteRT interpreter write straight to file
descriptor 2 from C++ (oneDNN and CUDA-probing lines, SavedModel reader lines, "fully_quantize: ...",
"Created TensorFlow Lite XNNPACK delegate"), some of it ignoring TF_CPP_MIN_LOG_LEVEL, and the
converter warns about calibration statistics it does not need. The command line calls `hide(True)`
before it imports TensorFlow, and the package runs those noisy calls inside `native_output()`.
Imported from Python the package hides nothing: `hide` is never called there.
"""

import contextlib
import os
import sys
import warnings

_hidden = False


def hide(hidden: bool) -> None:
    """Hide (or not) what runs inside `native_output()` from now on; call before importing TensorFlow."""
    global _hidden
    _hidden = hidden
    if hidden:
        # The lines TensorFlow logs once running (the CUDA probe's error among them) honour this.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def native_output():
    """Run a noisy block with file descriptor 2 sent to /dev/null and Python warnings off, if hidden."""
    if not _hidden:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
