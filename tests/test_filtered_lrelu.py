"""Fast filtered leaky ReLU == the straightforward formulation: forward, first and second derivatives."""
import math

import pytest
import torch

from zoo.ops.filtered_lrelu import filtered_lrelu, filtered_lrelu_reference

# (up, down, padding, fu taps, fd shape, clamp, in size) -- the StyleGAN3 layer kinds: critically /
# non-critically sampled, x2 and x4 upsampling, cropping (negative) paddings, radial 2-D down filters.
CASES = [
    (2, 2, [9, 8, 9, 8], (12,), (12,), 256.0, 12),
    (4, 2, [-6, -9, -6, -9], (24,), (12,), 256.0, 16),
    (2, 2, [-11, -12, -11, -12], (12,), (12,), None, 28),
    (2, 2, [9, 8, 9, 8], (12,), (12, 12), 256.0, 11),
    (4, 2, [-6, -9, -6, -9], (24,), (12, 12), 0.5, 16),
    (1, 1, [0, 0, 0, 0], None, None, None, 9),
]


def _lowpass(shape, gen):
    if shape is None:
        return None
    f = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.1
    return (f / f.sum()).float()


def _args(case, dtype, seed=0):
    up, down, padding, fu_shape, fd_shape, clamp, size = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn([2, 5, size, size], generator=gen, dtype=dtype)
    b = torch.randn([5], generator=gen, dtype=dtype)
    s = torch.rand([2, 5], generator=gen, dtype=dtype) + 0.5
    kw = dict(fu=_lowpass(fu_shape, gen), fd=_lowpass(fd_shape, gen), up=up, down=down, padding=padding, clamp=clamp)
    if fu_shape is None:
        kw.update(gain=1.0, slope=1.0)
    return x, b, s, kw


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_matches_reference(case, channels_last):
    x, b, s, kw = _args(case, torch.float32)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = filtered_lrelu(x, b=b, scale=s, **kw)
    r = filtered_lrelu_reference(x, b=b, scale=s, **kw)
    assert y.shape == r.shape
    assert _rel(y, r) <= 1e-5
    if kw["clamp"] == 0.5:
        assert r.abs().max() <= 0.5 + 1e-6  # the clamp really was active


def _first_and_second(fn, x, b, s, kw):
    """Gradients of a loss and of an R1-style penalty (which needs the double backward)."""
    x = x.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    s = s.clone().requires_grad_(True)
    y = fn(x, b=b, scale=s, **kw)
    w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    gx, gb, gs = torch.autograd.grad((y * w).sum(), [x, b, s], create_graph=True)
    penalty = gx.square().sum() + gs.square().sum()
    hx, hb, hs = (torch.zeros_like(t) if g is None else g
                  for g, t in zip(torch.autograd.grad(penalty, [x, b, s], allow_unused=True), [x, b, s]))
    return [y, gx, gb, gs, hx, hb, hs]


@pytest.mark.parametrize("case", CASES)
def test_first_and_second_derivatives_match_reference(case):
    x, b, s, kw = _args(case, torch.float32, seed=1)
    fast = _first_and_second(filtered_lrelu, x, b, s, kw)
    ref = _first_and_second(filtered_lrelu_reference, x, b, s, kw)
    for name, a, r in zip(["y", "dx", "db", "dscale", "d2x", "d2b", "d2scale"], fast, ref):
        assert _rel(a, r) <= 1e-4, name


@pytest.mark.parametrize("case", [CASES[0], CASES[4]])
def test_gradcheck_float64(case):
    x, b, s, kw = _args(case, torch.float64, seed=2)
    x = x[:1, :2, :8, :8].clone().requires_grad_(True)
    b = b[:2].clone().requires_grad_(True)
    s = s[:1, :2].clone().requires_grad_(True)
    kw = dict(kw, fu=None if kw["fu"] is None else kw["fu"].double(), fd=None if kw["fd"] is None else kw["fd"].double())
    if kw["up"] == 4:
        kw["padding"] = [3, 2, 3, 2]
    fn = lambda x, b, s: filtered_lrelu(x, b=b, scale=s, **kw)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b, s))
    assert torch.autograd.gradgradcheck(fn, (x, b, s))


def test_gain_and_slope_semantics():
    x = torch.tensor([[[[-2.0, 3.0]]]])
    y = filtered_lrelu(x, gain=math.sqrt(2), slope=0.2)
    assert torch.allclose(y, torch.tensor([[[[-0.4 * math.sqrt(2), 3 * math.sqrt(2)]]]]))
    assert torch.allclose(filtered_lrelu(x, clamp=1.0), torch.tensor([[[[-0.4 * math.sqrt(2), 1.0]]]]))
    with pytest.raises(ValueError):
        filtered_lrelu(x, gain=0)
    with pytest.raises(ValueError):
        filtered_lrelu(x[0])


def test_no_grad_path_does_not_touch_input():
    x, b, s, kw = _args(CASES[0], torch.float32)
    x0 = x.clone()
    with torch.no_grad():
        filtered_lrelu(x, b=None, scale=None, **kw)
    assert torch.equal(x, x0)


@pytest.mark.parametrize("up,shape", [(2, (12,)), (4, (24,)), (2, (12, 12)), (1, None)])
def test_clamp_bound_holds_for_kaiser_and_2d_filters(up, shape):
    """The skip rule ``max|u| <= max|z| * gain * polyphase L1`` holds for Gaussian and +-1 inputs,
    including Kaiser filters with negative lobes and arbitrary 2-D filters."""
    from zoo.models.stylegan3 import lowpass_filter
    from zoo.ops.fir import upfirdn2d
    from zoo.ops.filtered_lrelu import _polyphase_l1

    gen = torch.Generator().manual_seed(3)
    if shape is None:
        f = None
    elif len(shape) == 1:
        f = lowpass_filter(shape[0], cutoff=4.0, width=6.0, fs=16.0 * up / 2)
        assert (f < 0).any()
    else:
        f = torch.randn(shape, generator=gen)
    bound = _polyphase_l1(f, up)
    for x in (torch.randn([2, 3, 20, 20], generator=gen), torch.sign(torch.randn([2, 3, 20, 20], generator=gen))):
        u = upfirdn2d(x, f, up=up, padding=[5, 5, 5, 5], gain=up ** 2)
        assert u.abs().max() <= x.abs().max() * up ** 2 * bound * (1 + 1e-5)
    # For a separable filter the bound is the squared L1 norm of its largest polyphase component.
    if shape is not None and len(shape) == 1:
        phases = [f[p::up].abs().sum() for p in range(up)]
        assert max(phases) ** 2 == pytest.approx(bound)


def test_clamp_skip_is_exact_and_inactive_clamp_still_checked():
    """A clamp that cannot act is skipped (bit-identical to no clamp, forward and backward); a clamp
    that can act still runs and matches the reference."""
    x, b, s, kw = _args(CASES[0], torch.float32, seed=4)
    kw = dict(kw, clamp=None)
    x = x.requires_grad_(True)
    free = filtered_lrelu(x, b=b, scale=s, **kw)
    (g_free,) = torch.autograd.grad(free.square().sum(), x)
    skipped = filtered_lrelu(x, b=b, scale=s, **dict(kw, clamp=1e6))
    (g_skipped,) = torch.autograd.grad(skipped.square().sum(), x)
    assert torch.equal(free, skipped) and torch.equal(g_free, g_skipped)
    # Clamp just below the largest activation: the bound cannot rule it out, so it acts.
    clamp = 0.9 * float(filtered_lrelu(x.detach(), b=b, scale=s, **dict(kw, down=1, fd=None, padding=kw["padding"])).abs().max())
    fast = filtered_lrelu(x.detach(), b=b, scale=s, **dict(kw, clamp=clamp))
    ref = filtered_lrelu_reference(x.detach(), b=b, scale=s, **dict(kw, clamp=clamp))
    assert _rel(fast, ref) <= 1e-5 and not torch.equal(fast, free.detach())
