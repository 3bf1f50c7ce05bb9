"""Importing NVIDIA's TensorFlow-era ``(G, D, Gs)`` pickles (StyleGAN2-TF / -ADA-TF, StyleGAN, ProGAN)
without TensorFlow.

The fixtures are synthetic: tiny zoo networks with perturbed weights are written out as TF
``Network`` objects -- pickled under the official global ``dnnlib.tflib.network.Network`` (or
``tfutil.Network``), with their ``__getstate__`` dict (version, name, static_kwargs, components,
build_module_src, build_func_name, variables) and the TF variable names and layouts -- by the
*inverse* of the importer's map, written independently here. No TensorFlow and no NVIDIA code are
used; ``build_module_src`` is a placeholder that would leave a marker if it were ever executed.
"""
from __future__ import annotations

import copyreg
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zoo
import zoo.apps.sample as sample_app
from zoo import registry
from zoo.interop import load_any
from zoo.interop import tf as tfi
from zoo.interop.nvidia import import_nvidia_pickle
from zoo.interop.safe_pickle import InteropError, TFNetwork, UnsafePickleError, safe_load
from zoo.ops.wscale import WScaleConv2d
from zoo.core.checkpoint import CheckpointError

from conftest import ROOT, PicklePayload, RenamingPickler, compose_cfg

# ------------------------------------------------------------------------------------------------
# Writing TF-format pickles
# ------------------------------------------------------------------------------------------------


class _TFNet:
    """Pickles as ``<module>.Network`` with its ``__getstate__`` dict (NEWOBJ + BUILD, the way pickle
    protocol 4 writes the real class)."""

    def __init__(self, state, module="dnnlib.tflib.network"):
        self.state, self.module = state, module


# stand-in classes, written under the official names by TFStylePickler
_TFNetClass = {m: type("Network", (), {}) for m in ("dnnlib.tflib.network", "tfutil")}


class TFStylePickler(RenamingPickler):
    def __init__(self, f):
        super().__init__(f, protocol=4)
        rec, scal = np.ndarray((0,)).__reduce__()[0], np.float32(0).__reduce__()[0]
        self.names = {id(rec): ("numpy.core.multiarray", "_reconstruct"),
                      id(scal): ("numpy.core.multiarray", "scalar")}
        for m, cls in _TFNetClass.items():
            self.names[id(cls)] = (m, "Network")

    def reducer_override(self, obj):
        if isinstance(obj, _TFNet):   # write the class of the module it claims
            return (copyreg.__newobj__, (_TFNetClass[obj.module],), obj.state)
        return NotImplemented

    def save_reduce(self, func, args, state=None, *rest, obj=None):
        if func is copyreg.__newobj__ and isinstance(obj, _TFNet):
            obj = None  # the class written is the stand-in of the official one
        return super().save_reduce(func, args, state, *rest, obj=obj)


MARKER_ENV = "ZOO_TF_TEST_MARKER"


def _net(name, func, variables, static_kwargs, components=None, version=4, module="dnnlib.tflib.network"):
    state = {
        "version": version, "name": name, "static_kwargs": dict(static_kwargs),
        "components": dict(components or {}),
        "build_module_src": ("import os\nopen(os.environ.get(%r, '/dev/null'), 'w').write('ran')\n"
                             "# zoo test placeholder, not NVIDIA's source\n" % MARKER_ENV),
        "build_func_name": func,
        "variables": [(k, np.asarray(v, dtype=np.float32)) for k, v in variables],
    }
    if version < 3:
        state.pop("components")
    return _TFNet(state, module)


def _dumps(obj) -> bytes:
    f = io.BytesIO()
    TFStylePickler(f).dump(obj)
    return f.getvalue()


# inverse layout transforms (zoo -> TF), written independently of zoo.interop.tf
def dense(t):            # [out, in] -> [in, out]
    return t.numpy().T


def conv(t):             # [out, in, kh, kw] -> [kh, kw, in, out]
    return t.numpy().transpose(2, 3, 1, 0)


def conv_flipped(t):     # ... and flipped spatially (TF computes it as a transposed conv)
    return conv(t)[::-1, ::-1]


def conv_outin_flipped(t):  # ProGAN Conv0_up: [kh, kw, out, in], flipped
    return t.numpy().transpose(2, 3, 0, 1)[::-1, ::-1]


# ------------------------------------------------------------------------------------------------
# Tiny reference networks (zoo), perturbed
# ------------------------------------------------------------------------------------------------

Z, W, MAP, CB, CM, RES = 32, 32, 2, 256, 32, 16      # TF: fmap_base = CB / 2, fmap_max = CM


def _perturb(nets, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for net in nets:
            for n, p in net.state_dict().items():
                if n.endswith(("resample_filter", "blur_filter")):
                    continue
                if n.endswith("affine.bias"):   # values for which (b - 1) + 1 == b exactly
                    p.copy_(1 + torch.round(0.3 * torch.randn(p.shape, generator=g) * 256) / 256)
                elif n.endswith("lod"):
                    p.fill_(0.0)
                else:
                    p.add_(0.3 * torch.randn(p.shape, generator=g))


def build_sg2(c_dim=0, g_arch="skip", seed=0):
    spec = registry.get("stylegan2")
    gk = dict(z_dim=Z, w_dim=W, c_dim=c_dim, img_resolution=RES, img_channels=3, mapping_layers=MAP,
              channel_base=CB, channel_max=CM, w_avg_beta=0.995, conv_clamp=None, architecture=g_arch)
    dk = dict(c_dim=c_dim, img_resolution=RES, img_channels=3, channel_base=CB, channel_max=CM, conv_clamp=None,
              mapping_layers=2 if c_dim else 8, mapping_lr_multiplier=0.1)
    torch.manual_seed(seed)
    nets = {"G": spec.build_generator(**gk), "G_ema": spec.build_generator(**gk), "D": spec.build_discriminator(**dk)}
    _perturb(nets.values(), seed + 1)
    return nets


def sg2_G_vars(G):
    """(own, mapping, synthesis) TF variables of a StyleGAN2 G_main."""
    sd = G.state_dict()
    own = [("dlatent_avg", sd["mapping.w_avg"].numpy()), ("lod", np.float32(0))]
    mapping = []
    if "mapping.embed.weight" in sd:
        mapping += [("LabelEmbed/weight", dense(sd["mapping.embed.weight"])), ("LabelEmbed/bias", sd["mapping.embed.bias"])]
    for i in range(MAP):
        mapping += [(f"Dense{i}/weight", dense(sd[f"mapping.fc{i}.weight"])), (f"Dense{i}/bias", sd[f"mapping.fc{i}.bias"])]
    syn, noise = [], []
    for r in G.synthesis.block_resolutions:
        b = f"synthesis.b{r}."
        if r == 4:
            syn.append(("4x4/Const/const", sd[b + "const"].numpy()[None]))
        layers = [("conv1", "4x4/Conv")] if r == 4 else [("conv0", f"{r}x{r}/Conv0_up"), ("conv1", f"{r}x{r}/Conv1")]
        for zl, scope in layers:
            w = sd[b + zl + ".weight"]
            syn += [(scope + "/weight", conv_flipped(w) if zl == "conv0" else conv(w)),
                    (scope + "/mod_weight", dense(sd[b + zl + ".affine.weight"])),
                    (scope + "/mod_bias", sd[b + zl + ".affine.bias"].numpy() - 1),
                    (scope + "/noise_strength", sd[b + zl + ".noise_strength"]),
                    (scope + "/bias", sd[b + zl + ".bias"])]
            noise.append(sd[b + zl + ".noise_const"].numpy()[None, None])
        if b + "torgb.weight" in sd:
            syn += [(f"{r}x{r}/ToRGB/weight", conv(sd[b + "torgb.weight"])),
                    (f"{r}x{r}/ToRGB/mod_weight", dense(sd[b + "torgb.affine.weight"])),
                    (f"{r}x{r}/ToRGB/mod_bias", sd[b + "torgb.affine.bias"].numpy() - 1),
                    (f"{r}x{r}/ToRGB/bias", sd[b + "torgb.bias"])]
        if b + "skip.weight" in sd:
            syn.append((f"{r}x{r}/Skip/weight", conv_flipped(sd[b + "skip.weight"])))
    syn += [(f"noise{i}", n) for i, n in enumerate(noise)]
    return own, mapping, syn


def sg2_D_vars(D):
    sd = D.state_dict()
    out = []
    for r in D.block_resolutions:
        b = f"b{r}."
        if b + "fromrgb.weight" in sd:
            out += [(f"{r}x{r}/FromRGB/weight", conv(sd[b + "fromrgb.weight"])), (f"{r}x{r}/FromRGB/bias", sd[b + "fromrgb.bias"])]
        out += [(f"{r}x{r}/Conv0/weight", conv(sd[b + "conv0.weight"])), (f"{r}x{r}/Conv0/bias", sd[b + "conv0.bias"]),
                (f"{r}x{r}/Conv1_down/weight", conv(sd[b + "conv1.weight"])), (f"{r}x{r}/Conv1_down/bias", sd[b + "conv1.bias"]),
                (f"{r}x{r}/Skip/weight", conv(sd[b + "skip.weight"]))]
    if "mapping.embed.weight" in sd:
        out += [("LabelEmbed/weight", dense(sd["mapping.embed.weight"])), ("LabelEmbed/bias", sd["mapping.embed.bias"])]
        i = 0
        while f"mapping.fc{i}.weight" in sd:
            out += [(f"Mapping{i}/weight", dense(sd[f"mapping.fc{i}.weight"])), (f"Mapping{i}/bias", sd[f"mapping.fc{i}.bias"])]
            i += 1
    out += [("4x4/Conv/weight", conv(sd["b4.conv.weight"])), ("4x4/Conv/bias", sd["b4.conv.bias"]),
            ("4x4/Dense0/weight", dense(sd["b4.fc.weight"])), ("4x4/Dense0/bias", sd["b4.fc.bias"]),
            ("Output/weight", dense(sd["b4.out.weight"])), ("Output/bias", sd["b4.out.bias"])]
    return out


def write_sg2(path, c_dim=0, g_arch="skip", edit=None, extra_kwargs=None, seed=0):
    """``edit(name -> (G/D, vars list))`` may corrupt the Gs variables."""
    nets = build_sg2(c_dim, g_arch, seed)
    kw = dict(num_channels=3, resolution=RES, label_size=c_dim, fmap_base=CB // 2, fmap_max=CM, latent_size=Z,
              dlatent_size=W, mapping_layers=MAP, **({"architecture": "resnet"} if g_arch == "resnet" else {}),
              **(extra_kwargs or {}))

    def G_main(name, G, corrupt):
        own, mapping, syn = sg2_G_vars(G)
        if corrupt and edit:
            own, mapping, syn = edit(own, mapping, syn)
        comps = {"mapping": _net("G_mapping", "training.networks_stylegan2.G_mapping", mapping, kw),
                 "synthesis": _net("G_synthesis", "training.networks_stylegan2.G_synthesis_stylegan2", syn, kw)}
        return _net(name, "training.networks_stylegan2.G_main", own, kw, comps)

    dkw = dict(num_channels=3, resolution=RES, label_size=c_dim, fmap_base=CB // 2, fmap_max=CM)
    D = _net("D", "training.networks_stylegan2.D_stylegan2", sg2_D_vars(nets["D"]), dkw)
    blob = _dumps((G_main("G", nets["G"], False), D, G_main("Gs", nets["G_ema"], True)))
    path.write_bytes(blob)
    return nets, blob


# StyleGAN (v1) and ProGAN ------------------------------------------------------------------------

def build_progressive(generation, c_dim=0, seed=0):
    spec = registry.get(generation)
    gk = dict(z_dim=Z, c_dim=c_dim, img_resolution=RES, img_channels=3, channel_base=CB, channel_max=CM)
    if generation == "stylegan":
        gk.update(w_dim=W, mapping_layers=MAP)
    dk = dict(c_dim=c_dim, img_resolution=RES, img_channels=3, channel_base=CB, channel_max=CM)
    torch.manual_seed(seed)
    nets = {"G": spec.build_generator(**gk), "G_ema": spec.build_generator(**gk), "D": spec.build_discriminator(**dk)}
    _perturb(nets.values(), seed + 1)
    return nets


def progressive_D_vars(D):
    sd, R = D.state_dict(), D.img_resolution
    lod = lambda r: int(np.log2(R)) - int(np.log2(r))
    out = [("lod", np.float32(0))]
    for r in D.block_resolutions + [4]:
        out += [(f"FromRGB_lod{lod(r)}/weight", conv(sd[f"b{r}.fromrgb.weight"])),
                (f"FromRGB_lod{lod(r)}/bias", sd[f"b{r}.fromrgb.bias"])]
        if r > 4:
            out += [(f"{r}x{r}/Conv0/weight", conv(sd[f"b{r}.conv0.weight"])), (f"{r}x{r}/Conv0/bias", sd[f"b{r}.conv0.bias"]),
                    (f"{r}x{r}/Conv1_down/weight", conv(sd[f"b{r}.conv1_down.weight"])),
                    (f"{r}x{r}/Conv1_down/bias", sd[f"b{r}.conv1_down.bias"])]
    out += [("4x4/Conv/weight", conv(sd["b4.conv.weight"])), ("4x4/Conv/bias", sd["b4.conv.bias"]),
            ("4x4/Dense0/weight", dense(sd["b4.dense0.weight"])), ("4x4/Dense0/bias", sd["b4.dense0.bias"]),
            ("4x4/Dense1/weight", dense(sd["b4.dense1.weight"])), ("4x4/Dense1/bias", sd["b4.dense1.bias"])]
    return out


def sg1_G_vars(G, fused_scale="auto"):
    sd, R = G.state_dict(), G.img_resolution
    own = [("lod", np.float32(0)), ("dlatent_avg", sd["mapping.w_avg"].numpy())]
    mapping = [("LabelConcat/weight", sd["mapping.embed"])] if "mapping.embed" in sd else []
    for i in range(MAP):
        mapping += [(f"Dense{i}/weight", dense(sd[f"mapping.fc{i}.weight"])), (f"Dense{i}/bias", sd[f"mapping.fc{i}.bias"])]
    syn, noise = [("lod", np.float32(0))], []

    def epilogue(zp, scope):
        noise.append(sd[zp + "noise_const"].numpy()[None, None])
        return [(scope + "/Noise/weight", sd[zp + "noise_strength"]), (scope + "/bias", sd[zp + "bias"]),
                (scope + "/StyleMod/weight", dense(sd[zp + "style.weight"])), (scope + "/StyleMod/bias", sd[zp + "style.bias"])]

    for r in G.synthesis.block_resolutions:
        b = f"synthesis.b{r}."
        if r == 4:
            syn += [("4x4/Const/const", sd[b + "const.const"].numpy()[None])] + epilogue(b + "const.", "4x4/Const")
            syn += [("4x4/Conv/weight", conv(sd[b + "conv.conv.weight"]))] + epilogue(b + "conv.", "4x4/Conv")
        else:
            fused = r >= 128 if fused_scale == "auto" else fused_scale
            w = sd[b + "conv0_up.conv.weight"]
            syn += [(f"{r}x{r}/Conv0_up/weight", conv_flipped(w) if fused else conv(w))]
            syn += epilogue(b + "conv0_up.", f"{r}x{r}/Conv0_up")
            syn += [(f"{r}x{r}/Conv1/weight", conv(sd[b + "conv1.conv.weight"]))] + epilogue(b + "conv1.", f"{r}x{r}/Conv1")
        lod = int(np.log2(R)) - int(np.log2(r))
        syn += [(f"ToRGB_lod{lod}/weight", conv(sd[b + "torgb.weight"])), (f"ToRGB_lod{lod}/bias", sd[b + "torgb.bias"])]
    syn += [(f"noise{i}", n) for i, n in enumerate(noise)]
    return own, mapping, syn


def progan_G_vars(G):
    sd, R = G.state_dict(), G.img_resolution
    out = [("lod", np.float32(0)), ("4x4/Dense/weight", dense(sd["b4.dense.weight"])), ("4x4/Dense/bias", sd["b4.dense_bias"]),
           ("4x4/Conv/weight", conv(sd["b4.conv.weight"])), ("4x4/Conv/bias", sd["b4.conv.bias"])]
    for r in G.block_resolutions:
        if r > 4:
            out += [(f"{r}x{r}/Conv0_up/weight", conv_outin_flipped(sd[f"b{r}.conv0_up.weight"])),
                    (f"{r}x{r}/Conv0_up/bias", sd[f"b{r}.conv0_up.bias"]),
                    (f"{r}x{r}/Conv1/weight", conv(sd[f"b{r}.conv1.weight"])), (f"{r}x{r}/Conv1/bias", sd[f"b{r}.conv1.bias"])]
        lod = int(np.log2(R)) - int(np.log2(r))
        out += [(f"ToRGB_lod{lod}/weight", conv(sd[f"b{r}.torgb.weight"])), (f"ToRGB_lod{lod}/bias", sd[f"b{r}.torgb.bias"])]
    return out


def write_progressive(path, generation, c_dim=0, fused_scale="auto", seed=0):
    nets = build_progressive(generation, c_dim, seed)
    kw = dict(num_channels=3, resolution=RES, label_size=c_dim, fmap_base=CB // 2, fmap_max=CM)
    if generation == "stylegan":
        gkw = dict(kw, latent_size=Z, dlatent_size=W, mapping_layers=MAP, fused_scale=fused_scale)

        def G_style(name, G):
            own, mapping, syn = sg1_G_vars(G, fused_scale)
            comps = {"mapping": _net("G_mapping", "training.networks_stylegan.G_mapping", mapping, gkw, version=3),
                     "synthesis": _net("G_synthesis", "training.networks_stylegan.G_synthesis", syn, gkw, version=3)}
            return _net(name, "training.networks_stylegan.G_style", own, gkw, comps, version=3)

        D = _net("D", "training.networks_stylegan.D_basic", progressive_D_vars(nets["D"]), kw, version=3)
        data = (G_style("G", nets["G"]), D, G_style("Gs", nets["G_ema"]))
    else:
        gkw = dict(kw, latent_size=Z)
        net = lambda name, func, v, k: _net(name, func, v, k, version=2, module="tfutil")
        data = (net("G", "networks.G_paper", progan_G_vars(nets["G"]), gkw),
                net("D", "networks.D_paper", progressive_D_vars(nets["D"]), kw),
                net("Gs", "networks.G_paper", progan_G_vars(nets["G_ema"]), gkw))
    blob = _dumps(data)
    path.write_bytes(blob)
    return nets, blob


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------

CASES = {
    # name: (writer, generation, c_dim, flavour)
    "sg2": (lambda p: write_sg2(p), "stylegan2", 0, "stylegan2-tf"),
    "sg2-ada-cond": (lambda p: write_sg2(p, c_dim=3), "stylegan2", 3, "stylegan2-ada-tf"),
    "sg2-resnet-G": (lambda p: write_sg2(p, g_arch="resnet"), "stylegan2", 0, "stylegan2-tf"),
    "sg1": (lambda p: write_progressive(p, "stylegan"), "stylegan", 0, "stylegan-tf"),
    "sg1-fused-cond": (lambda p: write_progressive(p, "stylegan", c_dim=2, fused_scale=True), "stylegan", 2,
                       "stylegan-tf"),
    "progan": (lambda p: write_progressive(p, "progan"), "progan", 0, "progan-tf"),
    "progan-cond": (lambda p: write_progressive(p, "progan", c_dim=2), "progan", 2, "progan-tf"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tf_import_identifies_and_keeps_every_tensor(case, tmp_path, monkeypatch):
    marker = tmp_path / "exec-marker"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    writer, generation, c_dim, flavour = CASES[case]
    path = tmp_path / f"{case}.pkl"
    nets, blob = writer(path)
    assert (b"\x8c\x06tfutil\x94\x8c\x07Network" if generation == "progan" else b"dnnlib.tflib.network") in blob
    assert b"numpy.core.multiarray" in blob and b"numpy._core" not in blob

    data = safe_load(str(path))
    assert isinstance(data, tuple) and all(isinstance(n, TFNetwork) for n in data)
    state = import_nvidia_pickle(str(path))
    assert state["generation"] == generation
    src = state["source"]
    assert src["format"] == "nvidia-tf" and src["flavour"] == flavour and src["file"] == f"{case}.pkl"
    assert len(src["sha256"]) == 64 and len(src["module_src_sha256"]["Gs"]) == 64
    for k in ("G", "G_ema"):
        ref_kwargs = nets[k].init_kwargs
        for key, val in state["G_kwargs"].items():
            assert ref_kwargs[key] == val, (k, key)
    for k in ("G", "G_ema", "D"):
        ours = nets[k].state_dict()
        assert list(state[k]) == list(ours), k
        for name, t in ours.items():
            assert state[k][name].dtype == t.dtype and torch.equal(state[k][name], t), f"{k}.{name}"

    # identical images and D outputs through zoo.load (the .pkl path) and load_any
    z = torch.randn(4, Z, generator=torch.Generator().manual_seed(1))
    c = torch.eye(c_dim)[torch.arange(4) % c_dim] if c_dim else None
    for which in ("G_ema", "G"):
        G = zoo.load(str(path), which=which)
        assert G.generation == generation
        assert torch.equal(G(z, c, noise_mode="const"), nets[which](z, c, noise_mode="const"))
    if generation != "progan":
        G = zoo.load(str(path))
        assert torch.equal(G(z, c, truncation_psi=0.7, noise_mode="const"),
                           nets["G_ema"](z, c, truncation_psi=0.7, noise_mode="const"))
    D = zoo.load(str(path), which="D")
    img = torch.randn(4, 3, RES, RES, generator=torch.Generator().manual_seed(2))
    assert torch.equal(D(img, c), nets["D"](img, c))
    assert load_any(str(path))["source"]["format"] == "nvidia-tf"
    assert not marker.exists()      # build_module_src was never executed


# The naming scheme of official-stylegan-facts.md §2.6 / §5.4 for one tiny config (StyleGAN2, 16 px,
# 2 mapping layers, unconditional), hard-coded.
EXPECTED_SG2_GS = (
    ["dlatent_avg", "lod"]
    + [f"mapping/Dense{i}/{p}" for i in range(2) for p in ("weight", "bias")]
    + ["synthesis/4x4/Const/const"]
    + [f"synthesis/4x4/Conv/{p}" for p in ("weight", "mod_weight", "mod_bias", "noise_strength", "bias")]
    + [f"synthesis/4x4/ToRGB/{p}" for p in ("weight", "mod_weight", "mod_bias", "bias")]
    + [f"synthesis/{r}x{r}/{layer}/{p}" for r in (8, 16) for layer in ("Conv0_up", "Conv1")
       for p in ("weight", "mod_weight", "mod_bias", "noise_strength", "bias")]
    + [f"synthesis/{r}x{r}/ToRGB/{p}" for r in (8, 16) for p in ("weight", "mod_weight", "mod_bias", "bias")]
    + [f"synthesis/noise{i}" for i in range(5)]
)
EXPECTED_SG2_D = (
    ["16x16/FromRGB/weight", "16x16/FromRGB/bias"]
    + [f"{r}x{r}/{layer}/{p}" for r in (16, 8) for layer in ("Conv0", "Conv1_down") for p in ("weight", "bias")]
    + [f"{r}x{r}/Skip/weight" for r in (16, 8)]
    + ["4x4/Conv/weight", "4x4/Conv/bias", "4x4/Dense0/weight", "4x4/Dense0/bias", "Output/weight", "Output/bias"]
)


def test_variable_names_follow_the_official_scheme(tmp_path):
    path = tmp_path / "sg2.pkl"
    write_sg2(path)
    G, D, Gs = safe_load(str(path))
    v = tfi.tf_variables(Gs)
    assert sorted(v) == sorted(EXPECTED_SG2_GS)
    assert sorted(tfi.tf_variables(D)) == sorted(EXPECTED_SG2_D)
    # TF layouts: conv [kh, kw, in, out], dense [in, out], const [1, C, 4, 4], noise [1, 1, r, r]
    assert v["synthesis/8x8/Conv0_up/weight"].shape == (3, 3, 32, 32)
    assert v["synthesis/16x16/Conv1/weight"].shape == (3, 3, 16, 16)
    assert v["synthesis/16x16/ToRGB/weight"].shape == (1, 1, 16, 3)
    assert v["synthesis/16x16/ToRGB/mod_weight"].shape == (W, 16)
    assert v["synthesis/4x4/Const/const"].shape == (1, 32, 4, 4)
    assert v["synthesis/noise4"].shape == (1, 1, 16, 16) and v["synthesis/noise0"].shape == (1, 1, 4, 4)
    assert v["synthesis/4x4/Conv/noise_strength"].shape == ()
    assert Gs.static_kwargs["fmap_base"] * 2 == CB and Gs.components["synthesis"]["build_func_name"].endswith(
        "G_synthesis_stylegan2")
    # ... and the importer uses every one of them: dropping any single variable fails naming it
    for name in EXPECTED_SG2_GS:
        if name == "lod":
            continue

        def drop(own, mapping, syn, name=name):
            pre, _, rest = name.partition("/")
            if pre == "mapping":
                return own, [x for x in mapping if x[0] != rest], syn
            if pre == "synthesis":
                return own, mapping, [x for x in syn if x[0] != rest]
            return [x for x in own if x[0] != name], mapping, syn

        p = tmp_path / "drop.pkl"
        write_sg2(p, edit=drop)
        with pytest.raises(InteropError, match=f"Gs: .*'{name}'"):
            import_nvidia_pickle(str(p))


def test_renamed_variable_fails_naming_both(tmp_path):
    def rename(own, mapping, syn):
        return own, mapping, [(k + "_renamed" if k == "8x8/Conv1/mod_weight" else k, x) for k, x in syn]

    path = tmp_path / "renamed.pkl"
    write_sg2(path, edit=rename)
    with pytest.raises(InteropError) as e:
        zoo.load(str(path))
    msg = str(e.value)
    assert "missing from the file: 'synthesis/8x8/Conv1/mod_weight' (for synthesis.b8.conv1.affine.weight)" in msg
    assert "does not know" in msg and "'synthesis/8x8/Conv1/mod_weight_renamed'" in msg

    def reshape(own, mapping, syn):
        return own, mapping, [(k, x[:-1] if k == "8x8/Conv1/mod_weight" else x) for k, x in syn]

    write_sg2(path, edit=reshape)
    with pytest.raises(InteropError, match=r"'synthesis/8x8/Conv1/mod_weight' of shape \(31, 32\) gives \(32, 31\)"):
        import_nvidia_pickle(str(path))


def test_unsupported_variants_fail_clearly(tmp_path):
    path = tmp_path / "x.pkl"
    write_sg2(path, extra_kwargs={"fancy_new_option": 3})
    with pytest.raises(InteropError, match="unknown static kwarg fancy_new_option=3"):
        import_nvidia_pickle(str(path))
    write_sg2(path, extra_kwargs={"nonlinearity": "swish"})
    with pytest.raises(InteropError, match="nonlinearity='swish' is not supported"):
        import_nvidia_pickle(str(path))
    write_sg2(path, edit=lambda o, m, s: (o, m, s + [("ToRGB_lod0/weight", np.zeros((1, 1, 16, 3)))]))
    with pytest.raises(InteropError, match="'orig' architecture"):
        import_nvidia_pickle(str(path))
    write_sg2(path, edit=lambda o, m, s: (o, m + [("LabelConcat/weight", np.zeros((2, 32)))], s))
    with pytest.raises(InteropError, match="LabelConcat"):
        import_nvidia_pickle(str(path))
    G, D, Gs = safe_load(str(path))
    Gs["components"]["synthesis"]["build_func_name"] = "training.networks_stylegan2.G_synthesis_stylegan_revised"
    with pytest.raises(InteropError, match="G_synthesis_stylegan_revised.*configs A-D"):
        tfi.convert_tf_networks(G, D, Gs)
    # a generator that is none of the three
    blob = _dumps((_net("G", "x.G", [("foo/weight", np.zeros(3))], {}),) * 3)
    path.write_bytes(blob)
    with pytest.raises(InteropError, match=r"unsupported TF generator \(build_func_name 'x.G'.*foo/weight"):
        zoo.load(str(path))
    # a Network stub without variables (e.g. a Theano-era pickle)
    bare = _TFNet({"version": 1, "name": "G"}, "dnnlib.tflib.network")
    path.write_bytes(_dumps((bare, bare, bare)))
    with pytest.raises(InteropError, match="no 'variables' list"):
        import_nvidia_pickle(str(path))


@pytest.mark.parametrize("where", ["static_kwargs", "variables", "build_module_src"])
def test_malicious_tf_pickle_refused_and_nothing_runs(where, tmp_path):
    marker = tmp_path / "pwned"
    evil = PicklePayload(os.system, f"touch {marker}")
    nets = build_sg2()
    own, mapping, syn = sg2_G_vars(nets["G_ema"])
    kw = dict(num_channels=3, resolution=RES)
    Gs = _net("Gs", "G_main", own, kw, {"mapping": _net("G_mapping", "G_mapping", mapping, kw),
                                        "synthesis": _net("G_synthesis", "G_synthesis", syn, kw)})
    if where == "static_kwargs":
        Gs.state["static_kwargs"]["resolution"] = evil
    elif where == "variables":
        Gs.state["components"]["synthesis"].state["variables"].append(("noise99", evil))
    else:
        Gs.state["build_module_src"] = evil
    path = tmp_path / "evil.pkl"
    path.write_bytes(_dumps((Gs, Gs, Gs)))
    for load in (lambda: safe_load(str(path)), lambda: import_nvidia_pickle(str(path)), lambda: zoo.load(str(path))):
        with pytest.raises(UnsafePickleError, match=r"refusing to load global '(posix|nt|os)\.system'"):
            load()
    with pytest.raises(CheckpointError):
        sample_app.sample(compose_cfg("sample", [f"ckpt={path}", "device=cpu"]), outdir=str(tmp_path / "out"))
    assert not marker.exists()


@pytest.mark.parametrize("fused_to_zoo", ["stylegan", "progan"])
def test_transposed_conv_flip_rule(fused_to_zoo):
    """TF's fused ``Conv0_up`` (ProGAN; StyleGAN at >= 128 px) is ``conv2d_transpose`` (stride 2,
    SAME) with the 4x4 kernel summed from four shifted copies of the padded 3x3 weight (facts §5.1);
    the importer's flipped weight in the zoo's nearest-upsample + 3x3 conv computes the same."""
    g = torch.Generator().manual_seed(0)
    cin, cout = 5, 4
    x = torch.randn(2, cin, 6, 6, generator=g, dtype=torch.float64)
    if fused_to_zoo == "progan":
        w_tf = torch.randn(3, 3, cout, cin, generator=g, dtype=torch.float64).numpy()   # [k, k, out, in]
        w_kkoi = w_tf
        zoo_w = tfi._t_conv_outin_flip(w_tf)
    else:
        w_tf = torch.randn(3, 3, cin, cout, generator=g, dtype=torch.float64).numpy()   # [k, k, in, out]
        w_kkoi = w_tf.transpose(0, 1, 3, 2)
        zoo_w = tfi._t_conv_flip(w_tf)
    w = np.pad(w_kkoi, [[1, 1], [1, 1], [0, 0], [0, 0]])
    w = w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]                      # [4, 4, out, in]
    # tf.nn.conv2d_transpose(x, w[h, w, out, in], stride 2, SAME) == torch conv_transpose2d with the
    # weight [in, out, h, w] and padding 1 (output 2H).
    y_tf = F.conv_transpose2d(x, torch.from_numpy(w.transpose(3, 2, 0, 1).copy()), stride=2, padding=1)
    layer = WScaleConv2d(cin, cout, 3, up=True, gain=1.0).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(zoo_w)))
        y_zoo = layer.convolve(x) / layer.weight_gain
    assert torch.allclose(y_zoo, y_tf, atol=1e-10)
    # without the flip the two differ
    with torch.no_grad():
        layer.weight.copy_(layer.weight.flip(2, 3))
    assert not torch.allclose(layer.convolve(x) / layer.weight_gain, y_tf, atol=1e-3)


def test_convert_cli_and_sampling_like_a_native_checkpoint(tmp_path):
    pkl = tmp_path / "stylegan2-tf.pkl"
    nets, _ = write_sg2(pkl)
    dst = tmp_path / "converted.pt"
    r = subprocess.run([sys.executable, "-m", "zoo.interop.convert", str(pkl), str(dst)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "stylegan2-tf" in r.stdout and "16 px" in r.stdout
    state = torch.load(dst, weights_only=True, map_location="cpu")
    assert state["format"] == "zoo-checkpoint" and state["source"]["format"] == "nvidia-tf"
    assert state["source"]["static_kwargs"]["Gs"]["fmap_base"] == CB // 2
    outs = {}
    for name, ck in (("converted", dst), ("pkl", pkl)):
        outs[name] = tmp_path / f"out-{name}"
        sample_app.sample(compose_cfg("sample", [f"ckpt={ck}", "device=cpu", "seeds=[0,1]"]), outdir=str(outs[name]))
    for f in ("seed0000.png", "seed0001.png", "grid.png"):
        assert (outs["converted"] / f).read_bytes() == (outs["pkl"] / f).read_bytes(), f
