"""`python -m alexnet_mnist`: the Hydra command line, a thin layer that runs the chosen `mode`.

The work of each mode is in alexnet_mnist.modes; the Hydra callbacks in alexnet_mnist.callbacks add
the sweep summary.
"""

import logging
import math
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from alexnet_mnist import quiet
from alexnet_mnist.cli import run_directory
from alexnet_mnist.config import MODEL_SCHEMAS, Mode, check_ranges, register_schemas
from alexnet_mnist.errors import PeerLost, RunStopped, UserError

log = logging.getLogger("alexnet_mnist")

register_schemas()


@hydra.main(version_base="1.3", config_path="pkg://alexnet_mnist.conf", config_name="config")
def main(cfg: DictConfig):
    """Run `cfg.mode` (train by default); returns its validation accuracy for sweepers (NaN for a
    failed sweep job)."""
    verbose = cfg.verbose
    if not verbose:
        # TFDS reports every file it opens, and its own deprecations, through absl; TensorFlow
        # reports the TFLite converter's temporary SavedModel twice (its handler and Hydra's).
        logging.getLogger("absl").setLevel(logging.ERROR)
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
    hydra_config = HydraConfig.get()
    output_dir, log_name = hydra_config.runtime.output_dir, f"{hydra_config.job.name}.log"
    try:
        config, workdir = _resolve(cfg, output_dir)
        check_ranges(config)
        quiet.hide(not verbose)
        with quiet.native_output():
            from alexnet_mnist.cli import modes  # TensorFlow's work starts here

        run_mode = {
            Mode.train: modes.train,
            Mode.ensemble: modes.assemble,
            Mode.export: modes.export_checkpoint,
            Mode.predict: modes.classify,
            Mode.report: modes.report,
            Mode.serve: modes.serve,
        }[config.mode]
        result = run_mode(config, workdir)
    except Exception as error:
        if hydra_config.mode == RunMode.MULTIRUN:
            # Hydra ends a sweep at the first job that raises; logging it instead keeps the others
            # running. The sweep summary marks this job failed (it wrote no metrics.json), and NaN
            # is how Optuna is told that a trial failed.
            traceback = verbose or not isinstance(error, UserError)
            log.error("job %s failed: %s", hydra_config.job.num, error, exc_info=traceback)
            return math.nan
        if isinstance(error, UserError):
            # Rejected before any work, a command leaves nothing behind; after some, its files stay.
            if not isinstance(error, RunStopped):
                run_directory.remove_if_bookkeeping_only(output_dir, log_name)
            if not verbose:
                log.error("%s", error)
                if isinstance(error, PeerLost):
                    # The interpreter's teardown would wait on, or complain about, the dead peer's
                    # collectives: leave at once, the line above written.
                    logging.shutdown()
                    os._exit(1)
                sys.exit(1)
        raise
    if result is None:  # the mode wrote nothing into the run directory
        run_directory.remove_if_bookkeeping_only(output_dir, log_name)
    else:
        run_directory.announce(workdir)
    return result


def _resolve(cfg, output_dir):
    """The typed config and the directory to work in; `resume=DIR` continues DIR's own run."""
    if cfg.resume is None:
        return OmegaConf.to_object(cfg), output_dir
    run_config = Path(cfg.resume) / ".hydra" / "config.yaml"
    if not run_config.is_file():
        raise UserError(f"resume={cfg.resume}: not a run directory (no {run_config})")
    saved = OmegaConf.load(run_config)
    # The run's model takes its own schema: merged into the command line's model, an MLP's keys
    # were unknown to AlexNet's.
    base = cfg.copy()
    base.model = OmegaConf.structured(MODEL_SCHEMAS[saved.model.name])
    merged = OmegaConf.merge(base, saved, {"resume": cfg.resume, "train": {"resume": True}})
    return OmegaConf.to_object(merged), cfg.resume
