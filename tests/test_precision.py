"""Mixed precision (NVIDIA's policy, zoo/ops/precision.py): which blocks run in low precision, that
float32 stays exactly float32, that weights/gradients/checkpoints stay float32, that a long mixed run
keeps every weight finite, and that bad settings fail at start."""
import copy
import os

import pytest
import torch

import zoo
import zoo.apps.sample as sample_app
import zoo.apps.train as train_app
from conftest import TINY, compose_cfg
from zoo import registry
from zoo.core.checkpoint import find_latest_checkpoint, load_checkpoint
from zoo.core.errors import ConfigError
from zoo.ops import modulated_conv2d
from zoo.ops import precision as P
from zoo.ops.fir import setup_filter, upsample2d
from zoo.training.config import validate
from zoo.training.trainer import Trainer


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Run the CPU mixed-precision path on any CPU. Without AVX512-BF16/AMX, torch computes bf16 in
    software (same results, much slower), which the tiny networks of these tests can afford; the
    zoo itself refuses precision=mixed there because it would be slower than fp32."""
    if not P.cpu_supports_bf16():
        monkeypatch.setattr(P, "cpu_supports_bf16", lambda: True)  # read through the module everywhere

SG = dict(img_resolution=32, channel_base=1024, channel_max=32, z_dim=16, w_dim=16, mapping_layers=2)


def _nets(gen):
    torch.manual_seed(0)
    spec = registry.get(gen)
    G = spec.build_generator(**SG, **({"conv_clamp": 256} if gen == "stylegan2" else {})).eval()
    D = spec.build_discriminator(img_resolution=32, channel_base=1024, channel_max=32, conv_clamp=256).eval()
    return G, D


def _dtypes(net, x, *args, **kwargs):
    """The output dtype of every low-precision-capable layer in one forward."""
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o[0].dtype if isinstance(o, tuple) else o.dtype))
             for n, m in net.named_modules() if n.count(".") <= 2 and ("conv" in n.split(".")[-1] or n.split(".")[-1].startswith("L"))]
    with torch.no_grad():
        net(x, *args, **kwargs)
    for h in hooks:
        h.remove()
    return seen


def test_nvidia_rules_for_which_blocks_run_in_low_precision():
    assert P.fp16_resolution(1024, 4) == 128 and P.fp16_resolution(256, 4) == 32 and P.fp16_resolution(32, 4) == 8
    assert P.fp16_resolution(32, 0) > 1024
    G, D = _nets("stylegan2")
    G.set_precision("mixed", "bf16")
    seen = _dtypes(G.synthesis, torch.randn(2, G.num_ws, 16))
    assert seen["b4.conv1"] == torch.float32 and seen["b8.conv1"] == torch.bfloat16 and seen["b32.conv1"] == torch.bfloat16
    D.set_precision("mixed", "bf16", num_fp16_res=1)          # only the highest resolution: 32
    seen = _dtypes(D, torch.randn(2, 3, 32, 32))
    assert seen["b32.conv0"] == torch.bfloat16 and seen["b16.conv0"] == torch.float32 and seen["b4.conv"] == torch.float32
    # StyleGAN3: the layers whose sampling rate * 2**num_fp16_res exceeds the resolution (NVIDIA).
    G3 = registry.get("stylegan3").build_generator(z_dim=8, w_dim=8, img_resolution=256, channel_base=512, channel_max=16)
    G3.set_precision("mixed", "bf16", num_fp16_res=2)
    flags = {n: getattr(G3.synthesis, n).use_fp16 for n in G3.synthesis.layer_names}
    rates = {n: getattr(G3.synthesis, n).out_sampling_rate for n in G3.synthesis.layer_names}
    assert flags == {n: r * 4 > 256 for n, r in rates.items()} and any(flags.values()) and not all(flags.values())


@pytest.mark.parametrize("gen", ["stylegan2", "stylegan3"])
def test_fp32_is_exact_and_mixed_is_close(gen):
    G, D = _nets(gen)
    z = torch.randn(4, 16)
    with torch.no_grad():
        ref = G(z, None, noise_mode="const")
        assert torch.equal(ref, copy.deepcopy(G).set_precision("fp32")(z, None, noise_mode="const"))
        G.set_precision("mixed", "bf16")
        assert torch.equal(ref, G(z, None, noise_mode="const", force_fp32=True))   # NVIDIA's force_fp32
        low = G(z, None, noise_mode="const")
        d_ref = D(ref)
        D.set_precision("mixed", "bf16")
        d_low = D(ref)
    assert low.dtype == torch.float32 and d_low.dtype == torch.float32
    assert not torch.equal(low, ref)
    assert float((low - ref).norm() / ref.norm()) < 0.08          # bf16 rounding over the whole network
    assert float((d_low - d_ref).abs().max()) < 0.05 * float(d_ref.abs().max()) + 1e-3
    assert all(p.dtype == torch.float32 for p in list(G.parameters()) + list(D.parameters()))


@pytest.mark.parametrize("gen", ["stylegan2", "stylegan3"])
def test_mixed_gradients_and_r1_double_backward_are_float32(gen):
    G, D = _nets(gen)
    G.set_precision("mixed", "bf16")
    D.set_precision("mixed", "bf16")
    G.requires_grad_(True)
    D.requires_grad_(True)
    img = G(torch.randn(4, 16), None)
    D(img).sum().backward()
    x = img.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    g.square().sum().backward()
    grads = [p.grad for p in list(G.parameters()) + list(D.parameters()) if p.grad is not None]
    assert g.dtype == torch.float32 and grads and all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in grads)


def test_fp16_pre_normalisation_prevents_overflow():
    """NVIDIA's float16 policy: weights and styles are pre-normalised before the modulated conv."""
    x = torch.randn(2, 8, 6, 6)
    w = torch.randn(4, 8, 3, 3) * 3000
    s = torch.rand(2, 8) * 3000 + 1
    ref = modulated_conv2d(x, w, s, padding=1)
    half = modulated_conv2d(x.half(), w, s, padding=1)
    assert torch.isfinite(half).all() and half.dtype == torch.float16
    torch.testing.assert_close(half.float(), ref, rtol=2e-2, atol=2e-2)
    naive = modulated_conv2d(x.half(), w.half(), s.half(), padding=1, demodulate=False)
    assert not torch.isfinite(naive).all()                        # what the pre-normalisation avoids


def test_bf16_upsampling_and_conv_backward_take_the_fast_paths_with_the_same_values():
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(2, 4, 8, 8).to(memory_format=torch.channels_last)
    up = upsample2d(x.bfloat16(), f)
    assert up.dtype == torch.bfloat16
    torch.testing.assert_close(up.float(), upsample2d(x, f), rtol=1e-2, atol=1e-2)
    from zoo.ops.convolution import conv_transpose2d
    w = torch.randn(4, 4, 3, 3)
    for dt in (torch.float32, torch.bfloat16):
        xi, wi = x.to(dt).detach().requires_grad_(True), w.to(dt).detach().requires_grad_(True)
        conv_transpose2d(xi, wi, stride=2).square().sum().backward()
        if dt == torch.float32:
            ref = (xi.grad, wi.grad)
    torch.testing.assert_close(xi.grad.float(), ref[0], rtol=5e-2, atol=5e-1)
    torch.testing.assert_close(wi.grad.float(), ref[1], rtol=5e-2, atol=5e-1)


def test_trainer_keeps_float32_state_and_the_stylegan2_clamp_rule():
    m = registry.get("stylegan2").defaults()
    m.update(channel_base=256, channel_max=16, mapping_layers=2, z_dim=16, w_dim=16)
    cfg = dict(model=m, resolution=16, batch=4, seed=0, kimg=0)
    fp32 = Trainer(dict(cfg, precision="fp32"), img_channels=3, device=torch.device("cpu"))
    mixed = Trainer(dict(cfg, precision="mixed", precision_dtype="bf16"), img_channels=3, device=torch.device("cpu"))
    assert fp32.hp["conv_clamp"] is None and mixed.hp["conv_clamp"] == 256       # NVIDIA: 256 with fp16 blocks
    assert mixed.G_kwargs["conv_clamp"] == 256 and mixed.D_kwargs["conv_clamp"] == 256
    assert mixed.G_ema.synthesis.precision.mixed and mixed.D.precision.mixed
    mixed.step([torch.rand(4, 3, 16, 16) * 2 - 1], [torch.zeros(4, 0)])
    state = mixed.state_dict()
    assert state["precision"] == {"mode": "mixed", "dtype": "bf16", "num_fp16_res": 4}
    tensors = [v for k in ("G", "D", "G_ema") for v in state[k].values() if v.is_floating_point()]
    assert all(t.dtype == torch.float32 for t in tensors)
    assert all(v.dtype == torch.float32 for opt in (state["G_opt"], state["D_opt"])
               for s in opt["state"].values() for v in s.values() if torch.is_tensor(v) and v.is_floating_point())
    # ProGAN / StyleGAN (v1) have no mixed-precision blocks: they say so and train in float32.
    mp = registry.get("progan").defaults()
    mp.update(channel_base=256, channel_max=16, z_dim=16)
    assert Trainer(dict(cfg, model=mp, precision="mixed"), img_channels=3, device=torch.device("cpu")).precision == P.FP32


# 200 steps of software bf16 (CPUs without AVX512-BF16/AMX) take ~9 minutes, so there the test is
# `slow` (pytest -m slow); with bf16 hardware it runs with the suite.
@(pytest.mark.slow if not P.cpu_supports_bf16() else lambda f: f)
def test_two_hundred_mixed_steps_keep_every_weight_finite(tmp_path, bf16_cpu):
    cfg = compose_cfg(overrides=[*TINY, "precision=mixed", "kimg=1.6", "snap_kimg=1.6", "image_kimg=1.6",
                                 f"run_root={tmp_path}"])   # 200 steps of batch 8 on the built-in shapes
    run = train_app.train(cfg, run_dir=str(tmp_path / "run"))
    state = load_checkpoint(find_latest_checkpoint(run))
    assert state["progress"]["batch_idx"] == 200 and state["precision"]["mode"] == "mixed"
    for key in ("G", "D", "G_ema"):
        bad = [k for k, v in state[key].items() if v.is_floating_point() and not torch.isfinite(v).all()]
        assert not bad, (key, bad)


def test_load_and_sample_render_in_either_precision(tmp_path, bf16_cpu):
    run = train_app.train(compose_cfg(overrides=[*TINY, "kimg=0.016", f"run_root={tmp_path}"]), run_dir=str(tmp_path / "r"))
    ckpt = find_latest_checkpoint(run)
    z = torch.randn(2, 32)
    a = zoo.load(ckpt)(z, None, noise_mode="const")
    b = zoo.load(ckpt, precision="mixed")(z, None, noise_mode="const")
    assert a.dtype == b.dtype == torch.float32 and not torch.equal(a, b)
    torch.testing.assert_close(a, b, rtol=0.1, atol=0.1)
    out = sample_app.sample(compose_cfg("sample", [f"ckpt={ckpt}", "seeds=0-1", "precision=mixed"]),
                            outdir=str(tmp_path / "s"))
    assert os.path.isfile(os.path.join(out, "seed0001.png"))


def test_bad_precision_settings_fail_at_start(monkeypatch, tmp_path):
    base = [*TINY, f"run_root={tmp_path}"]
    with pytest.raises(ConfigError, match="precision: unknown precision 'fp8'"):
        validate(compose_cfg(overrides=base + ["precision=fp8"]))
    with pytest.raises(ConfigError, match="precision_dtype: float16 convolutions are not accelerated on CPUs"):
        validate(compose_cfg(overrides=base + ["precision=mixed", "precision_dtype=fp16"]))
    with pytest.raises(ConfigError, match="num_fp16_res"):
        validate(compose_cfg(overrides=base + ["num_fp16_res=-1"]))
    monkeypatch.setattr(P, "cpu_supports_bf16", lambda: False)
    with pytest.raises(ConfigError, match="no bfloat16 arithmetic"):
        validate(compose_cfg(overrides=base + ["precision=mixed"]))
    validate(compose_cfg(overrides=base + ["precision=auto"]))          # auto falls back to fp32 there
    assert P.resolve_mode("auto", torch.device("cpu")) == "fp32"
    assert P.resolve_mode("auto", torch.device("cuda")) == "mixed"


def test_resume_continues_in_the_runs_precision(tmp_path):
    """precision=auto resumes a float32 run in float32 (the StyleGAN2 clamp rule would otherwise change
    its architecture); an explicit precision=mixed says why it cannot."""
    run = train_app.train(compose_cfg(overrides=[*TINY, "kimg=0.016", f"run_root={tmp_path}"]), run_dir=str(tmp_path / "r"))
    ckpt = find_latest_checkpoint(run)
    base = [t for t in TINY if not t.startswith("precision=")] + [f"run_root={tmp_path}", "kimg=0.032", f"resume={ckpt}"]
    train_app.train(compose_cfg(overrides=base + ["precision=auto"]), run_dir=str(tmp_path / "r2"))
    assert load_checkpoint(find_latest_checkpoint(str(tmp_path / "r2")))["precision"]["mode"] == "fp32"
    if P.cpu_supports_bf16():
        from zoo.core.errors import CheckpointError
        with pytest.raises(CheckpointError, match="conv_clamp.*resume with precision=fp32"):
            train_app.train(compose_cfg(overrides=base + ["precision=mixed"]), run_dir=str(tmp_path / "r3"))
