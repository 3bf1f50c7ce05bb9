"""zoo.metrics.ppl and zoo.metrics.equivariance: closed-form and toy-generator checks, the transform
direction, state restoration, and tiny registry-built generators of every generation."""
import math
import warnings

import numpy as np
import pytest
import torch

from conftest import VGGStandIn, enable_noise
from zoo import registry
from zoo.metrics import equivariance as EQ
from zoo.metrics import ppl as PPL
from zoo.metrics.equivariance import compute_equivariance
from zoo.metrics.ppl import compute_ppl
from zoo.core.contract import set_input_transform
from zoo.sampling import NotApplicable, noise_inputs

KW = dict(progan=dict(z_dim=16), stylegan=dict(z_dim=16, w_dim=16, mapping_layers=2),
          stylegan2=dict(z_dim=16, w_dim=16, mapping_layers=2),
          stylegan3=dict(z_dim=16, w_dim=16, mapping_layers=2, channel_base=1024, channel_max=16))


def _build(name, res=16, seed=0, **extra):
    torch.manual_seed(seed)
    kwargs = dict(img_resolution=res, channel_base=256, channel_max=32)
    kwargs.update(KW[name])
    kwargs.update(extra)
    G = enable_noise(registry.get(name).build_generator(**kwargs))
    return G.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------------------
# Stand-ins
# ------------------------------------------------------------------------------------------------




class _LinearFeatures(torch.nn.Module):
    """An LPIPS stand-in that is a linear map of the image in [-1, 1]: ``(x / 127.5 - 1) @ A``."""

    def __init__(self, in_features: int, out_features: int = 5):
        super().__init__()
        g = torch.Generator().manual_seed(2)
        self.register_buffer("A", torch.randn([in_features, out_features], generator=g) / in_features ** 0.5)

    def forward(self, x: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        return (x / 127.5 - 1).flatten(1) @ self.A


class _Recorder(torch.nn.Module):
    """Records what the LPIPS network is fed; returns the per-image mean as a 1-d feature."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x, resize_images=True, return_lpips=False):
        assert resize_images is False and return_lpips is True
        self.inputs.append(x.clone())
        return x.mean(dim=[1, 2, 3])[:, None]


def _script(module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(module.eval())


class _LinearMapping(torch.nn.Module):
    def __init__(self, z_dim, w_dim, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.register_buffer("M", torch.randn([z_dim, w_dim], generator=torch.Generator().manual_seed(3)))
        self.seen = []

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        self.seen.append(z.clone())
        return (z @ self.M).unsqueeze(1).repeat(1, self.num_ws, 1)


class _LinearSynthesis(torch.nn.Module):
    def __init__(self, w_dim, res, channels):
        super().__init__()
        self.shape = [channels, res, res]
        g = torch.Generator().manual_seed(4)
        self.register_buffer("B", torch.randn([w_dim, channels * res * res], generator=g) * 0.1)

    def forward(self, ws, noise_mode="random", **kwargs):
        return (ws[:, 0] @ self.B).reshape(ws.shape[0], *self.shape)


class LinearG(torch.nn.Module):
    """Image linear in w, mapping linear in z: W-space path lengths have a closed form."""

    def __init__(self, z_dim=6, w_dim=4, res=8, channels=3, num_ws=2):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, w_dim, num_ws
        self.img_resolution, self.img_channels = res, channels
        self.mapping = _LinearMapping(z_dim, w_dim, num_ws)
        self.synthesis = _LinearSynthesis(w_dim, res, channels)


class _ConstSynthesis(torch.nn.Module):
    def __init__(self, res, channels):
        super().__init__()
        self.res, self.channels = res, channels

    def forward(self, ws, noise_mode="random", **kwargs):
        return torch.tanh(ws[:, 0, :1, None, None]).expand(-1, self.channels, self.res, self.res)


class ConstG(torch.nn.Module):
    """Flat images of any size, cheaply: for the crop / downsampling shapes."""

    def __init__(self, res, channels):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = 4, 0, 4, 2
        self.img_resolution, self.img_channels = res, channels
        self.mapping = _LinearMapping(4, 4, 2)
        self.synthesis = _ConstSynthesis(res, channels)


class _ToyInput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("transform", torch.eye(3))


class _ToySynthesis(torch.nn.Module):
    """A band-limited image defined on the whole plane, sampled at ``transform @ p`` for every pixel
    centre ``p`` (image units, the image spanning [-0.5, 0.5], x right, y down), exactly as the
    StyleGAN3 Fourier input uses its buffer. ``equivariant=False`` ignores the transform."""

    def __init__(self, w_dim, res, channels, equivariant, max_freq, calls_before_error=None):
        super().__init__()
        self.res, self.channels, self.equivariant = res, channels, equivariant
        self.calls_before_error = calls_before_error
        self.input = _ToyInput()
        g = torch.Generator().manual_seed(5)
        k = w_dim
        angle = torch.rand([k], generator=g) * 2 * math.pi
        radius = torch.rand([k], generator=g) * max_freq + 0.5
        self.register_buffer("freqs", torch.stack([radius * angle.cos(), radius * angle.sin()], 1))  # cycles/image
        self.register_buffer("amps", torch.randn([channels, k], generator=g) / k ** 0.5)

    def forward(self, ws, noise_mode="random", **kwargs):
        if self.calls_before_error is not None:
            if self.calls_before_error == 0:
                raise RuntimeError("toy failure")
            self.calls_before_error -= 1
        r = self.res
        p = (torch.arange(r, dtype=torch.float64) + 0.5) / r - 0.5
        py, px = torch.meshgrid(p, p, indexing="ij")
        pts = torch.stack([px, py, torch.ones_like(px)])                    # [3, H, W]
        m = self.input.transform.double() if self.equivariant else torch.eye(3, dtype=torch.float64)
        q = torch.einsum("ij,jhw->ihw", m, pts)[:2]                          # sample points
        arg = torch.einsum("kd,dhw->khw", self.freqs.double(), q)           # [K, H, W]
        phase = ws[:, 0].double()                                            # [N, K] in cycles
        waves = torch.sin(2 * math.pi * (arg[None] + phase[:, :, None, None]))
        return torch.einsum("ck,nkhw->nchw", self.amps.double(), waves).float()


class ToyG(torch.nn.Module):
    def __init__(self, res=32, channels=3, equivariant=True, max_freq=3.0, calls_before_error=None):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = 8, 0, 8, 2
        self.img_resolution, self.img_channels = res, channels
        self.mapping = _LinearMapping(8, 8, 2)
        self.synthesis = _ToySynthesis(8, res, channels, equivariant, max_freq, calls_before_error)


def _flipped(monkeypatch, translate=False, rotate=False):
    """Make the metric drive the generator the wrong way round."""
    def wrong(G, translate_=(0, 0), rotate_=0):
        t = [-v for v in translate_] if translate else translate_
        set_input_transform(G, t, -rotate_ if rotate else rotate_)
    monkeypatch.setattr(EQ, "set_input_transform",
                        lambda G, translate=(0, 0), rotate=0: wrong(G, translate, rotate))


# ------------------------------------------------------------------------------------------------
# Equivariance
# ------------------------------------------------------------------------------------------------

def test_reference_operators():
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    out, mask = EQ.translate_integer(x, 3, -2)
    assert torch.equal(out[..., 0:10, 3:12], x[..., 2:12, 0:9])
    assert mask.sum() == 10 * 9 and mask[0, 0, 0:10, 3:12].all()
    # A whole-pixel shift through the Lanczos interpolator is the integer shift (inside its mask).
    frac, fmask = EQ.translate_fractional(x, 3.0, -2.0)
    assert fmask.sum() > 0 and bool((fmask <= mask).all())
    torch.testing.assert_close(frac * fmask, out * fmask, atol=1e-6, rtol=0)
    # Constant images stay constant where valid (unit-gain interpolators).
    ones = torch.ones(1, 1, 24, 24)
    for img, m in [EQ.translate_fractional(ones, 1.3, -2.6), EQ.rotate_fractional(ones, 0.7),
                   EQ.pseudo_rotate(ones, 0.7)]:
        assert m.sum() > 0
        torch.testing.assert_close(img * m, m, atol=1e-5, rtol=0)
    f = EQ.bandlimit_filter(np.eye(3), up=4)
    assert f.shape == (47, 47)
    assert torch.allclose(f, f.flip([0, 1]), atol=1e-12)
    # Rotating by a quarter turn: the content turns with the make_transform convention (x -> y).
    img = torch.zeros(1, 1, 32, 32)
    img[..., 14:18, 20:24] = 1  # a blob right of the centre
    rot, m = EQ.rotate_fractional(img, math.pi / 2)
    row, col = divmod(int((rot * m)[0, 0].argmax()), 32)
    assert abs(row - 9.5) <= 1.5 and abs(col - 15.5) <= 1.5  # (+6, 0) from the centre -> (0, -6): up


def test_eq_int_on_an_equivariant_toy_is_exact():
    G = ToyG()
    psnr = compute_equivariance(G, num_samples=8, kind="int", batch_size=4)
    assert psnr > 80
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))


def test_eq_on_a_non_equivariant_toy_is_low():
    psnr = compute_equivariance(ToyG(equivariant=False), num_samples=8, kind="int")
    assert psnr < 25
    assert compute_equivariance(ToyG(equivariant=False), num_samples=8, kind="rot") < 25


def test_eq_frac_and_rot_on_the_toy_are_high_but_finite():
    frac = compute_equivariance(ToyG(), num_samples=8, kind="frac")
    rot = compute_equivariance(ToyG(res=48), num_samples=8, kind="rot")
    assert 40 < frac < 150 and math.isfinite(frac)
    assert 30 < rot < 150 and math.isfinite(rot)


def test_eq_transform_direction(monkeypatch):
    """The metric moves the generator's output the way it moves the reference: turning either
    direction around ruins the toy's scores."""
    right = {k: compute_equivariance(ToyG(res=48), num_samples=4, kind=k) for k in ("int", "frac", "rot")}
    _flipped(monkeypatch, translate=True)
    assert compute_equivariance(ToyG(res=48), num_samples=4, kind="int") < right["int"] - 40
    assert compute_equivariance(ToyG(res=48), num_samples=4, kind="frac") < right["frac"] - 20
    _flipped(monkeypatch, rotate=True)
    assert compute_equivariance(ToyG(res=48), num_samples=4, kind="rot") < right["rot"] - 15


def test_stylegan3_input_transform_moves_the_image_as_the_metric_assumes():
    """set_input_transform(translate=(2 px, 0)) on a real StyleGAN3-T shifts its picture 2 px right."""
    G = _build("stylegan3", res=32)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)), None)
    base = G.synthesis(ws, noise_mode="const")
    set_input_transform(G, translate=(2 / 32, 0))
    moved = G.synthesis(ws, noise_mode="const")
    set_input_transform(G)
    err_right = (moved[..., 4:-4, 6:-4] - base[..., 4:-4, 4:-6]).square().mean()
    err_left = (moved[..., 4:-4, 4:-6] - base[..., 4:-4, 6:-4]).square().mean()
    assert err_right < 0.05 * err_left


def test_eq_on_a_tiny_stylegan3(monkeypatch):
    G = _build("stylegan3", res=32)
    set_input_transform(G, translate=(0.1, -0.05), rotate=10)
    before = G.synthesis.input.transform.clone()
    scores = {k: compute_equivariance(G, num_samples=4, kind=k, batch_size=2) for k in ("int", "frac", "rot")}
    assert all(math.isfinite(v) and v > 0 for v in scores.values()), scores
    assert torch.equal(G.synthesis.input.transform, before)
    assert compute_equivariance(G, num_samples=4, kind="int", batch_size=2) == scores["int"]  # deterministic
    assert compute_equivariance(G, num_samples=4, kind="int", batch_size=2, seed=1) != scores["int"]
    _flipped(monkeypatch, translate=True)
    assert compute_equivariance(G, num_samples=4, kind="int", batch_size=2) < scores["int"] - 10


def test_eq_restores_the_transform_on_error():
    G = ToyG(calls_before_error=1)
    set_input_transform(G, translate=(0.25, 0))
    before = G.synthesis.input.transform.clone()
    G.train()
    with pytest.raises(RuntimeError, match="toy failure"):
        compute_equivariance(G, num_samples=4, kind="int")
    assert torch.equal(G.synthesis.input.transform, before)
    assert G.training and G.synthesis.training


@pytest.mark.parametrize("name", ["progan", "stylegan", "stylegan2"])
def test_eq_not_applicable_without_an_input_transform(name):
    with pytest.raises(NotApplicable, match="StyleGAN3"):
        compute_equivariance(_build(name), num_samples=2)


def test_eq_arguments_and_labels():
    with pytest.raises(ValueError, match="kind"):
        compute_equivariance(ToyG(), num_samples=2, kind="scale")
    G = _build("stylegan3", res=16, c_dim=3)
    with pytest.raises(ValueError, match="labels"):
        compute_equivariance(G, num_samples=2)
    labels = torch.eye(3)
    v = compute_equivariance(G, num_samples=2, batch_size=2, labels=labels)
    assert math.isfinite(v)


# ------------------------------------------------------------------------------------------------
# PPL
# ------------------------------------------------------------------------------------------------

def _closed_form_ppl(G, vgg, n, batch):
    """Per-sample W-space distances of LinearG under the linear LPIPS: |(w1 - w0) B A|^2 for every
    t, from the latents the mapping saw."""
    d = []
    for z in G.mapping.seen:
        k = z.shape[0] // 2
        w = z.double() @ G.mapping.M.double()
        d.append(((w[k:] - w[:k]) @ G.synthesis.B.double() @ vgg.A.double()).square().sum(1))
    d = torch.cat(d).numpy()
    assert d.shape == (n,)
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    return float(d[(d >= lo) & (d <= hi)].mean()), d


@pytest.mark.parametrize("sampling", ["end", "full"])
def test_ppl_closed_form(sampling):
    G = LinearG()
    vgg = _script(_LinearFeatures(3 * 8 * 8))
    value = compute_ppl(G, vgg, num_samples=150, epsilon=1e-2, sampling=sampling, batch_size=16)
    expected, d = _closed_form_ppl(G, vgg, 150, 16)
    assert value == pytest.approx(expected, rel=1e-4)
    assert abs(expected - d.mean()) > 1e-6 * d.mean()  # the trimming did drop the extremes
    G.mapping.seen.clear()
    small_eps = compute_ppl(G, vgg, num_samples=150, sampling=sampling, batch_size=16)
    assert small_eps == pytest.approx(expected, rel=2e-2)  # float32 cancellation at epsilon 1e-4


def test_ppl_deterministic_and_restores_noise():
    G = _build("stylegan2")
    vgg = _script(VGGStandIn())
    noise = {name: m.noise_const.clone() for name, m, _ in noise_inputs(G)}
    assert noise
    a = compute_ppl(G, vgg, num_samples=6, batch_size=4, seed=3)
    b = compute_ppl(G, vgg, num_samples=6, batch_size=4, seed=3)
    c = compute_ppl(G, vgg, num_samples=6, batch_size=4, seed=4)
    assert a == b and a != c and a > 0 and math.isfinite(a)
    for name, m, _ in noise_inputs(G):
        assert torch.equal(m.noise_const, noise[name])
    full = compute_ppl(G, vgg, num_samples=6, batch_size=4, seed=3, space="z", sampling="full")
    assert math.isfinite(full) and full > 0


def test_ppl_progan_z_space_only():
    G = _build("progan")
    vgg = _script(VGGStandIn())
    with pytest.raises(NotApplicable, match="mapping network"):
        compute_ppl(G, vgg, num_samples=4)
    v = compute_ppl(G, vgg, num_samples=4, space="z", batch_size=2)
    assert math.isfinite(v) and v > 0
    assert compute_ppl(G, vgg, num_samples=4, space="z", batch_size=2) == v


def test_ppl_conditional_needs_labels():
    G = _build("stylegan", c_dim=4)
    vgg = _script(VGGStandIn())
    with pytest.raises(ValueError, match="labels"):
        compute_ppl(G, vgg, num_samples=2)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        compute_ppl(G, vgg, num_samples=2, labels=torch.eye(3))
    v = compute_ppl(G, vgg, num_samples=2, labels=torch.eye(4), space="z", sampling="full")
    assert math.isfinite(v)


@pytest.mark.parametrize("res,channels,crop,side", [(512, 1, False, 256), (512, 1, True, 128),
                                                    (256, 3, True, 128), (64, 3, False, 64), (64, 3, True, 32)])
def test_ppl_crop_and_downsample(res, channels, crop, side):
    G = ConstG(res, channels)
    vgg = _Recorder()
    compute_ppl(G, vgg, num_samples=3, batch_size=2, crop=crop)
    shapes = [tuple(x.shape) for x in vgg.inputs]
    assert shapes == [(4, 3, side, side), (2, 3, side, side)]  # pairs; a shortened last batch
    x = vgg.inputs[0]
    assert float(x.min()) >= 0 and float(x.max()) <= 255
    w0 = G.mapping(G.mapping.seen[0], None)[:2, 0, 0]  # both images of a pair sit at w0 (t = 0)
    expected = (torch.tanh(torch.cat([w0, w0])) + 1) * 127.5
    torch.testing.assert_close(x[:, :, 0, 0], expected[:, None].expand(-1, 3), atol=0.1, rtol=0)


def test_ppl_arguments():
    G, vgg = LinearG(), _LinearFeatures(3 * 8 * 8)
    for kwargs, match in [(dict(space="x"), "space"), (dict(sampling="mid"), "sampling"),
                          (dict(epsilon=0), "epsilon"), (dict(num_samples=0), "num_samples"),
                          (dict(batch_size=0), "batch_size")]:
        with pytest.raises(ValueError, match=match):
            compute_ppl(G, vgg, **{"num_samples": 2, **kwargs})
    with pytest.raises(ValueError, match="VGG16"):
        compute_ppl(G, None, num_samples=2)
    assert PPL.trimmed_mean(np.arange(101.0)) == pytest.approx(np.arange(1.0, 100.0).mean())
