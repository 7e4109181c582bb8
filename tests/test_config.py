from importlib.resources import files

import pytest
from conftest import make_config
from hydra.errors import ConfigCompositionException
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
    assert options("augment") == ["affine", "elastic", "none"]
    assert options("distribute") == ["mirrored", "multi_worker", "none"]
    assert "smoke" in options("debug")


@pytest.mark.parametrize("override", [f"{g}={o}" for g in GROUPS for o in options(g)])
def test_every_config_file_composes_to_a_typed_config(override):
    config = make_config(override)
    assert isinstance(config, Config)
    assert isinstance(config.model, (MLPConfig, AlexNetConfig))
    assert config.train.batch_size > 0 and config.train.epochs >= 1
    assert 0 < config.data.val_fraction < 1


def test_defaults_are_the_alexnet_recipe():
    config = make_config()
    assert config.model.name == "alexnet"
    assert (config.optimizer.name, config.optimizer.lr, config.optimizer.weight_decay) == ("adamw", 1e-3, 0.05)
    assert config.optimizer.schedule.value == "onecycle" and config.train.label_smoothing == 0.1
    assert (config.train.epochs, config.train.batch_size, config.train.log_every_steps) == (7, 64, 20)
    assert config.augment.elastic_alpha > 0 and config.augment.rotate > 0
    assert config.data.name == "mnist" and config.data.download is False
    assert config.distribute.name.value == "none" and config.distribute.all_reduce.value == "auto"


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
