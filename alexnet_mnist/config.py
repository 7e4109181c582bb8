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
    """What `python -m alexnet_mnist` does; the dispatch table is in app.py."""

    train = "train"  # train (an ensemble when ensemble.members > 1), then export
    ensemble = "ensemble"  # combine the models of earlier runs (ensemble.runs) without retraining
    export = "export"  # export `checkpoint` to TFLite and verify the file
    predict = "predict"  # classify `inputs` with `checkpoint`


class Combine(str, Enum):
    mean_prob = "mean_prob"  # average the members' softmax probabilities
    vote = "vote"  # the share of members voting for each class


class Quantization(str, Enum):
    none = "none"  # float32
    dynamic = "dynamic"  # int8 weights, float activations
    float16 = "float16"  # float16 weights
    int8 = "int8"  # int8 weights and activations where the kernels allow, calibrated on training images


@dataclass
class EnsembleConfig:
    members: int = 1  # K > 1 trains K members with seeds seed, seed+1, ... in members/<k>/
    combine: Combine = Combine.mean_prob
    runs: list[str] = field(default_factory=list)  # mode=ensemble: run directories, .keras files or globs


@dataclass
class ExportConfig:
    tflite: bool = True  # mode=train: write and verify model.tflite at the end of the run
    quantization: Quantization = Quantization.none


@dataclass
class PredictConfig:
    invert: bool = False  # images with dark digits on a light background


@dataclass
class Config:
    model: Any = MISSING
    data: DataConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    train: TrainConfig = MISSING
    seed: int = 0
    deterministic: bool = False
    progress: bool = True
    verbose: bool = False
    mode: Mode = Mode.train
    checkpoint: Optional[str] = None  # mode=export|predict: a run directory, .keras or .tflite file
    inputs: list[str] = field(default_factory=list)  # mode=predict: PNG/JPEG files or .npy batches
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)


def register_schemas() -> None:
    """Make the schemas available to the defaults lists of conf/ under their `base_*` names."""
    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    store.store(group="model", name="base_mlp", node=MLPConfig)
    store.store(group="model", name="base_alexnet", node=AlexNetConfig)
    store.store(group="data", name="base_data", node=DataConfig)
    store.store(group="optimizer", name="base_optimizer", node=OptimizerConfig)
    store.store(group="train", name="base_train", node=TrainConfig)
