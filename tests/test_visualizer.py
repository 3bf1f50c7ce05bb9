"""The browser visualizer: the rendering controls of zoo.sampling.explore on tiny random models of
every generation, the HTTP server (zoo.apps.visualizer) and its one-line errors, and the page in a
real headless Chromium driven through ChromeDriver's W3C WebDriver HTTP API (urllib only)."""
import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, enable_noise, save_generator
from zoo import registry
from zoo.apps import visualizer as app
from zoo.core.contract import has_styles, input_transform, z_from_seeds
from zoo.core.images import to_uint8
from zoo.core.errors import ConfigError, ZooError
from zoo.sampling.explore import (Controls, Explorer, View, feature_layers, sefa_directions, spectrum_db,
                                  spectrum_image, style_affines)

GENS = registry.names()
STYLED = [g for g in GENS if g != "progan"]
NOISY = ["stylegan", "stylegan2"]
KW = dict(progan=dict(z_dim=32), stylegan=dict(z_dim=32, w_dim=32, mapping_layers=2),
          stylegan2=dict(z_dim=32, w_dim=32, mapping_layers=2), stylegan3=dict(z_dim=32, w_dim=32, mapping_layers=2))


def _build(name, res=16, seed=0, **kw):
    torch.manual_seed(seed)
    kwargs = dict(img_resolution=res, channel_base=256, channel_max=32, **KW[name])
    kwargs.update(kw)
    G = enable_noise(registry.get(name).build_generator(**kwargs))
    with torch.no_grad():
        if has_styles(G):
            G.mapping.w_avg.copy_(G.mapping(torch.randn(256, G.z_dim), None)[:, 0].mean(0))
    G.generation = name
    return G.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def views():
    return {name: View(_build(name), name) for name in GENS}


def _img(view, **controls):
    return view.render(Controls.from_dict(controls)).image.astype(np.int32)


def _same(a, b):
    return np.array_equal(a, b)


# ------------------------------------------------------------------------------------------------
# Controls, one at a time
# ------------------------------------------------------------------------------------------------

def test_capabilities_hide_what_a_generation_lacks(views):
    caps = {name: v.capabilities() for name, v in views.items()}
    assert not caps["progan"]["styles"] and caps["progan"]["num_ws"] == 0 and caps["progan"]["sefa_layers"] == []
    assert caps["progan"]["noise_layers"] == [] and not caps["progan"]["transform"]
    assert caps["progan"]["feature_layers"]  # feature maps and spectrum still apply
    for name in STYLED:
        assert caps[name]["styles"] and caps[name]["num_ws"] == views[name].G.num_ws
    assert caps["stylegan3"]["transform"] and caps["stylegan3"]["noise_layers"] == []
    assert caps["stylegan3"]["sefa_layers"] == list(range(1, views["stylegan3"].G.num_ws))  # ws[0]: the input
    for name in NOISY:
        assert len(caps[name]["noise_layers"]) > 0 and not caps[name]["transform"]
    json.dumps(caps)  # what /api/info sends


@pytest.mark.parametrize("name", GENS)
def test_seed_and_drag(views, name):
    v = views[name]
    base = _img(v, seed=0)
    assert _same(base, _img(v, seed=0))                      # deterministic
    assert not _same(base, _img(v, seed=1))
    assert not _same(base, _img(v, drag=[0.5, 0])) and not _same(base, _img(v, drag=[0, -0.5]))
    assert _same(base, _img(v, drag=[0, 0]))
    with torch.no_grad():  # the seed's image of sample.py (trunc=1, noise_mode=const)
        ref = to_uint8(v.G(z_from_seeds([3], v.G.z_dim), None, noise_mode="const"))[0]
    assert _same(_img(v, seed=3), ref.astype(np.int32))
    z = v.z(Controls(seed=0, drag=(1.0, 0.0))) - v.z(Controls(seed=0))
    assert torch.allclose(z.norm(), torch.tensor(v.G.z_dim ** 0.5))  # one unit = sqrt(z_dim)


@pytest.mark.parametrize("name", STYLED)
def test_truncation(views, name):
    v = views[name]
    base = _img(v, seed=0)
    assert not _same(base, _img(v, seed=0, psi=0.5))
    assert _same(base, _img(v, seed=0, psi=0.5, cutoff=0))            # cut-off 0: nothing truncated
    assert not _same(_img(v, seed=0, psi=0.5, cutoff=2), _img(v, seed=0, psi=0.5))
    assert _same(_img(v, seed=0, psi=0), _img(v, seed=5, psi=0))      # psi 0: every seed is w_avg


@pytest.mark.parametrize("name", STYLED)
def test_style_mixing(views, name):
    v = views[name]
    n = v.G.num_ws
    base, other = _img(v, seed=0), _img(v, seed=7)
    assert _same(base, _img(v, seed=0, mix_seed=7, mix_layers=[n, n + 3]))   # outside the model: no change
    assert _same(other, _img(v, seed=0, mix_seed=7, mix_layers=[0, n - 1]))  # every style: the other seed
    part = _img(v, seed=0, mix_seed=7, mix_layers=[n // 2, n - 1])
    assert not _same(part, base) and not _same(part, other)
    ws = v.ws(Controls(seed=0, mix_seed=7, mix_layers=(1, 2)))
    ref0, ref7 = v.ws(Controls(seed=0)), v.ws(Controls(seed=7))
    assert torch.equal(ws[:, 1:3], ref7[:, 1:3]) and torch.equal(ws[:, 3:], ref0[:, 3:]) and torch.equal(ws[:, :1], ref0[:, :1])


@pytest.mark.parametrize("name", STYLED)
def test_style_affines_cover_every_style_layer(views, name):
    G = views[name].G
    per_style = style_affines(G)
    found = {id(m) for layer in per_style for _, m in layer}
    expected = {id(m) for n, m in G.synthesis.named_modules() if n.rsplit(".", 1)[-1] in ("affine", "style")
                and n != "input.affine"}
    assert found == expected and len(per_style) == G.num_ws


@pytest.mark.parametrize("name", STYLED)
def test_sefa(views, name):
    v = views[name]
    G = v.G
    layers = [k for k, mods in enumerate(style_affines(G)) if mods]
    vals, dirs = sefa_directions(G, layers)
    assert torch.allclose(dirs @ dirs.t(), torch.eye(G.w_dim, dtype=dirs.dtype), atol=1e-10)   # orthonormal
    assert bool((vals[:-1] >= vals[1:]).all())                                                # descending
    # against NumPy's eigh of A^T A, A the stacked effective affine weights
    A = np.concatenate([m.weight.double().numpy() * m.weight_gain for k in layers for _, m in style_affines(G)[k]])
    np_vals, np_vecs = np.linalg.eigh(A.T @ A)
    np.testing.assert_allclose(vals.numpy(), np_vals[::-1], rtol=1e-9, atol=1e-9)
    for i in range(4):
        assert abs(float(np.dot(dirs[i].numpy(), np_vecs[:, -1 - i]))) == pytest.approx(1, abs=1e-8)
    # strength 0 is the identity; a strength moves exactly the chosen styles along the direction
    base = _img(v, seed=0)
    assert _same(base, _img(v, seed=0, sefa_index=0, sefa_strength=0))
    assert not _same(base, _img(v, seed=0, sefa_index=0, sefa_strength=3))
    lo, hi = layers[1], layers[2]
    ws0 = v.ws(Controls(seed=0))
    ws = v.ws(Controls(seed=0, sefa_index=1, sefa_strength=2.0, sefa_layers=(lo, hi)))
    d, sigma = v.sefa(list(range(lo, hi + 1)))
    delta = ws - ws0
    assert torch.allclose(delta[0, lo:hi + 1], (2.0 * sigma[1] * d[1]).expand(hi - lo + 1, -1), atol=1e-5)
    outside = [k for k in range(G.num_ws) if not lo <= k <= hi]
    assert torch.equal(delta[0, outside], torch.zeros_like(delta[0, outside]))
    assert float(sigma[1]) > 0


@pytest.mark.parametrize("name", NOISY)
def test_noise(views, name):
    v = views[name]
    k = len(v.noise)
    const = _img(v, seed=0)
    assert _same(const, _img(v, seed=0, noise_mode="const", noise_strength=[1] * k))
    r0 = _img(v, seed=0, noise_mode="random", noise_seed=0)
    assert _same(r0, _img(v, seed=0, noise_mode="random", noise_seed=0))      # reproducible per noise seed
    assert not _same(r0, _img(v, seed=0, noise_mode="random", noise_seed=1)) and not _same(r0, const)
    none = _img(v, seed=0, noise_mode="none")
    assert not _same(none, const)
    assert _same(none, _img(v, seed=0, noise_mode="const", noise_strength=[0] * k))  # every layer off
    one_off = _img(v, seed=0, noise_strength=[1] * (k - 1) + [0])
    assert not _same(one_off, const) and not _same(one_off, none)
    assert torch.equal(v.noise[0][1].noise_const, _build(name).synthesis.get_buffer(v.noise[0][0]))  # restored


def test_stylegan3_translate_and_rotate():
    res = 32
    G = _build("stylegan3", res=res, channel_base=2048, channel_max=32)
    v = View(G, "sg3")
    saved = input_transform(G).clone()
    ref = v.render(Controls(seed=0)).image.astype(np.float64)
    rms = np.sqrt(np.mean((ref - ref.mean()) ** 2))
    for d in (2, -3):
        img = v.render(Controls(seed=0, translate=(d / res, 0))).image.astype(np.float64)
        crop = slice(abs(d) + 4, res - abs(d) - 4)
        err = np.sqrt(np.mean((img - np.roll(ref, d, axis=1))[:, crop] ** 2)) / rms
        wrong = np.sqrt(np.mean((img - np.roll(ref, -d, axis=1))[:, crop] ** 2)) / rms
        assert err < 0.05 and wrong > 5 * err, (d, err, wrong)
    assert not np.array_equal(ref, v.render(Controls(seed=0, rotate=30)).image)
    assert torch.equal(input_transform(G), saved)                        # the model's transform is restored
    assert np.array_equal(ref, v.render(Controls(seed=0)).image)
    other = View(_build("stylegan2"), "sg2").render(Controls(translate=(0.1, 0)))  # no transform: a note
    assert any(n.startswith("translate/rotate: stylegan2 has no input transform") for n in other.notes)


@pytest.mark.parametrize("name", GENS)
def test_feature_maps(views, name):
    v = views[name]
    layers = feature_layers(v.G)
    assert [n for n, _ in layers] == v.capabilities()["feature_layers"]
    base = _img(v, seed=0)
    first, last = layers[0][0], layers[-1][0]
    f = v.render(Controls(seed=0, feature_layer=last))
    assert _same(base, f.image.astype(np.int32))                     # the hook only looks
    assert f.features.dtype == np.uint8 and f.features.ndim == 2 and f.features.max() == 255
    g = v.render(Controls(seed=0, feature_layer=last, feature_mode="channels", feature_channels=4))
    h, w = f.features.shape
    assert g.features.shape == (2 * (h + 2), 2 * (w + 2))           # 2x2 tiles with a 1-px border
    shapes = []
    hook = dict(layers)[first].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[-2:])))
    try:
        assert v.render(Controls(seed=0, feature_layer=first)).features.shape == shapes[0]  # one pixel per position
    finally:
        hook.remove()
    with pytest.raises(ValueError, match="feature_layer"):
        v.render(Controls(feature_layer="no_such_layer"))


def test_spectrum_of_a_sinusoid_peaks_at_its_frequency():
    n, k = 32, 5
    x = torch.arange(n, dtype=torch.float64)
    img = torch.cos(2 * np.pi * k * x / n).expand(3, n, n).clone()  # k cycles per image along x
    db = spectrum_db(img)
    peaks = {tuple(int(i) for i in divmod(int(j), n)) for j in torch.topk(db.flatten(), 2).indices}
    assert peaks == {(n // 2, n // 2 + k), (n // 2, n // 2 - k)}
    im = spectrum_image(img)
    assert im.dtype == np.uint8 and im[n // 2, n // 2 + k] == 255 and im[n // 2, n // 2] < 255
    vertical = spectrum_db(img.transpose(1, 2))
    assert int(vertical.flatten().argmax()) // n in (n // 2 - k, n // 2 + k)
    assert spectrum_image(torch.zeros(3, 8, 8)).max() == 0           # a flat image: no spectrum


def test_controls_are_validated():
    assert Controls.from_dict({"seed": 3.0, "drag": [1, 2]}).drag == (1.0, 2.0)
    for bad, key in [({"seed": "x"}, "seed"), ({"seed": 1.5}, "seed"), ({"psi": float("nan")}, "psi"),
                     ({"drag": [1]}, "drag"), ({"noise_mode": "loud"}, "noise_mode"), ({"spectrum": 1}, "spectrum"),
                     ({"colour": 1}, "colour"), ({"seed": None}, "seed"), ({"feature_mode": "max"}, "feature_mode")]:
        with pytest.raises(ValueError, match=key):
            Controls.from_dict(bad)


def test_two_models_side_by_side(views):
    ex = Explorer([views["stylegan2"].G, views["progan"].G], ["a", "b"])
    frames = ex.render({"seed": 2, "psi": 0.7, "spectrum": True,
                        "per_model": [{"feature_layer": "b8.conv1"}, {"feature_layer": "b8.conv1"}]})
    assert len(frames) == 2 and all(f.spectrum is not None and f.features is not None for f in frames)
    assert frames[1].notes == ["psi: progan has no styles"] and frames[0].notes == []
    assert _same(frames[0].image, views["stylegan2"].render(Controls(seed=2, psi=0.7)).image)
    assert all(f.ms["render"] > 0 and f.ms["total"] >= f.ms["render"] for f in frames)
    with pytest.raises(ValueError, match="per_model"):
        ex.render({"per_model": [{}, {}, {}]})
    # controls one model lacks are noted only when they would change something
    assert views["progan"].render(Controls(noise_strength=[1.0] * 5)).notes == []
    assert views["progan"].render(Controls(noise_mode="random")).notes == ["noise: progan has no noise inputs"]


def test_bench_mode_visualizer_times_frames(capsys):
    from zoo.apps.bench import bench

    results = bench(dict(model="stylegan2", mode="visualizer", resolution=16, channel_base=256, channel_max=32,
                         mapping_layers=2, z_dim=32, w_dim=32, frames=2, warmup=0, precision="fp32",
                         tune_allocator=False))
    (r,) = results
    assert r["mode"] == "visualizer" and r["frames"] == 2 and r["ms_image"] > 0 and r["ms_full"] > 0
    assert r["feature_layer"] == "b8.conv1"  # the middle of b4.conv1, b8.conv0, b8.conv1, b16.conv0, b16.conv1
    assert "ms/frame image only" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# The server
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("vis")
    out = {}
    for name in ("stylegan2", "progan"):
        G = _build(name)
        path = str(root / f"{name}.pt")
        out[name] = save_generator(path, name, G)
    return out


@pytest.fixture(scope="module")
def server(ckpts):
    cfg = app.VisualizerConfig(ckpt=ckpts["stylegan2"], ckpt2=ckpts["progan"], port=0)
    srv = app.make_server(app.build_explorer(cfg), "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs=dict(poll_interval=0.1), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def _post(url, obj):
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _png(data_url):
    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_server_page_info_and_render(server):
    status, ctype, body = _get(server + "/")
    assert status == 200 and ctype.startswith("text/html") and b'id="seed"' in body
    status, _, body = _get(server + "/api/info")
    info = json.loads(body)
    assert [m["generation"] for m in info["models"]] == ["stylegan2", "progan"]
    status, out = _post(server + "/api/render", {"seed": 4, "spectrum": True,
                                                 "per_model": [{"feature_layer": "b16.conv1"}, {}]})
    assert status == 200 and len(out["models"]) == 2
    a, b = out["models"]
    assert _png(a["image"]).shape == (16, 16, 3) and _png(a["spectrum"]).shape == (16, 16)
    assert _png(a["features"]).ndim == 2 and b["features"] is None and out["ms"]["total"] > 0
    _, again = _post(server + "/api/render", {"seed": 5})
    assert again["models"][0]["image"] != a["image"]
    status, err = _post(server + "/api/render", {"seed": "x"})
    assert status == 400 and err["error"].startswith("seed:")
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(server + "/nope")
    assert e.value.code == 404


def test_the_page_is_package_data_and_fetches_nothing_external():
    html = app.page_html().decode()
    assert "api/render" in html and "api/info" in html
    assert "http://" not in html and "https://" not in html and "<link" not in html and " src=\"http" not in html
    import configparser
    import glob

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    patterns = cfg["options.package_data"]["zoo"].split()
    shipped = {os.path.relpath(p, os.path.join(ROOT, "zoo")) for pat in patterns
               for p in glob.glob(os.path.join(ROOT, "zoo", pat))}
    assert "apps/static/visualizer.html" in shipped


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_app(*args):
    env = dict(os.environ, WANDB_MODE="disabled", HYDRA_FULL_ERROR="0")
    return subprocess.run([sys.executable, "-m", "zoo.visualizer", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_port_in_use_is_one_line(ckpts):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match="address already in use"):
            app.make_server(Explorer([_build("progan")]), "127.0.0.1", port)
        r = _run_app(f"ckpt={ckpts['progan']}", f"port={port}")
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: port: {port}: address already in use. Fix: pick another with port=N"


def test_bad_checkpoint_is_one_line(tmp_path):
    r = _run_app("ckpt=/nonexistent.pt")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: ckpt: '/nonexistent.pt' does not exist")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ZooError) as e:
        app.build_explorer(app.VisualizerConfig(ckpt=str(junk)))
    assert "junk.pt" in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------
# A real browser: headless Chromium through ChromeDriver's W3C WebDriver HTTP API
# ------------------------------------------------------------------------------------------------

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--window-size=1280,1000"]


class WebDriver:
    """The few W3C WebDriver commands the test needs, over HTTP with urllib."""

    def __init__(self, base):
        self.base, self.session = base, None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"WebDriver {method} {path}: {e.code} {e.read()[:500]!r}") from None

    def start(self, user_data_dir):
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": CHROME_ARGS + [f"--user-data-dir={user_data_dir}"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def js(self, script, *args):
        return self.call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)})

    def wait(self, script, timeout=30.0, *args):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.js(script, *args)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for: {script}; page error: {self.js(ERROR_TEXT)!r}")


ERROR_TEXT = "return document.getElementById('error').textContent"
IMG_SRC = "const e = document.getElementById('img-0'); return e && e.src.startsWith('data:image/png') ? e.src : null"


def test_in_a_real_browser(server):
    if not (os.path.exists(CHROMEDRIVER) and os.path.exists(CHROMIUM)):
        if os.environ.get("ZOO_REQUIRE_BROWSER") == "1":
            pytest.fail(f"ZOO_REQUIRE_BROWSER=1 but {CHROMEDRIVER} or {CHROMIUM} is missing "
                        "(apt-get install chromium chromium-driver)")
        pytest.skip("no chromedriver/chromium (apt-get install chromium chromium-driver)")
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="zoo-chromium-")
    driver_proc = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    wd = WebDriver(f"http://127.0.0.1:{port}")
    try:
        end = time.monotonic() + 20
        while True:
            try:
                if wd.call("GET", "/status").get("ready"):
                    break
            except (urllib.error.URLError, ConnectionError, AssertionError):
                pass
            assert time.monotonic() < end, "chromedriver did not start"
            time.sleep(0.1)
        wd.start(profile)
        try:
            wd.call("POST", f"/session/{wd.session}/url", {"url": server + "/"})
            first = wd.wait(IMG_SRC)
            assert wd.js(ERROR_TEXT) == ""
            # two models: both columns rendered; ProGAN + StyleGAN2 keep the style sections visible
            assert wd.js("return document.getElementById('img-1').src.startsWith('data:image/png')")
            assert wd.js("return !document.getElementById('sec-trunc').classList.contains('hidden')")
            assert wd.js("return document.getElementById('sec-transform').classList.contains('hidden')")
            # move a control as a user would: the seed field changes and fires 'input'
            wd.js("const e = document.getElementById('seed'); e.value = '7';"
                  "e.dispatchEvent(new Event('input', {bubbles: true}));")
            second = wd.wait(IMG_SRC.replace("? e.src : null", "&& e.src !== arguments[0] ? e.src : null"), 30.0, first)
            assert second != first and wd.js(ERROR_TEXT) == ""
            assert wd.js("return document.getElementById('seed-range').value") == "7"
            # and a slider: truncation psi
            wd.js("const e = document.getElementById('psi'); e.value = '0.3';"
                  "e.dispatchEvent(new Event('input', {bubbles: true}));")
            wd.wait(IMG_SRC.replace("? e.src : null", "&& e.src !== arguments[0] ? e.src : null"), 30.0, second)
            assert wd.js("return document.getElementById('psi-out').textContent") == "0.3"
        finally:
            wd.call("DELETE", f"/session/{wd.session}")
    finally:
        driver_proc.terminate()
        try:
            driver_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            driver_proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
