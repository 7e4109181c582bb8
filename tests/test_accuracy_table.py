"""benchmarks/accuracy.py: ensemble rows assembled from the runs of their member recipe."""

import dataclasses
import json
import sys

import pytest
from conftest import REPO, make_config

from alexnet_mnist.atomic_files import write_csv
from alexnet_mnist.inference import saved_models
from alexnet_mnist.models import MLP

sys.path.insert(0, str(REPO / "benchmarks"))
import accuracy  # noqa: E402


@pytest.mark.parametrize("recipe", accuracy.ENSEMBLES)
def test_ensemble_recipe_is_its_member_recipe_k_times(recipe):
    """Assembling member runs stands for `experiment=<ensemble recipe>` only while the two agree."""
    member_recipe, size = accuracy.ENSEMBLES[recipe]
    ensemble = make_config(f"experiment={recipe}")
    member = make_config(f"experiment={member_recipe}")
    assert ensemble.ensemble.members == size
    assert dataclasses.replace(ensemble, ensemble=member.ensemble) == member


def finished_run(run_dir, epoch_seconds):
    """A run directory as a finished run leaves it (an untrained MLP: accuracy does not matter here)."""
    run_dir.mkdir(parents=True)
    saved_models.save_model(MLP(hidden_units=(8,)), run_dir / saved_models.MODEL_FILE)
    (run_dir / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}))
    rows = [{"epoch": epoch, "epoch_seconds": seconds} for epoch, seconds in enumerate(epoch_seconds, 1)]
    write_csv(run_dir / "timing.csv", rows, ["epoch", "epoch_seconds"])


@pytest.mark.real_data
def test_an_ensemble_row_is_assembled_from_finished_member_runs(tfds_data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(accuracy, "ENSEMBLES", {"ensemble_best": ("mlp_best", 2)})
    finished_run(tmp_path / "mlp_best" / "seed_3", [10.0, 20.0])
    # Without training, an ensemble waits for all its members.
    assert accuracy.run("ensemble_best", 3, tmp_path, accuracy.SMOKE, train=False) is None
    finished_run(tmp_path / "mlp_best" / "seed_4", [30.0])

    run_dir = accuracy.run("ensemble_best", 3, tmp_path, accuracy.SMOKE, train=False)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [member["model"] for member in metrics["members"]] == [
        str(tmp_path / "mlp_best" / f"seed_{seed}" / saved_models.MODEL_FILE) for seed in (3, 4)
    ]
    row = accuracy.summarize("ensemble_best", [run_dir])
    assert row["test_accuracy"] == (metrics["test_accuracy"], 0.0)
    assert (row["epochs"], row["wall_seconds"]) == (3, 60.0)  # the members' epochs and times add up
    assert row["robustness"]["clean"] == pytest.approx(metrics["test_accuracy"])
    assert set(row["robustness"]) > {"clean", "erode_1"}


def test_write_keeps_the_committed_rows_of_recipes_not_run_in_recipe_order():
    kept = [{"recipe": "default", "v": 1}, {"recipe": "mlp_best", "v": 2}]
    new = [{"recipe": "alexnet_fashion_best", "v": 3}, {"recipe": "default", "v": 4}]
    assert accuracy.merge(kept, new) == [{"recipe": "default", "v": 4}, {"recipe": "mlp_best", "v": 2},
                                         {"recipe": "alexnet_fashion_best", "v": 3}]  # fmt: skip


def test_the_committed_table_is_rendered_from_the_committed_rows():
    rows = json.loads((REPO / "benchmarks" / "accuracy.json").read_text())
    rendered = accuracy.render(rows).splitlines()
    committed = (REPO / "benchmarks" / "ACCURACY.md").read_text().splitlines()
    # Line 3 names the CPU of the machine that renders it.
    assert rendered[:2] + rendered[3:] == committed[:2] + committed[3:]
