"""StyleGAN3 through the shared training loop and sample.py: configs T and R, the discriminator blur
schedule of R, magnitude EMAs, exact resume, translate/rotate sampling."""
import os
import subprocess
import sys

import pytest
import torch

import zoo
from conftest import ROOT, TINY, compose_cfg
import zoo.apps.sample as sample_app
import zoo.apps.train as train_app
from zoo.core.errors import ConfigError
from zoo.generations import resolve_hparams
from zoo.core.checkpoint import find_latest_checkpoint, load_checkpoint
from zoo.training.losses import StyleGAN2Loss, blur

ITER = 8 / 1000  # kimg of one iteration at batch 8
SG3 = ["model=stylegan3"] + TINY


def _train(tmp_path, name, *extra):
    cfg = compose_cfg(overrides=SG3 + [f"run_root={tmp_path}/runs", *extra])
    return train_app.train(cfg, run_dir=str(tmp_path / "runs" / name))


def _state(run_dir):
    return load_checkpoint(find_latest_checkpoint(run_dir))


def test_presets_follow_nvidia():
    cfg = compose_cfg(overrides=["model=stylegan3", "logger=none", "resolution=256", "batch=32"])
    hp = resolve_hparams(cfg.model, 256, 32)
    assert (hp["glr"], hp["dlr"]) == (0.0025, 0.002)
    assert hp["mapping_layers"] == 2 and hp["style_mixing_prob"] == 0 and hp["pl_weight"] == 0
    assert hp["G_reg_interval"] is None and hp["D_reg_interval"] == 16
    assert hp["r1_gamma"] == 2.0  # docs/configs.md, 256 px
    assert hp["magnitude_ema_beta"] == pytest.approx(0.5 ** (32 / 20000))
    assert hp["ema_kimg"] == 10 and hp["ema_rampup"] == 0.05
    assert hp["blur_init_sigma"] == 0
    hp_r = resolve_hparams(compose_cfg(overrides=["model=stylegan3", "model.config=r", "logger=none", "model.channel_base=32768",
                                                  "model.channel_max=512"]).model, 256, 64)
    assert hp_r["blur_init_sigma"] == 10 and hp_r["blur_fade_kimg"] == 400  # 200 kimg at batch 32
    from zoo import registry
    G_kwargs, D_kwargs = registry.get("stylegan3").network_kwargs(hp_r, 256, 3, 0)
    assert (G_kwargs["channel_base"], G_kwargs["channel_max"], G_kwargs["conv_kernel"]) == (65536, 1024, 1)
    assert G_kwargs["use_radial_filters"] and (D_kwargs["channel_base"], D_kwargs["channel_max"]) == (32768, 512)


def test_bad_config_name_is_reported(tmp_path):
    cfg = compose_cfg(overrides=SG3 + ["model.config=x", f"run_root={tmp_path}"])
    with pytest.raises(ConfigError, match="model.config"):
        train_app.train(cfg, run_dir=str(tmp_path / "x"))


def test_blur_schedule_and_kernel():
    loss = StyleGAN2Loss(None, None, blur_init_sigma=10, blur_fade_kimg=2)
    for nimg, sigma in [(0, 10), (1000, 5), (2000, 0), (5000, 0)]:
        assert loss.blur_sigma(nimg) == pytest.approx(sigma)
    img = torch.zeros(1, 1, 41, 41)
    img[0, 0, 20, 20] = 1
    out = blur(img, 2.0)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)  # unit DC gain
    row = out[0, 0, 20]
    # separable kernel 2**-(x/sigma)^2 over |x| <= 3 sigma
    x = torch.arange(-6, 7, dtype=torch.float32)
    k = torch.exp2(-(x / 2) ** 2)
    k = k / k.sum()
    torch.testing.assert_close(row[14:27], k * k[6], atol=1e-6, rtol=1e-5)
    assert row[:14].abs().max() == 0 and row[27:].abs().max() == 0


@pytest.mark.parametrize("config", ["t", "r"])
def test_few_steps_and_sampling(tmp_path, config):
    run_dir = _train(tmp_path, config, f"kimg={2 * ITER}", f"model.config={config}")
    state = _state(run_dir)
    assert state["generation"] == "stylegan3"
    assert state["G_kwargs"]["conv_kernel"] == (1 if config == "r" else 3)
    mags = [v for k, v in state["G"].items() if k.endswith("magnitude_ema")]
    assert len(mags) == 15 and all(torch.isfinite(m) and m != 1 for m in mags)  # updated in Dmain
    G = zoo.load(find_latest_checkpoint(run_dir))
    img = G(torch.randn(2, G.z_dim), None, noise_mode="const")
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()


def test_resume_is_exact_mid_blur_fade(tmp_path):
    extra = ["model.config=r", f"model.blur_fade_kimg={6 * ITER}", "model.D_reg_interval=4"]
    full = _state(_train(tmp_path, "full", f"kimg={5 * ITER}", *extra))
    part_dir = _train(tmp_path, "part", f"kimg={2 * ITER}", *extra)
    resumed = _state(_train(tmp_path, "resumed", f"kimg={5 * ITER}", f"resume={find_latest_checkpoint(part_dir)}", *extra))
    assert resumed["progress"] == full["progress"]
    for which in ("G", "D", "G_ema"):
        for k in full[which]:
            assert torch.equal(resumed[which][k], full[which][k]), (which, k)
    # and the blur really mattered: without it the run differs
    noblur = _state(_train(tmp_path, "noblur", f"kimg={5 * ITER}", "model.config=r", "model.blur_init_sigma=0",
                           "model.D_reg_interval=4"))
    assert not torch.equal(noblur["D"]["b4.out.weight"], full["D"]["b4.out.weight"])


def test_sample_translate_rotate(tmp_path):
    run_dir = _train(tmp_path, "s", f"kimg={ITER}")
    ckpt = find_latest_checkpoint(run_dir)

    def render(*extra):
        out = tmp_path / ("out" + "_".join(extra).replace("=", "").replace(",", "_").replace(".", ""))
        cfg = compose_cfg("sample", [f"ckpt={ckpt}", "seeds=[3]", "grid=false", *extra])
        sample_app.sample(cfg, outdir=str(out))
        from PIL import Image
        import numpy as np
        return np.asarray(Image.open(out / "seed0003.png")).astype(float)

    base = render()
    assert (render("noise_mode=random") == base).all()  # StyleGAN3 has no noise inputs
    assert (render("translate=[0,0]", "rotate=0") == base).all()
    assert abs(render("rotate=15") - base).mean() > 1
    assert abs(render("translate=[0.25,0]") - base).mean() > 1

    # the scripts accept the comma form; a StyleGAN2 checkpoint refuses the transform
    out = tmp_path / "cli"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "sample.py"), f"ckpt={ckpt}", "seeds=1,2",
                        "translate=0.1,0.0", "rotate=15", f"outdir={out}", "hydra.run.dir=" + str(tmp_path / "h")],
                       capture_output=True, text=True, env=dict(os.environ, WANDB_MODE="disabled"))
    assert r.returncode == 0, r.stderr
    assert {"seed0001.png", "seed0002.png"} <= set(os.listdir(out))
    sg2 = train_app.train(compose_cfg(overrides=TINY + [f"run_root={tmp_path}/runs", f"kimg={ITER}"]),
                    run_dir=str(tmp_path / "runs" / "sg2"))
    with pytest.raises(ConfigError, match="StyleGAN3 only"):
        sample_app.sample(compose_cfg("sample", [f"ckpt={find_latest_checkpoint(sg2)}", "rotate=10"]), outdir=str(tmp_path / "x"))
