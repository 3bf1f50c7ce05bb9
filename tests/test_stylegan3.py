"""Tests for zoo.models.stylegan3: layer schedule and names, parameter counts and state-dict layout
(NVIDIA's networks_stylegan3), filter design, the calling conventions, magnitude EMA, truncation,
translate/rotate through the Fourier input's transform, and checkpoint round trips."""
import math

import numpy as np
import pytest
import torch

from zoo.models import stylegan2
from zoo.ops.filtered_lrelu import filtered_lrelu_reference
from zoo.core.contract import make_transform, set_input_transform
from zoo.models.stylegan3 import (Discriminator, Generator, config_kwargs, kaiser_atten, kaiser_beta,
                                  lowpass_filter, radial_lowpass_filter, synthesis_schedule)


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _full_size(res, cfg):
    """A paper-sized generator on the meta device (shapes only, no memory, no init cost)."""
    with torch.device("meta"):
        return Generator(img_resolution=res, **config_kwargs(cfg))


def _small(res=16, cfg="t", seed=0, **overrides):
    torch.manual_seed(seed)
    kwargs = dict(z_dim=16, w_dim=16, img_resolution=res, **config_kwargs(cfg, channel_base=1024, channel_max=16))
    kwargs.update(overrides)
    return Generator(**kwargs)


# ---------------------------------------------------------------------------------------------
# Layer names, parameter counts, state-dict layout (must equal NVIDIA's).
# ---------------------------------------------------------------------------------------------

LAYER_NAMES = {
    ("t", 256): "L0_36_512 L1_36_512 L2_36_512 L3_52_512 L4_52_512 L5_84_512 L6_84_512 L7_148_512 L8_148_512 "
                "L9_148_362 L10_276_256 L11_276_181 L12_276_128 L13_256_128 L14_256_3",
    ("t", 512): "L0_36_512 L1_36_512 L2_52_512 L3_52_512 L4_84_512 L5_84_512 L6_148_512 L7_148_483 L8_276_323 "
                "L9_276_215 L10_532_144 L11_532_96 L12_532_64 L13_512_64 L14_512_3",
    ("t", 1024): "L0_36_512 L1_36_512 L2_52_512 L3_52_512 L4_84_512 L5_148_512 L6_148_512 L7_276_323 L8_276_203 "
                 "L9_532_128 L10_1044_81 L11_1044_51 L12_1044_32 L13_1024_32 L14_1024_3",
    # R: the same sizes with doubled channels (the reference lists R 1024 explicitly; R 256 is T 256 doubled).
    ("r", 256): "L0_36_1024 L1_36_1024 L2_36_1024 L3_52_1024 L4_52_1024 L5_84_1024 L6_84_1024 L7_148_1024 "
                "L8_148_1024 L9_148_724 L10_276_512 L11_276_362 L12_276_256 L13_256_256 L14_256_3",
    ("r", 1024): "L0_36_1024 L1_36_1024 L2_52_1024 L3_52_1024 L4_84_1024 L5_148_1024 L6_148_1024 L7_276_645 "
                 "L8_276_406 L9_532_256 L10_1044_161 L11_1044_102 L12_1044_64 L13_1024_64 L14_1024_3",
}


@pytest.mark.parametrize("cfg,res", sorted(LAYER_NAMES))
def test_layer_names(cfg, res):
    assert _full_size(res, cfg).synthesis.layer_names == LAYER_NAMES[(cfg, res)].split()


@pytest.mark.parametrize("cfg,res,params", [
    ("t", 1024, 22_313_167), ("r", 1024, 15_093_151),
    ("t", 512, 24_873_519), ("r", 512, 16_665_594),
    ("t", 256, 28_472_133), ("r", 256, 18_816_387),
])
def test_parameter_counts(cfg, res, params):
    G = _full_size(res, cfg)
    assert _count(G) == params
    assert _count(G.mapping) == 525_312
    assert G.num_ws == 16


def test_parameter_count_real_tensors():
    """The meta-device counts above are the real thing: one full-size build on the CPU."""
    torch.manual_seed(0)
    assert _count(Generator(img_resolution=1024)) == 22_313_167


def test_config_kwargs():
    assert config_kwargs("t") == dict(channel_base=32768, channel_max=512, conv_kernel=3, use_radial_filters=False)
    assert config_kwargs("R") == dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)
    with pytest.raises(ValueError):
        config_kwargs("x")


def test_schedule_t1024():
    s = synthesis_schedule(1024)
    assert s["sampling_rates"].tolist() == [16, 16, 32, 32, 64, 128, 128, 256, 256, 512, 1024, 1024, 1024, 1024, 1024]
    assert s["sizes"].tolist() == [36, 36, 52, 52, 84, 148, 148, 276, 276, 532, 1044, 1044, 1044, 1024, 1024]
    np.testing.assert_allclose(s["cutoffs"][[0, 1, 2, 12, 13, 14]], [2, 3.1748, 5.0397, 512, 512, 512], rtol=1e-4)
    np.testing.assert_allclose(s["half_widths"][[0, 1, 10, 12]], [6, 4.8252, 308.81, 512 * 2 ** 0.3 - 512], rtol=1e-4)

    G = _full_size(1024, "t")
    syn = G.synthesis
    taps = [(getattr(syn, n).up_taps, getattr(syn, n).down_taps) for n in syn.layer_names]
    assert taps == [(12, 12), (12, 12), (24, 12), (12, 12), (24, 12), (24, 12), (12, 12), (24, 12), (12, 12),
                    (24, 12), (24, 12), (12, 12), (12, 12), (12, 12), (1, 1)]
    assert [getattr(syn, n).use_fp16 for n in syn.layer_names] == [False] * 5 + [True] * 10
    assert [getattr(syn, n).is_critically_sampled for n in syn.layer_names] == [False] * 12 + [True] * 3
    assert syn.input.size == 36 and syn.input.sampling_rate == 16 and syn.input.bandwidth == 2
    assert "L10_1044_81" in syn.schedule_table()


def test_padding_gives_the_scheduled_sizes():
    """The padding rule must turn every layer's input size into its output size."""
    for cfg, res in [("t", 1024), ("r", 256), ("t", 16)]:
        syn = _full_size(res, cfg).synthesis
        for name in syn.layer_names:
            l = getattr(syn, name)
            x0, x1, _, _ = l.padding
            conv = l.in_size + l.conv_kernel - 1                       # "full" convolution
            up = conv * l.up_factor + x0 + x1 - l.up_taps + 1          # upsample + pad + filter
            out = (up - l.down_taps) // l.down_factor + 1              # filter + downsample
            assert out == l.out_size, name
            assert x0 - x1 in (0, 1, l.up_factor // 2 + 1, l.up_factor // 2), name


def test_state_dict_t1024():
    sd = {k: tuple(v.shape) for k, v in _full_size(1024, "t").state_dict().items()}
    expected = {
        "synthesis.input.weight": (512, 512), "synthesis.input.transform": (3, 3),
        "synthesis.input.freqs": (512, 2), "synthesis.input.phases": (512,),
        "synthesis.input.affine.weight": (4, 512), "synthesis.input.affine.bias": (4,),
        "synthesis.L0_36_512.weight": (512, 512, 3, 3), "synthesis.L0_36_512.bias": (512,),
        "synthesis.L0_36_512.magnitude_ema": (), "synthesis.L0_36_512.up_filter": (12,),
        "synthesis.L0_36_512.down_filter": (12,), "synthesis.L0_36_512.affine.weight": (512, 512),
        "synthesis.L0_36_512.affine.bias": (512,),
        "synthesis.L2_52_512.up_filter": (24,), "synthesis.L2_52_512.down_filter": (12,),
        "synthesis.L13_1024_32.weight": (32, 32, 3, 3),
        "synthesis.L14_1024_3.weight": (3, 32, 1, 1), "synthesis.L14_1024_3.bias": (3,),
        "synthesis.L14_1024_3.magnitude_ema": (), "synthesis.L14_1024_3.affine.weight": (32, 512),
        "synthesis.L14_1024_3.affine.bias": (32,),
        "mapping.w_avg": (512,), "mapping.fc0.weight": (512, 512), "mapping.fc0.bias": (512,),
        "mapping.fc1.weight": (512, 512), "mapping.fc1.bias": (512,),
    }
    for k, shape in expected.items():
        assert sd[k] == shape, k
    # ToRGB has no filters; every other layer has both; no mapping embed when unconditional.
    assert not any(k.startswith("synthesis.L14_1024_3.") and "filter" in k for k in sd)
    assert sum(k.endswith("up_filter") for k in sd) == sum(k.endswith("down_filter") for k in sd) == 14
    assert not any(k.startswith("mapping.embed") for k in sd)
    # Parameters + the 3 input buffers + per layer magnitude_ema (15) and filters (2 x 14) + w_avg.
    assert len(sd) == len(list(_full_size(1024, "t").parameters())) + 3 + 15 + 28 + 1


def test_state_dict_r1024():
    G = _full_size(1024, "r")
    sd = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    assert sd["synthesis.input.weight"] == (1024, 1024)
    assert sd["synthesis.input.freqs"] == (1024, 2)
    for name in G.synthesis.layer_names[:12]:                         # non-critical: radial down-filter
        assert sd[f"synthesis.{name}.down_filter"] == (12, 12), name
        assert sd[f"synthesis.{name}.weight"][2:] == (1, 1), name
    for name in G.synthesis.layer_names[12:14]:                       # critically sampled: separable
        assert sd[f"synthesis.{name}.down_filter"] == (12,), name
    assert sd["synthesis.L2_52_1024.up_filter"] == (24,)
    assert sd["synthesis.L14_1024_3.weight"] == (3, 64, 1, 1)
    assert not any(k.startswith("synthesis.L14_1024_3.") and "filter" in k for k in sd)


# ---------------------------------------------------------------------------------------------
# Filter design.
# ---------------------------------------------------------------------------------------------

# scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs), first half (the filters are symmetric),
# computed with SciPy 1.x outside this project.
FIRWIN_REFERENCE = {
    (12, 2.0, 12.0, 32.0): [0.0007919021497, 0.01001831816, 0.03894952247, 0.0924127899, 0.1565256153,
                            0.201301852],
    (24, 3.1748, 21.92, 64.0): [-6.282428955e-07, -5.978160146e-06, 5.261775538e-05, 0.0005507956689,
                                0.002547523189, 0.008033815256, 0.01959422149, 0.03919642212, 0.06645252059,
                                0.09739618978, 0.1249290828, 0.1412534177],
}
# NVIDIA's radial design (scipy.special.j1, kaiser_atten/kaiser_beta) for 12 taps, cutoff 3.1748,
# width 9.65, fs 32: rows 0, 2 and 5, first half.
RADIAL_REFERENCE = {
    0: [-5.653351564e-06, -2.032278507e-05, -2.207643624e-05, 1.207523254e-05, 7.655229824e-05, 0.0001298247128],
    2: [-2.207643624e-05, 0.0001534073203, 0.001104295981, 0.003177491286, 0.005852086295, 0.007783688759],
    5: [0.0001298247128, 0.00188000965, 0.007783688759, 0.01894227944, 0.03243221727, 0.04188063989],
}


@pytest.mark.parametrize("args", sorted(FIRWIN_REFERENCE))
def test_lowpass_equals_firwin(args):
    f = lowpass_filter(*args)
    assert f.dtype == torch.float32 and f.shape == (args[0],)
    half = FIRWIN_REFERENCE[args]
    np.testing.assert_allclose(f.double().numpy(), half + half[::-1], rtol=1e-6, atol=1e-9)


def test_radial_equals_reference():
    f = radial_lowpass_filter(12, 3.1748, 9.65, 32.0)
    assert f.dtype == torch.float32 and f.shape == (12, 12)
    for row, half in RADIAL_REFERENCE.items():
        np.testing.assert_allclose(f[row].double().numpy(), half + half[::-1], rtol=1e-6, atol=1e-9)
    assert torch.allclose(f, f.t()) and torch.allclose(f, f.flip(0))


def test_kaiser_formulas():
    assert kaiser_atten(12, 0.5) == pytest.approx(2.285 * 11 * math.pi * 0.5 + 7.95)
    assert kaiser_beta(60.0) == pytest.approx(0.1102 * (60 - 8.7))
    assert kaiser_beta(30.0) == pytest.approx(0.5842 * 9 ** 0.4 + 0.07886 * 9)
    assert kaiser_beta(10.0) == 0.0


def test_identity_filters():
    assert lowpass_filter(1, 2, 4, 16) is None
    assert radial_lowpass_filter(1, 2, 4, 16) is None


def _response_db(f, fs, freqs):
    """|H(f)| in dB of a 1-D (or the x-axis of a 2-D) FIR filter at the given frequencies."""
    f = f.double()
    if f.ndim == 2:
        f = f.sum(dim=0)                   # frequency response along x at f_y = 0
    n = torch.arange(f.numel(), dtype=torch.float64) - (f.numel() - 1) / 2
    h = (f[None, :] * torch.cos(2 * math.pi * torch.as_tensor(freqs)[:, None] * n[None, :] / fs)).sum(dim=1)
    return 20 * torch.log10(h.abs().clamp_min(1e-300))


@pytest.mark.parametrize("radial", [False, True])
def test_filter_dc_gain_and_stopband(radial):
    """Every designed filter of a 256-px network:

    * unit gain at DC;
    * passband (below cutoff - half-width) within 1 dB: Kaiser's ripple is ~10^(-A/20), measured up
      to 0.69 dB for the 26 dB designs of the critically sampled layers, ~0 for the wide ones;
    * stopband (cutoff + half-width .. fs/2) attenuated as Kaiser's design formula promises. For
      these short filters (12/24 taps) the measured worst case is within 5.6 dB of
      ``kaiser_atten`` (L0: 62.4 dB vs 67.2 dB target; critical layers: 27.5 vs 26.2 dB), so we
      require min(target - 7, 60) dB and at least 25 dB."""
    syn = Generator(z_dim=8, w_dim=8, img_resolution=256,
                    **config_kwargs("r" if radial else "t", channel_base=64, channel_max=2)).synthesis
    checked = 0
    for name in syn.layer_names[:-1]:
        l = getattr(syn, name)
        fs = l.tmp_sampling_rate
        for f, taps, cutoff, hw in [(l.up_filter, l.up_taps, l.in_cutoff, l.in_half_width),
                                    (l.down_filter, l.down_taps, l.out_cutoff, l.out_half_width)]:
            assert float(f.double().sum()) == pytest.approx(1.0, abs=1e-6)
            assert float(_response_db(f, fs, [0.0])[0]) == pytest.approx(0.0, abs=1e-5)
            target = kaiser_atten(taps, 2 * hw / (fs / 2))
            stop_db = float(_response_db(f, fs, np.linspace(cutoff + hw, fs / 2, 400)).max())
            assert stop_db < -min(target - 7, 60) and stop_db < -25, (name, taps, target, stop_db)
            if cutoff - hw > 0:
                passband = _response_db(f, fs, np.linspace(0, cutoff - hw, 100))
                assert float(passband.abs().max()) < 1.0, name
            checked += 1
    assert checked == 28
    assert [getattr(syn, n).down_filter.ndim for n in syn.layer_names[:-1]] == [2 if radial else 1] * 12 + [1, 1]


# ---------------------------------------------------------------------------------------------
# Forward / backward on small networks.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("res", [16, 32])
@pytest.mark.parametrize("cfg", ["t", "r"])
def test_forward_backward(cfg, res):
    G = _small(res, cfg)
    z = torch.randn(3, 16)
    img = G(z)
    assert img.shape == (3, 3, res, res) and img.dtype == torch.float32
    assert torch.isfinite(img).all() and float(img.detach().std()) > 0
    (img * torch.randn_like(img)).sum().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert float(p.grad.abs().sum()) > 0, name


def _literal_layer(layer, x, w):
    """The layer as the paper writes it: per-sample modulated (and demodulated) weights applied as
    one grouped convolution, then the step-by-step filtered leaky ReLU."""
    n, i = x.shape[:2]
    k = layer.conv_kernel
    styles = layer.affine(w)
    weight = layer.weight
    if layer.is_torgb:
        styles = styles / math.sqrt(i * k * k)
    else:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    wn = weight.unsqueeze(0) * styles[:, None, :, None, None]                   # [N, O, I, k, k]
    if not layer.is_torgb:
        wn = wn * (wn.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    wn = wn * layer.magnitude_ema.rsqrt()
    y = torch.nn.functional.conv2d(x.reshape(1, n * i, *x.shape[2:]), wn.reshape(-1, i, k, k), padding=k - 1,
                                   groups=n)
    y = y.reshape(n, -1, *y.shape[2:])
    return filtered_lrelu_reference(y, layer.up_filter, layer.down_filter, layer.bias, up=layer.up_factor,
                                    down=layer.down_factor, padding=layer.padding, gain=layer.act_gain,
                                    slope=layer.slope, clamp=layer.conv_clamp)


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_layers_equal_fused_formulation(cfg):
    """Non-fused modulated conv (+ demodulation as the activation's input scale) == the fused
    per-sample-weight formulation, for an up x4 layer, a radial/critical layer and ToRGB."""
    G = _small(32, cfg)
    syn = G.synthesis
    w = torch.randn(3, 16)
    for name in [syn.layer_names[1], syn.layer_names[5], syn.layer_names[12], syn.layer_names[14]]:
        layer = getattr(syn, name)
        with torch.no_grad():
            layer.magnitude_ema.fill_(0.37)
            layer.bias.normal_()
        x = torch.randn(3, layer.in_channels, layer.in_size, layer.in_size)
        ours, ref = layer(x, w), _literal_layer(layer, x, w)
        assert ours.shape == ref.shape == (3, layer.out_channels, layer.out_size, layer.out_size)
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    assert getattr(syn, syn.layer_names[5]).up_factor == 4
    assert getattr(syn, syn.layer_names[1]).down_radial == (cfg == "r")
    assert not getattr(syn, syn.layer_names[12]).down_radial


def test_fourier_input_literal():
    """At the identity transform the input is sin(2 pi (f . p + phase)) sampled at pixel centres
    p = (j + 0.5 - size/2) / sampling_rate (x along columns, y along rows), mixed by weight / sqrt(C)."""
    G = _small(16)
    inp = G.synthesis.input
    w = torch.randn(2, 16)
    x = inp(w)
    size, sr = inp.size, inp.sampling_rate
    assert x.shape == (2, inp.channels, size, size)
    p = (torch.arange(size, dtype=torch.float64) + 0.5 - size / 2) / sr
    f, ph = inp.freqs.double(), inp.phases.double()
    feats = torch.sin(2 * math.pi * (f[:, 0, None, None] * p[None, None, :] + f[:, 1, None, None] * p[None, :, None]
                                     + ph[:, None, None]))                      # [C, H(y), W(x)]
    ref = torch.einsum("oc,chw->ohw", inp.weight.double() / math.sqrt(inp.channels), feats)
    torch.testing.assert_close(x.double(), ref.unsqueeze(0).expand_as(x), rtol=1e-4, atol=1e-5)
    assert (inp.freqs.norm(dim=1) <= inp.bandwidth).all()
    assert ((inp.phases >= -0.5) & (inp.phases < 0.5)).all()


def test_synthesis_and_mapping_calling_conventions():
    G = _small(16)
    z = torch.randn(2, 16)
    ws = G.mapping(z, None, update_emas=False)
    assert ws.shape == (2, 16, 16)
    assert torch.equal(G.synthesis(ws), G(z))
    assert torch.equal(G.synthesis(ws, update_emas=False, noise_mode="const", force_fp32=True), G(z))
    with pytest.raises(ValueError):
        G.synthesis(ws[:, :15])
    with pytest.raises(ValueError):
        G.synthesis(ws, noise_mode="bogus")


def test_noise_mode_is_ignored():
    G = _small(16)
    z = torch.randn(2, 16)
    with torch.no_grad():
        ref = G(z, noise_mode="const")
        for mode in ("random", "none"):
            assert torch.equal(G(z, noise_mode=mode), ref)


def test_magnitude_ema_updates_only_with_update_emas():
    G = _small(16)
    emas = lambda: torch.stack([getattr(G.synthesis, n).magnitude_ema.clone() for n in G.synthesis.layer_names])
    w_avg = G.mapping.w_avg.clone()
    before = emas()
    assert torch.equal(before, torch.ones(15))
    z = torch.randn(4, 16)
    G(z)
    assert torch.equal(emas(), before) and torch.equal(G.mapping.w_avg, w_avg)
    G(z, update_emas=True)
    after = emas()
    assert (after != before).all()
    assert not torch.equal(G.mapping.w_avg, w_avg)
    # One update is lerp(mean(x^2), ema, beta) for the input of each layer: check the first.
    x = G.synthesis.input(G.mapping(z, None)[:, 0])
    beta = G.synthesis.L0_36_16.magnitude_ema_beta
    assert beta == 0.999
    assert float(after[0]) == pytest.approx(float(x.detach().square().mean() * (1 - beta) + beta), rel=1e-5)


def test_magnitude_ema_beta_argument():
    G = _small(16, magnitude_ema_beta=0.5)
    assert all(getattr(G.synthesis, n).magnitude_ema_beta == 0.5 for n in G.synthesis.layer_names)
    assert G.init_kwargs["magnitude_ema_beta"] == 0.5


def test_conditional_generator():
    G = _small(16, c_dim=5)
    z = torch.randn(3, 16)
    c = torch.nn.functional.one_hot(torch.tensor([0, 1, 4]), 5).float()
    img = G(z, c)
    assert img.shape == (3, 3, 16, 16) and torch.isfinite(img).all()
    assert not torch.allclose(img, G(z, c.roll(1, dims=0)))
    assert G.state_dict()["mapping.embed.weight"].shape == (16, 5)
    with pytest.raises(ValueError):
        G(z)


def test_truncation():
    G = _small(16)
    with torch.no_grad():
        G(torch.randn(16, 16), update_emas=True)          # give w_avg a non-trivial value
        img = G(torch.randn(4, 16), truncation_psi=0)
    assert torch.allclose(img, img[:1].expand_as(img), atol=1e-6)
    ws = G.mapping(torch.randn(2, 16), None, truncation_psi=0.5, truncation_cutoff=8)
    ws_full = G.mapping(torch.randn(2, 16), None, truncation_psi=0.5)
    assert ws.shape == ws_full.shape == (2, 16, 16)


def test_state_dict_round_trip():
    G = _small(16, "r")
    with torch.no_grad():
        G(torch.randn(8, 16), update_emas=True)
    set_input_transform(G, translate=(0.1, -0.05), rotate=10)
    G2 = Generator(**G.init_kwargs)
    G2.load_state_dict(G.state_dict())
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(G(z), G2(z))
    assert isinstance(G.init_kwargs, dict) and G.init_kwargs["use_radial_filters"] is True


def test_discriminator_is_stylegan2s():
    assert Discriminator is stylegan2.Discriminator
    D = Discriminator(img_resolution=16, channel_base=128, channel_max=32)
    assert D(_small(16)(torch.randn(2, 16))).shape == (2, 1)


# ---------------------------------------------------------------------------------------------
# Translate and rotate through the Fourier input's transform.
# ---------------------------------------------------------------------------------------------

def test_make_transform():
    m = make_transform((0.25, -0.5), 90)
    np.testing.assert_allclose(m, [[0, 1, 0.25], [-1, 0, -0.5], [0, 0, 1]], atol=1e-12)
    G = _small(16)
    set_input_transform(G, translate=(0.25, -0.5), rotate=30)
    np.testing.assert_allclose(G.synthesis.input.transform.double().numpy(),
                               np.linalg.inv(make_transform((0.25, -0.5), 30)), atol=1e-6)


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_integer_pixel_translation(cfg):
    """The image spans [-0.5, 0.5] in the Fourier input's units (its grid puts pixel centres at
    ``(j + 0.5 - size/2) / sampling_rate``, and the last sampling rate equals the resolution), so a
    translation of ``d / R`` moves the image by ``d`` pixels (+x = right = increasing column, +y =
    down = increasing row). Outside a ``|d| + 4`` pixel border (the wrapped-around columns of
    ``roll`` and the boundary) the shifted image must match up to the aliasing that a random,
    untrained network leaves: measured ~0.1-0.5 % (T) and < 0.02 % (R) of the image's RMS, against
    12-40 % for a shift in the wrong direction."""
    res = 32
    G = _small(res, cfg, channel_base=2048, channel_max=32)
    z = torch.randn(2, 16)
    with torch.no_grad():
        ref = G(z)
        rms = ref.square().mean().sqrt()
        for d, axis in [(1, "x"), (2, "y"), (-3, "x"), (-2, "y")]:
            set_input_transform(G, translate=(d / res, 0) if axis == "x" else (0, d / res))
            img = G(z)
            dim = 3 if axis == "x" else 2
            crop = [slice(None)] * 4
            crop[dim] = slice(abs(d) + 4, res - abs(d) - 4)
            err = (img - ref.roll(d, dims=dim))[tuple(crop)].square().mean().sqrt() / rms
            wrong = (img - ref.roll(-d, dims=dim))[tuple(crop)].square().mean().sqrt() / rms
            assert err < 0.02, (d, axis, float(err))
            assert wrong > 5 * err + 0.05, (d, axis, float(wrong))
    set_input_transform(G)
    with torch.no_grad():
        assert torch.equal(G(z), ref)


def test_rotation():
    """A 0-degree rotation changes nothing; 90 degrees changes the image, and for config R (1x1
    convolutions, radial filters, a 90-degree-symmetric grid) it is exactly the rotated image."""
    z = torch.randn(2, 16)
    for cfg in ("t", "r"):
        G = _small(32, cfg, channel_base=2048, channel_max=32)
        with torch.no_grad():
            ref = G(z)
            set_input_transform(G, rotate=0)
            assert torch.equal(G(z), ref)
            set_input_transform(G, rotate=90)
            img = G(z)
        rms = ref.square().mean().sqrt()
        assert (img - ref).square().mean().sqrt() > 0.1 * rms
        err = (img - torch.rot90(ref, 1, dims=(2, 3))).square().mean().sqrt() / rms
        if cfg == "r":
            assert err < 1e-4, float(err)
        else:
            assert err > 0.1, float(err)     # 3x3 kernels are not rotation equivariant
    G.set_transform(rotate=15)
    assert not torch.equal(G.synthesis.input.transform, torch.eye(3))


def test_winograd_path_equals_direct_convolution(monkeypatch):
    """Wide layers take the Winograd F(4x4, 3x3) path on CPU; the images (and gradients) must equal
    the direct-convolution network's to float32 rounding."""
    import zoo.ops.winograd as winograd

    torch.manual_seed(0)
    G = Generator(z_dim=32, w_dim=32, img_resolution=16, channel_base=16384, channel_max=256)
    assert any(winograd.use_winograd(torch.zeros(1, 256, 4, 4), l.weight) for l in G.synthesis.children()
               if hasattr(l, "weight") and l.weight.ndim == 4 and l.weight.shape[-1] == 3)
    z = torch.randn(2, 32)

    def run():
        G.zero_grad(set_to_none=True)
        img = G(z)
        img.square().sum().backward()
        return img.detach(), G.synthesis.L2_36_256.weight.grad.clone()

    fast = run()
    monkeypatch.setattr(winograd, "use_winograd", lambda x, w: False)
    direct = run()
    # Rounding compounds over the network's 14 layers and depends on the CPU's kernels: the largest
    # difference measured 1.0e-4 of the largest value on an AVX2-only host (less with AVX-512); a
    # wrong transform or tile is off by O(1).
    for a, b in zip(fast, direct):
        assert ((a - b).abs().max() / b.abs().max()).item() < 3e-4
