"""Winograd F(4x4, 3x3) convolutions == F.conv2d: forward, input/weight gradients, second derivatives."""
import pytest
import torch
import torch.nn.functional as F

from zoo.ops.winograd import _matrices, conv3x3, use_winograd, winograd_conv3x3


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_transform_matrices_compute_correlations_exactly():
    gen = torch.Generator().manual_seed(0)
    for m, r in [(4, 3), (3, 4)]:
        at, g, bt = (torch.as_tensor(a) for a in _matrices(m, r))
        k = torch.randn(r, generator=gen, dtype=torch.float64)
        d = torch.randn(6, generator=gen, dtype=torch.float64)
        y = at @ ((g @ k) * (bt @ d))
        torch.testing.assert_close(y, torch.stack([(k * d[i:i + r]).sum() for i in range(m)]))
    assert torch.equal(torch.as_tensor(_matrices(4, 3)[2]).round(), torch.as_tensor(_matrices(4, 3)[2]))  # integral B^T


@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("size", [(7, 5), (8, 8), (13, 10)])
def test_forward_matches_conv2d(padding, size):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn([3, 48, *size], generator=gen).contiguous(memory_format=torch.channels_last)
    w = torch.randn([40, 48, 3, 3], generator=gen)
    y = winograd_conv3x3(x, w, padding)
    ref = F.conv2d(x, w, padding=padding)
    assert y.shape == ref.shape
    assert _rel(y, ref) < 2e-5
    y64 = winograd_conv3x3(x.double(), w.double(), padding)
    assert _rel(y64, F.conv2d(x.double(), w.double(), padding=padding)) < 1e-12


@pytest.mark.parametrize("padding", [0, 2])
def test_first_and_second_derivatives_match_conv2d(padding):
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn([2, 24, 9, 11], generator=gen)
    w0 = torch.randn([20, 24, 3, 3], generator=gen)

    def grads(conv):
        x, w = x0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
        y = conv(x, w)
        t = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
        gx, gw = torch.autograd.grad((y * t).sum(), [x, w], create_graph=True)
        hx, hw = torch.autograd.grad(gx.square().sum() + gw.square().sum(), [x, w])
        return y, gx, gw, hx, hw

    ours = grads(lambda x, w: winograd_conv3x3(x, w, padding))
    ref = grads(lambda x, w: F.conv2d(x, w, padding=padding))
    for name, a, b in zip(["y", "dx", "dw", "d2x", "d2w"], ours, ref):
        assert _rel(a, b) < 5e-5, name


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 3, 6, 5], generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn([4, 3, 3, 3], generator=gen, dtype=torch.float64, requires_grad=True)
    for p in (0, 1, 2):
        fn = lambda x, w: winograd_conv3x3(x, w, p)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, w))
        assert torch.autograd.gradgradcheck(fn, (x, w))


def test_dispatch_and_errors():
    x = torch.randn(1, 256, 8, 8)
    assert use_winograd(x, torch.randn(256, 256, 3, 3))
    assert not use_winograd(x[:, :64], torch.randn(64, 64, 3, 3))  # narrow layers: direct is faster
    assert not use_winograd(x, torch.randn(256, 256, 1, 1))
    small = torch.randn(1, 16, 8, 8)
    torch.testing.assert_close(conv3x3(small, torch.ones(16, 16, 3, 3), 2), F.conv2d(small, torch.ones(16, 16, 3, 3), padding=2))
    with pytest.raises(ValueError):
        winograd_conv3x3(x, torch.randn(4, 256, 5, 5))
    with pytest.raises(ValueError):
        winograd_conv3x3(x, torch.randn(4, 256, 3, 3), padding=3)
