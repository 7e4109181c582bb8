"""Writing run files so that a crash never leaves one half-written."""

import contextlib
import csv
import json
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path` (same suffix, which Keras insists on), moved over `path` only
    when the block completes; a crash leaves the old file, or none, never a partial one."""
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(path, obj):
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(obj, indent=2) + "\n")


def write_csv(path, rows, fieldnames):
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
