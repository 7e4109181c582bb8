"""How the members of a trained ensemble differ, and which of them to average, chosen on validation.

    python benchmarks/ensemble_members.py RUN_DIR [--write]

RUN_DIR is an ensemble's run directory (`members/<k>/` inside, as `ensemble.members=K` leaves it).
Every member predicts the validation split of the run's seed (which members of different
`ensemble.variants` share) and the test split. Printed: each member's accuracies; how often two
members disagree on the test split (their top classes differ) and how often both are wrong there;
and for every subset of two or more members, the validation and test accuracy of their averaged
probabilities. The subset chosen is the one with the best validation accuracy (ties: fewer members):
the test split only reports it. `--write` writes its section of benchmarks/RESULTS.md.
"""

import argparse
import itertools
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from results_file import write_section
from train_throughput import cpu_model

from alexnet_mnist import data, load_model
from alexnet_mnist.reporting.run_report import predict


def analyse(run_dir):
    run_dir = Path(run_dir)
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    splits = data.make_splits(config.data.name, batch_size=1000, eval_batch_size=1000, seed=config.seed)
    members = sorted((run_dir / "members").iterdir(), key=lambda path: int(path.name))
    variants = list(config.ensemble.variants) or [{}]
    val, test = {}, {}
    for k, member in enumerate(members):
        model = load_model(member / "model.keras")
        _, val_labels, val[k] = predict(model, splits.val)
        _, test_labels, test[k] = predict(model, splits.test)
    accuracy = lambda probs, labels: float(np.mean(probs.argmax(1) == labels))  # noqa: E731
    rows = []
    for k in val:
        variant = OmegaConf.to_container(OmegaConf.create(variants[k % len(variants)]))
        rows.append((k, variant, accuracy(val[k], val_labels), accuracy(test[k], test_labels)))
    pairs = []
    for a, b in itertools.combinations(val, 2):
        top_a, top_b = test[a].argmax(1), test[b].argmax(1)
        both_wrong = np.mean((top_a != test_labels) & (top_b != test_labels))
        pairs.append((a, b, float(np.mean(top_a != top_b)), float(both_wrong)))
    subsets = []
    for size in range(2, len(val) + 1):
        for subset in itertools.combinations(val, size):
            subsets.append((
                subset,
                accuracy(np.mean([val[k] for k in subset], axis=0), val_labels),
                accuracy(np.mean([test[k] for k in subset], axis=0), test_labels),
            ))  # fmt: skip
    chosen = max(subsets, key=lambda row: (row[1], -len(row[0])))
    return rows, pairs, subsets, chosen


def render(run_dir, rows, pairs, subsets, chosen):
    best_member = max(row[3] for row in rows)
    lines = [
        "# Ensemble members",
        "",
        f"Written by `benchmarks/ensemble_members.py {run_dir}` on {cpu_model()}: each member's accuracy, how "
        "often two members' top classes differ on the test split, and the averaged probabilities of every "
        "subset; the subset is chosen on the validation split (the members share it), the test split only "
        "reports it.",
        "",
        "| member | variant | val accuracy % | test accuracy % |",
        "|---:|---|---:|---:|",
        *(f"| {k} | `{variant}` | {100 * v:.2f} | {100 * t:.2f} |" for k, variant, v, t in rows),
        "",
        "| members | disagree on test % | both wrong % |",
        "|---|---:|---:|",
        *(f"| {a}, {b} | {100 * d:.2f} | {100 * w:.2f} |" for a, b, d, w in pairs),
        "",
        "| subset | val accuracy % | test accuracy % | test gain over its best member (points) |",
        "|---|---:|---:|---:|",
    ]
    test_of = {row[0]: row[3] for row in rows}
    for subset, v, t in sorted(subsets, key=lambda row: -row[1]):
        lines.append(f"| {', '.join(map(str, subset))} | {100 * v:.2f} | {100 * t:.2f} | {100 * (t - max(test_of[k] for k in subset)):+.2f} |")
    subset, v, t = chosen
    lines += [
        "",
        f"Chosen on validation: members {', '.join(map(str, subset))} ({100 * v:.2f} % validation), "
        f"{100 * t:.2f} % test; the best single member {100 * best_member:.2f} % test.",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--write", action="store_true", help="also write its section of benchmarks/RESULTS.md")
    args = parser.parse_args()
    table = render(args.run_dir, *analyse(args.run_dir))
    print(table)
    if args.write:
        write_section(table)


if __name__ == "__main__":
    main()
