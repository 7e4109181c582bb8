"""`python -m alexnet_mnist`: the Hydra command line, a thin layer over the library.

`mode` picks the work (MODES); the Hydra callbacks in alexnet_mnist.callbacks add the sweep summary.
"""

import logging
import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from alexnet_mnist.config import Config, Mode, register_schemas
from alexnet_mnist.errors import UserError

log = logging.getLogger("alexnet_mnist")

register_schemas()


def train(config: Config, output_dir) -> float:
    """mode=train: train and evaluate one configuration; the best validation accuracy, for sweepers."""
    from alexnet_mnist.train import train_and_evaluate  # TensorFlow work starts only past validation

    return train_and_evaluate(config, output_dir)["best_val_accuracy"]


def report(config: Config, output_dir) -> None:
    """mode=report checkpoint=DIR: draw the pictures of the saved run in DIR, into DIR.

    The test images are those the run was evaluated on: its dataset and eval_examples come from
    DIR/.hydra/config.yaml when present; where the data live (data_dir, download) from this command.
    """
    if config.checkpoint is None:
        raise UserError("mode=report needs checkpoint=DIR, the directory of a finished run (with model.keras)")
    run_dir = Path(config.checkpoint)
    if not (run_dir / "model.keras").is_file() or not (run_dir / "history.csv").is_file():
        raise UserError(f"checkpoint={config.checkpoint} holds no model.keras and history.csv of a finished run")
    saved = run_dir / ".hydra" / "config.yaml"
    run_data = OmegaConf.load(saved).data if saved.is_file() else config.data
    from alexnet_mnist.report import report_saved_run

    paths = report_saved_run(
        run_dir,
        run_data.name,
        eval_examples=run_data.eval_examples,
        eval_batch_size=config.train.eval_batch_size,
        data_dir=config.data.data_dir,
        download=config.data.download,
    )
    log.info("wrote %s", ", ".join(str(path) for path in paths))


MODES = {Mode.train: train, Mode.report: report}


@hydra.main(version_base="1.3", config_path="pkg://alexnet_mnist.conf", config_name="config")
def main(cfg: DictConfig):
    """Run `mode`; returns the best validation accuracy in mode=train (NaN for a failed sweep job)."""
    config = OmegaConf.to_object(cfg)
    if not config.verbose:
        # TFDS reports every file it opens, and its own deprecations, through absl.
        logging.getLogger("absl").setLevel(logging.ERROR)
    hydra_config = HydraConfig.get()
    try:
        return MODES[config.mode](config, hydra_config.runtime.output_dir)
    except Exception as error:
        if hydra_config.mode == RunMode.MULTIRUN:
            # Hydra ends a sweep at the first job that raises; logging it instead keeps the others
            # running. The sweep summary marks this job failed (it wrote no metrics.json), and NaN
            # is how Optuna is told that a trial failed.
            traceback = config.verbose or not isinstance(error, UserError)
            log.error("job %s failed: %s", hydra_config.job.num, error, exc_info=traceback)
            return math.nan
        if isinstance(error, UserError) and not config.verbose:
            log.error("%s", error)
            sys.exit(1)
        raise
