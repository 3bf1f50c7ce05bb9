"""Augmentation in training (aug=): per-generation defaults, every D input augmented, the adaptive
p (heuristic, logging, checkpoint, exact resume, 2 processes), and bad aug values failing early."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY, compose_cfg
import zoo.apps.train as train_app
from zoo.core.checkpoint import find_latest_checkpoint, load_checkpoint
from zoo.core.errors import ConfigError
from zoo.training.augment import Augmentation, build_augmentation, check_aug_config
from zoo.training.config import validate
from zoo.training.trainer import Trainer
from zoo.ops.augment import AugmentPipe

ITER = 8 / 1000  # kimg of one iteration at batch 8
FAST_ADA = ["aug=ada", "aug.ada_kimg=0.05", "aug.interval=2", "aug.target=0.1"]  # p moves by 0.16 per adjustment


def _train(tmp_path, name, *extra, tiny=TINY):
    cfg = compose_cfg(overrides=tiny + [f"run_root={tmp_path}/runs", *extra])
    return train_app.train(cfg, run_dir=str(tmp_path / "runs" / name))


def _state(run_dir):
    return load_checkpoint(find_latest_checkpoint(run_dir))


def _plain(overrides):
    from omegaconf import OmegaConf
    cfg = OmegaConf.to_container(compose_cfg(overrides=overrides), resolve=True)
    cfg["resolution"] = 16
    return cfg


PROGAN = ["logger=none", "model=progan", "resolution=16", "model.channel_base=256", "model.channel_max=32",
          "model.z_dim=32", "batch=8", "data.num_images=256", "progress=false", "device=cpu",
          "model.growing.minibatch=null", "model.growing.start_resolution=16"]


@pytest.mark.parametrize("model, expected", [("stylegan2", "ada"), ("stylegan3", "ada"), ("progan", None), ("stylegan", None)])
def test_the_default_augmentation_follows_the_generation_and_the_command_line_wins(model, expected):
    cfg = compose_cfg(overrides=[f"model={model}"])
    assert cfg.aug.mode == "auto"
    from zoo import generations
    aug = build_augmentation(cfg.aug, generations.get(model).augment, torch.device("cpu"))
    assert (aug.mode if aug else None) == expected
    other = "noaug" if expected else "ada"
    aug = build_augmentation(compose_cfg(overrides=[f"model={model}", f"aug={other}"]).aug,
                             generations.get(model).augment, torch.device("cpu"))
    assert (aug.mode if aug else "noaug") == other


def test_every_discriminator_input_is_augmented():
    """Gmain's fakes, Dmain's fakes and reals and Dreg's R1 reals (StyleGAN2); ProGAN also its
    gradient-penalty interpolates. R1 differentiates through the augmentation."""
    for overrides, expected in (
            (TINY + ["model.D_reg_interval=1", "model.G_reg_interval=null"], 4),  # Gboth, Dmain fake+real, Dreg real
            (PROGAN, 4)):  # Gboth fake, Dboth fake + real + interpolates
        trainer = Trainer(_plain(overrides + ["aug=fixed", "aug.p=1"]), img_channels=3, device=torch.device("cpu"))
        calls = []
        real_aug = trainer.loss.augment

        def recording(img, _aug=real_aug):
            calls.append(img.requires_grad)
            return _aug(img)

        recording.observe = real_aug.observe
        trainer.loss.augment = recording
        reals = [torch.rand(8, 3, 16, 16) * 2 - 1]
        trainer.step(reals, [torch.zeros(8, 0)])
        assert len(calls) == expected, (overrides[1], calls)
        assert any(calls)  # the R1 / GP inputs carry the graph through the augmentation


def test_ada_heuristic_moves_p_and_clamps_at_zero():
    aug = Augmentation("ada", AugmentPipe.from_preset("bgc"), target=0.6, interval=4, ada_kimg=500)
    for it in range(1, 9):
        aug.observe(torch.ones(32, 1))  # D is sure about every real: overfitting
        aug.end_iteration(it, 32)
    step = 32 * 4 / 500_000
    assert aug.p == pytest.approx(2 * step, rel=1e-6)  # two adjustments, one every 4 iterations
    for it in range(9, 21):
        aug.observe(-torch.ones(32, 1))
        aug.end_iteration(it, 32)
    assert aug.p == 0.0  # clamped at 0
    fixed = Augmentation("fixed", AugmentPipe.from_preset("bgc", p=0.2))
    fixed.observe(torch.ones(4, 1))
    fixed.end_iteration(4, 32)
    assert fixed.p == 0.2


def test_p_and_the_heuristic_are_logged_and_saved(tmp_path):
    run_dir = _train(tmp_path, "ada", f"kimg={4 * ITER}", "tick_kimg=0.008", *FAST_ADA)
    records = [json.loads(line) for line in open(os.path.join(run_dir, "stats.jsonl"))]
    assert all("Loss/signs/real" in r and "Progress/augment" in r for r in records)
    ps = [r["Progress/augment"] for r in records]
    assert ps[0] == 0 and max(ps) > 0  # p moved after the second iteration
    state = _state(run_dir)
    assert state["augment"]["mode"] == "ada" and state["augment"]["p"] == pytest.approx(ps[-1])
    assert float(state["augment_pipe"]["p"]) == state["augment"]["p"]  # NVIDIA's buffer, exactly
    assert state["augment_pipe"]["Hz_geom"].shape == (12,) and state["augment_pipe"]["Hz_fbank"].shape == (4, 43)
    assert json.load(open(os.path.join(run_dir, "job.json")))["augment"] == "ada"


def test_resumed_ada_run_continues_bit_exactly_p_included(tmp_path):
    extra = [*FAST_ADA, "aug.interval=2", "model.D_reg_interval=4", "model.G_reg_interval=2"]
    full = _state(_train(tmp_path, "full", f"kimg={5 * ITER}", *extra))
    part_dir = _train(tmp_path, "part", f"kimg={3 * ITER}", *extra)  # cut between two adjustments
    assert _state(part_dir)["augment"]["signs"][1] > 0  # pending signs are carried over
    resumed = _state(_train(tmp_path, "resumed", f"kimg={5 * ITER}", f"resume={find_latest_checkpoint(part_dir)}", *extra))
    assert full["augment"]["p"] > 0 and resumed["augment"] == full["augment"]
    for which in ("G", "D", "G_ema"):
        for k in full[which]:
            assert torch.equal(resumed[which][k], full[which][k]), (which, k)


def test_noaug_and_zero_p_train_identically(tmp_path):
    a = _state(_train(tmp_path, "noaug", f"kimg={2 * ITER}", "aug=noaug"))
    b = _state(_train(tmp_path, "fixed0", f"kimg={2 * ITER}", "aug=fixed", "aug.p=0"))
    for k in a["D"]:
        assert torch.equal(a["D"][k], b["D"][k]), k


def test_diffaugment_trains(tmp_path):
    state = _state(_train(tmp_path, "diff", f"kimg={2 * ITER}", "aug=diffaugment", "aug.policy=[translation,cutout]"))
    assert state["augment"] == {"mode": "diffaugment", "p": None, "signs": [0.0, 0.0]} and "augment_pipe" not in state


@pytest.mark.distributed
def test_two_gloo_processes_keep_one_p_and_equal_one_process(tmp_path):
    common = ["batch=8", f"kimg={4 * ITER}", "model.D_reg_interval=2", *FAST_ADA]
    one = _state(_train(tmp_path, "one", *common, "gpus=1", "batch_gpu=4", "threads=1"))
    two = _state(_train(tmp_path, "two", *common, "gpus=2", "threads=1"))
    assert one["augment"]["p"] > 0 and two["augment"] == one["augment"]
    for which in ("G", "D", "G_ema"):
        for k in one[which]:
            assert torch.equal(one[which][k], two[which][k]), (which, k)


@pytest.mark.parametrize("overrides, key, words", [
    (["aug.p=abc"], "aug.p", "not a number"),
    (["aug=fixed", "aug.p=1.5"], "aug.p", "outside [0, 1]"),
    (["aug=fixed", "aug.p=-0.1"], "aug.p", "outside [0, 1]"),
    (["aug.pipe=bgcx"], "aug.pipe", "unknown augmentation preset"),
    (["aug=fixed", "aug.p=null"], "aug.p", "needs a probability"),
    (["aug=diffaugment", "aug.policy=[color,zoom]"], "aug.policy", "zoom"),
    (["aug.mode=strong"], "aug", "unknown augmentation mode"),
    (["aug.ada_kimg=0"], "aug.ada_kimg", "> 0"),
])
def test_bad_aug_values_fail_before_anything_is_written(overrides, key, words, tmp_path):
    cfg = compose_cfg(overrides=TINY + [f"run_root={tmp_path}/runs", *overrides])
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert e.value.key == key and words in str(e.value) and "Fix:" in str(e.value)
    with pytest.raises(ConfigError):
        train_app.train(cfg, run_dir=str(tmp_path / "runs" / "bad"))
    assert not os.path.exists(tmp_path / "runs")  # no run directory, no job.json
    check_aug_config(compose_cfg(overrides=["aug=fixed", "aug.p=1"]).aug)  # the bounds are allowed


def test_train_script_reports_a_bad_p_in_one_line(tmp_path):
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *TINY, "aug=fixed", "aug.p=abc",
                        f"run_root={tmp_path}/runs"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: aug.p:") and "Fix:" in lines[0]
    assert not list((tmp_path / "runs").rglob("job.json")) and not list((tmp_path / "runs").rglob("*.pt"))
