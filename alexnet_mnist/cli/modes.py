"""What each `mode` of the command line does with a typed `Config` and the run's directory.

Each function returns the number a Hydra sweeper optimizes (a validation accuracy), or None when
it wrote nothing into the run directory (its files go next to its `checkpoint`, or it only prints,
or the chief of its multi-worker job writes them).
"""

import logging
from pathlib import Path

from omegaconf import OmegaConf

from alexnet_mnist.cli import run_directory
from alexnet_mnist.config import (
    MODEL_SCHEMAS,
    Config,
    DistributeConfig,
    ExportFormat,
    Quantization,
    Strategy,
    check_ranges,
)
from alexnet_mnist.errors import UserError
from alexnet_mnist.inference import classes, export, prediction, saved_models
from alexnet_mnist.reporting import run_report
from alexnet_mnist.training import distribute, ensembles
from alexnet_mnist.training.runtime import set_thread_counts
from alexnet_mnist.training.train import make_splits, train_and_evaluate

log = logging.getLogger(__name__)


def train(config: Config, workdir):
    """Train one model, or `ensemble.members` of them, then export it unless `export.tflite=false`.

    Under `distribute=mirrored|multi_worker` the model trains under that tf.distribute strategy,
    created first (collectives must be configured before TensorFlow's first op). In a multi-worker
    job only the chief writes the run directory, its log included, and exports; the other workers
    return None."""
    if config.ensemble.members > 1:
        members = [_member_config(config, k) for k in range(config.ensemble.members)]
        val_accuracy = ensembles.train_ensemble(members, config.ensemble.combine.value, make_splits(config), workdir)["val_accuracy"]
    else:
        # Creating a strategy starts TensorFlow, whose thread pools are fixed from then on.
        set_thread_counts(config.runtime.intra_op_threads, config.runtime.inter_op_threads)
        strategy = _create_strategy(config.distribute)
        if not distribute.is_chief(strategy):
            run_directory.close_log_files()  # the chief's log is the run's
            train_and_evaluate(config, workdir, strategy)
            return None
        val_accuracy = train_and_evaluate(config, workdir, strategy)["best_val_accuracy"]
    if config.export.tflite:
        _export(config, Path(workdir) / saved_models.MODEL_FILE)
    return val_accuracy


def _member_config(config: Config, k):
    """Member k's config: `ensemble.variants[k % len]` over the run's own settings (a variant naming
    another model takes that model's schema and defaults), and its seed: seed + k, or with variants
    seed + the round of variants it belongs to, so that members differing by their variant share a
    validation split (the seed carves it) and can be compared and chosen on it."""
    variants = config.ensemble.variants
    variant = variants[k % len(variants)] if variants else {}
    seed = config.seed + (k // len(variants) if variants else k)
    base = OmegaConf.structured(config)
    name = (variant.get("model") or {}).get("name", config.model.name)
    if name != config.model.name:
        if name not in MODEL_SCHEMAS:
            raise UserError(f"ensemble.variants[{k % len(variants)}]: model.name={name} is not one of {sorted(MODEL_SCHEMAS)}")
        base.model = OmegaConf.structured(MODEL_SCHEMAS[name])
    try:
        member = OmegaConf.to_object(OmegaConf.merge(base, variant, {"seed": seed, "ensemble": {"members": 1, "variants": []}}))
    except Exception as error:  # OmegaConf's validation errors: an unknown key or a wrong type
        raise UserError(f"ensemble.variants[{k % len(variants)}]: {str(error).splitlines()[0]}") from None
    check_ranges(member)
    return member


def assemble(config: Config, workdir):
    """Build, evaluate and save the ensemble of `ensemble.runs`, then export it."""
    if not config.ensemble.runs:
        raise UserError("mode=ensemble needs ensemble.runs=[RUN_DIR,...] (run directories, .keras files or globs)")
    paths = saved_models.expand(config.ensemble.runs)
    _check_trained_on(paths, config.data.name)
    metrics = ensembles.assemble(paths, config.ensemble.combine.value, make_splits(config), workdir)
    if config.export.tflite:
        _export(config, Path(workdir) / saved_models.MODEL_FILE)
    return metrics["val_accuracy"]


def _check_trained_on(model_paths, dataset):
    """Refuse a member whose run directory says it learnt another dataset than `data=`: scored on
    the wrong test split, the ensemble would report chance accuracy without a word."""
    for path in model_paths:
        saved = saved_models.saved_data(path.parent)
        if saved is not None and saved.name != dataset:
            raise UserError(f"ensemble.runs: {path} was trained on data={saved.name}, not data={dataset}; add data={saved.name}")


def export_checkpoint(config: Config, workdir):
    """Export and verify `checkpoint` (a run directory or .keras file) as `export.format` says; the
    files go next to it."""
    keras_path = saved_models.model_path(_checkpoint(config))
    if config.export.format == ExportFormat.tflite:
        _export(config, keras_path)
        return
    if config.export.quantization != Quantization.none:
        raise UserError(f"export.quantization={config.export.quantization.value} applies to export.format=tflite only")
    export.export_saved_model(keras_path, make_splits(config).test)


def classify(config: Config, workdir):
    """Print the class name and its probability for every image of `inputs`, e.g. `shoe.jpg: Sneaker (0.9731)`."""
    if not config.inputs:
        raise UserError("mode=predict needs inputs=[FILE,...] (image files such as PNG or JPEG, or .npy batches)")
    model_path = saved_models.model_path(_checkpoint(config), suffixes=(".keras", ".tflite"))
    dataset = classes.trained_on(model_path, config.data.name)
    images, names = prediction.load_inputs(config.inputs, config.predict.invert, dataset.preparation)
    probabilities = prediction.Classifier(model_path).probabilities(images)
    for name, row in zip(names, probabilities):
        print(f"{name}: {prediction.answer(row, dataset.class_names)}")


def serve(config: Config, workdir):
    """Serve the drawing page for `checkpoint` until Ctrl-C (docs/serving.md)."""
    model_path = saved_models.model_path(_checkpoint(config), suffixes=(".keras", ".tflite"))
    dataset = classes.trained_on(model_path, config.data.name)
    from alexnet_mnist.inference import serving  # needs the optional gradio

    settings = config.serve
    serving.serve(model_path, dataset, settings.host, settings.port, settings.max_file_mb, config.predict.invert)


def _create_strategy(settings: DistributeConfig):
    """The tf.distribute strategy of `distribute=`, or None for `distribute=none`."""
    if settings.name == Strategy.none:
        return None
    return distribute.create_strategy(
        settings.name.value,
        logical_cpus=settings.logical_cpus,
        all_reduce=settings.all_reduce.value,
        bytes_per_pack=settings.bytes_per_pack,
        timeout_seconds=settings.timeout_seconds,
        port=settings.port,
    )


def _checkpoint(config):
    if config.checkpoint is None:
        raise UserError(f"mode={config.mode.value} needs checkpoint=PATH (a run directory or a model file)")
    return config.checkpoint


def _export(config, keras_path):
    quantization = config.export.quantization.value
    splits = make_splits(config)
    representative = splits.train(0).take(export.REPRESENTATIVE_BATCHES).map(lambda images, labels: images)
    export.export_model(keras_path, quantization, splits.test, representative)


def report(config: Config, workdir):
    """mode=report checkpoint=DIR: draw the pictures of the saved run in DIR, into DIR.

    The test images are those the run was evaluated on: its dataset and eval_examples come from
    DIR/.hydra/config.yaml when present; where the data live (data_dir, download) from this command.
    """
    run_dir = Path(_checkpoint(config))
    if not (run_dir / "model.keras").is_file() or not (run_dir / "history.csv").is_file():
        raise UserError(f"checkpoint={config.checkpoint} holds no model.keras and history.csv of a finished run")
    run_data = saved_models.saved_data(run_dir) or config.data
    paths = run_report.report_saved_run(
        run_dir,
        run_data.name,
        eval_examples=run_data.eval_examples,
        eval_batch_size=config.train.eval_batch_size,
        data_dir=config.data.data_dir,
        download=config.data.download,
    )
    log.info("wrote %s", ", ".join(str(path) for path in paths))
