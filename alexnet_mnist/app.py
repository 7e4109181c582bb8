"""`python -m alexnet_mnist`: the Hydra command line, a thin layer that runs the chosen `mode`."""

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from alexnet_mnist.config import Mode, register_schemas
from alexnet_mnist.errors import UserError

log = logging.getLogger("alexnet_mnist")

register_schemas()


@hydra.main(version_base="1.3", config_path="pkg://alexnet_mnist.conf", config_name="config")
def main(cfg: DictConfig):
    """Run `cfg.mode` (train by default); returns its validation accuracy for sweepers."""
    config = OmegaConf.to_object(cfg)
    if not config.verbose:
        # TFDS reports every file it opens, and its own deprecations, through absl.
        logging.getLogger("absl").setLevel(logging.ERROR)
    from alexnet_mnist import modes  # TensorFlow work starts only past validation

    run_mode = {
        Mode.train: modes.train,
        Mode.ensemble: modes.assemble,
        Mode.export: modes.export_checkpoint,
        Mode.predict: modes.classify,
    }[config.mode]
    try:
        return run_mode(config, HydraConfig.get().runtime.output_dir)
    except UserError as error:
        if config.verbose:
            raise
        log.error("%s", error)
        sys.exit(1)
