"""Ensembles as part of a run: K members trained in one run, or the models of earlier runs."""

import logging
from pathlib import Path

from alexnet_mnist.atomic_files import write_json
from alexnet_mnist.config import Config
from alexnet_mnist.inference import saved_models
from alexnet_mnist.models import Ensemble
from alexnet_mnist.training.train import train_and_evaluate
from alexnet_mnist.training.trainer import Trainer

log = logging.getLogger(__name__)


def train_ensemble(member_configs: list[Config], combine, splits, workdir) -> dict:
    """Train one member per config into `workdir/members/<k>/`, then assemble them as `assemble` does,
    evaluated on `splits`. Returns the ensemble's metrics."""
    workdir = Path(workdir)
    paths = []
    for k, config in enumerate(member_configs):
        log.info("ensemble member %d/%d (seed %d, model %s)", k + 1, len(member_configs), config.seed, config.model)
        member_dir = workdir / "members" / str(k)
        train_and_evaluate(config, member_dir)
        paths.append(member_dir / saved_models.MODEL_FILE)
    return assemble(paths, combine, splits, workdir)


def assemble(model_paths, combine, splits, workdir) -> dict:
    """Combine the saved models into an `Ensemble`, evaluate each member and the ensemble on the
    test (and validation) split, and write the ensemble's model.keras and metrics.json to `workdir`.

    Members trained with other seeds carved other validation sets from the training split, so the
    ensemble's `val_accuracy` may count their training images; `test_accuracy` is the clean figure.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    members = [saved_models.load_model(path) for path in model_paths]
    member_metrics = []
    for path, member in zip(model_paths, members):
        # Eagerly: a traced step per member would only be used once, and TensorFlow warns about retracing.
        test_loss, test_accuracy = Trainer(member, optimizer=None, run_eagerly=True).evaluate(splits.test)
        member_metrics.append({"model": str(path), "test_accuracy": test_accuracy, "test_loss": test_loss})
        log.info("member %s: test accuracy %.4f", path, test_accuracy)
    ensemble = Ensemble(members, combine=combine)
    evaluator = Trainer(ensemble, optimizer=None)
    test_loss, test_accuracy = evaluator.evaluate(splits.test)
    _, val_accuracy = evaluator.evaluate(splits.val)
    log.info("ensemble of %d (%s): test accuracy %.4f", len(members), combine, test_accuracy)
    saved_models.save_model(ensemble, workdir / saved_models.MODEL_FILE)
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,  # the negative log-likelihood of the combined probabilities
        "val_accuracy": val_accuracy,
        "combine": combine,
        "params": ensemble.count_params(),
        "members": member_metrics,
    }
    write_json(workdir / "metrics.json", metrics)
    return metrics
