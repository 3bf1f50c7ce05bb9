"""Progressive growing in the one training loop: the lod schedule, per-resolution batch and lr,
optimizer resets, faded reals, lod/alpha in checkpoints, exact resume across a resolution switch,
grids and sampling from growing checkpoints."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import zoo
from conftest import ROOT, compose_cfg
import zoo.apps.sample as sample_app
import zoo.apps.train as train_app
from zoo.core.errors import ConfigError
from zoo.training.config import validate
from zoo.core.checkpoint import find_latest_checkpoint, load_checkpoint
from zoo.training.growing import GrowingSchedule, process_reals, stage_changed

# 16 px, tiny networks; 32 images stable + 32 images fade per resolution; batch 16 at 4 px, 8 above.
BASE = ["logger=none", "resolution=16", "model.channel_base=256", "model.channel_max=32", "model.z_dim=32",
        "batch=8", "data.num_images=256", "progress=false", "device=cpu",
        "model.growing.stable_kimg=0.032", "model.growing.fade_kimg=0.032", "model.growing.auto_scale=false",
        "snap_kimg=100", "image_kimg=100"]
PROGAN = ["model=progan", "model.growing.minibatch={4:16,8:8,16:8}"]
STYLEGAN = ["model=stylegan", "model.w_dim=32", "model.mapping_layers=2", "model.growing.minibatch=null"]


def _official_lod(nimg, final=16, start=4, stable=0.032, fade=0.032):
    """The originals' TrainingSchedule, written out independently."""
    kimg = nimg / 1000
    phase_idx = int(np.floor(kimg / (stable + fade)))
    phase_kimg = kimg - phase_idx * (stable + fade)
    lod = np.log2(final) - np.floor(np.log2(start)) - phase_idx - max(phase_kimg - stable, 0.0) / fade
    return max(lod, 0.0)


def _train(tmp_path, name, *extra):
    cfg = compose_cfg(overrides=BASE + [f"run_root={tmp_path}/runs", *extra])
    return train_app.train(cfg, run_dir=str(tmp_path / "runs" / name))


def _metrics(run_dir):
    return [json.loads(line) for line in open(os.path.join(run_dir, "stats.jsonl"))]


def test_schedule_follows_the_official_formula():
    hp = dict(glr=0.001, dlr=0.002, growing=dict(start_resolution=4, stable_kimg=0.032, fade_kimg=0.032,
                                                 minibatch={4: 16, 8: 8}, lr={16: 0.003}, auto_scale=True))
    s = GrowingSchedule.from_hparams(hp, resolution=16, batch=4, total_kimg=1.0)
    assert (s.stable_kimg, s.fade_kimg) == (0.032, 0.032)
    for nimg in range(0, 200, 4):
        assert s.lod(nimg) == pytest.approx(_official_lod(nimg), abs=1e-12), nimg
    st = s.at(48)  # half-way through the 4 -> 8 fade: the current resolution is the new one
    assert (st.lod, st.resolution, st.alpha, st.batch, st.glr, st.dlr) == (1.5, 8, 0.5, 8, 0.001, 0.002)
    assert s.at(0).batch == 16 and s.at(0).alpha == 1.0 and s.at(0).resolution == 4
    assert s.at(500).lod == 0 and s.at(500).batch == 4 and s.at(500).glr == s.at(500).dlr == 0.003
    # Short runs: growing (2 steps of 64 images) is scaled down to end at kimg / 2.
    short = GrowingSchedule.from_hparams(hp, resolution=16, batch=4, total_kimg=0.064)
    assert short.stable_kimg == pytest.approx(0.008) and short.lod(32) == 0
    # StyleGAN starts at 8 px, and never above the final resolution.
    hp["growing"]["start_resolution"] = 8
    assert GrowingSchedule.from_hparams(hp, resolution=16, batch=4, total_kimg=1).lod(0) == 1
    assert GrowingSchedule.from_hparams(hp, resolution=4, batch=4, total_kimg=1).lod(0) == 0


def test_optimizer_reset_points():
    assert not stage_changed(None, 2.0)
    assert not stage_changed(2.0, 2.0)            # stable
    assert stage_changed(2.0, 1.75)               # a fade starts
    assert not stage_changed(1.75, 1.5)
    assert stage_changed(1.25, 1.0)               # ...and ends
    assert not stage_changed(0.0, 0.0)


def test_real_images_are_faded_like_the_original():
    x = torch.randint(0, 256, (2, 3, 16, 16)).float() / 127.5 - 1
    assert torch.equal(process_reals(x, 0.0), x)
    box = lambda t, f: F.avg_pool2d(t, f)
    up = lambda t, f: t.repeat_interleave(f, 2).repeat_interleave(f, 3)
    # lod 1: the 8-bit 8 px copy, nearest-upsampled.
    lo = torch.round(box((x + 1) * 127.5, 2)) / 127.5 - 1
    torch.testing.assert_close(process_reals(x, 1.0), up(lo, 2), rtol=0, atol=1e-6)
    # lod 1.25: that copy blended with its own box-down/up version by 0.25.
    torch.testing.assert_close(process_reals(x, 1.25), up(torch.lerp(lo, up(box(lo, 2), 2), 0.25), 2),
                               rtol=0, atol=1e-6)
    # lod 0.5 at full resolution.
    torch.testing.assert_close(process_reals(x, 0.5), torch.lerp(x, up(box(x, 2), 2), 0.5), rtol=0, atol=1e-6)


def test_full_4_to_16_schedule_in_a_few_hundred_images(tmp_path):
    run_dir = _train(tmp_path, "run", *PROGAN, "kimg=0.2", "tick_kimg=0.001")
    recs = _metrics(run_dir)
    nimg, seen = 0, []
    for r in recs:  # one record per iteration
        lod = _official_lod(nimg)
        assert r["Progress/lod"] == pytest.approx(lod, abs=1e-9), nimg
        res = 16 >> math.floor(lod)
        assert r["Progress/resolution"] == res and r["Progress/alpha"] == pytest.approx(1 - (lod - math.floor(lod)))
        assert r["Progress/batch"] == (16 if res == 4 else 8)
        assert all(math.isfinite(r[k]) for k in ("Loss/G/loss", "Loss/D/loss", "Loss/gp_penalty"))
        seen.append(lod)
        nimg += int(r["Progress/batch"])
    assert nimg == 200 and seen[0] == 2.0 and seen[-1] == 0.0
    assert {1.5, 0.5} <= set(seen)  # mid-fade iterations happened
    state = load_checkpoint(find_latest_checkpoint(run_dir))
    assert state["growing"]["lod"] == 0.0 and state["growing"]["resolution"] == 16 and state["growing"]["alpha"] == 1.0
    assert float(state["G"]["lod"]) == float(state["D"]["lod"]) == float(state["G_ema"]["lod"]) == 0.0
    # Sample grids show the current resolution upscaled: at the start only 4x4 blocks of pixels.
    grid = np.asarray(Image.open(os.path.join(run_dir, "fakes_init.png")))
    scale = grid.shape[0] // (4 * 16)   # 4 rows of 16 px images, nearest-upscaled to 256 px high
    block = 4 * scale
    tiles = grid.reshape(grid.shape[0] // block, block, grid.shape[1] // block, block, 3)
    assert (tiles == tiles[:, :1, :, :1]).all()
    last = np.asarray(Image.open(os.path.join(run_dir, "fakes000000.png")))
    assert not (last.reshape(tiles.shape) == last.reshape(tiles.shape)[:, :1, :, :1]).all()


def test_optimizer_state_is_reset_when_a_fade_starts_and_ends(tmp_path):
    from zoo.training.trainer import Trainer

    cfg = compose_cfg(overrides=BASE + STYLEGAN + ["kimg=0.2"])
    from omegaconf import OmegaConf

    trainer = Trainer(OmegaConf.to_container(cfg, resolve=True), img_channels=3, device=torch.device("cpu"))
    reals = [torch.rand(8, 3, 16, 16) * 2 - 1]
    cs = [torch.zeros(8, 0)]
    steps = []
    while trainer.cur_nimg < 96:
        trainer.step(reals, cs)
        p = trainer.D.b4.conv.weight
        steps.append((trainer.prev_lod, int(trainer.opts["D"].state[p]["step"])))
    # 8 px stable for 32 images (lod is still 1 at image 32), the 16 px fade (Adam restarts), then
    # 16 px stable from image 64 (Adam restarts again).
    assert steps == [(1.0, 1), (1.0, 2), (1.0, 3), (1.0, 4), (1.0, 5), (0.75, 1), (0.5, 2), (0.25, 3),
                     (0.0, 1), (0.0, 2), (0.0, 3), (0.0, 4)]


def _assert_same_state(a, b):
    for which in ("G", "D", "G_ema"):
        assert a[which].keys() == b[which].keys()
        for k in a[which]:
            assert torch.equal(a[which][k], b[which][k]), (which, k)
    for which in ("G_opt", "D_opt"):
        sa, sb = a[which]["state"], b[which]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            for k in sa[i]:
                assert torch.equal(sa[i][k], sb[i][k]), (which, i, k)


@pytest.mark.parametrize("model", ["progan", "stylegan"])
def test_exact_resume_across_a_resolution_switch(tmp_path, model):
    extra = PROGAN if model == "progan" else STYLEGAN
    full = load_checkpoint(find_latest_checkpoint(_train(tmp_path, "full", *extra, "kimg=0.112")))
    # Stop mid-fade: the last iteration trained at 48 images (ProGAN: 4 -> 8 px at lod 1.5, after
    # three iterations of 16 at 4 px; StyleGAN: 8 -> 16 px at lod 0.5); the next one is at 56.
    start = 4 if model == "progan" else 8
    part_dir = _train(tmp_path, "part", *extra, "kimg=0.052")
    part = load_checkpoint(find_latest_checkpoint(part_dir))
    assert part["progress"]["cur_nimg"] == 56
    assert part["growing"]["lod"] == pytest.approx(_official_lod(48, start=start))
    assert part["growing"]["next_lod"] == pytest.approx(_official_lod(56, start=start))
    assert 0 < part["growing"]["alpha"] < 1
    assert [float(v) for k, v in part["G_ema"].items() if k.split(".")[-1] == "lod"] == [part["growing"]["lod"]]
    resumed = load_checkpoint(find_latest_checkpoint(
        _train(tmp_path, "resumed", *extra, "kimg=0.112", f"resume={find_latest_checkpoint(part_dir)}")))
    assert resumed["progress"] == full["progress"] and resumed["growing"] == full["growing"]
    _assert_same_state(resumed, full)

    # sample.py / zoo.load work with the growing checkpoint (and with the grown one).
    G = zoo.load(find_latest_checkpoint(part_dir))
    assert float(G.lod) == part["growing"]["lod"]
    out = sample_app.sample(compose_cfg("sample", overrides=[f"ckpt={find_latest_checkpoint(part_dir)}", "seeds=0-1"]),
                     outdir=str(tmp_path / "samples"))
    assert np.asarray(Image.open(os.path.join(out, "seed0001.png"))).shape == (16, 16, 3)


def test_growing_values_are_validated():
    cfg = compose_cfg(overrides=["model=progan", "model.growing.minibatch={8:6}"])
    with pytest.raises(ConfigError, match="model.growing.minibatch.8"):
        validate(cfg)
    cfg = compose_cfg(overrides=["model=stylegan", "gpus=3", "batch=12", "model.growing.minibatch={4:12,8:10}"])
    with pytest.raises(ConfigError, match="model.growing.minibatch.8.*gpus=3"):
        validate(cfg)
    cfg = compose_cfg(overrides=["model=stylegan", "model.growing.start_resolution=6"])
    with pytest.raises(ConfigError, match="start_resolution"):
        validate(cfg)
    validate(compose_cfg(overrides=["model=progan", "model.growing.stable_kimg=1", "model.growing.lr=null"]))


def _run_script(script, args, cwd):
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_train_and_sample_scripts_with_stylegan(tmp_path):
    run_dir = tmp_path / "run"
    r = _run_script("train.py", BASE + STYLEGAN + ["kimg=0.04", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = find_latest_checkpoint(str(run_dir))
    r = _run_script("sample.py", [f"ckpt={ckpt}", "model=stylegan", "seeds=0-3", "trunc=0.7", "trunc_cutoff=8",
                                  f"outdir={tmp_path / 's'}", "device=cpu"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "s" / "grid.png").exists()


@pytest.mark.slow
def test_sweep_over_all_four_generations_on_the_quickstart_data(tmp_path):
    sweep = tmp_path / "sweep"
    r = _run_script("train.py", ["-m", "model=progan,stylegan,stylegan2,stylegan3", "data=shapes", "kimg=0.6", "logger=none",
                                 "progress=false", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    for job in ("0_progan", "1_stylegan", "2_stylegan2", "3_stylegan3"):
        assert find_latest_checkpoint(str(sweep / job)) is not None
