"""Exporting to NVIDIA's state-dict layout and rosinality's checkpoint layout, and importing
rosinality checkpoints.

No NVIDIA or rosinality code is used: the expected official names and shapes are written out here
from the published layouts (NVIDIA's module names, rosinality's ``model.py`` module names), and the
rosinality fixture is written by hand in its layout from a zoo model's tensors."""
from __future__ import annotations

import argparse
import copy
import subprocess
import sys

import pytest
import torch

import zoo
import zoo.apps.sample as sample_app
from zoo import registry
from zoo.interop import load_any
from zoo.interop.export import export, nvidia_init_kwargs, to_nvidia
from zoo.interop.nvidia import import_nvidia_export
from zoo.interop.rosinality import import_rosinality, rosinality_args, to_rosinality
from zoo.interop.safe_pickle import InteropError
from zoo.models import stylegan3 as s3
from zoo.core.checkpoint import save_checkpoint

from conftest import ROOT, compose_cfg
from test_interop import write_nvidia_pickle


def _perturb(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
        for n, b in net.named_buffers():
            if n.endswith(("w_avg", "noise_const")):
                b.copy_(torch.randn(b.shape, generator=g))
            if n.endswith("magnitude_ema"):
                b.copy_(torch.rand([], generator=g) + 0.5)
    return net.eval().requires_grad_(False)


def _state(generation, G_kwargs, D_kwargs, seed=0):
    spec = registry.get(generation)
    nets = {k: _perturb(spec.build_generator(**G_kwargs), seed + i) for i, k in enumerate(("G", "G_ema"))}
    nets["D"] = _perturb(spec.build_discriminator(**D_kwargs), seed + 2)
    state = {"generation": generation, "G_kwargs": nets["G"].init_kwargs, "D_kwargs": nets["D"].init_kwargs}
    state.update({k: {n: v.clone() for n, v in net.state_dict().items()} for k, net in nets.items()})
    return state, nets


def _assert_same_tensors(a, b, keys=("G", "G_ema", "D")):
    for k in keys:
        assert a[k].keys() == b[k].keys(), k
        for n in a[k]:
            assert a[k][n].dtype == b[k][n].dtype and torch.equal(a[k][n], b[k][n]), f"{k}.{n}"


# ------------------------------------------------------------------------------------------------
# NVIDIA layout
# ------------------------------------------------------------------------------------------------

# stylegan3 repository, networks_stylegan2: Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8,
# img_channels=3, mapping_kwargs=dict(num_layers=2), channel_base=64, channel_max=16) and its
# Discriminator(c_dim=0, img_resolution=8, img_channels=3, channel_base=64, channel_max=16).
OFFICIAL_SG2_G_8PX = {
    "synthesis.b4.const": (16, 4, 4), "synthesis.b4.resample_filter": (4, 4),
    "synthesis.b4.conv1.weight": (16, 16, 3, 3), "synthesis.b4.conv1.noise_strength": (),
    "synthesis.b4.conv1.bias": (16,), "synthesis.b4.conv1.resample_filter": (4, 4),
    "synthesis.b4.conv1.noise_const": (4, 4), "synthesis.b4.conv1.affine.weight": (16, 8),
    "synthesis.b4.conv1.affine.bias": (16,), "synthesis.b4.torgb.weight": (3, 16, 1, 1),
    "synthesis.b4.torgb.bias": (3,), "synthesis.b4.torgb.affine.weight": (16, 8), "synthesis.b4.torgb.affine.bias": (16,),
    "synthesis.b8.resample_filter": (4, 4),
    "synthesis.b8.conv0.weight": (8, 16, 3, 3), "synthesis.b8.conv0.noise_strength": (), "synthesis.b8.conv0.bias": (8,),
    "synthesis.b8.conv0.resample_filter": (4, 4), "synthesis.b8.conv0.noise_const": (8, 8),
    "synthesis.b8.conv0.affine.weight": (16, 8), "synthesis.b8.conv0.affine.bias": (16,),
    "synthesis.b8.conv1.weight": (8, 8, 3, 3), "synthesis.b8.conv1.noise_strength": (), "synthesis.b8.conv1.bias": (8,),
    "synthesis.b8.conv1.resample_filter": (4, 4), "synthesis.b8.conv1.noise_const": (8, 8),
    "synthesis.b8.conv1.affine.weight": (8, 8), "synthesis.b8.conv1.affine.bias": (8,),
    "synthesis.b8.torgb.weight": (3, 8, 1, 1), "synthesis.b8.torgb.bias": (3,),
    "synthesis.b8.torgb.affine.weight": (8, 8), "synthesis.b8.torgb.affine.bias": (8,),
    "mapping.w_avg": (8,), "mapping.fc0.weight": (8, 8), "mapping.fc0.bias": (8,),
    "mapping.fc1.weight": (8, 8), "mapping.fc1.bias": (8,),
}
OFFICIAL_SG2_D_8PX = {
    "b8.resample_filter": (4, 4), "b8.fromrgb.weight": (8, 3, 1, 1), "b8.fromrgb.bias": (8,),
    "b8.fromrgb.resample_filter": (4, 4), "b8.conv0.weight": (8, 8, 3, 3), "b8.conv0.bias": (8,),
    "b8.conv0.resample_filter": (4, 4), "b8.conv1.weight": (16, 8, 3, 3), "b8.conv1.bias": (16,),
    "b8.conv1.resample_filter": (4, 4), "b8.skip.weight": (16, 8, 1, 1), "b8.skip.resample_filter": (4, 4),
    "b4.conv.weight": (16, 17, 3, 3), "b4.conv.bias": (16,), "b4.conv.resample_filter": (4, 4),
    "b4.fc.weight": (16, 256), "b4.fc.bias": (16,), "b4.out.weight": (1, 16), "b4.out.bias": (1,),
}
# stylegan3 Generator, config T at 256 px, default channels (official-stylegan-facts.md §2.4).
OFFICIAL_SG3_T_256_LAYERS = ["L0_36_512", "L1_36_512", "L2_36_512", "L3_52_512", "L4_52_512", "L5_84_512",
                             "L6_84_512", "L7_148_512", "L8_148_512", "L9_148_362", "L10_276_256", "L11_276_181",
                             "L12_276_128", "L13_256_128", "L14_256_3"]


def test_nvidia_export_stylegan2_names_and_kwargs_are_official():
    state, _ = _state("stylegan2", dict(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=2, channel_base=64,
                                        channel_max=16), dict(img_resolution=8, channel_base=64, channel_max=16))
    out = to_nvidia(state)
    for k in ("G", "G_ema"):
        assert {n: tuple(v.shape) for n, v in out[k].items()} == OFFICIAL_SG2_G_8PX
    assert {n: tuple(v.shape) for n, v in out["D"].items()} == OFFICIAL_SG2_D_8PX
    assert out["G_class_name"] == "training.networks_stylegan2.Generator"
    assert out["G_init_kwargs"] == dict(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
        mapping_kwargs=dict(num_layers=2, lr_multiplier=0.01, w_avg_beta=0.998),
        channel_base=64, channel_max=16, num_fp16_res=0, conv_clamp=None, architecture="skip",
        resample_filter=[1.0, 3.0, 3.0, 1.0], use_noise=True)
    assert out["D_init_kwargs"] == dict(
        c_dim=0, img_resolution=8, img_channels=3, architecture="resnet", channel_base=64, channel_max=16,
        num_fp16_res=0, conv_clamp=None, cmap_dim=None, block_kwargs=dict(resample_filter=[1.0, 3.0, 3.0, 1.0]),
        mapping_kwargs=dict(num_layers=8, lr_multiplier=0.01),
        epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=1))
    ada, _ = nvidia_init_kwargs("stylegan2", state["G_kwargs"], None, flavour="ada")
    assert ada["synthesis_kwargs"]["channel_base"] == 64 and "channel_base" not in ada


def test_nvidia_export_stylegan3_names_are_official():
    G = registry.get("stylegan3").build_generator(img_resolution=256)
    assert sum(p.numel() for p in G.parameters()) == 28_472_133   # official T 256 count
    Gk, _ = nvidia_init_kwargs("stylegan3", G.init_kwargs, None)
    sd = to_nvidia({"generation": "stylegan3", "G_kwargs": G.init_kwargs, "G_ema": G.state_dict()})["G_ema"]
    layers = sorted({k.split(".")[1] for k in sd if k.startswith("synthesis.L")}, key=lambda n: int(n[1:].split("_")[0]))
    assert layers == OFFICIAL_SG3_T_256_LAYERS
    for k, shape in {"synthesis.input.weight": (512, 512), "synthesis.input.transform": (3, 3),
                     "synthesis.input.freqs": (512, 2), "synthesis.input.phases": (512,),
                     "synthesis.input.affine.weight": (4, 512), "synthesis.input.affine.bias": (4,),
                     "synthesis.L0_36_512.weight": (512, 512, 3, 3), "synthesis.L0_36_512.magnitude_ema": (),
                     "synthesis.L0_36_512.up_filter": (12,), "synthesis.L0_36_512.down_filter": (12,),
                     "synthesis.L0_36_512.affine.weight": (512, 512), "synthesis.L14_256_3.weight": (3, 128, 1, 1),
                     "synthesis.L14_256_3.affine.weight": (128, 512), "mapping.w_avg": (512,),
                     "mapping.fc1.weight": (512, 512)}.items():
        assert tuple(sd[k].shape) == shape, k
    assert not any(k.startswith("synthesis.L14_256_3.") and "filter" in k for k in sd)
    assert Gk["mapping_kwargs"] == dict(num_layers=2, lr_multiplier=0.01, w_avg_beta=0.998)
    assert (Gk["channel_base"], Gk["channel_max"], Gk["conv_kernel"], Gk["use_radial_filters"], Gk["num_fp16_res"],
            Gk["conv_clamp"]) == (32768, 512, 3, False, 0, 256)
    # config R: radial (2-D) down filters except in the critically sampled layers, 1x1 kernels
    R = registry.get("stylegan3").build_generator(z_dim=8, w_dim=8, img_resolution=16, **s3.config_kwargs("r", 256, 32))
    sd = to_nvidia({"generation": "stylegan3", "G_kwargs": R.init_kwargs, "G_ema": R.state_dict()})["G_ema"]
    names = sorted({k.split(".")[1] for k in sd if k.startswith("synthesis.L")}, key=lambda n: int(n[1:].split("_")[0]))
    assert sd[f"synthesis.{names[0]}.down_filter"].ndim == 2 and sd[f"synthesis.{names[12]}.down_filter"].ndim == 1
    assert sd[f"synthesis.{names[0]}.weight"].shape[-2:] == (1, 1)


@pytest.mark.parametrize("case", ["sg2-sg3repo", "sg2-ada-cond", "sg3-t", "sg3-r", "sg3-t-cond"])
def test_nvidia_import_export_import_is_bitwise(case, tmp_path):
    pkl = tmp_path / f"{case}.pkl"
    write_nvidia_pickle(pkl, case)
    first = load_any(str(pkl))
    flavour = "ada" if "ada" in case else "stylegan3"
    out = tmp_path / "export.pt"
    summary = export(str(pkl), "nvidia", str(out), flavour=flavour)
    assert summary["networks"] == ["G_ema", "G", "D"]
    raw = torch.load(out, weights_only=True)        # plain tensors and containers only
    assert raw["format"] == "zoo-nvidia-state-dicts" and ("synthesis_kwargs" in raw["G_init_kwargs"]) == (flavour == "ada")
    again = load_any(str(out))
    _assert_same_tensors(first, again)
    assert torch.equal(first["augment_pipe"]["p"], again["augment_pipe"]["p"])
    spec = registry.get(first["generation"])   # the same networks (kwargs compared with defaults filled in)
    full = lambda kw: {k: v for k, v in spec.build_generator(**kw).init_kwargs.items() if k != "num_fp16_res"}
    assert full(again["G_kwargs"]) == full(first["G_kwargs"])   # num_fp16_res: informational, exported as 0
    assert spec.build_discriminator(**again["D_kwargs"]).init_kwargs == \
           spec.build_discriminator(**first["D_kwargs"]).init_kwargs
    assert again["source"]["format"] == "zoo-nvidia-state-dicts" and again["source"]["exported_from"]["file"] == pkl.name
    # a second export is identical
    out2 = tmp_path / "export2.pt"
    export(str(out), "nvidia", str(out2), flavour=flavour)
    raw2 = torch.load(out2, weights_only=True)
    for k in ("G", "G_ema", "D"):
        assert all(torch.equal(raw[k][n], raw2[k][n]) for n in raw[k]) and raw[k].keys() == raw2[k].keys()
    assert raw2["G_init_kwargs"] == raw["G_init_kwargs"] and raw2["D_init_kwargs"] == raw["D_init_kwargs"]


def test_nvidia_export_rejects_other_generations_and_bad_files(tmp_path):
    G = registry.get("progan").build_generator(img_resolution=8, channel_base=64, channel_max=16)
    with pytest.raises(InteropError, match="StyleGAN2 and StyleGAN3"):
        to_nvidia({"generation": "progan", "G_kwargs": G.init_kwargs, "G_ema": G.state_dict()})
    state, _ = _state("stylegan2", dict(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=2, channel_base=64,
                                        channel_max=16), dict(img_resolution=8, channel_base=64, channel_max=16))
    payload = to_nvidia(state)
    payload["G_ema"]["synthesis.b4.conv1.extra"] = torch.zeros(1)
    with pytest.raises(InteropError, match="synthesis.b4.conv1.extra"):
        import_nvidia_export("x.pt", payload)
    payload = to_nvidia(state)
    payload["D"]["b8.conv0.weight"] = payload["D"]["b8.conv0.weight"][:, :4]
    with pytest.raises(InteropError, match="b8.conv0.weight"):
        import_nvidia_export("x.pt", payload)


# ------------------------------------------------------------------------------------------------
# rosinality layout
# ------------------------------------------------------------------------------------------------

def _rosinality_by_hand(G, D=None):
    """rosinality's Generator / Discriminator state dicts written out from their module names:
    style = Sequential(PixelNorm, EqualLinear...), input = ConstantInput, conv1 / convs = StyledConv
    (conv = ModulatedConv2d with modulation and, when upsampling, blur; noise = NoiseInjection;
    activate = FusedLeakyReLU), to_rgb1 / to_rgbs = ToRGB (conv, bias, upsample), noises.noise_{i};
    D: convs = Sequential(ConvLayer(3, C, 1), ResBlock...), final_conv, final_linear."""
    sd = G.state_dict()
    g = {}
    n_mlp = sum(1 for k in sd if k.startswith("mapping.fc") and k.endswith(".weight"))
    for i in range(n_mlp):
        g[f"style.{i + 1}.weight"], g[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.weight"], sd[f"mapping.fc{i}.bias"]
    g["input.input"] = sd["synthesis.b4.const"][None]
    blocks = [("conv1", "synthesis.b4.conv1", None)]
    torgbs = [("to_rgb1", "synthesis.b4.torgb", None)]
    res = [2 ** e for e in range(3, G.img_resolution.bit_length())]
    for j, r in enumerate(res):
        blocks += [(f"convs.{2 * j}", f"synthesis.b{r}.conv0", "blur"), (f"convs.{2 * j + 1}", f"synthesis.b{r}.conv1", None)]
        torgbs += [(f"to_rgbs.{j}", f"synthesis.b{r}.torgb", f"synthesis.b{r}")]
    for ours, theirs, blur in blocks:
        g[f"{ours}.conv.weight"] = sd[f"{theirs}.weight"][None]
        if blur:
            g[f"{ours}.conv.blur.kernel"] = sd[f"{theirs}.resample_filter"] * 4
        g[f"{ours}.conv.modulation.weight"] = sd[f"{theirs}.affine.weight"]
        g[f"{ours}.conv.modulation.bias"] = sd[f"{theirs}.affine.bias"]
        g[f"{ours}.noise.weight"] = sd[f"{theirs}.noise_strength"].view(1)
        g[f"{ours}.activate.bias"] = sd[f"{theirs}.bias"]
    for ours, theirs, block in torgbs:
        g[f"{ours}.bias"] = sd[f"{theirs}.bias"].view(1, 3, 1, 1)
        if block:
            g[f"{ours}.upsample.kernel"] = sd[f"{block}.resample_filter"] * 4
        g[f"{ours}.conv.weight"] = sd[f"{theirs}.weight"][None]
        g[f"{ours}.conv.modulation.weight"] = sd[f"{theirs}.affine.weight"]
        g[f"{ours}.conv.modulation.bias"] = sd[f"{theirs}.affine.bias"]
    for i, (_, theirs, _) in enumerate(blocks):
        g[f"noises.noise_{i}"] = sd[f"{theirs}.noise_const"][None, None]
    if D is None:
        return g, None
    dd, d = D.state_dict(), {}
    R = D.img_resolution
    d["convs.0.0.weight"], d["convs.0.1.bias"] = dd[f"b{R}.fromrgb.weight"], dd[f"b{R}.fromrgb.bias"]
    for k, r in enumerate(reversed(res), start=1):
        d[f"convs.{k}.conv1.0.weight"], d[f"convs.{k}.conv1.1.bias"] = dd[f"b{r}.conv0.weight"], dd[f"b{r}.conv0.bias"]
        d[f"convs.{k}.conv2.0.kernel"] = dd[f"b{r}.conv1.resample_filter"]
        d[f"convs.{k}.conv2.1.weight"], d[f"convs.{k}.conv2.2.bias"] = dd[f"b{r}.conv1.weight"], dd[f"b{r}.conv1.bias"]
        d[f"convs.{k}.skip.0.kernel"] = dd[f"b{r}.skip.resample_filter"]
        d[f"convs.{k}.skip.1.weight"] = dd[f"b{r}.skip.weight"]
    d["final_conv.0.weight"], d["final_conv.1.bias"] = dd["b4.conv.weight"], dd["b4.conv.bias"]
    d["final_linear.0.weight"], d["final_linear.0.bias"] = dd["b4.fc.weight"], dd["b4.fc.bias"]
    d["final_linear.1.weight"], d["final_linear.1.bias"] = dd["b4.out.weight"], dd["b4.out.bias"]
    return g, d


# rosinality's networks have 512 channels up to 32 px; a small style_dim keeps these tests fast.
ROS_G = dict(z_dim=32, w_dim=32, img_resolution=16, mapping_layers=3, channel_base=32768, channel_max=512)
ROS_D = dict(img_resolution=16, channel_base=32768, channel_max=512)


def test_rosinality_fixture_imports_and_renders_identically(tmp_path):
    state, nets = _state("stylegan2", ROS_G, ROS_D)
    g_ema, d = _rosinality_by_hand(nets["G_ema"], nets["D"])
    g, _ = _rosinality_by_hand(nets["G"])
    path = tmp_path / "ros.pt"
    # as rosinality's train.py writes it: args is an argparse.Namespace, optimizer states alongside
    torch.save({"g": g, "d": d, "g_ema": g_ema, "g_optim": {"state": {}, "param_groups": []},
                "d_optim": {"state": {}, "param_groups": []}, "args": argparse.Namespace(size=16, latent=32),
                "latent_avg": state["G_ema"]["mapping.w_avg"].clone()}, path)
    imported = load_any(str(path))
    assert imported["generation"] == "stylegan2" and imported["source"]["format"] == "rosinality-stylegan2-pytorch"
    assert imported["source"]["rosinality_args"] == dict(size=16, style_dim=32, n_mlp=3, channel_multiplier=2)
    for k in ("G_ema", "D"):
        assert imported[k].keys() == state[k].keys()
        for n in state[k]:
            assert torch.equal(imported[k][n], state[k][n]), f"{k}.{n}"
    for n in state["G"]:
        if n != "mapping.w_avg":          # g carries no w_avg in rosinality's layout: latent_avg is used
            assert torch.equal(imported["G"][n], state["G"][n]), n
    G = zoo.load(str(path))
    D = zoo.load(str(path), which="D")
    z = torch.randn(2, 32)
    with torch.no_grad():
        for psi in (1.0, 0.6):
            assert torch.equal(G(z, None, truncation_psi=psi, noise_mode="const"),
                               nets["G_ema"](z, None, truncation_psi=psi, noise_mode="const"))
        img = torch.randn(4, 3, 16, 16)
        assert torch.equal(D(img, None), nets["D"](img, None))
    # the exporter writes exactly the hand-written layout
    ckpt, args, notes = to_rosinality(imported)
    assert args == dict(size=16, style_dim=32, n_mlp=3, channel_multiplier=2) and notes == []
    for theirs, ref in (("g_ema", g_ema), ("g", g), ("d", d)):
        assert ckpt[theirs].keys() == ref.keys(), theirs
        assert all(torch.equal(ckpt[theirs][n], ref[n]) for n in ref), theirs


def test_rosinality_without_latent_avg_estimates_it(tmp_path):
    _, nets = _state("stylegan2", dict(ROS_G, img_resolution=8), dict(ROS_D, img_resolution=8))
    g_ema, _ = _rosinality_by_hand(nets["G_ema"])
    path = tmp_path / "g_ema_only.pt"
    torch.save({"g_ema": g_ema}, path)
    st = load_any(str(path))
    assert "D" not in st and st["source"]["latent_avg"].startswith("estimated")
    G = copy.deepcopy(nets["G_ema"])
    with torch.no_grad():
        z = torch.randn([10000, 32], generator=torch.Generator().manual_seed(0))
        expected = G.mapping(z, None)[:, 0].mean(0)
    torch.testing.assert_close(st["G_ema"]["mapping.w_avg"], expected, rtol=1e-5, atol=1e-5)


def test_rosinality_round_trip_bitwise_and_channel_multiplier(tmp_path):
    # config-e (channel_multiplier 1) at 64 px: 256 channels at 64 px, 512 below
    G_kwargs = dict(z_dim=16, w_dim=16, img_resolution=64, mapping_layers=2, channel_base=16384, channel_max=512)
    state, nets = _state("stylegan2", G_kwargs, dict(img_resolution=64, channel_base=16384, channel_max=512))
    del state["G"]   # (a g_ema + d file; keeps this 64 px test light)
    ckpt, args, _ = to_rosinality(state)
    assert args == dict(size=64, style_dim=16, n_mlp=2, channel_multiplier=1)
    assert tuple(ckpt["g_ema"]["convs.6.conv.weight"].shape) == (1, 256, 512, 3, 3)
    assert tuple(ckpt["g_ema"]["to_rgbs.3.conv.weight"].shape) == (1, 3, 256, 1, 1)
    assert tuple(ckpt["d"]["convs.0.0.weight"].shape) == (256, 3, 1, 1)
    assert len([k for k in ckpt["g_ema"] if k.startswith("noises.")]) == 9
    src = tmp_path / "src.pt"
    torch.save(ckpt, src)
    first = load_any(str(src))
    out = tmp_path / "again.pt"
    summary = export(str(src), "rosinality", str(out))
    assert summary["networks"] == ["g_ema", "g", "d"]   # the importer fills G from g_ema
    raw = torch.load(out, weights_only=True)
    assert set(raw) == {"g_ema", "g", "d", "latent_avg"}
    for k in ("g_ema", "d"):
        assert raw[k].keys() == ckpt[k].keys() and all(torch.equal(raw[k][n], ckpt[k][n]) for n in ckpt[k])
    assert torch.equal(raw["latent_avg"], ckpt["latent_avg"])
    _assert_same_tensors(first, load_any(str(out)))
    assert first["G_kwargs"]["channel_base"] == 16384 and first["G_kwargs"]["conv_clamp"] is None


def test_rosinality_export_refuses_what_it_cannot_express():
    def sg2(**kw):
        G = registry.get("stylegan2").build_generator(**dict(dict(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=1,
                                                                 channel_base=32768, channel_max=512), **kw))
        return {"generation": "stylegan2", "G_kwargs": G.init_kwargs, "G_ema": G.state_dict()}

    with pytest.raises(InteropError, match="StyleGAN2 only"):
        to_rosinality({"generation": "stylegan3", "G_kwargs": {}, "G_ema": {}})
    with pytest.raises(InteropError, match="c_dim=2"):
        to_rosinality(sg2(c_dim=2))
    with pytest.raises(InteropError, match="channel_base=32768, channel_max=256"):
        to_rosinality(sg2(channel_max=256))
    # only the channels the network has count: 4096/512 gives rosinality's 512 up to 8 px, not at 64 px
    assert rosinality_args(dict(img_resolution=8, channel_base=4096, channel_max=512))[0]["channel_multiplier"] == 2
    with pytest.raises(InteropError, match="channel_base=4096"):
        rosinality_args(dict(img_resolution=64, channel_base=4096, channel_max=512))
    with pytest.raises(InteropError, match="channel_base=65536"):   # channel_multiplier 4: 1024 at 64 px
        rosinality_args(dict(img_resolution=64, channel_base=65536, channel_max=1024))
    with pytest.raises(InteropError, match="z_dim=4 != w_dim=8"):
        to_rosinality(sg2(z_dim=4))
    with pytest.raises(InteropError, match="img_channels=1"):
        to_rosinality(sg2(img_channels=1))
    ckpt, args, notes = to_rosinality(sg2(conv_clamp=256))
    assert args["channel_multiplier"] == 2 and any("conv_clamp" in n for n in notes) and "d" not in ckpt


def test_rosinality_import_names_bad_keys(tmp_path):
    _, nets = _state("stylegan2", dict(ROS_G, img_resolution=8), dict(ROS_D, img_resolution=8))
    g_ema, d = _rosinality_by_hand(nets["G_ema"], nets["D"])
    bad = dict(g_ema)
    bad["convs.1.conv.weight"] = bad["convs.1.conv.weight"][:, :, :100]
    with pytest.raises(InteropError, match="convs.1.conv.weight"):
        import_rosinality("x.pt", {"g_ema": bad})
    bad = dict(g_ema, **{"convs.9.extra": torch.zeros(1)})
    with pytest.raises(InteropError, match="convs.9.extra"):
        import_rosinality("x.pt", {"g_ema": bad})
    bad = dict(d)
    del bad["final_linear.1.bias"]
    with pytest.raises(InteropError, match="final_linear.1.bias"):
        import_rosinality("x.pt", {"g_ema": g_ema, "d": bad})
    bad = dict(g_ema, **{"to_rgbs.0.upsample.kernel": torch.ones(4, 4)})
    with pytest.raises(InteropError, match="blur kernel"):
        import_rosinality("x.pt", {"g_ema": bad})


def test_export_cli_and_sampling_a_rosinality_checkpoint(tmp_path):
    state, nets = _state("stylegan2", dict(ROS_G, img_resolution=8), dict(ROS_D, img_resolution=8))
    native = tmp_path / "native.pt"
    save_checkpoint(str(native), state)
    ros = tmp_path / "ros.pt"
    r = subprocess.run([sys.executable, "-m", "zoo.interop.export", f"ckpt={native}", "format=rosinality", f"out={ros}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Generator(8, 32, 3, channel_multiplier=2)" in r.stdout
    outs = {}
    for name, ck in (("native", native), ("ros", ros)):
        outs[name] = tmp_path / f"out-{name}"
        sample_app.sample(compose_cfg("sample", [f"ckpt={ck}", "device=cpu", "seeds=[0,1]", "noise_mode=const"]),
                   outdir=str(outs[name]))
    for f in ("seed0000.png", "seed0001.png"):
        assert (outs["ros"] / f).read_bytes() == (outs["native"] / f).read_bytes(), f
    # convert accepts it too, and errors are reported with exit status 2
    conv = tmp_path / "converted.pt"
    r = subprocess.run([sys.executable, "-m", "zoo.interop.convert", str(ros), str(conv)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert zoo.load(str(conv)).img_resolution == 8
    sg3 = tmp_path / "sg3.pt"
    st3, _ = _state("stylegan3", dict(z_dim=8, w_dim=8, img_resolution=16, mapping_layers=1, channel_base=256,
                                      channel_max=16), dict(img_resolution=16, channel_base=256, channel_max=16))
    save_checkpoint(str(sg3), st3)
    r = subprocess.run([sys.executable, "-m", "zoo.interop.export", f"ckpt={sg3}", "format=rosinality",
                        f"out={tmp_path / 'x.pt'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "StyleGAN2 only" in r.stderr
    r = subprocess.run([sys.executable, "-m", "zoo.interop.export", f"ckpt={sg3}", "format=onnx", "out=x.pt"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "format must be one of nvidia, rosinality" in r.stderr
