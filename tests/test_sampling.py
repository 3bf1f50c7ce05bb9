"""sample.py modes and zoo.sampling: style mixing, interpolation, truncation, stochastic variation,
projection, animations, on tiny checkpoints of every registered generation (built directly in the
checkpoint format: random weights, non-zero noise strengths and a real w_avg)."""
import json
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.core.files import file_sha256
from conftest import ROOT, VGGStandIn, compose_cfg, save_generator
import zoo.apps.sample as sample_app
from zoo import registry
from zoo import sampling as S
from zoo.core.errors import ConfigError

GENS = registry.names()
STYLED = [g for g in GENS if g != "progan"]
KW = dict(progan=dict(z_dim=32), stylegan=dict(z_dim=32, w_dim=32, mapping_layers=2),
          stylegan2=dict(z_dim=32, w_dim=32, mapping_layers=2), stylegan3=dict(z_dim=32, w_dim=32, mapping_layers=2))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(*a, **k):
        raise OSError("network access is disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _build(name, seed=0):
    torch.manual_seed(seed)
    G = registry.get(name).build_generator(img_resolution=16, channel_base=256, channel_max=32, **KW[name])
    with torch.no_grad():
        for n, p in G.named_parameters():
            if n.endswith("noise_strength"):
                p.fill_(0.5)  # freshly initialised strengths are 0: noise would have no effect
        if S.has_styles(G):
            G.mapping.w_avg.copy_(G.mapping(torch.randn(256, G.z_dim), None)[:, 0].mean(0))
    return G.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    out = {}
    for name in GENS:
        G = _build(name)
        path = str(root / f"{name}.pt")
        out[name] = save_generator(path, name, G)
    return out


def _G(ckpts, name):
    return zoo.load(ckpts[name])


def _sample(ckpt, outdir, *overrides):
    return sample_app.sample(compose_cfg("sample", [f"ckpt={ckpt}", "device=cpu", *overrides]), outdir=str(outdir))


# ------------------------------------------------------------------------------------------------
# API
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", STYLED)
def test_style_mix_identity_and_all_layers(ckpts, name):
    G = _G(ckpts, name)
    rows, cols = S.ws_from_seeds(G, [1, 2]), S.ws_from_seeds(G, [3, 4, 5])
    row_img, col_img = S.synthesize(G, rows), S.synthesize(G, cols)
    none = S.style_mix(G, rows, cols, [])
    every = S.style_mix(G, rows, cols, range(G.num_ws))
    some = S.style_mix(G, rows, cols, S.parse_layers("0-1", G))
    assert none.shape == (2, 3, 3, 16, 16)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(none[i, j], row_img[i], atol=1e-5, rtol=1e-5)   # row image unchanged
            torch.testing.assert_close(every[i, j], col_img[j], atol=1e-5, rtol=1e-5)  # all styles: the column
            assert not torch.allclose(some[i, j], row_img[i], atol=1e-3)
            assert not torch.allclose(some[i, j], col_img[j], atol=1e-3)


def test_layer_presets_follow_the_resolutions(ckpts):
    v1, sg2, sg3 = (_G(ckpts, n) for n in ("stylegan", "stylegan2", "stylegan3"))
    assert S.layer_resolutions(v1) == [4, 4, 8, 8, 16, 16]
    assert S.parse_layers("coarse", v1) == [0, 1, 2, 3] and S.parse_layers("middle", v1) == [4, 5]
    assert S.layer_resolutions(sg2) == [4, 8, 8, 16, 16, 16]     # conv0/conv1 of each block, then the last ToRGB
    assert S.parse_layers("coarse", sg2) == [0, 1, 2]
    assert S.parse_layers(["coarse", "5"], sg2) == [0, 1, 2, 5] and S.parse_layers("0-2,4", sg2) == [0, 1, 2, 4]
    res = S.layer_resolutions(sg3)
    assert len(res) == sg3.num_ws and res[0] == 4 and res[-1] == 16 and res == sorted(res)
    with pytest.raises(ValueError, match="no fine styles layers"):
        S.parse_layers("fine", v1)  # nothing at 64 px and up in a 16 px model
    with pytest.raises(ValueError, match="out of range"):
        S.parse_layers("0-6", v1)
    sg2_1024 = registry.get("stylegan2").build_generator(img_resolution=1024, z_dim=8, w_dim=8, channel_base=2048,
                                                         channel_max=2, mapping_layers=1)
    assert sg2_1024.num_ws == 18 and S.layer_resolutions(sg2_1024)[:3] == [4, 8, 8]
    assert S.parse_layers("fine", sg2_1024) == list(range(7, 18))
    with pytest.raises(S.NotApplicable, match="ProGAN"):
        S.parse_layers("coarse", _G(ckpts, "progan"))


@pytest.mark.parametrize("name,space", [(g, "w") for g in STYLED] + [(g, "z") for g in GENS])
def test_interpolation_endpoints_are_the_seed_images(ckpts, name, space):
    G = _G(ckpts, name)
    seeds = [0, 5, 9]
    z = S.z_from_seeds(seeds, G.z_dim)
    with torch.no_grad():
        ref = G(z, None, noise_mode="const")
    frames = S.interpolate(G, z, frames=3, space=space, loop=False)
    assert frames.shape[0] == 3 * 2 + 1
    for k in range(3):
        torch.testing.assert_close(frames[3 * k], ref[k], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(frames[1], ref[0], atol=1e-3)
    looped = S.interpolation_path(G, z, frames=4, space=space, loop=True)
    assert looped.shape[0] == 4 * 3  # back to the first seed, which is not repeated
    if space == "z":  # spherical: the norm stays near the keyframes' (no shrink towards 0 as with lerp)
        norms = looped.norm(dim=-1)
        assert norms.min() > 0.9 * z.norm(dim=-1).min()


@pytest.mark.parametrize("name", STYLED)
def test_truncation_psi_zero_gives_the_w_avg_image(ckpts, name):
    G = _G(ckpts, name)
    ws = S.ws_from_seeds(G, [0, 1, 2])
    strip = S.truncation_strip(G, ws, [1, 0.5, 0])
    avg = S.synthesize(G, G.mapping.w_avg.view(1, 1, -1).repeat(1, G.num_ws, 1))
    for i in range(3):
        torch.testing.assert_close(strip[i, 2], avg[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(strip[:, 0], S.synthesize(G, ws), atol=1e-5, rtol=1e-5)  # psi = 1: untouched
    # The same as the mapping network's own truncation, with and without a cutoff.
    z = S.z_from_seeds([0, 1, 2], G.z_dim)
    for cutoff in (None, 2):
        torch.testing.assert_close(S.truncate(G, ws, 0.5, cutoff), G.mapping(z, None, truncation_psi=0.5,
                                                                            truncation_cutoff=cutoff))


@pytest.mark.parametrize("name", ["stylegan", "stylegan2"])
def test_noise_variation(ckpts, name):
    G = _G(ckpts, name)
    before = {n: m._buffers["noise_const"].clone() for n, m, _ in S.noise_inputs(G)}
    ws = S.ws_from_seeds(G, [7])
    const, std_c = S.noise_variations(G, ws, 4, noise_mode="const")
    for img in const[1:]:
        torch.testing.assert_close(img, const[0], rtol=0, atol=0)
    assert float(std_c.max()) == 0
    rand, std = S.noise_variations(G, ws, 4, noise_mode="random", seed=7)
    assert not torch.allclose(rand[0], rand[1], atol=1e-4) and float(std.max()) > 0
    again, _ = S.noise_variations(G, ws, 4, noise_mode="random", seed=7)
    torch.testing.assert_close(again, rand, rtol=0, atol=0)  # deterministic per seed
    # Only the last (finest) noise input varied: smaller spread than with all of them, still > 0.
    last = len(S.noise_inputs(G)) - 1
    fine, std_f = S.noise_variations(G, ws, 4, noise_layers=[last], noise_mode="random", seed=7)
    assert 0 < float(std_f.mean()) < float(std.mean())
    fixed, std_0 = S.noise_variations(G, ws, 3, noise_layers=[], noise_mode="random")
    assert float(std_0.max()) == 0
    torch.testing.assert_close(fixed[0], S.synthesize(G, ws)[0], atol=1e-5, rtol=1e-5)  # untouched: G's const noise
    for n, m, _ in S.noise_inputs(G):  # the buffers are restored
        assert torch.equal(m._buffers["noise_const"], before[n])


def test_noise_and_styles_do_not_apply_where_absent(ckpts):
    sg3, pg = _G(ckpts, "stylegan3"), _G(ckpts, "progan")
    with pytest.raises(S.NotApplicable, match="no noise inputs"):
        S.noise_variations(sg3, S.ws_from_seeds(sg3, [0]), 2)
    for fn in (lambda: S.ws_from_seeds(pg, [0]), lambda: S.truncate(pg, torch.zeros(1, 1, 1), 0.5),
               lambda: S.interpolate(pg, S.z_from_seeds([0, 1], 32), 2, space="w")):
        with pytest.raises(S.NotApplicable, match="no mapping network|has none"):
            fn()


def test_gif_and_webp_have_the_right_frame_count(tmp_path):
    rng = np.random.RandomState(0)
    frames = rng.randint(0, 256, size=(7, 8, 8, 3)).astype(np.uint8)
    for ext in ("gif", "webp"):
        path = S.save_animation(frames, str(tmp_path / f"a.{ext}"), fps=25)
        with Image.open(path) as im:
            assert im.n_frames == 7
            if ext == "gif":
                assert im.info.get("duration") == 40
    gray = S.save_animation(frames[..., :1], str(tmp_path / "g.gif"), fps=10, loop=False)
    with Image.open(gray) as im:
        assert im.n_frames == 7 and "loop" not in im.info


def test_mp4_needs_imageio_ffmpeg(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails
    assert S.save_mp4(np.zeros((2, 8, 8, 3), np.uint8), str(tmp_path / "a.mp4")) is None
    assert "imageio-ffmpeg is not installed" in capsys.readouterr().out
    assert not (tmp_path / "a.mp4").exists()


# ------------------------------------------------------------------------------------------------
# Projection
# ------------------------------------------------------------------------------------------------




def _vgg_file(tmp_path):
    path = str(tmp_path / "vgg16-standin.pt")
    torch.jit.script(VGGStandIn().eval()).save(path)
    return path


def test_projection_reduces_the_loss_and_recovers_w(ckpts):
    # An 8-dimensional W, so that 16x16x3 pixels pin w down even for random weights; default (zero)
    # noise strengths, so the target's noise plays no part.
    torch.manual_seed(0)
    G = registry.get("stylegan2").build_generator(img_resolution=16, channel_base=256, channel_max=32, z_dim=8,
                                                  w_dim=8, mapping_layers=2).eval().requires_grad_(False)
    with torch.no_grad():
        w_all = G.mapping(torch.from_numpy(np.random.RandomState(123).randn(2000, G.z_dim)).float(), None)[:, :1]
        w_avg = w_all.mean(0, keepdim=True)
        w_true = w_avg.lerp(S.ws_from_seeds(G, [11])[:, :1], 0.7)
        target = (S.synthesize(G, w_true.repeat(1, G.num_ws, 1))[0] * 127.5 + 128).clamp(0, 255)
    with pytest.warns(UserWarning, match="pixel MSE"):
        res = S.project(G, target, steps=100, w_avg_samples=2000)
    assert res["ws"].shape == (100, G.num_ws, G.w_dim)
    assert res["dist"][-1] < 0.25 * res["dist"][0]
    err0 = float((w_avg - w_true).norm())
    err = float((res["ws"][-1, 0] - w_true[0, 0]).norm())
    assert err < 0.5 * err0, (err, err0)
    for m in res["noise"].values():  # renormalised after every step
        assert abs(float(m.mean())) < 1e-4 and abs(float(m.square().mean()) - 1) < 1e-3


@pytest.mark.parametrize("name", ["stylegan", "stylegan2"])  # StyleGAN3 (slow backward): test_every_mode
def test_projection_with_a_torchscript_vgg(ckpts, tmp_path, name):
    G = _G(ckpts, name)
    vgg = S.load_vgg16(_vgg_file(tmp_path))
    with torch.no_grad():
        target = (S.synthesize(G, S.ws_from_seeds(G, [3], truncation_psi=0.5))[0] * 127.5 + 128).clamp(0, 255)
    res = S.project(G, target, steps=30, vgg=vgg, w_avg_samples=500)
    assert res["dist"][-1] < res["dist"][0]
    assert len(res["noise"]) == len(S.noise_inputs(G)) > 0
    w_plus = S.project(G, target, steps=3, vgg=vgg, w_avg_samples=200, w_plus=True)
    assert w_plus["ws"].shape == (3, G.num_ws, G.w_dim)


def test_vgg_loader_checksums_and_offline_fallback(tmp_path, monkeypatch):
    path = _vgg_file(tmp_path)
    assert S.load_vgg16(path, sha256=file_sha256(path)) is not None
    with pytest.raises(ValueError, match="does not match"):
        S.load_vgg16(path, sha256="0" * 64)
    with pytest.raises(FileNotFoundError):
        S.load_vgg16(str(tmp_path / "missing.pt"))
    assert S.load_vgg16("none") is None
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="could not download"):
        assert S.load_vgg16("auto") is None  # urlopen refuses (see _no_network): fall back
    cache = tmp_path / "cache"  # a cached copy is used, and checked against the recorded sha256
    cache.mkdir(exist_ok=True)
    (cache / "vgg16.pt").write_bytes(open(path, "rb").read())
    (cache / "vgg16.pt.sha256").write_text(file_sha256(path) + "\n")
    assert S.load_vgg16("auto") is not None
    (cache / "vgg16.pt.sha256").write_text("f" * 64 + "\n")
    with pytest.raises(ValueError, match="does not match"):
        S.load_vgg16("auto")


# ------------------------------------------------------------------------------------------------
# sample.py modes on every generation
# ------------------------------------------------------------------------------------------------

MODE_ARGS = {
    "images": ["seeds=[0,1]"],
    "mixing": ["rows=[1,2]", "cols=[3]", "styles=0-1"],
    "interpolate": ["seeds=[0,1]", "frames=3", "loop=false"],
    "noise": ["seed=4", "variations=3"],
    "truncation": ["seeds=[0]", "psis=[1,0]"],
    "project": ["steps=2"],
}
EXPECTED = {
    "images": ["grid.png", "seed0000.png", "seed0001.png"],
    "mixing": ["1-1.png", "1-3.png", "2-2.png", "2-3.png", "3-3.png", "grid.png"],
    "interpolate": ["interpolation.gif"],
    "noise": ["grid.png", "seed0004-noise00.png", "seed0004-noise02.png", "seed0004-std.png"],
    "truncation": ["grid.png", "seed0000-truncation.png"],
    "project": ["proj.gif", "proj.png", "projected_w.npz", "target.png"],
}


@pytest.mark.parametrize("mode", list(MODE_ARGS))
@pytest.mark.parametrize("name", GENS)
def test_every_mode_on_every_generation(ckpts, tmp_path, name, mode, capsys):
    args = ["mode=" + mode, *MODE_ARGS[mode]]
    if mode == "project":
        Image.fromarray(np.random.RandomState(0).randint(0, 256, (24, 20, 3)).astype(np.uint8)).save(tmp_path / "t.png")
        args += [f"target={tmp_path / 't.png'}", f"vgg={_vgg_file(tmp_path)}"]
    if name == "progan" and mode == "interpolate":
        args.append("space=z")
    out = tmp_path / "out"
    if name == "progan" and mode in ("mixing", "noise", "truncation", "project"):
        with pytest.raises(ConfigError, match="does not apply to progan: it has no mapping network"):
            _sample(ckpts[name], out, *args)
        return
    if name == "stylegan3" and mode == "noise":
        with pytest.raises(ConfigError, match="stylegan3 has no noise inputs"):
            _sample(ckpts[name], out, *args)
        return
    _sample(ckpts[name], out, *args)
    names = sorted(os.listdir(out))
    assert set(EXPECTED[mode]) <= set(names), names
    assert "sample.json" in names and f"mode={mode}" in capsys.readouterr().out
    info = json.load(open(out / "sample.json"))
    assert info["generation"] == name and info["mode"] == mode
    assert info["ckpt_sha256"] == file_sha256(ckpts[name])
    for key in ("trunc", "noise_mode", "frames", "styles", "psis", "steps", "vgg", "space"):
        assert key in info
    if mode == "interpolate":
        assert info["num_frames"] == 3 + 1  # not looping: 3 frames per transition + the last seed
        with Image.open(out / "interpolation.gif") as im:  # Pillow merges identical frames, keeping the time
            durations = []
            for i in range(im.n_frames):
                im.seek(i)
                durations.append(im.info["duration"])
        assert sum(durations) == 4 * 30
    if mode == "mixing":
        grid = np.asarray(Image.open(out / "grid.png"))
        assert grid.shape == (3 * 16, 2 * 16, 3) and grid[:16, :16].max() == 0  # blank corner
        np.testing.assert_array_equal(grid[:16, 16:], np.asarray(Image.open(out / "3-3.png")))
        np.testing.assert_array_equal(grid[32:, :16], np.asarray(Image.open(out / "2-2.png")))
    if mode == "project":
        assert info["loss"] == "lpips-vgg16"
        assert info["noise_maps_optimised"] == {"stylegan": 6, "stylegan2": 5, "stylegan3": 0}[name]  # SG3: no noise
        with np.load(out / "projected_w.npz") as d:
            G = _G(ckpts, name)
            assert d["w"].shape == (1, G.num_ws, G.w_dim)
        again = tmp_path / "again"  # ws=... renders the saved ws
        _sample(ckpts[name], again, f"ws={out / 'projected_w.npz'}")
        got = np.asarray(Image.open(again / "proj00.png"))
        want = S.to_uint8(S.synthesize(G, torch.from_numpy(np.load(out / "projected_w.npz")["w"])))[0]
        np.testing.assert_array_equal(got, want)
        if name == "stylegan3":  # no noise: identical to the projection's own rendering
            np.testing.assert_array_equal(got, np.asarray(Image.open(out / "proj.png")))


def test_mode_options_are_validated(ckpts, tmp_path):
    sg2 = ckpts["stylegan2"]
    cases = [(["mode=bogus"], "mode"), (["mode=mixing", "styles=0-40"], "styles"), (["mode=mixing", "styles=fine"], "styles"),
             (["mode=interpolate", "space=q"], "space"), (["mode=interpolate", "seeds=[0,1,2]", "grid=2x1"], "seeds"),
             (["mode=interpolate", "grid=axb"], "grid"), (["mode=interpolate", "format=avi", "seeds=[0,1]"], "format"),
             (["mode=noise", "noise_layers=9"], "noise_layers"), (["mode=project"], "target"),
             (["mode=project", f"target={sg2}", "space=z"], "space"), (["mode=images", "grid=2x2"], "grid"),
             (["mode=images", f"ws={tmp_path / 'none.npz'}"], "ws"), (["mode=truncation", "psis=[a]"], "psis")]
    for overrides, key in cases:
        with pytest.raises(ConfigError, match=f"^{key}:"):
            _sample(sg2, tmp_path / "x", *overrides)
    with pytest.raises(ConfigError, match="no W space"):
        _sample(ckpts["progan"], tmp_path / "x", "mode=interpolate", "seeds=[0,1]")


def test_interpolation_grid_of_walks_and_webp(ckpts, tmp_path):
    _sample(ckpts["stylegan2"], tmp_path, "mode=interpolate", "seeds=[0,1,2,3]", "grid=2x1", "frames=2",
            "format=webp", "space=z")
    info = json.load(open(tmp_path / "sample.json"))
    assert info["walks"] == [[0, 1], [2, 3]] and info["num_frames"] == 4  # looping: 2 keys x 2 frames
    with Image.open(tmp_path / "interpolation.webp") as im:
        assert im.size == (32, 16) and im.n_frames == 4


def test_sample_script_takes_comma_lists(ckpts, tmp_path):
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "sample.py"), f"ckpt={ckpts['stylegan']}", "mode=mixing",
                        "rows=1,2", "cols=3,4", "styles=coarse", f"outdir={tmp_path}", "device=cpu"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "mode=mixing" in r.stdout and str(tmp_path) in r.stdout
    assert json.load(open(tmp_path / "sample.json"))["style_layers"] == [0, 1, 2, 3]
    assert (tmp_path / "2-4.png").exists()


def test_mp4_written_when_imageio_ffmpeg_is_installed(tmp_path):
    ffmpeg = pytest.importorskip("imageio_ffmpeg")  # the optional "video" extra
    frames = (np.arange(5)[:, None, None, None] * 40 + np.zeros((5, 16, 16, 3))).astype(np.uint8)
    path = S.save_mp4(frames, str(tmp_path / "a.mp4"))
    assert path is not None and os.path.getsize(path) > 0
    reader = ffmpeg.read_frames(path)
    meta = next(reader)
    assert tuple(meta["size"]) == (16, 16) and sum(1 for _ in reader) == 5
