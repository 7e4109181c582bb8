"""Typed schemas for the Hydra configs in conf/.

Each YAML file in a config group starts from one of these schemas, so Hydra rejects unknown keys and
values of the wrong type at composition time, before TensorFlow is imported.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class MLPConfig:
    name: str = "mlp"
    hidden_units: list[int] = field(default_factory=lambda: [128])
    activation: str = "relu"
    dropout: float = 0.2


@dataclass
class AlexNetConfig:
    name: str = "alexnet"
    dropout: float = 0.5
    lrn: bool = True
    fc_units: int = 1024


@dataclass
class DataConfig:
    name: str = MISSING  # a TFDS dataset of 28x28x1 images with 10 classes
    data_dir: Optional[str] = None  # None: TFDS's default, which honours TFDS_DATA_DIR
    download: bool = False
    val_fraction: float = 0.1
    train_examples: Optional[int] = None  # use only the first N training examples (debugging)
    eval_examples: Optional[int] = None  # use only the first N validation and test examples


@dataclass
class OptimizerConfig:
    name: str = MISSING  # adam | sgd | rmsprop
    lr: float = 1e-3
    momentum: float = 0.0  # sgd and rmsprop


@dataclass
class EarlyStoppingConfig:
    patience: int = 3  # epochs without a better validation accuracy before stopping


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 1000
    log_every_steps: int = 20
    run_eagerly: bool = False
    jit_compile: bool = False
    checkpoints_to_keep: int = 3
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


class Mode(str, Enum):
    """What `python -m alexnet_mnist` does: app.MODES maps each mode to its function."""

    train = "train"
    report = "report"  # the pictures of the saved run in `checkpoint`


class Logger(str, Enum):
    none = "none"
    tensorboard = "tensorboard"  # tf.summary events under the run directory


@dataclass
class ReportConfig:
    plots: bool = True  # curves, confusion, samples and errors PNGs in the run directory


@dataclass
class Config:
    model: Any = MISSING
    data: DataConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    train: TrainConfig = MISSING
    report: ReportConfig = field(default_factory=ReportConfig)
    mode: Mode = Mode.train
    checkpoint: Optional[str] = None  # a saved run's directory, for mode=report
    logger: Logger = Logger.none
    seed: int = 0
    deterministic: bool = False
    progress: bool = True
    verbose: bool = False


def register_schemas() -> None:
    """Make the schemas available to the defaults lists of conf/ under their `base_*` names."""
    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    store.store(group="model", name="base_mlp", node=MLPConfig)
    store.store(group="model", name="base_alexnet", node=AlexNetConfig)
    store.store(group="data", name="base_data", node=DataConfig)
    store.store(group="optimizer", name="base_optimizer", node=OptimizerConfig)
    store.store(group="train", name="base_train", node=TrainConfig)
