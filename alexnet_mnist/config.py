"""Typed schemas for the Hydra configs in conf/.

The primary config starts from `Config`, whose typed fields check the data, optimizer and train
groups; each model file starts from its own schema. So Hydra rejects unknown keys and values of the
wrong type at composition time, before TensorFlow is imported. The schemas are stored outside the
config groups, so they are never offered as choices (`model=...`).
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from alexnet_mnist.errors import UserError


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
    lrn_after_pool: bool = True  # CaffeNet's order (faster); false: the paper's conv -> LRN -> pool
    kernel_sizes: list[int] = field(default_factory=lambda: [5, 5, 3, 3, 3])  # conv1 ... conv5
    batch_norm: bool = False  # batch normalization between each conv and its ReLU


# Each model's schema by its `name`.
MODEL_SCHEMAS = {"mlp": MLPConfig, "alexnet": AlexNetConfig}


@dataclass
class DataConfig:
    name: str = MISSING  # a TFDS dataset of 28x28x1 images with 10 classes
    data_dir: Optional[str] = None  # None: TFDS's default, which honours TFDS_DATA_DIR
    download: bool = False
    val_fraction: float = 0.1
    train_examples: Optional[int] = None  # use only the first N training examples (debugging)
    eval_examples: Optional[int] = None  # use only the first N validation and test examples


class Precision(str, Enum):
    auto = "auto"  # mixed_bfloat16 on a CPU that computes bfloat16 natively (no GPU); else float32
    float32 = "float32"
    mixed_bfloat16 = "mixed_bfloat16"  # CPUs with AVX512-BF16/AMX, TPUs, recent GPUs
    mixed_float16 = "mixed_float16"  # GPUs; trains with loss scaling


class Schedule(str, Enum):
    constant = "constant"
    cosine = "cosine"  # after the warm-up, decays to 0 over the rest of train.epochs
    onecycle = "onecycle"  # warm-up from lr/25 (30 % of the run unless warmup_epochs), then cosine to lr/250,000


@dataclass
class OptimizerConfig:
    name: str = MISSING  # adam | adamw | sgd | rmsprop
    lr: float = 1e-3
    momentum: float = 0.0  # sgd and rmsprop
    weight_decay: float = 0.0  # decoupled weight decay (Keras' weight_decay; AdamW with adam)
    schedule: Schedule = Schedule.cosine
    warmup_epochs: float = 0.0  # linear warm-up of the learning rate (cosine and onecycle)
    lr_batch_size: Optional[int] = None  # set: lr is meant for this batch size and scales linearly with train.batch_size


@dataclass
class AugmentConfig:
    """Training-time augmentation (alexnet_mnist.data.augmentation.Augmentation); every magnitude 0 is off."""

    translate: float = 0.0  # largest shift, pixels
    rotate: float = 0.0  # largest rotation, degrees
    scale: float = 0.0  # zoom factor in [1 - scale, 1 + scale]
    shear: float = 0.0  # largest shear, degrees
    elastic_alpha: float = 0.0  # largest elastic displacement, pixels
    elastic_sigma: float = 4.0  # distance over which the elastic displacement changes, pixels
    stroke: float = 0.0  # largest step towards a one-pixel thicker or thinner stroke; above 1, clipped to the whole step
    thick: float = 0.0  # share of images with strokes two pixels thicker (5x5 maximum) instead of the stroke step, in [0, 1]
    pen: float = 0.0  # share of images redrawn as their centre line with a pen 2 to 3 pixels wide, in [0, 1]
    blur: float = 0.0  # largest step towards a Gaussian blur of sigma 1, in [0, 1]
    lowres: float = 0.0  # share of images brought down to 10-20 pixels and back up, in [0, 1]
    contrast: float = 0.0  # contrast factor in [1 - contrast, 1], contrast in [0, 1]
    brightness: float = 0.0  # added in [-brightness, brightness]
    erase: float = 0.0  # share of images with a random rectangle (2-40 % of the image) of noise, in [0, 1]
    flip: float = 0.0  # share of images mirrored left-right, in [0, 1]
    probability: float = 1.0  # share of training images augmented; the others stay as they are


@dataclass
class EarlyStoppingConfig:
    patience: int = 3  # epochs without a better validation accuracy before stopping


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 1000
    log_every_steps: int = 20
    steps_per_execution: int = 20  # train steps per tf.function call: less Python overhead per step
    run_eagerly: bool = False
    jit_compile: bool = False
    jit_optimizer: bool = True  # XLA-compile the optimizer's update alone (one process, no strategy)
    checkpoints_to_keep: int = 3
    checkpoint_every_steps: int = 0  # 0: only at the end of each epoch
    label_smoothing: float = 0.0  # training targets (1 - s) one-hot + s / 10
    target_val_accuracy: Optional[float] = None  # stop once an epoch's validation accuracy reaches it
    resume: bool = False  # continue from the latest checkpoint in the run directory
    resume_fallback: bool = False  # if the latest checkpoint is unreadable, use the one before
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


class Mode(str, Enum):
    """What `python -m alexnet_mnist` does; the dispatch table is in app.py."""

    train = "train"  # train (an ensemble when ensemble.members > 1), then export
    ensemble = "ensemble"  # combine the models of earlier runs (ensemble.runs) without retraining
    export = "export"  # export `checkpoint` (export.format) and verify the file
    predict = "predict"  # classify `inputs` with `checkpoint`
    report = "report"  # draw the pictures of the saved run in `checkpoint`
    serve = "serve"  # a web page to draw on or upload to, answered by `checkpoint`


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
    # Members that differ in more than their seed: member k takes variants[k % len(variants)], settings
    # over the run's own (e.g. {model: {kernel_sizes: [3, 3, 3, 3, 3]}}), and seed + k // len(variants).
    variants: list[Any] = field(default_factory=list)
    combine: Combine = Combine.mean_prob
    runs: list[str] = field(default_factory=list)  # mode=ensemble: run directories, .keras files or globs


class ExportFormat(str, Enum):
    tflite = "tflite"  # <stem>.tflite for the LiteRT interpreter (phones, microcontrollers)
    saved_model = "saved_model"  # <stem>_saved_model/ with a serving_default signature (TF Serving, Vertex AI)


@dataclass
class ExportConfig:
    tflite: bool = True  # mode=train: write and verify model.tflite at the end of the run
    quantization: Quantization = Quantization.none  # TFLite only
    format: ExportFormat = ExportFormat.tflite  # mode=export: the file to write


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # the address the page listens on; 0.0.0.0 opens it to the network
    port: int = 7860
    max_file_mb: float = 5.0  # larger uploads are refused with a message


class Invert(str, Enum):
    """Whether mode=predict turns an image file's intensities round (MNIST digits are light on dark)."""

    auto = "auto"  # invert when the digit is darker than its background
    true = "true"
    false = "false"

    def __str__(self):  # how OmegaConf stores a default in PredictConfig's str field
        return self.value


@dataclass
class PredictConfig:
    # Typed str, not Invert: Hydra reads `predict.invert=true` as a bool, which an Enum field rejects;
    # OmegaConf stores it as "True", and __post_init__ makes any spelling an Invert.
    invert: str = Invert.auto.value

    def __post_init__(self):
        try:
            self.invert = Invert(str(self.invert).lower())
        except ValueError:
            raise UserError(f"predict.invert={self.invert} is not one of auto, true, false") from None


class Logger(str, Enum):
    none = "none"
    tensorboard = "tensorboard"  # tf.summary events under the run directory


@dataclass
class ReportConfig:
    plots: bool = True  # curves, confusion, samples and errors PNGs in the run directory


class Strategy(str, Enum):
    none = "none"  # one process, no tf.distribute strategy
    mirrored = "mirrored"  # MirroredStrategy over this machine's devices (logical_cpus: N CPU devices)
    multi_worker = "multi_worker"  # MultiWorkerMirroredStrategy: one process per worker (TF_CONFIG or submitit)


class AllReduce(str, Enum):
    """tf.distribute.experimental.CommunicationImplementation of the gradient all-reduce (multi_worker)."""

    auto = "auto"  # TensorFlow's choice at run time
    ring = "ring"  # gRPC ring all-reduce: CPUs and GPUs
    nccl = "nccl"  # NCCL: GPUs only


@dataclass
class DistributeConfig:
    name: Strategy = Strategy.none
    logical_cpus: int = 0  # mirrored: split the CPU into this many logical devices (0: the physical devices)
    all_reduce: AllReduce = AllReduce.auto  # ring on CPUs (as fast as naming it, SCALING.md), NCCL on GPUs
    bytes_per_pack: int = 4 * 1024 * 1024  # gradients packed into all-reduces of this size (0: TensorFlow's choice); benchmarks/SCALING.md
    timeout_seconds: float = 60.0  # multi_worker: a worker that waits longer for a peer (dead or hung) stops
    port: Optional[int] = None  # submitit: first port of the workers on each node (null: from the job id)


@dataclass
class RuntimeConfig:
    intra_op_threads: int = 0  # 0: TensorFlow's choice (all cores)
    inter_op_threads: int = 0


@dataclass
class Config:
    """The settings of a run, one field per group or key of `conf/config.yaml`.

    Compose it from `conf/` as the command line does (Hydra's compose API, then
    `OmegaConf.to_object`): the fields without defaults come from the config groups. The
    documentation's Configuration page lists every key and its default.
    """

    model: Any = MISSING
    data: DataConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    train: TrainConfig = MISSING
    augment: AugmentConfig = MISSING
    distribute: DistributeConfig = MISSING
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    precision: Precision = Precision.auto
    resume: Optional[str] = None  # a run directory to continue in (sets train.resume)
    report: ReportConfig = field(default_factory=ReportConfig)
    logger: Logger = Logger.none
    seed: int = 0
    deterministic: bool = False
    progress: bool = True
    verbose: bool = False
    mode: Mode = Mode.train
    checkpoint: Optional[str] = None  # mode=export|predict|serve: a run directory, .keras or .tflite file
    inputs: list[str] = field(default_factory=list)  # mode=predict: PNG/JPEG files or .npy batches
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)


def register_schemas() -> None:
    """Make the schemas available to the defaults lists of conf/ as top-level configs (not groups)."""
    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    store.store(name="mlp_schema", node=MLPConfig)
    store.store(name="alexnet_schema", node=AlexNetConfig)


def check_ranges(config: Config) -> None:
    """Reject values a schema's types allow but training cannot use, naming the key and what is allowed."""
    checks = [
        ("optimizer.lr", config.optimizer.lr, config.optimizer.lr > 0, "> 0"),
        ("optimizer.momentum", config.optimizer.momentum, 0 <= config.optimizer.momentum < 1, "in [0, 1)"),
        ("train.epochs", config.train.epochs, config.train.epochs >= 1, ">= 1"),
        ("train.batch_size", config.train.batch_size, config.train.batch_size >= 1, ">= 1"),
        ("train.eval_batch_size", config.train.eval_batch_size, config.train.eval_batch_size >= 1, ">= 1"),
        ("train.log_every_steps", config.train.log_every_steps, config.train.log_every_steps >= 1, ">= 1"),
        ("train.steps_per_execution", config.train.steps_per_execution, config.train.steps_per_execution >= 1, ">= 1"),
        ("train.checkpoints_to_keep", config.train.checkpoints_to_keep, config.train.checkpoints_to_keep >= 1, ">= 1"),
        ("train.checkpoint_every_steps", config.train.checkpoint_every_steps, config.train.checkpoint_every_steps >= 0, ">= 0"),
        ("train.early_stopping.patience", config.train.early_stopping.patience, config.train.early_stopping.patience >= 1, ">= 1"),
        ("data.val_fraction", config.data.val_fraction, 0 < config.data.val_fraction < 1, "in (0, 1)"),
        ("model.dropout", config.model.dropout, 0 <= config.model.dropout < 1, "in [0, 1)"),
        ("optimizer.weight_decay", config.optimizer.weight_decay, config.optimizer.weight_decay >= 0, ">= 0"),
        ("optimizer.warmup_epochs", config.optimizer.warmup_epochs, 0 <= config.optimizer.warmup_epochs < config.train.epochs, "in [0, train.epochs)"),
        ("optimizer.lr_batch_size", config.optimizer.lr_batch_size, config.optimizer.lr_batch_size is None or config.optimizer.lr_batch_size >= 1, "null or >= 1"),
        ("train.target_val_accuracy", config.train.target_val_accuracy, config.train.target_val_accuracy is None or 0 < config.train.target_val_accuracy <= 1, "null or in (0, 1]"),
        ("train.label_smoothing", config.train.label_smoothing, 0 <= config.train.label_smoothing < 1, "in [0, 1)"),
        ("ensemble.members", config.ensemble.members, config.ensemble.members >= 1, ">= 1"),
        ("ensemble.members", config.ensemble.members, config.ensemble.members == 1 or config.distribute.name == Strategy.none, "1 under distribute=mirrored|multi_worker"),
        ("runtime.intra_op_threads", config.runtime.intra_op_threads, config.runtime.intra_op_threads >= 0, ">= 0"),
        ("runtime.inter_op_threads", config.runtime.inter_op_threads, config.runtime.inter_op_threads >= 0, ">= 0"),
    ]
    for name in ("thick", "pen", "blur", "lowres", "contrast", "erase", "flip", "probability"):
        value = getattr(config.augment, name)
        checks.append((f"augment.{name}", value, 0 <= value <= 1, "in [0, 1]"))
    for name in ("translate", "rotate", "scale", "shear", "elastic_alpha", "stroke", "brightness"):
        value = getattr(config.augment, name)
        checks.append((f"augment.{name}", value, value >= 0, ">= 0"))
    checks.append(("distribute.logical_cpus", config.distribute.logical_cpus, config.distribute.logical_cpus >= 0, ">= 0"))
    checks.append(("distribute.bytes_per_pack", config.distribute.bytes_per_pack, config.distribute.bytes_per_pack >= 0, ">= 0"))
    checks.append(("distribute.timeout_seconds", config.distribute.timeout_seconds, config.distribute.timeout_seconds > 0, "> 0"))
    port = config.distribute.port
    checks.append(("distribute.port", port, port is None or 1024 <= port < 65536, "null or in [1024, 65536)"))
    checks.append(("serve.port", config.serve.port, 1 <= config.serve.port < 65536, "in [1, 65536)"))
    checks.append(("serve.max_file_mb", config.serve.max_file_mb, config.serve.max_file_mb > 0, "> 0"))
    checks.append(("augment.elastic_sigma", config.augment.elastic_sigma, config.augment.elastic_sigma > 0, "> 0"))
    if isinstance(config.model, AlexNetConfig):
        sizes = config.model.kernel_sizes
        checks.append(("model.kernel_sizes", sizes, len(sizes) == 5 and all(s >= 1 and s % 2 for s in sizes), "5 odd sizes >= 1"))
    if isinstance(config.model, MLPConfig):
        units = config.model.hidden_units
        checks.append(("model.hidden_units", units, all(u >= 1 for u in units), "a list of sizes >= 1"))
    for optional in ("train_examples", "eval_examples"):
        value = getattr(config.data, optional)
        checks.append((f"data.{optional}", value, value is None or value >= 1, "null or >= 1"))
    for key, value, ok, allowed in checks:
        if not ok:
            raise UserError(f"{key}={value} is out of range: it must be {allowed}")
