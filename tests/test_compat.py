"""Checkpoints written before the package was layered (zoo 0.1.0, commit 1997f91; made by the
training loop of that version: 16 px, two iterations of batch 4) still load, render the images that
version rendered (bit for bit at one thread here; the test allows float32 rounding of other CPUs)
and resume."""
import os

import numpy as np
import pytest
import torch

import zoo
import zoo.apps.train as train_app
from conftest import ROOT, compose_cfg
from zoo.core.checkpoint import find_latest_checkpoint, load_checkpoint

DATA = os.path.join(ROOT, "tests", "data")
# The overrides the fixtures were trained with (zoo 0.1.0, python train.py ...).
COMMON = ["logger=none", "resolution=16", "model.channel_base=128", "model.channel_max=16", "batch=4",
          "data.num_images=64", "progress=false", "device=cpu", "snap_kimg=0.008", "image_kimg=0.008",
          "tick_kimg=0.008", "threads=1"]
EXTRA = {"stylegan2": ["model.mapping_layers=2", "model.z_dim=16", "model.w_dim=16"],
         "progan": ["model.z_dim=16", "model.growing.stable_kimg=0.008", "model.growing.fade_kimg=0.008"],
         "stylegan3": ["model.mapping_layers=2", "model.z_dim=16", "model.w_dim=16", "model.config=r"]}


@pytest.mark.parametrize("generation", sorted(EXTRA))
def test_an_old_checkpoint_loads_and_renders_the_same_images(generation):
    path = os.path.join(DATA, f"{generation}-zoo010.pt")
    G = zoo.load(path)
    assert G.generation == generation and load_checkpoint(path)["zoo_version"] == "0.1.0"
    z = torch.from_numpy(np.random.RandomState(7).randn(2, G.z_dim)).float()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the images were rendered (summation order)
    try:
        img = G(z, torch.zeros([2, 0]), noise_mode="const").detach().numpy()
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(img, np.load(os.path.join(DATA, f"{generation}-zoo010-images.npy")), rtol=0, atol=1e-6)


def test_an_old_checkpoint_resumes(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    src = os.path.join(DATA, "stylegan2-zoo010.pt")
    # ~quickstart: the file was trained with the shapes defaults of its time (before conf/quickstart/)
    cfg = compose_cfg(overrides=["model=stylegan2", *COMMON, *EXTRA["stylegan2"], "kimg=0.016", f"resume={src}", "~quickstart",
                                 f"run_root={tmp_path}"])
    train_app.train(cfg, run_dir=str(run))
    state = load_checkpoint(find_latest_checkpoint(str(tmp_path)))
    assert state["progress"]["cur_nimg"] == 16 and state["progress"]["batch_idx"] == 4
