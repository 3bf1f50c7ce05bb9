"""Config composition for every option, and bad overrides failing with the key named."""
import os

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from conftest import CONF, compose_cfg
from zoo import registry
from zoo.core.errors import ConfigError
from zoo.core.parse import parse_seeds
from zoo.generations import resolve_hparams
from zoo.training.config import validate


def _options(group):
    return sorted(f[:-5] for f in os.listdir(os.path.join(CONF, group)) if f.endswith(".yaml"))


def test_default_config_is_the_cpu_quickstart():
    cfg = compose_cfg()
    assert cfg.model.name == "stylegan2" and cfg.data.name == "shapes"
    assert cfg.resolution == 32 and cfg.model.channel_base == 1024 and cfg.model.channel_max == 32 and cfg.kimg == 40
    assert cfg.logger.name == "wandb" and cfg.logger.mode == "offline"
    validate(cfg)


def test_quickstart_preset_applies_to_stylegan2_on_shapes_only_and_yields_to_the_command_line():
    quick = compose_cfg()   # conf/quickstart/shapes_stylegan2.yaml
    assert (quick.model.mapping_layers, quick.model.pl_weight, quick.model.use_noise) == (2, 0.0, False)
    assert quick.model.glr == quick.model.dlr == 0.004 and quick.model.style_mixing_prob == 0.0
    full = compose_cfg(overrides=["model.mapping_layers=8", "model.pl_weight=2", "model.use_noise=true", "kimg=7"])
    assert (full.model.mapping_layers, full.model.pl_weight, full.model.use_noise, full.kimg) == (8, 2.0, True, 7)
    other_data = compose_cfg(overrides=["data=cifar10"])
    assert other_data.model.mapping_layers == 8 and other_data.model.pl_weight == 2.0 and other_data.model.use_noise
    for model in ("progan", "stylegan", "stylegan3"):   # the shapes size (data/shapes.yaml), their own defaults
        cfg = compose_cfg(overrides=[f"model={model}"])
        assert cfg.kimg == 36 and cfg.model.channel_max == 32 and cfg.model.glr is None
        validate(cfg)


@pytest.mark.parametrize("model", _options("model"))
def test_every_model_composes_and_is_registered(model):
    cfg = compose_cfg(overrides=[f"model={model}"])
    assert cfg.model.name in registry.names()
    validate(cfg)


@pytest.mark.parametrize("data", _options("data"))
def test_every_data_option_composes(data, tmp_path):
    overrides = [f"data={data}"]
    if data == "folder":
        overrides.append(f"data.path={tmp_path}")
    if data == "ffhq":
        overrides += [f"data.root={tmp_path}", "resolution=256"]
    cfg = compose_cfg(overrides=overrides)
    assert cfg.data.name == data
    OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("logger", _options("logger"))
def test_every_logger_composes(logger):
    cfg = compose_cfg(overrides=[f"logger={logger}"])
    assert cfg.logger.name == logger
    validate(cfg)


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes(experiment, tmp_path):
    cfg = compose_cfg(overrides=[f"experiment={experiment}", f"data.root={tmp_path}"])
    assert cfg.experiment == experiment
    OmegaConf.to_container(cfg, resolve=True)


def test_ffhq_path_follows_resolution(tmp_path):
    cfg = compose_cfg(overrides=["data=ffhq", "resolution=256", f"data.root={tmp_path}"])
    assert cfg.data.path == f"{tmp_path}/ffhq256.zip"
    with pytest.raises(ConfigError, match="data.path") as e:
        validate(cfg)
    assert "ffhq256.zip" in str(e.value) and "dataset_tool" in str(e.value)


def test_hydra_run_dir_names_the_job(tmp_path):
    cfg = compose_cfg(overrides=[f"run_root={tmp_path}"], return_hydra_config=True)
    assert "stylegan2-shapes32" in cfg.hydra.run.dir
    sweep = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)
    assert sweep["subdir"] == "${hydra.job.num}_${hydra:runtime.choices.model}"


@pytest.mark.parametrize("override, exc", [
    ("model.zdim=3", ConfigCompositionException),       # typo: not in the schema
    ("model.z_dim=abc", ConfigCompositionException),    # wrong type
    ("gpus=2.5", ConfigCompositionException),
    ("model=stylegan4", MissingConfigException),
])
def test_bad_overrides_fail_at_composition_naming_the_key(override, exc):
    with pytest.raises(exc) as e:
        compose_cfg(overrides=[override])
    key = override.split("=")[0]
    assert key.split(".")[-1] in str(e.value) or key in str(e.value.__cause__)


@pytest.mark.parametrize("overrides, key, words", [
    (["resolution=300"], "resolution", "power of two"),
    (["resolution=2048"], "resolution", "between 4 and 1024"),
    (["batch=30", "gpus=4"], "batch", "not divisible by gpus"),
    (["batch=32", "gpus=2", "batch_gpu=5"], "batch_gpu", "gpus×batch_gpu"),
    (["batch=12", "batch_gpu=6"], "model.mbstd_group", "does not divide"),
    (["data=folder", "data.path=/nonexistent/images"], "data.path", "not found"),
    (["kimg=0"], "kimg", "> 0"),
    (["device=tpu"], "device", "unknown device"),
    (["gpus=0"], "gpus", ">= 1"),
])
def test_bad_values_fail_validation_naming_key_and_fix(overrides, key, words):
    cfg = compose_cfg(overrides=overrides)
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert e.value.key == key
    assert words in str(e.value) and "Fix:" in str(e.value)


def test_cuda_requests_fail_cleanly_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("machine has CUDA")
    with pytest.raises(ConfigError, match="device"):
        validate(compose_cfg(overrides=["device=cuda"]))


def test_auto_hparams_follow_nvidia_formulas_and_ignore_gpu_count():
    cfg = OmegaConf.to_container(compose_cfg(overrides=["resolution=256", "~quickstart"]).model, resolve=True)
    hp = resolve_hparams(cfg, resolution=256, batch=64)
    assert hp["glr"] == hp["dlr"] == 0.0025
    assert hp["r1_gamma"] == pytest.approx(0.0002 * 256 ** 2 / 64)
    assert hp["ema_kimg"] == pytest.approx(64 * 10 / 32)
    assert resolve_hparams(cfg, resolution=1024, batch=32)["glr"] == 0.002
    cfg["r1_gamma"] = 5.0  # explicit values win over auto
    assert resolve_hparams(cfg, resolution=256, batch=64)["r1_gamma"] == 5.0


def test_parse_seeds():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds(5) == [5]
    assert parse_seeds([1, 2]) == [1, 2]
    with pytest.raises(ConfigError, match="seeds"):
        parse_seeds("a-b")


def test_unknown_generation_lists_known_ones():
    with pytest.raises(KeyError) as e:
        registry.get("stylegan9")
    assert "stylegan2" in str(e.value)
