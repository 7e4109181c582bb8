from importlib.resources import files

import pytest
from conftest import make_config
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ValidationError

from alexnet_mnist.config import AlexNetConfig, Config, MLPConfig

CONF = files("alexnet_mnist.conf")
GROUPS = ["model", "data", "optimizer", "train", "augment", "distribute", "experiment", "debug"]


def options(group):
    return sorted(p.name.removesuffix(".yaml") for p in CONF.joinpath(group).iterdir() if p.name.endswith(".yaml"))


def test_every_group_has_its_options():
    assert options("model") == ["alexnet", "mlp"]
    assert options("data") == ["fashion_mnist", "mnist"]
    assert options("optimizer") == ["adam", "adamw", "rmsprop", "sgd"]
    assert options("augment") == ["affine", "elastic", "mild", "none"]
    assert options("distribute") == ["mirrored", "multi_worker", "none"]
    assert "smoke" in options("debug")


@pytest.mark.parametrize("override", [f"{g}={o}" for g in GROUPS for o in options(g)])
def test_every_config_file_composes_to_a_typed_config(override):
    config = make_config(override)
    assert isinstance(config, Config)
    assert isinstance(config.model, (MLPConfig, AlexNetConfig))
    assert config.train.batch_size > 0 and config.train.epochs >= 1
    assert 0 < config.data.val_fraction < 1


# The headline recipe (README "Configuration" and "Accuracy and robustness"), every key of the groups
# that decide what a default run trains: a change to any of them must be deliberate.
DEFAULT_RECIPE = {
    "model": {"name": "alexnet", "dropout": 0.3, "lrn": True, "fc_units": 1024, "lrn_after_pool": True, "kernel_sizes": [5, 5, 3, 3, 3], "batch_norm": False},
    "data": {"name": "mnist", "data_dir": None, "download": False, "val_fraction": 0.1, "train_examples": None, "eval_examples": None},
    "optimizer": {"name": "adamw", "lr": 2e-3, "momentum": 0.0, "weight_decay": 0.05, "schedule": "onecycle", "warmup_epochs": 0.0, "lr_batch_size": None},
    "train": {
        "epochs": 5, "batch_size": 128, "eval_batch_size": 1000, "log_every_steps": 20, "steps_per_execution": 20,
        "run_eagerly": False, "jit_compile": False, "jit_optimizer": True, "checkpoints_to_keep": 3,
        "checkpoint_every_steps": 0, "label_smoothing": 0.1, "target_val_accuracy": None, "resume": False,
        "resume_fallback": False, "early_stopping": {"patience": 5},
    },
    "augment": {
        "translate": 3.0, "rotate": 12.0, "scale": 0.12, "shear": 10.0, "elastic_alpha": 2.0, "elastic_sigma": 5.0,
        "stroke": 1.5, "thick": 0.2, "pen": 0.3, "blur": 1.0, "lowres": 0.35, "contrast": 0.5, "brightness": 0.05, "erase": 0.0,
        "flip": 0.0, "probability": 0.5,
    },
    "distribute": {"name": "none", "logical_cpus": 0, "all_reduce": "auto", "bytes_per_pack": 4194304, "timeout_seconds": 60.0, "port": None},
    "runtime": {"intra_op_threads": 0, "inter_op_threads": 0},
    "precision": "auto",
    "seed": 0,
    "deterministic": False,
}  # fmt: skip


# model=mlp brings its own recipe (conf/model/mlp.yaml): the same keys, each pinned as well.
MLP_RECIPE = {
    **DEFAULT_RECIPE,
    "model": {"name": "mlp", "hidden_units": [128], "activation": "relu", "dropout": 0.2},
    "train": {**DEFAULT_RECIPE["train"], "epochs": 20, "jit_optimizer": False, "early_stopping": {"patience": 20}},
    "augment": {
        "translate": 1.0, "rotate": 5.0, "scale": 0.05, "shear": 0.0, "elastic_alpha": 0.0, "elastic_sigma": 4.0,
        "stroke": 0.0, "thick": 0.0, "pen": 0.0, "blur": 0.0, "lowres": 0.0, "contrast": 0.0, "brightness": 0.0, "erase": 0.0,
        "flip": 0.0, "probability": 1.0,
    },
}  # fmt: skip


@pytest.mark.parametrize("overrides, recipe", [((), DEFAULT_RECIPE), (("model=mlp",), MLP_RECIPE)], ids=["alexnet", "mlp"])
def test_defaults_are_each_models_recipe(overrides, recipe):
    config = OmegaConf.to_container(OmegaConf.structured(make_config(*overrides)), enum_to_str=True)
    assert {key: config[key] for key in recipe} == recipe


def test_overrides_reach_the_typed_config():
    config = make_config("model=mlp", "model.hidden_units=[900]", "optimizer=sgd", "optimizer.lr=0.05", "seed=7")
    assert config.model.hidden_units == [900]
    assert (config.optimizer.name, config.optimizer.lr, config.optimizer.momentum) == ("sgd", 0.05, 0.9)
    assert config.seed == 7


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigCompositionException) as info:
        make_config("train.batch_size=abc")
    assert isinstance(info.value.__cause__, ValidationError)
    assert "train.batch_size" in str(info.value.__cause__)


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigCompositionException) as info:
        make_config("train.batchsize=32")
    assert isinstance(info.value.__cause__, ConfigAttributeError)
    assert "batchsize" in str(info.value.__cause__)


def test_unknown_model_is_rejected():
    with pytest.raises(Exception, match="Could not find 'model/vgg'"):
        make_config("model=vgg")


@pytest.mark.parametrize("override", ["mode=deploy", "export.quantization=int4", "ensemble.combine=median"])
def test_unknown_choice_is_rejected(override):
    with pytest.raises(ConfigCompositionException) as info:
        make_config(override)
    assert override.split("=")[0] in str(info.value.__cause__)


@pytest.mark.parametrize("override", ["model=base_alexnet", "model=alexnet_schema", "data=base_data", "train=base_train"])
def test_schemas_are_not_choices(override):
    with pytest.raises(Exception, match="Could not find"):
        make_config(override)
