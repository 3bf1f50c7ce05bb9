import os

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from zoo.config import register_schemas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF = os.path.join(ROOT, "conf")

register_schemas()


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch, tmp_path):
    """No test may touch the network: wandb is disabled and writes (nothing) under tmp."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def compose_cfg(config_name="train", overrides=(), return_hydra_config=False):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        return compose(config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)


# A CPU-sized StyleGAN2 for loop tests: 16 px, few channels, 2 mapping layers.
TINY = ["logger=none", "resolution=16", "model.channel_base=256", "model.channel_max=32",
        "model.mapping_layers=2", "model.z_dim=32", "model.w_dim=32", "batch=8", "data.num_images=256",
        "progress=false", "device=cpu"]


@pytest.fixture
def tiny_overrides(tmp_path):
    return TINY + [f"run_root={tmp_path}/runs"]
