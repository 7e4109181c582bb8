"""Sweeps: the summary table, a real multirun on the command line, and the Optuna and joblib configs."""

import csv
import json
from importlib.resources import files

import pytest
from conftest import REPO, require_extra
from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from test_cli import run_cli
from test_report import PICTURES, assert_pictures

from alexnet_mnist.config import register_schemas
from alexnet_mnist.reporting import sweep_summary


def fake_job(sweep_dir, subdir, overrides, best_val_accuracy=None):
    job = sweep_dir / subdir
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
    if best_val_accuracy is not None:
        metrics = dict(best_val_accuracy=best_val_accuracy, test_accuracy=0.9, epochs=2, train_seconds=1.5, params=101_770)
        (job / "metrics.json").write_text(json.dumps(metrics))


def test_summary_lists_jobs_best_first_and_failed_last(tmp_path):
    fake_job(tmp_path, "0", ["model=mlp", "optimizer=adam"], 0.91)
    fake_job(tmp_path, "1", ["model=mlp", "optimizer=sgd"])  # no metrics.json: it failed
    fake_job(tmp_path, "2", ["model=mlp", "optimizer=rmsprop"], 0.95)
    rows = sweep_summary.collect(tmp_path)
    assert [(row["job_dir"], row["status"]) for row in rows] == [("2", "ok"), ("0", "ok"), ("1", "failed")]
    csv_path, md_path = sweep_summary.write(rows, tmp_path)
    with open(csv_path, newline="") as f:
        table = list(csv.DictReader(f))
    assert table[0]["overrides"] == "model=mlp optimizer=rmsprop" and table[0]["params"] == "101770"
    assert table[2]["status"] == "failed" and table[2]["best_val_accuracy"] == ""
    md = md_path.read_text()
    assert "Overrides of every job: `model=mlp`" in md
    assert "| `optimizer=rmsprop` | 0.9500 | 0.9000 | 2 | 1.5 | 101,770 | ok | 2 |" in md


@pytest.mark.real_data
def test_sweep_on_the_command_line_summarises_every_job(tfds_data_dir, tmp_path):
    sweep_dir, report_run = tmp_path / "sweep", tmp_path / "report"
    result = run_cli(
        "-m", "model=mlp,alexnet", "data.name=mnist,not_a_dataset", "debug=smoke", "progress=false",
        f"hydra.sweep.dir={sweep_dir}", cwd=REPO,
    )
    # The failing jobs do not stop the others; the exit status says that some failed.
    assert result.returncode == 1, result.stderr
    with open(sweep_dir / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["status"] for row in rows] == ["ok", "ok", "failed", "failed"]
    assert {row["params"] for row in rows[:2]} == {"101770", "7703242"}
    assert all("data.name=not_a_dataset" in row["overrides"] for row in rows[2:])
    assert float(rows[0]["best_val_accuracy"]) >= float(rows[1]["best_val_accuracy"])
    assert (sweep_dir / "summary.md").read_text().count("| ok |") == 2
    for row in rows[:2]:
        assert_pictures(sweep_dir / row["job_dir"])

    # mode=report draws the same pictures again for a saved run.
    (mlp_job,) = [sweep_dir / row["job_dir"] for row in rows if row["params"] == "101770"]
    for name in PICTURES:
        (mlp_job / f"{name}.png").unlink()
    result = run_cli("mode=report", f"checkpoint={mlp_job}", f"hydra.run.dir={report_run}", cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert_pictures(mlp_job)
    assert not report_run.exists()  # its pictures went to the run it drew; no directory of its own


def test_optuna_search_space_is_valid_sweep_syntax():
    # Needs no plugin: the same parser the Optuna sweeper uses reads each search dimension.
    search = OmegaConf.load(files("alexnet_mnist.conf").joinpath("hparams_search/optuna.yaml"))
    params = search.hydra.sweeper.params
    assert set(params) == {"optimizer.lr", "train.batch_size", "model.dropout", "model.hidden_units"}
    parsed = OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()])
    assert all(override.is_sweep_override() for override in parsed)


def compose_with_hydra(*overrides):
    register_schemas()
    with initialize_config_module("alexnet_mnist.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_optuna_config_composes_with_the_plugin():
    require_extra("optuna", "hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_with_hydra("hparams_search=optuna")
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.model.name == "mlp"


def test_joblib_launcher_uses_every_core_by_default():
    require_extra("joblib", "hydra_plugins.hydra_joblib_launcher")
    cfg = compose_with_hydra("hydra/launcher=joblib")
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == -1


@pytest.mark.real_data
def test_optuna_runs_two_trials(tfds_data_dir, tmp_path):
    require_extra("optuna", "hydra_plugins.hydra_optuna_sweeper")
    result = run_cli(
        "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "debug=smoke", "progress=false",
        "report.plots=false", f"hydra.sweep.dir={tmp_path}", cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(row["status"] == "ok" for row in rows)
    assert all("optimizer.lr=" in row["overrides"] and "model.hidden_units=[" in row["overrides"] for row in rows)
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.best_value == pytest.approx(max(float(row["best_val_accuracy"]) for row in rows))
