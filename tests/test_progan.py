"""ProGAN networks and loss: official parameter counts, equalized lr with the gain inside the weight
scale, pixel norm, minibatch-stddev groups, fade-in of G and D, WGAN-GP + drift."""
import math

import pytest
import torch
import torch.nn.functional as F

from zoo import registry
from zoo.models import progan
from zoo.ops.wscale import WScaleConv2d, WScaleLinear, nearest_upsample
from zoo.training.losses import ProGANLoss, build_loss

TINY = dict(channel_base=256, channel_max=32)


def _count(m):
    return sum(p.numel() for p in m.parameters())


def _tiny(res=16, c_dim=0, seed=0):
    torch.manual_seed(seed)
    G = progan.Generator(z_dim=32, c_dim=c_dim, img_resolution=res, **TINY)
    D = progan.Discriminator(c_dim=c_dim, img_resolution=res, **TINY)
    return G, D


def test_parameter_counts_at_1024_match_the_official_networks():
    spec = registry.get("progan")
    G = spec.build_generator(img_resolution=1024)
    D = spec.build_discriminator(img_resolution=1024)
    assert _count(G) == 23_079_115
    assert _count(D) == 23_087_249
    # Channels nf = min(8192 / 2^stage, 512): 512 up to 32 px, then halving down to 16 at 1024.
    widths = {res: getattr(G, f"b{res}").torgb.in_channels for res in G.block_resolutions}
    assert widths == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    # The 4x4 dense layer's bias is per channel (applied after the reshape), not per output unit.
    assert G.b4.dense.weight.shape == (512 * 16, 512) and G.b4.dense_bias.shape == (512,)
    assert G.b4.dense.bias is None


def test_equalized_lr_puts_the_gain_inside_the_weight_scale_and_adds_the_bias_after():
    torch.manual_seed(0)
    conv = WScaleConv2d(6, 5, 3, activation="lrelu")
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 6, 7, 7)
    ref = F.leaky_relu(F.conv2d(x, conv.weight * math.sqrt(2) / math.sqrt(6 * 9), padding=1)
                       + conv.bias.reshape(1, -1, 1, 1), 0.2)   # no gain after the activation
    torch.testing.assert_close(conv(x), ref)
    assert conv.weight.std().item() == pytest.approx(1, abs=0.2)   # stored at unit scale

    down = WScaleConv2d(4, 3, 3, down=True)   # fused 4x4 stride-2 kernel == conv then 2x2 average
    x = torch.randn(2, 4, 8, 8)
    ref = F.avg_pool2d(F.conv2d(x, down.weight * math.sqrt(2) / 6, padding=1), 2)
    torch.testing.assert_close(down(x), ref)

    G, _ = _tiny()
    assert G.b4.dense.weight_gain == pytest.approx(math.sqrt(2) / 4 / math.sqrt(32))
    assert G.b16.torgb.weight_gain == pytest.approx(1 / math.sqrt(G.b16.torgb.in_channels))  # gain 1
    fc = WScaleLinear(8, 4, gain=1)
    torch.testing.assert_close(fc(torch.eye(8)), fc.weight.t() / math.sqrt(8))


def test_pixel_norm_follows_every_generator_conv():
    G, _ = _tiny()
    outputs = []
    for res in G.block_resolutions:
        getattr(G, f"b{res}").register_forward_hook(lambda m, i, o: outputs.append(o))
    G(torch.randn(3, 32))
    assert len(outputs) == 3
    for x in outputs:  # unit mean square over channels at every pixel
        torch.testing.assert_close(x.square().mean(dim=1), torch.ones_like(x[:, 0]), atol=1e-4, rtol=0)


def test_generator_fade_in_blends_the_upsampled_previous_output_with_the_new_block():
    G, _ = _tiny(res=16)
    z = torch.randn(4, 32)
    with torch.no_grad():
        G8 = progan.Generator(z_dim=32, img_resolution=8, **TINY)
        G8.load_state_dict({k: v for k, v in G.state_dict().items() if k in G8.state_dict()})
        at_prev = G(z, lod=1.0)       # alpha = 0: the 8 px network, upsampled
        at_new = G(z, lod=0.0)        # alpha = 1: the new 16 px block
        torch.testing.assert_close(at_prev, nearest_upsample(G8(z), 2), rtol=0, atol=0)
        x = G.b8(G.b4(F.normalize(z, dim=1) * math.sqrt(32)))
        torch.testing.assert_close(at_new, G.b16.torgb(G.b16(x)), atol=1e-5, rtol=1e-5)
        for t in (0.25, 0.5, 0.9):
            torch.testing.assert_close(G(z, lod=t), torch.lerp(at_new, at_prev, t), atol=1e-5, rtol=1e-5)
        # At lod 2 only the 4x4 block runs; the image is its output, nearest-upsampled to 16 px.
        low = G(z, lod=2.0)
        torch.testing.assert_close(low, nearest_upsample(low[:, :, ::4, ::4], 4), rtol=0, atol=0)
        G.lod.fill_(1.0)  # the buffer is what training sets (and the checkpoint stores)
        torch.testing.assert_close(G(z), at_prev, rtol=0, atol=0)


def test_discriminator_fade_in_and_lod_bookkeeping():
    _, D = _tiny(res=16)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        d1 = D(x, lod=1.0)
        # At lod 1 D only sees the 8 px (box-downsampled) image, and not the 16 px block's weights.
        torch.testing.assert_close(D(nearest_upsample(F.avg_pool2d(x, 2), 2), lod=1.0), d1, atol=1e-5, rtol=1e-5)
        D.b16.conv0.weight.add_(1.0)
        torch.testing.assert_close(D(x, lod=1.0), d1, rtol=0, atol=0)
        assert not torch.allclose(D(x, lod=0.0), D(x, lod=0.5))
        # Fade: the features entering the 8 px block are lerp(new path, fromrgb_8(downsampled), t).
        feats = []
        D.b8.conv0.register_forward_hook(lambda m, i, o: feats.append(i[0]))
        D(x, lod=0.3)
        new = D.b16(D.b16.fromrgb(x))
        old = D.b8.fromrgb(F.avg_pool2d(x, 2))
        torch.testing.assert_close(feats[-1], torch.lerp(new, old, 0.3), atol=1e-5, rtol=1e-5)


def test_minibatch_stddev_works_on_groups_of_four_not_the_whole_batch():
    _, D = _tiny(res=8)
    x = torch.randn(8, 3, 8, 8)
    with torch.no_grad():
        base = D(x)
        y = x.clone()
        y[1] += 1.0  # sample 1 belongs to group {1, 3, 5, 7} (sample i is in group i % 2)
        changed = (D(y) - base).abs().flatten() > 1e-6
    assert changed.tolist() == [False, True, False, True, False, True, False, True]


def test_wgan_gp_and_drift_terms():
    G, D = _tiny(res=8)
    hp = dict(wgan_lambda=10.0, wgan_target=1.0, wgan_epsilon=0.001, cond_weight=1.0, r1_gamma=None)
    loss = build_loss("progan", G, D, hp)
    assert isinstance(loss, ProGANLoss) and loss.d_first
    real = torch.randn(4, 3, 8, 8)
    z, c = torch.randn(4, 32), torch.zeros(4, 0)
    D.requires_grad_(True)
    torch.manual_seed(1)
    loss.accumulate("Dboth", real, c, z, c, gain=1.0, cur_nimg=0)
    stats = loss.pop_stats()
    assert all(math.isfinite(v) for v in stats.values())
    assert stats["Loss/gp_penalty"] > 0
    for name, p in D.named_parameters():  # the 4x4 fromrgb is not in use at lod 0
        assert (p.grad is None) == name.startswith("b4.fromrgb"), name
        assert p.grad is None or torch.isfinite(p.grad).all(), name

    # The penalty is (||grad D(x_hat)|| - 1)^2 at x_hat = lerp(real, fake, u), u ~ U[0, 1] per sample.
    with torch.no_grad():
        fake = G(z)
    torch.manual_seed(2)
    gp = loss.gradient_penalty(real, fake, c)
    torch.manual_seed(2)
    u = torch.rand(4, 1, 1, 1)
    mixed = torch.lerp(real, fake, u).requires_grad_(True)
    (g,) = torch.autograd.grad(D(mixed).sum(), mixed)
    torch.testing.assert_close(gp, (g.flatten(1).norm(dim=1) - 1).square(), atol=1e-5, rtol=1e-5)

    # Without the penalty: D loss = D(fake) - D(real) + 0.001 * D(real)^2, G loss = -D(fake).
    loss.wgan_lambda = 0.0
    loss.accumulate("Dboth", real, c, z, c, gain=1.0, cur_nimg=0)
    with torch.no_grad():
        expect = (D(fake) - D(real) + 0.001 * D(real).square()).mean()
    assert loss.pop_stats()["Loss/D/loss"] == pytest.approx(float(expect), rel=1e-5, abs=1e-6)
    G.requires_grad_(True)
    loss.accumulate("Gboth", real, c, z, c, gain=1.0, cur_nimg=0)
    with torch.no_grad():
        assert loss.pop_stats()["Loss/G/loss"] == pytest.approx(float(-D(G(z)).mean()), rel=1e-5, abs=1e-6)


def test_conditional_acgan_outputs_labels_and_adds_the_label_terms():
    G, D = _tiny(res=8, c_dim=3)
    c = F.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()
    img = G(torch.randn(4, 32), c)
    scores, labels = D(img, c, return_labels=True)
    assert scores.shape == (4, 1) and labels.shape == (4, 3)
    loss = build_loss("progan", G, D, dict(wgan_lambda=10.0))
    D.requires_grad_(True)
    loss.accumulate("Dboth", torch.randn(4, 3, 8, 8), c, torch.randn(4, 32), c, gain=1.0, cur_nimg=0)
    assert all(math.isfinite(v) for v in loss.pop_stats().values())


def test_truncation_is_refused_and_noise_mode_is_accepted():
    G, _ = _tiny(res=8)
    z = torch.randn(2, 32)
    torch.testing.assert_close(G(z, None, noise_mode="random"), G(z, None, noise_mode="const"))
    with pytest.raises(ValueError, match="truncation"):
        G(z, None, truncation_psi=0.7)
