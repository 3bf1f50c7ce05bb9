"""Tests for zoo.models.stylegan2: parameter counts and state-dict layout (NVIDIA's), the G/D
calling conventions, determinism, and first/second-order gradients for R1 and path length."""
import math

import numpy as np
import pytest
import torch

from zoo.models.stylegan2 import Discriminator, Generator

# Small networks for fast tests.
SMALL_G = dict(z_dim=32, w_dim=32, img_resolution=16, channel_base=128, channel_max=32, mapping_layers=2)
SMALL_D = dict(img_resolution=16, channel_base=128, channel_max=32)


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _small_pair(seed=0, **g_overrides):
    torch.manual_seed(seed)
    G = Generator(**{**SMALL_G, **g_overrides})
    D = Discriminator(**{**SMALL_D, "c_dim": G.c_dim, "img_channels": G.img_channels})
    return G, D


# ---------------------------------------------------------------------------------------------
# Parameter counts and state-dict layout (must equal NVIDIA's networks_stylegan2).
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,g_params,d_params", [
    (dict(img_resolution=1024, channel_base=32768), 30_370_060, 29_012_513),
    (dict(img_resolution=256, channel_base=16384), 24_767_458, 24_001_089),
])
def test_parameter_counts(kwargs, g_params, d_params):
    assert _count(Generator(mapping_layers=8, **kwargs)) == g_params
    assert _count(Discriminator(**kwargs)) == d_params


def test_parameter_counts_other_configs():
    assert _count(Generator(img_resolution=1024, mapping_layers=2)) == 28_794_124
    assert _count(Generator(img_resolution=256, channel_base=32768)) == 30_034_338
    assert _count(Discriminator(img_resolution=256, channel_base=32768)) == 28_864_129


def test_generator_state_dict_keys_8px():
    G = Generator(z_dim=16, w_dim=16, img_resolution=8, channel_base=64, channel_max=16, mapping_layers=2)
    sd = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    expected = {
        "synthesis.b4.const": (16, 4, 4),
        "synthesis.b4.resample_filter": (4, 4),
        "synthesis.b4.conv1.weight": (16, 16, 3, 3),
        "synthesis.b4.conv1.noise_strength": (),
        "synthesis.b4.conv1.bias": (16,),
        "synthesis.b4.conv1.resample_filter": (4, 4),
        "synthesis.b4.conv1.noise_const": (4, 4),
        "synthesis.b4.conv1.affine.weight": (16, 16),
        "synthesis.b4.conv1.affine.bias": (16,),
        "synthesis.b4.torgb.weight": (3, 16, 1, 1),
        "synthesis.b4.torgb.bias": (3,),
        "synthesis.b4.torgb.affine.weight": (16, 16),
        "synthesis.b4.torgb.affine.bias": (16,),
        "synthesis.b8.resample_filter": (4, 4),
        "synthesis.b8.conv0.weight": (8, 16, 3, 3),
        "synthesis.b8.conv0.noise_strength": (),
        "synthesis.b8.conv0.bias": (8,),
        "synthesis.b8.conv0.resample_filter": (4, 4),
        "synthesis.b8.conv0.noise_const": (8, 8),
        "synthesis.b8.conv0.affine.weight": (16, 16),
        "synthesis.b8.conv0.affine.bias": (16,),
        "synthesis.b8.conv1.weight": (8, 8, 3, 3),
        "synthesis.b8.conv1.noise_strength": (),
        "synthesis.b8.conv1.bias": (8,),
        "synthesis.b8.conv1.resample_filter": (4, 4),
        "synthesis.b8.conv1.noise_const": (8, 8),
        "synthesis.b8.conv1.affine.weight": (8, 16),
        "synthesis.b8.conv1.affine.bias": (8,),
        "synthesis.b8.torgb.weight": (3, 8, 1, 1),
        "synthesis.b8.torgb.bias": (3,),
        "synthesis.b8.torgb.affine.weight": (8, 16),
        "synthesis.b8.torgb.affine.bias": (8,),
        "mapping.w_avg": (16,),
        "mapping.fc0.weight": (16, 16),
        "mapping.fc0.bias": (16,),
        "mapping.fc1.weight": (16, 16),
        "mapping.fc1.bias": (16,),
    }
    assert sd == expected
    assert list(sd)[0].startswith("synthesis.") and list(sd)[-1].startswith("mapping.")  # NVIDIA's order
    # Conditional: embed layer, concatenated input to fc0.
    Gc = Generator(z_dim=16, c_dim=5, w_dim=16, img_resolution=8, channel_base=64, channel_max=16, mapping_layers=2)
    sdc = {k: tuple(v.shape) for k, v in Gc.state_dict().items()}
    assert sdc["mapping.embed.weight"] == (16, 5) and sdc["mapping.embed.bias"] == (16,)
    assert sdc["mapping.fc0.weight"] == (16, 32)


def test_discriminator_state_dict_keys_8px():
    D = Discriminator(img_resolution=8, channel_base=64, channel_max=16)
    sd = {k: tuple(v.shape) for k, v in D.state_dict().items()}
    expected = {
        "b8.resample_filter": (4, 4),
        "b8.fromrgb.weight": (8, 3, 1, 1), "b8.fromrgb.bias": (8,), "b8.fromrgb.resample_filter": (4, 4),
        "b8.conv0.weight": (8, 8, 3, 3), "b8.conv0.bias": (8,), "b8.conv0.resample_filter": (4, 4),
        "b8.conv1.weight": (16, 8, 3, 3), "b8.conv1.bias": (16,), "b8.conv1.resample_filter": (4, 4),
        "b8.skip.weight": (16, 8, 1, 1), "b8.skip.resample_filter": (4, 4),
        "b4.conv.weight": (16, 17, 3, 3), "b4.conv.bias": (16,), "b4.conv.resample_filter": (4, 4),
        "b4.fc.weight": (16, 256), "b4.fc.bias": (16,),
        "b4.out.weight": (1, 16), "b4.out.bias": (1,),
    }
    assert sd == expected
    Dc = Discriminator(c_dim=5, img_resolution=8, channel_base=64, channel_max=16, mapping_layers=2)
    sdc = {k: tuple(v.shape) for k, v in Dc.state_dict().items()}
    assert sdc["mapping.embed.weight"] == (16, 5)
    assert sdc["mapping.fc1.weight"] == (16, 16) and "mapping.w_avg" not in sdc
    assert sdc["b4.out.weight"] == (16, 16)                     # cmap_dim = channels at 4x4


def test_1024_state_dict_spot_checks():
    sd = {k: tuple(v.shape) for k, v in Generator(img_resolution=1024).state_dict().items()}
    assert sd["synthesis.b4.const"] == (512, 4, 4)
    assert sd["synthesis.b1024.conv0.weight"] == (32, 64, 3, 3)
    assert sd["synthesis.b1024.conv0.affine.weight"] == (64, 512)
    assert sd["synthesis.b1024.conv1.noise_const"] == (1024, 1024)
    assert sd["synthesis.b1024.torgb.weight"] == (3, 32, 1, 1)
    assert sd["mapping.fc7.weight"] == (512, 512) and sd["mapping.w_avg"] == (512,)
    sdd = {k: tuple(v.shape) for k, v in Discriminator(img_resolution=1024).state_dict().items()}
    assert sdd["b1024.fromrgb.weight"] == (32, 3, 1, 1)
    assert sdd["b1024.conv0.weight"] == (32, 32, 3, 3)
    assert sdd["b1024.conv1.weight"] == (64, 32, 3, 3)
    assert sdd["b1024.skip.weight"] == (64, 32, 1, 1)
    assert sdd["b4.conv.weight"] == (512, 513, 3, 3)
    assert sdd["b4.fc.weight"] == (512, 8192)
    assert sdd["b4.out.weight"] == (1, 512)


def test_parameter_storage_matches_official_init():
    torch.manual_seed(0)
    G = Generator(img_resolution=8, channel_base=256, channel_max=64, z_dim=64, w_dim=64, mapping_layers=2)
    assert torch.all(G.synthesis.b8.conv0.affine.bias == 1)          # affine bias_init = 1
    assert torch.all(G.synthesis.b8.torgb.affine.bias == 1)
    assert G.synthesis.b8.conv0.noise_strength.item() == 0
    assert G.mapping.fc0.weight.std().item() == pytest.approx(100, rel=0.1)   # randn / 0.01
    torch.testing.assert_close(G.synthesis.b8.resample_filter.sum(), torch.tensor(1.0))


def test_load_state_dict_roundtrip_gives_identical_images():
    G1, _ = _small_pair(seed=1)
    G2, _ = _small_pair(seed=2)
    G2.load_state_dict(G1.state_dict())
    z = torch.randn(2, G1.z_dim)
    with torch.no_grad():
        torch.testing.assert_close(G1(z, noise_mode="const"), G2(z, noise_mode="const"), rtol=0, atol=0)
    rebuilt = Generator(**G1.init_kwargs)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in G1.state_dict().items()}


def test_init_kwargs_are_plain():
    G, D = _small_pair()
    for kw in (G.init_kwargs, D.init_kwargs):
        for v in kw.values():
            assert v is None or isinstance(v, (bool, int, float, str, list))
    assert Discriminator(**D.init_kwargs).init_kwargs == D.init_kwargs


# ---------------------------------------------------------------------------------------------
# Generator API.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("res", [4, 8, 32])
def test_generator_shapes_and_num_ws(res):
    G = Generator(z_dim=16, w_dim=16, img_resolution=res, channel_base=64, channel_max=16, mapping_layers=1,
                  img_channels=1)
    assert G.num_ws == 2 * int(math.log2(res)) - 2
    z = torch.randn(3, 16)
    ws = G.mapping(z)
    assert ws.shape == (3, G.num_ws, 16)
    img = G.synthesis(ws)
    assert img.shape == (3, 1, res, res) and img.dtype == torch.float32 and img.is_contiguous()
    assert G(z).shape == (3, 1, res, res)


@pytest.mark.parametrize("res", [0, 2, 3, 12, 100, 48.0, None])
def test_generator_rejects_bad_resolution(res):
    with pytest.raises(ValueError, match="power of two|required"):
        Generator(img_resolution=res)
    with pytest.raises(ValueError, match="power of two|required"):
        Discriminator(img_resolution=res)


def test_truncation_psi_zero_gives_identical_images():
    G, _ = _small_pair()
    with torch.no_grad():
        G.mapping(torch.randn(16, G.z_dim), update_emas=True)              # make w_avg non-trivial
        assert G.mapping.w_avg.abs().sum() > 0
        img = G(torch.randn(4, G.z_dim), truncation_psi=0, noise_mode="const")
    torch.testing.assert_close(img, img[:1].expand_as(img), rtol=0, atol=1e-6)


def test_truncation_cutoff_and_w_avg_tracking():
    G, _ = _small_pair()
    z = torch.randn(5, G.z_dim)
    with torch.no_grad():
        ws = G.mapping(z)
        before = G.mapping.w_avg.clone()
        G.mapping(z, update_emas=True)
        torch.testing.assert_close(G.mapping.w_avg, ws[:, 0].mean(0).lerp(before, G.init_kwargs["w_avg_beta"]))
        w_avg = G.mapping.w_avg
        cut = G.mapping(z, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], w_avg.lerp(ws[:, :2], 0.5))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])


def test_noise_modes():
    G, _ = _small_pair()
    with torch.no_grad():
        for layer in G.modules():
            if hasattr(layer, "noise_strength"):
                layer.noise_strength.fill_(0.5)
        ws = G.mapping(torch.randn(2, G.z_dim))
        const_a, const_b = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const")
        rand_a, rand_b = G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
        none = G.synthesis(ws, noise_mode="none")
    torch.testing.assert_close(const_a, const_b, rtol=0, atol=0)
    assert not torch.allclose(rand_a, rand_b)
    assert not torch.allclose(none, const_a)
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="fixed")


def test_fused_and_nonfused_paths_and_memory_formats_agree():
    G, _ = _small_pair(architecture="skip")
    z = torch.randn(3, G.z_dim)
    with torch.no_grad():
        reference = G(z, noise_mode="const", fused_modconv=False)
        torch.testing.assert_close(G(z, noise_mode="const", fused_modconv=True), reference, atol=1e-5, rtol=1e-5)
        G.synthesis.channels_last = False
        torch.testing.assert_close(G(z, noise_mode="const"), reference, atol=1e-5, rtol=1e-5)
        G.synthesis.channels_last = None
    # Grad mode (no buffer reuse) and a forward hook (disables reuse) give the same images.
    torch.testing.assert_close(G(z, noise_mode="const"), reference, atol=1e-5, rtol=1e-5)
    captured = []
    handle = G.synthesis.b8.conv0.register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        torch.testing.assert_close(G(z, noise_mode="const"), reference, atol=1e-5, rtol=1e-5)
    handle.remove()
    with torch.no_grad():
        kept = captured[0].clone()
        G(z, noise_mode="const")
    torch.testing.assert_close(captured[0], kept)


@pytest.mark.parametrize("architecture", ["orig", "resnet"])
def test_other_generator_architectures(architecture):
    G, _ = _small_pair(architecture=architecture)
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        assert G(z).shape == (2, 3, 16, 16)
    assert torch.isfinite(G(z)).all()


def test_conditional_generator_and_discriminator():
    torch.manual_seed(0)
    G = Generator(**{**SMALL_G, "c_dim": 4})
    D = Discriminator(**{**SMALL_D, "c_dim": 4, "mapping_layers": 2})
    z = torch.randn(4, G.z_dim)
    c = torch.nn.functional.one_hot(torch.arange(4), 4).float()
    img = G(z, c)
    assert img.shape == (4, 3, 16, 16)
    logits = D(img, c)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    with pytest.raises(ValueError, match="conditional"):
        D(img)


def test_generator_input_validation():
    G, _ = _small_pair()
    with pytest.raises(ValueError, match=r"z must have shape"):
        G(torch.randn(2, G.z_dim + 1))
    with pytest.raises(ValueError, match=r"ws must have shape"):
        G.synthesis(torch.randn(2, G.num_ws - 1, G.w_dim))


# ---------------------------------------------------------------------------------------------
# Discriminator.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("architecture", ["resnet", "skip", "orig"])
def test_discriminator_output(architecture):
    torch.manual_seed(0)
    D = Discriminator(**SMALL_D, architecture=architecture)
    x = torch.randn(4, 3, 16, 16)
    logits = D(x)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    D.channels_last = False
    torch.testing.assert_close(D(x), logits, atol=1e-5, rtol=1e-5)


def test_discriminator_memory_formats_agree():
    torch.manual_seed(0)
    D = Discriminator(**SMALL_D)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        a = D(x)
        D.channels_last = False
        b = D(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_discriminator_mbstd_bad_batch():
    D = Discriminator(**SMALL_D, mbstd_group_size=4)
    with pytest.raises(ValueError, match="group size 4"):
        D(torch.randn(6, 3, 16, 16))
    assert D(torch.randn(2, 3, 16, 16)).shape == (2, 1)     # group = min(4, N)
    with pytest.raises(ValueError, match="img must have shape"):
        D(torch.randn(2, 3, 8, 8))


# ---------------------------------------------------------------------------------------------
# Regularisers: second-order gradients through G and D.
# ---------------------------------------------------------------------------------------------

def test_r1_penalty_gives_finite_gradients_for_all_params():
    _, D = _small_pair()
    real = torch.randn(4, 3, 16, 16, requires_grad=True)
    logits = D(real)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    penalty = grad.square().sum(dim=[1, 2, 3]).mean()
    (penalty + logits.sum() * 0).backward()      # as in training: every parameter gets a .grad
    for name, p in D.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in D.parameters())


def test_path_length_penalty_gives_finite_gradients_for_all_params():
    G, _ = _small_pair()
    z = torch.randn(4, G.z_dim)
    ws = G.mapping(z)
    # Style mixing, as in training.
    ws2 = G.mapping(torch.randn(4, G.z_dim))
    ws = torch.cat([ws[:, :2], ws2[:, 2:]], dim=1)
    img = G.synthesis(ws, noise_mode="random")
    noise = torch.randn_like(img) / np.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    ((lengths - lengths.mean().detach()).square().mean() + img.mean() * 0).backward()
    for name, p in G.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_generator_and_discriminator_backward_together():
    G, D = _small_pair()
    z = torch.randn(4, G.z_dim)
    loss = torch.nn.functional.softplus(-D(G(z))).mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in G.parameters() if p.grad is not None)
    assert G.synthesis.b16.conv1.weight.grad.abs().sum() > 0
    assert G.mapping.fc0.weight.grad.abs().sum() > 0


def test_registry_builds_these_networks():
    registry = pytest.importorskip("zoo.registry")
    spec = registry.get("stylegan2")
    G = spec.build_generator(**SMALL_G)
    D = spec.build_discriminator(**SMALL_D)
    assert isinstance(G, Generator) and isinstance(D, Discriminator)
