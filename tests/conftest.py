import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from zoo.apps import register_all_schemas
from zoo.core.checkpoint import save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF = os.path.join(ROOT, "conf")

register_all_schemas()


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
        "progress=false", "device=cpu", "precision=fp32"]


@pytest.fixture
def tiny_overrides(tmp_path):
    return TINY + [f"run_root={tmp_path}/runs"]


# ------------------------------------------------------------------------------------------------
# Stand-ins for downloaded files (no test touches the network)
# ------------------------------------------------------------------------------------------------

class TinyDetector(torch.nn.Module):
    """Stand-in for NVIDIA's Inception/VGG feature TorchScript (same call): fixed random features of
    the 4x4 average-pooled image."""

    def __init__(self, dim: int = 16, seed: int = 3):
        super().__init__()
        torch.manual_seed(seed)
        self.proj = torch.nn.Linear(3 * 16, dim)

    def forward(self, img: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(img.float() / 127.5 - 1, 4).flatten(1)
        return torch.tanh(self.proj(x) * 2)


class VGGStandIn(torch.nn.Module):
    """Stand-in for NVIDIA's VGG16/LPIPS TorchScript (same call signature): fixed random conv
    features, unit-normalised per position like LPIPS, flattened."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        x = x / 127.5 - 1
        f1 = torch.relu(self.conv1(x))
        f2 = torch.relu(self.conv2(f1))
        out = []
        for f in [f1, f2]:
            f = f / (f.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()
            out.append(f.flatten(1) / (f.shape[2] * f.shape[3]) ** 0.5)
        return torch.cat(out, dim=1)


def enable_noise(G, strength: float = 0.5):
    """Set every per-layer noise strength of G (freshly initialised ones are 0: noise would have no
    effect, and tests of noise controls could not fail)."""
    with torch.no_grad():
        for n, p in G.named_parameters():
            if n.endswith("noise_strength"):
                p.fill_(strength)
    return G


def save_generator(path: str, name: str, G) -> str:
    """A zoo checkpoint holding only generator G (as G and G_ema) of generation ``name``."""
    save_checkpoint(path, dict(generation=name, G_kwargs=G.init_kwargs, D_kwargs={}, G=G.state_dict(),
                               G_ema=G.state_dict()))
    return path


def save_torchscript(module: torch.nn.Module, path: str) -> str:
    """Script and save ``module`` (torch flags TorchScript as deprecated; NVIDIA's files are TorchScript)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(module.eval()).save(path)
    return path


def write_fake_cifar(root, per_batch=4, protocol=pickle.HIGHEST_PROTOCOL, seed=0):
    """A tiny stand-in for ``cifar-10-batches-py`` in the official format (checksums differ).
    Returns the folder, the training images as ``[N, 3072]`` uint8 rows and their labels."""
    d = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(d, exist_ok=True)
    rnd = np.random.RandomState(seed)
    all_data, all_labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rnd.randint(0, 256, size=[per_batch, 3072], dtype=np.uint8)
        labels = [int(v) for v in rnd.randint(0, 10, per_batch)]
        with open(os.path.join(d, name), "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data,
                         "filenames": [f"{name}_{i}.png" for i in range(per_batch)]}, f, protocol=protocol)
        if name != "test_batch":
            all_data.append(data)
            all_labels += labels
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(os.path.join(d, "batches.meta"), "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f, protocol=protocol)
    return d, np.concatenate(all_data), np.asarray(all_labels)


class PicklePayload:
    """Unpickles as ``func(arg)``: the attack a safe loader must refuse (``os.system``, ``eval``)."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


class RenamingPickler(pickle._Pickler):
    """Pure-Python pickler that writes the objects in ``self.names`` (``id -> (module, name)``) as
    those globals: how the tests forge files that reference NVIDIA's / TensorFlow's classes."""

    names: dict = {}

    def save_global(self, obj, name=None):
        target = self.names.get(id(obj))
        if target is None:
            return super().save_global(obj, name)
        self.save(target[0])
        self.save(target[1])
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)
