"""The accuracy table: each committed recipe over 3 seeds, on MNIST's test split and corrupted copies.

    python benchmarks/accuracy.py [--recipes NAME ...] [--seeds 0 1 2] [--collect-only] [--write]

Each (recipe, seed) is a real run of the command line, `python -m alexnet_mnist experiment=NAME
seed=S`, in `outputs/accuracy/NAME/seed_S/`. A run that finished is collected, not repeated; one that
was interrupted continues from its checkpoints (`train.resume=true`), so the table can be filled over
several sittings. Each finished model is then scored on the transformed copies of the test split in
`alexnet_mnist.data.corruptions` (kept in the run's `robustness.json`). `--write` writes the rows to
benchmarks/accuracy.json, keeping the committed rows of the recipes this sitting did not run (run
directories do not outlive a checkout, the table does), and renders benchmarks/ACCURACY.md from them.
Needs the prepared datasets (TFDS_DATA_DIR).

An ensemble recipe is assembled (`mode=ensemble`) from runs of its member recipe: `ensemble_best`
seed S averages `alexnet_best` seeds S, S+1 and S+2, the very members `experiment=ensemble_best
seed=S` trains in one run, so each AlexNet of the table trains once (`ensemble_fashion_best` likewise
averages `alexnet_fashion_best`).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from train_throughput import cpu_model

from alexnet_mnist import data
from alexnet_mnist.atomic_files import read_csv
from alexnet_mnist.inference import saved_models
from alexnet_mnist.reporting.robustness import evaluate_robustness

REPO = Path(__file__).resolve().parents[1]
# (recipe, the overrides that select it): `default` is the plain `python -m alexnet_mnist model=alexnet`.
RECIPES = {
    "default": ["model=alexnet"],
    # The default recipe before issue 29: the paper's LRN order, 7 epochs of 64, no XLA update.
    "default_before": [
        "model=alexnet", "model.lrn_after_pool=false", "model.dropout=0.5", "train.jit_optimizer=false",
        "train.epochs=7", "train.batch_size=64", "train.early_stopping.patience=7", "optimizer.lr=1e-3",
        "augment.lowres=0.15", "augment.pen=0",
    ],
    # The default recipe squeezed into fewer epochs (its one-cycle schedule with them): the time to a test accuracy.
    "default_1_epoch": ["model=alexnet", "train.epochs=1", "train.early_stopping.patience=1"],
    "default_2_epochs": ["model=alexnet", "train.epochs=2", "train.early_stopping.patience=2"],
    "default_4_epochs": ["model=alexnet", "train.epochs=4", "train.early_stopping.patience=4"],
    "mlp": ["model=mlp"],
    "alexnet_best": ["experiment=alexnet_best"],
    "ensemble_best": ["experiment=ensemble_best"],
    "mlp_best": ["experiment=mlp_best"],
    "alexnet_fashion_best": ["experiment=alexnet_fashion_best"],
    # Issue 30: the Fashion recipe with batch normalization (batches of 128, LRN after pooling: the
    # default's faster step), measured against the plain network.
    "alexnet_fashion_bn": [
        "experiment=alexnet_fashion_best", "model.batch_norm=true", "train.batch_size=128", "optimizer.lr=2e-3",
        "model.lrn_after_pool=true",
    ],
    # Issue 30: the Fashion recipe trained 30 epochs instead of 12 (its one-cycle schedule stretched with them).
    "alexnet_fashion_30_epochs": ["experiment=alexnet_fashion_best", "train.epochs=30", "train.early_stopping.patience=30"],
    "ensemble_fashion_best": ["experiment=ensemble_fashion_best"],
    # Issue 30: five default AlexNets that differ in kernel sizes, LRN and elastic field, or width.
    "ensemble_diverse": ["experiment=ensemble_diverse"],
}
# ensemble recipe: (member recipe, members), as in its conf/experiment/ file (a test holds them equal).
ENSEMBLES = {"ensemble_best": ("alexnet_best", 3), "ensemble_fashion_best": ("alexnet_fashion_best", 3)}
SMOKE = ["debug=smoke"]
HERE = Path(__file__).parent
WHOLE_RUN_FILE = "wall_seconds"


def run(recipe, seed, runs_dir, extra=(), train=True):
    """The run directory of (recipe, seed), trained (or continued) unless it finished before.

    An ensemble is assembled once all its members finished. Without `train`, only what needs no
    training is done, and None stands for a run that did not finish."""
    run_dir = runs_dir / recipe / f"seed_{seed}"
    if (run_dir / "metrics.json").is_file():
        return run_dir
    if recipe in ENSEMBLES:
        member_recipe, size = ENSEMBLES[recipe]
        members = [run(member_recipe, seed + k, runs_dir, extra, train) for k in range(size)]
        if None in members:
            return None
        # The recipe's own overrides: its dataset is the one the ensemble is scored on.
        overrides = [*RECIPES[recipe], "mode=ensemble", f"ensemble.runs=[{','.join(map(str, members))}]"]
    elif train:
        overrides = [*RECIPES[recipe], "train.resume=true", "progress=false"]
    else:
        return None
    command = [
        sys.executable, "-m", "alexnet_mnist", *overrides, f"seed={seed}", f"hydra.run.dir={run_dir}", *extra,
    ]  # fmt: skip
    print("running", " ".join(command[2:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    # The whole command, start to its last file (a resumed run: this sitting's part only).
    (run_dir / WHOLE_RUN_FILE).write_text(f"{time.perf_counter() - start}\n")
    return run_dir


def robustness(run_dir):
    """{"clean": accuracy, corruption: accuracy, ...} of the run's model, computed once."""
    cached = run_dir / "robustness.json"
    if not cached.is_file():
        run_data = saved_models.saved_data(run_dir)
        test, _ = data.make_test_split(run_data.name, batch_size=1000, examples=run_data.eval_examples)
        cached.write_text(json.dumps(evaluate_robustness(saved_models.load_model(run_dir / saved_models.MODEL_FILE), test), indent=2))
    return json.loads(cached.read_text())


def summarize(recipe, run_dirs):
    """The table row of a recipe: means and standard deviations over its finished runs."""
    metrics = [json.loads((d / "metrics.json").read_text()) for d in run_dirs]
    # An ensemble's epochs and times are its members': each member's model sits in its run directory.
    runs = [
        [Path(member["model"]).parent for member in m["members"]] if "members" in m else [d]
        for d, m in zip(run_dirs, metrics)
    ]
    timings = [[_timing(r) for r in member_runs] for member_runs in runs]
    accuracies = [m["test_accuracy"] for m in metrics]
    scores = [robustness(d) for d in run_dirs]
    return {
        "recipe": recipe,
        "cpu": cpu_model(),
        "command": "python -m alexnet_mnist " + " ".join(RECIPES[recipe]),
        "seeds": len(run_dirs),
        "test_accuracy": (statistics.mean(accuracies), statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0),
        "epochs": statistics.mean(sum(len(t) for t in ts) for ts in timings),
        "wall_seconds": statistics.mean(sum(sum(t) for t in ts) for ts in timings),
        "whole_run_seconds": _mean_or_none([_whole_run(d) for d in run_dirs]),
        "to_99.0": _mean_or_none([m.get("seconds_to_val_accuracy_0.99") for m in metrics]),
        "to_99.5": _mean_or_none([m.get("seconds_to_val_accuracy_0.995") for m in metrics]),
        "robustness": {name: statistics.mean(s[name] for s in scores) for name in scores[0]},
    }


def _timing(run_dir):
    return [float(row["epoch_seconds"]) for row in read_csv(run_dir / "timing.csv")]


def _whole_run(run_dir):
    path = run_dir / WHOLE_RUN_FILE
    return float(path.read_text()) if path.is_file() else None


def _mean_or_none(values):
    """The mean over runs, or None unless every run reached the milestone."""
    return None if not values or None in values else statistics.mean(values)


def merge(kept, new):
    """The table's rows: the `new` ones, and those of `kept` for recipes not among them, in RECIPES order."""
    by_recipe = {row["recipe"]: row for row in kept} | {row["recipe"]: row for row in new}
    return [by_recipe[recipe] for recipe in RECIPES if recipe in by_recipe]


def render(rows):
    minutes = lambda s: "–" if s is None else f"{s / 60:.1f}"  # noqa: E731
    names = list(rows[0]["robustness"]) if rows else []
    lines = [
        "# Accuracy",
        "",
        "Written by `benchmarks/accuracy.py` from real runs on the 2-core CPU each row names: test accuracy of the "
        "best-validation weights, mean ± standard deviation over seeds; wall time per run in minutes (the "
        "epochs with their validation and checkpoints, all members of an ensemble); the whole command from "
        "start to its last file (TensorFlow's start, the data, the pictures and the TFLite export included; – "
        "where not timed); minutes until the "
        "validation accuracy first reached 99.0 % and 99.5 % (mean over seeds; – unless every seed did, and "
        "for ensembles, assembled after their members trained).",
        "",
        "| recipe | seeds | test accuracy % | epochs | minutes per run | whole command, minutes | to 99.0 % val | to 99.5 % val | CPU | command |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        mean, sd = row["test_accuracy"]
        lines.append(
            f"| {row['recipe']} | {row['seeds']} | {100 * mean:.2f}{f' ± {100 * sd:.2f}' if row['seeds'] > 1 else ''} | {row['epochs']:.0f} | "
            f"{minutes(row['wall_seconds'])} | {minutes(row.get('whole_run_seconds'))} | {minutes(row['to_99.0'])} | {minutes(row['to_99.5'])} | {row['cpu']} | `{row['command']} seed=S` |"
        )
    lines += [
        "",
        "Robustness: test accuracy % on transformed copies of the test split that no run trains on "
        "(definitions in `alexnet_mnist/data/corruptions.py`), mean over seeds.",
        "",
        "| recipe | " + " | ".join(names) + " | worst |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for row in rows:
        values = row["robustness"]
        lines.append(
            f"| {row['recipe']} | " + " | ".join(f"{100 * values[n]:.2f}" for n in names) + f" | {100 * min(values.values()):.2f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--runs-dir", type=Path, default=REPO / "outputs" / "accuracy")
    parser.add_argument(
        "--collect-only", action="store_true", help="train nothing: collect finished runs, assemble ensembles of them"
    )
    parser.add_argument("--smoke", action="store_true", help="debug=smoke runs (seconds; their accuracy means nothing)")
    parser.add_argument("--write", action="store_true", help="also write benchmarks/ACCURACY.md")
    args = parser.parse_args()

    # Absolute: the runs happen in the repository, and an ensemble names its members' directories.
    runs_dir, extra = args.runs_dir.resolve(), SMOKE if args.smoke else ()
    rows = []
    for recipe in args.recipes:
        dirs = [run(recipe, seed, runs_dir, extra, train=not args.collect_only) for seed in args.seeds]
        dirs = [d for d in dirs if d is not None]
        if dirs:
            rows.append(summarize(recipe, dirs))
    if args.write:
        rows = merge(json.loads((HERE / "accuracy.json").read_text()), rows)
        (HERE / "accuracy.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = render(rows)
    print(table)
    if args.write:
        (HERE / "ACCURACY.md").write_text(table)


if __name__ == "__main__":
    main()
