"""What a command leaves in the run directory Hydra made for it, and the line that says so.

Hydra creates the directory, with `.hydra/` and the job's log, before the app sees its config. A
command rejected before any work, and the modes whose files go next to their `checkpoint`
(export, predict, report), would leave just that behind: those files and the directory are removed.
"""

import logging
import shutil
from pathlib import Path

log = logging.getLogger("alexnet_mnist")

# In the order a user looks for them; the line names those the run wrote.
MAIN_FILES = ("model.keras", "model*.tflite", "metrics.json", "history.csv", "*.png", "tensorboard", "members")


def announce(run_dir) -> None:
    """Log the one line that ends a run: its directory and the main files in it."""
    run_dir = Path(run_dir).resolve()
    written = [path.name for pattern in MAIN_FILES for path in sorted(run_dir.glob(pattern))]
    shown = run_dir.relative_to(Path.cwd()) if run_dir.is_relative_to(Path.cwd()) else run_dir
    log.info("run directory %s: %s", shown, ", ".join(written))


def remove_if_bookkeeping_only(run_dir, log_name) -> None:
    """When `run_dir` holds nothing but Hydra's `.hydra/` and the job's log `log_name`, remove those,
    then the directory and the empty `outputs/DATE/` above it (never the working directory)."""
    run_dir = Path(run_dir).resolve()
    bookkeeping = {".hydra", log_name}
    if not run_dir.is_dir() or {path.name for path in run_dir.iterdir()} - bookkeeping:
        return
    close_log_files(run_dir)
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    (run_dir / log_name).unlink(missing_ok=True)
    # Hydra's default layout is outputs/DATE/TIME: leave no empty DATE (or outputs/) behind either.
    directories = [run_dir, run_dir.parent, run_dir.parent.parent] if run_dir.parent.parent.name == "outputs" else [run_dir]
    for directory in directories:
        if directory in (Path.cwd(), *Path.cwd().parents) or any(directory.iterdir()):
            break
        directory.rmdir()


def close_log_files(run_dir=None):
    """Close the log handlers writing files into `run_dir` (None: anywhere), so nothing writes there again."""
    for handler in list(logging.root.handlers):
        if not isinstance(handler, logging.FileHandler):
            continue
        if run_dir is None or Path(handler.baseFilename).parent == Path(run_dir).resolve():
            logging.root.removeHandler(handler)
            handler.close()
