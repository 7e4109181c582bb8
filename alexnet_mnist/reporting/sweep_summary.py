"""The results table of a sweep, read back from the files each job wrote into its own directory."""

import csv
import json
from pathlib import Path

from omegaconf import OmegaConf

METRICS = ("best_val_accuracy", "test_accuracy", "epochs", "train_seconds", "params")
COLUMNS = ("status", "overrides", *METRICS, "job_dir")


def collect(sweep_dir) -> list:
    """One row per job under `sweep_dir` (a directory with .hydra/overrides.yaml), best first.

    A job without metrics.json did not finish: it is marked failed and listed last.
    """
    sweep_dir = Path(sweep_dir)
    rows = []
    for overrides_file in sorted(sweep_dir.glob("**/.hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        metrics_file = job_dir / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        rows.append({
            "status": "ok" if metrics else "failed",
            "overrides": list(OmegaConf.load(overrides_file)),
            **{name: metrics.get(name) for name in METRICS},
            "job_dir": str(job_dir.relative_to(sweep_dir)),
        })
    return sorted(rows, key=lambda row: (row["status"] != "ok", -(row["best_val_accuracy"] or 0.0)))


def write(rows, sweep_dir) -> tuple:
    """summary.csv (every override of each job) and summary.md (the overrides that differ between
    jobs, those they share above the table) in `sweep_dir`. Returns both paths."""
    sweep_dir = Path(sweep_dir)
    csv_path, md_path = sweep_dir / "summary.csv", sweep_dir / "summary.md"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({**row, "overrides": " ".join(row["overrides"])} for row in rows)

    shared = [o for o in rows[0]["overrides"] if all(o in row["overrides"] for row in rows)] if rows else []
    lines = [
        f"Sweep `{sweep_dir}`: {len(rows)} jobs, best validation accuracy first.",
        "",
        f"Overrides of every job: `{' '.join(shared) or '(none)'}`",
        "",
        "| overrides | best val acc | test acc | epochs | train s | params | status | job dir |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        own = " ".join(o for o in row["overrides"] if o not in shared) or "(shared only)"
        lines.append(
            f"| `{own}` | {_fmt(row['best_val_accuracy'], '.4f')} | {_fmt(row['test_accuracy'], '.4f')} | "
            f"{_fmt(row['epochs'], 'd')} | {_fmt(row['train_seconds'], '.1f')} | {_fmt(row['params'], ',d')} | "
            f"{row['status']} | {row['job_dir']} |"
        )
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def _fmt(value, spec):
    return "–" if value is None else format(value, spec)
