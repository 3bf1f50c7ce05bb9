"""zoo.metrics: the distances against closed forms, name parsing, the cached downloader, the
dataset-statistics cache, protocol records, compute_metrics end to end on a tiny StyleGAN2 and a
tiny dataset, the ``python -m zoo.metrics`` app, and two gloo processes against one. Feature
networks are small random TorchScript modules written by the tests; nothing touches the network."""
import json
import os
import subprocess
import sys
import types
import urllib.request
import warnings

import numpy as np
import pytest
import torch

import zoo.metrics as M
from conftest import ROOT, TinyDetector, compose_cfg
from zoo import registry
from zoo import sampling as S
from zoo.core.checkpoint import save_checkpoint
from zoo.core.download import cached_download
from zoo.core.errors import ChecksumError, ConfigError, DetectorError
from zoo.core.files import file_sha256
from zoo.data import DatasetError, open_dataset, real_indices, write_dataset
from zoo.metrics import detectors as D
from zoo.metrics import features as F

RES = 16
SMALL_G = dict(img_resolution=RES, channel_base=256, channel_max=32, z_dim=32, w_dim=32, mapping_layers=2)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    real = urllib.request.urlopen

    def only_files(url, *a, **k):
        if not str(getattr(url, "full_url", url)).startswith("file:"):
            raise OSError("network access is disabled in tests")
        return real(url, *a, **k)

    monkeypatch.setattr(urllib.request, "urlopen", only_files)





def _images(n, seed=0, channels=3):
    rnd = np.random.RandomState(seed)
    return [rnd.randint(0, 256, (channels, RES, RES), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics")
    det = str(root / "tiny-detector.pt")
    with warnings.catch_warnings():  # torch flags TorchScript as deprecated; NVIDIA's detectors are TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(TinyDetector().eval()).save(det)
    data = write_dataset(str(root / "tiny.zip"), _images(40), labels=[i % 3 for i in range(40)])
    torch.manual_seed(0)
    G = registry.get("stylegan2").build_generator(**SMALL_G).eval().requires_grad_(False)
    ckpt = save_checkpoint(str(root / "run" / "network-snapshot-000004.pt"), dict(
        generation="stylegan2", G_kwargs=G.init_kwargs, D_kwargs={}, G=G.state_dict(), G_ema=G.state_dict(),
        progress={"cur_nimg": 4000, "batch_idx": 500},
        config={"data": {"name": "tiny", "kind": "zip", "path": data, "mirror": True, "max_size": 10}}))
    return types.SimpleNamespace(root=root, det=det, data=data, G=G, ckpt=ckpt)


def _cfg(files, tmp_path, **kw):
    return dict(dict(detector=files.det, vgg=files.det, cache_dir=str(tmp_path / "cache"), download=False, batch=250), **kw)


# ------------------------------------------------------------------------------------------------
# Distances
# ------------------------------------------------------------------------------------------------

def test_frechet_distance_closed_forms():
    rnd = np.random.RandomState(0)
    q, _ = np.linalg.qr(rnd.randn(6, 6))  # shared eigenvectors: FD = |dmu|^2 + sum (sqrt a - sqrt b)^2
    a, b = rnd.uniform(0.1, 3, 6), rnd.uniform(0.1, 3, 6)
    mu1, mu2 = rnd.randn(6), rnd.randn(6)
    expected = np.square(mu1 - mu2).sum() + np.square(np.sqrt(a) - np.sqrt(b)).sum()
    got = M.frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-10)
    # Non-commuting 2x2: tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
    s1, s2 = np.array([[2.0, 0.7], [0.7, 1.0]]), np.array([[0.5, -0.2], [-0.2, 3.0]])
    tr_sqrt = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    assert M.frechet_distance([0, 0], s1, [1, 2], s2) == pytest.approx(5 + 3.0 + 3.5 - 2 * tr_sqrt, rel=1e-10)
    # A set with itself, fewer samples than dimensions (singular covariance): 0.
    st = F.FeatureStats(capture_mean_cov=True)
    st.append(rnd.randn(20, 32).astype(np.float32))
    assert abs(M.frechet_distance(*st.mean_cov(), *st.mean_cov())) < 1e-6


def test_kid_unbiased_near_zero_for_one_distribution_and_positive_for_two():
    rnd = np.random.RandomState(1)
    x, y = rnd.randn(400, 8), rnd.randn(400, 8)
    same = M.kernel_inception_distance(x, y, num_subsets=50, max_subset_size=200)
    other = M.kernel_inception_distance(x, rnd.randn(400, 8) * 1.3 + 0.5, num_subsets=50, max_subset_size=200)
    assert abs(same) < 0.02 and other > 0.5 > 25 * abs(same)
    # One subset of everything = the closed-form unbiased estimate.
    k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731
    m = 30
    xs, ys = x[:m], y[:m]
    ref = ((k(xs, xs).sum() - np.trace(k(xs, xs)) + k(ys, ys).sum() - np.trace(k(ys, ys))) / (m * (m - 1))
           - 2 * k(xs, ys).mean())
    assert M.kernel_inception_distance(xs, ys, num_subsets=1, max_subset_size=m) == pytest.approx(ref, rel=1e-10)
    assert M.kernel_inception_distance(x, y, num_subsets=50, max_subset_size=200, seed=0) == same  # seeded


def test_precision_recall_on_separable_and_identical_sets():
    rnd = np.random.RandomState(2)
    a = rnd.randn(300, 5)
    assert M.precision_recall(a, a + 100.0) == (0.0, 0.0)
    assert M.precision_recall(a, a.copy()) == (1.0, 1.0)
    # Generated = half of the real support: precision 1, recall about a half; blocks do not matter.
    real = np.concatenate([rnd.randn(200, 2), rnd.randn(200, 2) + 50])
    gen = rnd.randn(200, 2)
    p, r = M.precision_recall(gen, real)
    assert p > 0.9 and 0.4 < r < 0.6
    assert M.precision_recall(gen, real, row_batch=7, col_batch=13) == (p, r)


# ------------------------------------------------------------------------------------------------
# Names
# ------------------------------------------------------------------------------------------------

def test_metric_names_parse_generically():
    fid = M.parse_metric("fid50k_full")
    assert (fid.kind, fid.num_gen, fid.max_real, fid.full, fid.detector) == ("fid", 50000, None, True, "inception")
    assert M.parse_metric("fid2k").max_real == 2000
    assert M.parse_metric("kid10k_full").max_real == 1_000_000 and M.parse_metric("kid50k").max_real == 50000
    pr = M.parse_metric("pr2k3_full")
    assert (pr.nhood, pr.max_real, pr.detector) == (3, 200_000, "vgg")
    assert pr.result_keys() == ["pr2k3_full_precision", "pr2k3_full_recall"]
    ppl = M.parse_metric("ppl2_wend")
    assert (ppl.space, ppl.sampling, ppl.crop, ppl.epsilon, ppl.num_gen) == ("w", "end", False, 1e-4, 50000)
    assert M.parse_metric("ppl_zfull").crop and M.parse_metric("ppl2_wfull_2k").num_gen == 2000
    assert (M.parse_metric("eqt1k_int").eq, M.parse_metric("eqt50k_frac").eq, M.parse_metric("eqr50k").eq) == ("int", "frac", "rot")
    for bad in ["fid50", "fid0k", "fid50k_ful", "pr50k", "ppl2_wmid", "eqt50k", "is50k", "FID50k", ""]:
        with pytest.raises(ValueError, match=r"unknown metric.*fid\{N\}k_full.*eqr\{N\}k"):
            M.check_metric_names(["fid2k", bad])
    with pytest.raises(ConfigError, match="listed twice"):
        M.check_metric_names(["fid2k", "fid2k"])
    assert "pr{N}k{K}_full" in M.metric_names_help()


# ------------------------------------------------------------------------------------------------
# Detectors and the downloader
# ------------------------------------------------------------------------------------------------

def test_missing_detector_error_names_file_url_path_and_key(files, tmp_path):
    cfg = _cfg(files, tmp_path, detector=None)
    with pytest.raises(DetectorError) as e:
        M.compute_metrics(["fid1k"], files.G, open_dataset("zip", files.data), cfg, device="cpu")
    msg = str(e.value)
    path = os.path.join(str(tmp_path / "cache"), "inception-2015-12-05.pt")
    assert "downloads are off" in msg and D.INCEPTION_URL in msg and path in msg and "metrics.detector=PATH" in msg
    with pytest.raises(DetectorError, match="could not download.*network access is disabled"):  # download on, no network
        D.resolve_detector("vgg", dict(cfg, vgg=None, download=True))
    with pytest.raises(DetectorError, match="no file at"):
        D.resolve_detector("vgg", dict(cfg, vgg=str(tmp_path / "nope.pt")))
    with pytest.raises(ChecksumError, match="does not match"):
        D.resolve_detector("vgg", dict(cfg, vgg_sha256="0" * 64))


def test_cached_download_records_and_checks_the_sha256(files, tmp_path):
    url = "file://" + files.det
    path = cached_download(url, "det.pt", cache=str(tmp_path))
    assert open(path + ".sha256").read().strip() == file_sha256(files.det) == D.sha256_of(path)
    assert cached_download(url, "det.pt", cache=str(tmp_path), download=False) == path  # a hit needs no network
    with open(path, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ChecksumError, match="does not match"):
        cached_download(url, "det.pt", cache=str(tmp_path))
    with pytest.raises(DetectorError, match="expected"):  # a download with the wrong sha256 is not kept
        cached_download(url, "other.pt", cache=str(tmp_path), sha256="f" * 64)
    assert not os.path.exists(tmp_path / "other.pt") and not [p for p in os.listdir(tmp_path) if p.endswith(".part")]
    assert S.VGG16_URL == D.VGG16_URL  # one downloader, one URL: zoo.sampling.load_vgg16 delegates


def test_detector_repeats_gray_images_and_returns_float_features(files):
    det = D.load_detector("inception", {"detector": files.det})
    gray = torch.randint(0, 256, (2, 1, RES, RES), dtype=torch.uint8)
    assert torch.equal(det.features(gray), det.features(gray.repeat(1, 3, 1, 1)))
    assert det.features(gray).dtype == torch.float32 and det.name == "tiny-detector"


# ------------------------------------------------------------------------------------------------
# compute_metrics
# ------------------------------------------------------------------------------------------------

def test_compute_metrics_end_to_end_protocol_and_shared_passes(files, tmp_path, monkeypatch):
    ds = open_dataset("zip", files.data)
    calls = []
    orig = F.generated_images
    monkeypatch.setattr(F, "generated_images", lambda *a, **k: calls.append(a[1]) or orig(*a, **k))
    recs = M.compute_metrics(["fid1k", "kid1k_full", "pr1k3_full"], files.G, ds, _cfg(files, tmp_path),
                             device="cpu", kimg=4.0, generation="stylegan2")
    assert len(calls) == 4  # 1000 images in batches of 250, generated once for the three metrics
    assert [r["metric"] for r in recs] == ["fid1k", "kid1k_full", "pr1k3_full"]
    assert set(recs[2]["results"]) == {"pr1k3_full_precision", "pr1k3_full_recall"}
    json.dumps(recs)
    fid, kid = recs[0]["results"]["fid1k"], recs[1]["results"]["kid1k_full"]
    assert fid > 0 and kid > 0  # random G vs random-noise images
    p = recs[0]["protocol"]
    assert p["detector"] == "tiny-detector" and p["detector_sha256"] == file_sha256(files.det)
    assert (p["num_real"], p["num_gen"], p["truncation_psi"], p["noise_mode"]) == (40, 1000, 1.0, "random")
    assert p["dataset"]["name"] == "tiny" and p["dataset"]["content_hash"] == ds.content_hash()
    assert p["dataset"]["resolution"] == RES and p["kimg"] == 4.0 and p["generation"] == "stylegan2"
    assert p["seed"] == 0 and p["real_stats_cached"] is False and recs[0]["total_time"] > 0
    assert recs[1]["protocol"]["num_subsets"] == 100 and recs[1]["protocol"]["subset_size"] == 40
    assert recs[2]["protocol"]["nhood_size"] == 3

    # Second call: the real statistics come from the cache and the results are identical.
    again = M.compute_metrics(["fid1k", "kid1k_full"], files.G, ds, _cfg(files, tmp_path), device="cpu")
    assert [r["protocol"]["real_stats_cached"] for r in again] == [True, True]
    assert again[0]["results"]["fid1k"] == fid and again[1]["results"]["kid1k_full"] == kid
    # inception mean/cov and all features; the "vgg" features are the same file's, so the same entry
    assert len(os.listdir(tmp_path / "cache" / "metric-stats")) == 2

    # Another seed: other images, another value.
    other = M.compute_metrics(["fid1k"], files.G, ds, _cfg(files, tmp_path, seed=1), device="cpu")
    assert other[0]["results"]["fid1k"] != fid and other[0]["protocol"]["seed"] == 1


def test_stats_cache_misses_when_one_image_changes(files, tmp_path):
    images = _images(40)
    write_dataset(str(tmp_path / "a.zip"), images)
    cfg = _cfg(files, tmp_path)
    first = M.compute_metrics(["fid1k"], files.G, open_dataset("zip", str(tmp_path / "a.zip")), cfg, device="cpu")
    hit = M.compute_metrics(["fid1k"], files.G, open_dataset("zip", str(tmp_path / "a.zip")), cfg, device="cpu")
    images[7] = 255 - images[7]
    write_dataset(str(tmp_path / "a.zip"), images)
    miss = M.compute_metrics(["fid1k"], files.G, open_dataset("zip", str(tmp_path / "a.zip")), cfg, device="cpu")
    assert [r[0]["protocol"]["real_stats_cached"] for r in (first, hit, miss)] == [False, True, False]
    assert miss[0]["results"]["fid1k"] != first[0]["results"]["fid1k"]
    assert miss[0]["protocol"]["dataset"]["content_hash"] != first[0]["protocol"]["dataset"]["content_hash"]


def test_mirrored_dataset_uses_unflipped_items_and_labels_condition_G(files, tmp_path):
    plain = open_dataset("zip", files.data, use_labels=True)
    mirrored = open_dataset("zip", files.data, use_labels=True, mirror=True)
    assert real_indices(mirrored).tolist() == list(range(40))
    torch.manual_seed(0)
    G = registry.get("stylegan2").build_generator(c_dim=3, **SMALL_G).eval().requires_grad_(False)
    a = M.compute_metrics(["fid1k"], G, plain, _cfg(files, tmp_path), device="cpu")[0]
    b = M.compute_metrics(["fid1k"], G, mirrored, _cfg(files, tmp_path, cache=False), device="cpu")[0]
    assert b["protocol"]["num_real"] == 40 and b["protocol"]["dataset"]["mirror"] is True
    assert a["results"] == b["results"]
    with pytest.raises(ConfigError, match="use_labels"):
        M.compute_metrics(["fid1k"], G, open_dataset("zip", files.data), _cfg(files, tmp_path), device="cpu")


def test_generated_images_depend_only_on_seed_and_batch(files):
    x = F.generated_images(files.G, 3, 5, seed=7, labels=None, device="cpu", gen_batch=5)
    y = F.generated_images(files.G, 3, 5, seed=7, labels=None, device="cpu", gen_batch=2)  # other chunking
    z = F.generated_images(files.G, 4, 5, seed=7, labels=None, device="cpu", gen_batch=5)
    assert x.dtype == torch.uint8 and x.shape == (5, 3, RES, RES)
    assert torch.equal(x, F.generated_images(files.G, 3, 5, seed=7, labels=None, device="cpu", gen_batch=5))
    assert not torch.equal(x, z)
    assert (x.int() - y.int()).abs().float().mean() < 60  # same latents, other noise draws
    assert F.default_gen_batch(1024, 64) == 4 and F.default_gen_batch(256, 64) == 64 and F.default_gen_batch(32, 8) == 8


def test_ppl_and_eq_dispatch_and_applicability(files, tmp_path, monkeypatch):
    seen = {}

    def compute_ppl(G, vgg, **kw):
        seen["ppl"] = (vgg, kw)
        return 12.5

    def compute_equivariance(G, **kw):
        seen["eq"] = kw
        return 40.0

    import zoo.metrics.compute as C

    monkeypatch.setattr(C, "compute_ppl", compute_ppl)
    monkeypatch.setattr(C, "compute_equivariance", compute_equivariance)
    ds = open_dataset("zip", files.data, use_labels=True)
    torch.manual_seed(0)
    G3 = registry.get("stylegan3").build_generator(c_dim=3, **SMALL_G).eval()
    recs = M.compute_metrics(["ppl_zfull_1k", "eqt1k_frac"], G3, ds, _cfg(files, tmp_path), device="cpu")
    assert [r["results"] for r in recs] == [{"ppl_zfull_1k": 12.5}, {"eqt1k_frac": 40.0}]
    vgg, kw = seen["ppl"]
    assert isinstance(vgg, torch.jit.ScriptModule)
    assert (kw["num_samples"], kw["epsilon"], kw["space"], kw["sampling"], kw["crop"]) == (1000, 1e-4, "z", "full", True)
    assert kw["labels"].shape == (40, 3) and kw["seed"] == 0
    assert (seen["eq"]["kind"], seen["eq"]["num_samples"], seen["eq"]["translate_max"]) == ("frac", 1000, 0.125)
    assert recs[0]["protocol"]["noise_mode"] == "const" and recs[0]["protocol"]["detector"] == "tiny-detector"
    with pytest.raises(S.NotApplicable, match="StyleGAN3"):
        M.compute_metrics(["eqr1k"], files.G, None, _cfg(files, tmp_path), device="cpu")
    progan = registry.get("progan").build_generator(img_resolution=RES, channel_base=256, channel_max=32, z_dim=32)
    with pytest.raises(S.NotApplicable, match="mapping network"):
        M.check_applicable(["ppl2_wend"], progan)
    M.check_applicable(["ppl2_zend", "fid2k"], progan)


# ------------------------------------------------------------------------------------------------
# python -m zoo.metrics
# ------------------------------------------------------------------------------------------------

def _app(files, tmp_path, *overrides):
    from zoo.apps.metrics import evaluate

    cfg = compose_cfg("metrics", [f"ckpt={files.ckpt}", "device=cpu", "progress=false", f"metrics.detector={files.det}",
                                  f"metrics.vgg={files.det}", f"metrics.cache_dir={tmp_path / 'cache'}",
                                  "metrics.download=false", "metrics.batch=250", *overrides])
    return evaluate(cfg)


def test_app_appends_jsonl_next_to_the_checkpoint_and_prints_a_table(files, tmp_path, capsys):
    out = os.path.join(os.path.dirname(files.ckpt), "metrics.jsonl")
    if os.path.exists(out):
        os.unlink(out)
    recs = _app(files, tmp_path, "metrics.names=[fid1k,pr1k3]")
    lines = [json.loads(line) for line in open(out)]
    assert [r["metric"] for r in lines] == ["fid1k", "pr1k3"] and lines[0]["results"] == recs[0]["results"]
    assert lines[0]["kimg"] == 4.0 and lines[0]["ckpt"] == files.ckpt and lines[0]["protocol"]["generation"] == "stylegan2"
    assert lines[0]["protocol"]["num_real"] == 40  # the checkpoint's dataset, without its max_size / mirror
    text = capsys.readouterr().out
    assert "pr1k3_precision" in text and "fid1k" in text and "appended 2 result lines" in text
    # data=shapes (an @package _global_ config that also sets training keys) composes here too.
    recs = _app(files, tmp_path, "metrics.names=[kid1k]", "data=shapes", "data.num_images=30",
                f"out={tmp_path / 'm.jsonl'}")
    assert recs[0]["protocol"]["dataset"]["name"] == "shapes" and recs[0]["protocol"]["dataset"]["resolution"] == RES
    assert os.path.isfile(tmp_path / "m.jsonl")


def test_app_reports_user_errors_in_one_line_with_status_2(files, tmp_path):
    with pytest.raises(DatasetError, match="missing"):
        _app(files, tmp_path, "metrics.names=[fid1k]", "data=folder", f"data.path={tmp_path / 'missing'}")
    with pytest.raises(ConfigError, match="drop that metric"):
        _app(files, tmp_path, "metrics.names=[eqt1k_int]")
    env = dict(os.environ, PYTHONPATH=ROOT, ZOO_CACHE=str(tmp_path / "cache"))
    from zoo.apps.common import listify_argv

    argv = ["metrics.names=fid2k", "metrics.names=a,b", "metrics.names=[c]"]
    assert listify_argv(argv, (), always=("metrics.names",)) == \
        ["metrics.names=[fid2k]", "metrics.names=[a,b]", "metrics.names=[c]"]
    # under -m, commas are a sweep; a single name still becomes a one-item list
    assert listify_argv(["-m", *argv], (), always=("metrics.names",))[1:] == \
        ["metrics.names=[fid2k]", "metrics.names=a,b", "metrics.names=[c]"]
    r = subprocess.run([sys.executable, "-m", "zoo.metrics", f"ckpt={files.ckpt}", "metrics.names=fid2k,fid50",
                        "metrics.download=false"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "unknown metric 'fid50'" in r.stderr
    assert set(os.listdir(tmp_path)) <= {"cache"}  # Hydra writes nothing


@pytest.mark.distributed
def test_two_gloo_processes_give_the_one_process_results(files, tmp_path):
    # Batches of 16: the 40 reals are 3 batches (rank 1 has none in the second round), 1000 fakes 63.
    args = ["metrics.names=[fid1k,kid1k_full,pr1k3_full]", "metrics.batch=16"]
    one = _app(files, tmp_path / "a", *args, f"out={tmp_path / 'one.jsonl'}")
    two = _app(files, tmp_path / "b", *args, "gpus=2", f"out={tmp_path / 'two.jsonl'}")
    for a, b in zip(one, two):
        assert b["protocol"]["world_size"] == 2 and b["protocol"]["real_stats_cached"] is False
        assert a["results"].keys() == b["results"].keys()
        for k in a["results"]:
            assert b["results"][k] == pytest.approx(a["results"][k], rel=1e-6, abs=1e-9), k
