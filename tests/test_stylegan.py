"""StyleGAN (v1) networks and loss: the official parameter count, the layer epilogue (noise, bias,
lrelu, instance norm, AdaIN), truncation only when asked for, style mixing over the active layers,
per-layer noise, blur, fade-in, R1."""
import math

import pytest
import torch
import torch.nn.functional as F

from zoo import registry
from zoo.models import progan, stylegan
from zoo.ops.wscale import nearest_upsample
from zoo.training.losses import StyleGANLoss, build_loss

TINY = dict(channel_base=256, channel_max=32)


def _count(m):
    return sum(p.numel() for p in m.parameters())


def _tiny(res=16, seed=0, c_dim=0):
    torch.manual_seed(seed)
    G = stylegan.Generator(z_dim=32, w_dim=32, c_dim=c_dim, img_resolution=res, mapping_layers=2, **TINY)
    D = stylegan.Discriminator(c_dim=c_dim, img_resolution=res, **TINY)
    return G, D


def test_parameter_count_at_1024_matches_the_official_network():
    spec = registry.get("stylegan")
    G = spec.build_generator(img_resolution=1024)
    assert _count(G) == 26_219_627
    assert _count(G.mapping) == 2_101_248
    assert _count(G.synthesis) == 24_118_379   # all ToRGB layers included
    assert G.num_ws == 18
    # Noise inputs are buffers (not trainable, not counted), one map per layer.
    noise = [b for n, b in G.named_buffers() if n.endswith("noise_const")]
    assert len(noise) == 18 and sum(b.numel() for b in noise) == 2_796_192
    D = spec.build_discriminator(img_resolution=1024)
    assert _count(D) == 23_087_249 and isinstance(D, progan.Discriminator)
    assert D.b1024.conv1_down.blur_filter is not None


def test_initialisation_and_storage_follow_the_original():
    G, _ = _tiny()
    assert torch.equal(G.synthesis.b4.const.const, torch.ones_like(G.synthesis.b4.const.const))
    layer = G.synthesis.b8.conv0_up
    assert torch.equal(layer.noise_strength, torch.zeros_like(layer.noise_strength))
    assert torch.equal(layer.style.bias, torch.zeros_like(layer.style.bias))   # scale = 1 + 0 at init
    fc = G.mapping.fc0
    assert fc.weight.std().item() == pytest.approx(100, rel=0.2)   # N(0, 1 / lrmul), lrmul 0.01
    assert fc.weight_gain == pytest.approx(math.sqrt(2) / math.sqrt(32) * 0.01) and fc.bias_gain == 0.01
    blur = layer.conv.blur_filter
    torch.testing.assert_close(blur, torch.outer(torch.tensor([1., 2, 1]), torch.tensor([1., 2, 1])) / 16)
    assert G.synthesis.b8.conv1.conv.blur_filter is None   # blur only after upsampling


def test_layer_epilogue_order_noise_bias_lrelu_instance_norm_adain():
    G, _ = _tiny()
    layer = G.synthesis.b8.conv1
    with torch.no_grad():
        for p in (layer.noise_strength, layer.bias, layer.style.weight, layer.style.bias):
            p.normal_()
    x = torch.randn(2, 32, 8, 8)
    w = torch.randn(2, 32)
    y = layer.conv.convolve(x)
    y = y + layer.noise_const.reshape(1, 1, 8, 8) * layer.noise_strength.reshape(1, -1, 1, 1)
    y = F.leaky_relu(y + layer.bias.reshape(1, -1, 1, 1), 0.2)
    y = F.instance_norm(y, eps=1e-8)
    s = F.linear(w, layer.style.weight / math.sqrt(32), layer.style.bias)
    y = y * (s[:, :32, None, None] + 1) + s[:, 32:, None, None]
    torch.testing.assert_close(layer(x, w, "const"), y, atol=1e-4, rtol=1e-4)


def test_truncation_only_when_asked_and_psi_zero_gives_one_image():
    G, _ = _tiny()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
        z = torch.randn(4, 32)
        ws = G.mapping(z)
        assert torch.equal(G.mapping(z, truncation_psi=1.0), ws)    # default: no truncation
        assert torch.equal(ws[:, 0], ws[:, -1])                      # one w broadcast to all layers
        img = G(z, truncation_psi=0.0, noise_mode="const")
        torch.testing.assert_close(img, img[:1].expand_as(img), rtol=0, atol=1e-6)   # same image for all z
        cut = G.mapping(z, truncation_psi=0.7, truncation_cutoff=2)
        torch.testing.assert_close(cut[:, :2], G.mapping.w_avg.lerp(ws[:, :2], 0.7))
        assert torch.equal(cut[:, 2:], ws[:, 2:])                    # only the first `cutoff` layers move
        assert not torch.allclose(G(z, noise_mode="const"), img)
    # Training never truncates: the loss maps z straight to w.
    loss = StyleGANLoss(G, _tiny()[1], style_mixing_prob=0.0)
    _, ws_train = loss.run_G(z, torch.zeros(4, 0))
    torch.testing.assert_close(ws_train, ws)


def test_style_mixing_draws_the_cutoff_over_the_active_layers_only():
    G, D = _tiny(res=16)
    G.synthesis.lod.fill_(1.0)       # 8 px active: 4 of the 6 styles are read
    assert G.synthesis.num_active_ws() == 4
    G.synthesis.lod.fill_(0.5)       # fading in 16 px: its layers count
    assert G.synthesis.num_active_ws() == 6
    G.synthesis.lod.fill_(1.0)
    loss = StyleGANLoss(G, D, style_mixing_prob=1.0)
    z = torch.randn(3, 32)
    c = torch.zeros(3, 0)
    cutoffs = set()
    with torch.no_grad():
        ws1 = G.mapping(z)
        for seed in range(30):
            torch.manual_seed(seed)
            _, ws = loss.run_G(z, c)
            same = [torch.equal(ws[:, i], ws1[:, i]) for i in range(6)]
            cutoff = same.index(False)
            assert all(same[:cutoff]) and not any(same[cutoff:])   # head from z, tail from a second z
            cutoffs.add(cutoff)
    assert cutoffs == {1, 2, 3}
    loss.style_mixing_prob = 0.0
    with torch.no_grad():
        torch.testing.assert_close(loss.run_G(z, c)[1], ws1)


def test_inactive_layers_do_not_change_the_image():
    G, _ = _tiny(res=16)
    ws = G.mapping(torch.randn(2, 32))
    other = ws.clone()
    other[:, 4:] = torch.randn_like(other[:, 4:])
    with torch.no_grad():
        torch.testing.assert_close(G.synthesis(ws, noise_mode="const", lod=1.0),
                                   G.synthesis(other, noise_mode="const", lod=1.0), rtol=0, atol=0)
        assert not torch.allclose(G.synthesis(ws, noise_mode="const", lod=0.5),
                                  G.synthesis(other, noise_mode="const", lod=0.5))


def test_fade_in_is_a_blend_of_the_upsampled_previous_output_and_the_new_block():
    G, _ = _tiny(res=16)
    ws = G.mapping(torch.randn(2, 32))
    with torch.no_grad():
        prev, new = G.synthesis(ws, "const", lod=1.0), G.synthesis(ws, "const", lod=0.0)
        G8 = stylegan.Generator(z_dim=32, w_dim=32, img_resolution=8, mapping_layers=2, **TINY)
        G8.load_state_dict({k: v for k, v in G.state_dict().items() if k in G8.state_dict()})
        torch.testing.assert_close(prev, nearest_upsample(G8.synthesis(ws[:, :4], "const"), 2), rtol=0, atol=0)
        for t in (0.2, 0.7):
            torch.testing.assert_close(G.synthesis(ws, "const", lod=t), torch.lerp(new, prev, t), atol=1e-5, rtol=1e-5)


def test_noise_is_per_layer_and_per_sample():
    G, _ = _tiny(res=8)
    with torch.no_grad():
        for n, p in G.named_parameters():
            if n.endswith("noise_strength"):
                p.fill_(1.0)
        z = torch.randn(1, 32).expand(2, -1)
        a = G(z, noise_mode="random")
        assert not torch.allclose(a[0], a[1])                       # fresh noise per sample
        assert not torch.allclose(G(z, noise_mode="random"), a)
        const = G(z, noise_mode="const")
        torch.testing.assert_close(const[0], const[1])
        torch.testing.assert_close(G(z, noise_mode="const"), const)
        assert not torch.allclose(G(z, noise_mode="none"), const)
    maps = [b for n, b in G.named_buffers() if n.endswith("noise_const")]
    assert len(maps) == G.num_ws
    assert not torch.equal(G.synthesis.b8.conv0_up.noise_const, G.synthesis.b8.conv1.noise_const)


def test_r1_penalty_and_w_avg_updates():
    G, D = _tiny(res=8)
    loss = build_loss("stylegan", G, D, dict(r1_gamma=10.0, style_mixing_prob=0.9, pl_weight=2.0))
    assert isinstance(loss, StyleGANLoss) and loss.pl_weight == 0 and loss.d_first
    real = torch.randn(4, 3, 8, 8)
    z, c = torch.randn(4, 32), torch.zeros(4, 0)
    D.requires_grad_(True)
    loss.accumulate("Dboth", real, c, z, c, gain=1.0, cur_nimg=0)
    loss.end_phase("Dboth")
    stats = loss.pop_stats()
    assert math.isfinite(stats["Loss/r1_penalty"]) and stats["Loss/r1_penalty"] > 0
    x = real.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(D(x).sum(), x)
    assert stats["Loss/r1_penalty"] == pytest.approx(float(g.square().sum([1, 2, 3]).mean()), rel=1e-4)
    w_after_D = G.mapping.w_avg.clone()
    assert not torch.equal(w_after_D, torch.zeros_like(w_after_D))   # w_avg moved in the D pass...
    D.requires_grad_(False)
    G.requires_grad_(True)
    loss.accumulate("Gboth", real, c, z, c, gain=1.0, cur_nimg=0)
    loss.end_phase("Gboth")
    assert not torch.equal(G.mapping.w_avg, w_after_D)              # ...and again in the G pass
    with torch.no_grad():
        expect = w_after_D.lerp(G.mapping(z)[:, 0].mean(0), 1 - 0.995)
    torch.testing.assert_close(G.mapping.w_avg, expect)


def test_conditional_label_switch():
    G, D = _tiny(res=8, c_dim=3)
    c = F.one_hot(torch.tensor([2, 0]), 3).float()
    img = G(torch.randn(2, 32), c)
    assert img.shape == (2, 3, 8, 8) and D(img, c).shape == (2, 1)
    assert G.mapping.fc0.in_features == 64   # z concatenated with its label embedding
