"""Tests for zoo.ops: FIR resampling, conv2d_resample, modulated conv, layers, minibatch stddev.

The fast implementations are pinned to literal reference implementations in float64 (forward and
gradients), and every op is run through gradcheck/gradgradcheck (R1 and path-length
regularisation need second derivatives).
"""
import math
import random

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from zoo.ops import (Conv2dLayer, FullyConnectedLayer, MinibatchStdLayer, bias_act, choose_fused, conv2d_resample,
                     downsample2d, filter2d, minibatch_stddev, modulated_conv2d, normalize_2nd_moment, setup_filter,
                     upfirdn2d, upfirdn2d_reference, upsample2d)
from zoo.ops.reference import conv2d_resample_reference, modulated_conv2d_reference

DT = torch.float64


def _rand(*shape, channels_last=False, requires_grad=False, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    x = torch.randn(*shape, dtype=DT, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_(requires_grad)


def _assert_same_fwd_and_grad(fast, ref, inputs, atol=1e-10):
    """Same outputs, and same gradients of a random projection of the output."""
    y_fast = fast(*inputs)
    y_ref = ref(*inputs)
    assert y_fast.shape == y_ref.shape
    torch.testing.assert_close(y_fast, y_ref, atol=atol, rtol=1e-9)
    proj = torch.randn_like(y_ref)
    g_fast = torch.autograd.grad((y_fast * proj).sum(), [t for t in inputs if t.requires_grad])
    g_ref = torch.autograd.grad((y_ref * proj).sum(), [t for t in inputs if t.requires_grad])
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# setup_filter and the resampling helpers.
# ---------------------------------------------------------------------------------------------

def test_setup_filter_semantics():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    torch.testing.assert_close(f.sum(), torch.tensor(1.0))
    torch.testing.assert_close(f, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64)
    assert setup_filter(list(range(1, 9))).shape == (8,)            # >= 8 taps stay separable
    assert setup_filter([1, 2, 1], gain=4).sum().item() == pytest.approx(4)
    assert setup_filter([1, 2, 3, 4], normalize=False, flip_filter=True)[0, 0].item() == 16
    assert setup_filter(None).shape == (1, 1)


def test_resampling_helper_shapes_and_gain():
    f = setup_filter([1, 3, 3, 1])
    x = torch.ones(2, 3, 8, 8)
    up = upsample2d(x, f)
    assert up.shape == (2, 3, 16, 16)
    torch.testing.assert_close(up[:, :, 2:-2, 2:-2], torch.ones(2, 3, 12, 12))   # gain up**2 keeps DC
    down = downsample2d(x, f)
    assert down.shape == (2, 3, 4, 4)
    torch.testing.assert_close(down[:, :, 1:-1, 1:-1], torch.ones(2, 3, 2, 2))
    assert filter2d(x, f).shape == x.shape
    assert upsample2d(x, f, up=4).shape == (2, 3, 32, 32)
    assert downsample2d(x, setup_filter([1, 2, 1]), down=[2, 1]).shape == (2, 3, 8, 4)


_UPFIRDN_CASES = [
    # up, down, padding, filter taps (1-D list -> 2-D outer product unless >= 8 taps)
    (1, 1, [1, 2, 1, 2], [1, 3, 3, 1]),
    (2, 1, [2, 1, 2, 1], [1, 3, 3, 1]),          # upsample2d
    (1, 2, [1, 1, 1, 1], [1, 3, 3, 1]),          # downsample2d
    (4, 1, [3, 2, 3, 2], [1, 3, 3, 1]),
    (1, 4, [0, 0, 0, 0], [1, 3, 3, 1]),
    (2, 2, [1, 2, 0, 3], [1, 2, 3, 4, 5]),       # common factor -> a plain filter
    (4, 2, [3, 1, 2, 2], [1, 3, 3, 1]),
    (2, 4, [1, 3, 3, 1], [1, 1]),
    (3, 2, [2, 1, 0, 2], [1, 2, 2, 1]),          # coprime -> polyphase interleave
    (2, 1, [-1, 2, 3, -2], [1, 3, 3, 1]),        # negative padding crops
    ([2, 1], [1, 2], [1, 1, 2, 0], [1, 3, 3, 1]),  # different factors per axis
    (2, 1, [4, 3, 4, 3], list(range(1, 9))),     # 1-D separable filter
    (1, 2, [3, 4, 3, 4], list(range(1, 10))),
]


@pytest.mark.parametrize("up,down,padding,taps", _UPFIRDN_CASES)
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d_matches_reference(up, down, padding, taps, flip_filter):
    f = setup_filter(taps, normalize=False).to(DT)
    x = _rand(2, 3, 7, 6, requires_grad=True, seed=1)
    _assert_same_fwd_and_grad(lambda t: upfirdn2d(t, f, up, down, padding, flip_filter, gain=3),
                              lambda t: upfirdn2d_reference(t, f, up, down, padding, flip_filter, gain=3), [x])


def test_upfirdn2d_random_filters_match_reference():
    rng = random.Random(0)
    torch.manual_seed(0)
    checked = 0
    while checked < 60:
        up = (rng.choice([1, 2, 4]), rng.choice([1, 2, 4]))
        down = (rng.choice([1, 2, 4]), rng.choice([1, 2, 4]))
        kind = rng.choice(["2d", "1d", "rank1"])
        k = rng.choice([1, 2, 3, 4, 5, 8])
        if kind == "2d":
            f = torch.randn(k, rng.choice([1, 2, 4, 6]), dtype=DT)
        elif kind == "1d":
            f = torch.randn(k, dtype=DT)
        else:  # large rank-one 2-D filter: runs as two 1-D passes
            f = torch.outer(torch.randn(8, dtype=DT), torch.randn(9, dtype=DT))
        padding = [rng.randint(-2, 5) for _ in range(4)]
        x = _rand(1, 2, rng.randint(4, 9), rng.randint(4, 9), channels_last=rng.random() < 0.5, requires_grad=True)
        fh, fw = (f.shape[0], f.shape[-1]) if f.ndim == 2 else (k, k)
        out_h = (x.shape[2] * up[1] + padding[2] + padding[3] - fh) // down[1] + 1
        out_w = (x.shape[3] * up[0] + padding[0] + padding[1] - fw) // down[0] + 1
        if min(out_h, out_w) < 1 or x.shape[2] * up[1] + padding[2] + padding[3] < fh \
                or x.shape[3] * up[0] + padding[0] + padding[1] < fw:
            continue
        _assert_same_fwd_and_grad(lambda t: upfirdn2d(t, f, up, down, padding),
                                  lambda t: upfirdn2d_reference(t, f, up, down, padding), [x])
        checked += 1


def test_upfirdn2d_gradcheck_and_gradgradcheck():
    f = setup_filter([1, 3, 3, 1]).to(DT)
    for up, down, pad in [(2, 1, [2, 1, 2, 1]), (1, 2, [1, 1, 1, 1]), (3, 2, [1, 2, 2, 1]), (1, 1, 1)]:
        x = _rand(1, 2, 5, 5, requires_grad=True, seed=2)
        fn = lambda t: upfirdn2d(t, f, up=up, down=down, padding=pad)  # noqa: E731
        assert gradcheck(fn, [x])
        assert gradgradcheck(fn, [x])


def test_upfirdn2d_rejects_empty_output():
    with pytest.raises(ValueError, match="no output"):
        upfirdn2d(torch.zeros(1, 1, 2, 2), setup_filter([1, 3, 3, 1]), padding=-1)


# ---------------------------------------------------------------------------------------------
# conv2d_resample and the modulated convolution.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up,down,kernel,padding", [
    (1, 1, 3, 1), (2, 1, 3, 1), (1, 2, 3, 1), (2, 1, 1, 0), (1, 2, 1, 0), (2, 2, 3, 1), (1, 1, 3, [0, 2, 1, 1]),
])
@pytest.mark.parametrize("flip_weight", [True, False])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_resample_matches_reference(up, down, kernel, padding, flip_weight, groups):
    f = setup_filter([1, 3, 3, 1]).to(DT)
    x = _rand(2, 4, 6, 6, requires_grad=True, channels_last=groups == 1, seed=3)
    w = _rand(6, 4 // groups, kernel, kernel, requires_grad=True, seed=4)
    _assert_same_fwd_and_grad(
        lambda a, b: conv2d_resample(a, b, f, up, down, padding, groups, flip_weight),
        lambda a, b: conv2d_resample_reference(a, b, f, up, down, padding, groups, flip_weight), [x, w])


def test_conv2d_resample_bias_is_added_last():
    f = setup_filter([1, 3, 3, 1]).to(DT)
    x, w, b = _rand(1, 2, 4, 4, seed=5), _rand(3, 2, 3, 3, seed=6), _rand(3, seed=7)
    for up, down in [(1, 1), (2, 1), (1, 2)]:
        y = conv2d_resample(x, w, f, up, down, 1, bias=b)
        torch.testing.assert_close(y, conv2d_resample_reference(x, w, f, up, down, 1) + b.reshape(1, -1, 1, 1))


@pytest.mark.parametrize("up,kernel", [(1, 3), (2, 3), (1, 1)])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_modulated_conv2d_paths_equal_reference(up, kernel, demodulate, channels_last):
    f = setup_filter([1, 3, 3, 1]).to(DT)
    x = _rand(3, 4, 5, 5, channels_last=channels_last, requires_grad=True, seed=8)
    w = _rand(5, 4, kernel, kernel, requires_grad=True, seed=9)
    s = _rand(3, 4, requires_grad=True, seed=10)
    noise = _rand(3, 1, 5 * up, 5 * up, seed=11)
    pad = kernel // 2

    def ref(a, b, c):
        return modulated_conv2d_reference(a, b, c, noise, demodulate, up, 1, pad, f, flip_weight=(up == 1))

    for fused in (False, True):
        def fast(a, b, c, fused=fused):
            return modulated_conv2d(a, b, c, noise=noise, demodulate=demodulate, up=up, padding=pad,
                                    resample_filter=f, flip_weight=(up == 1), fused=fused)
        _assert_same_fwd_and_grad(fast, ref, [x, w, s])


def test_modulated_conv2d_epilogue_matches_bias_act():
    f = setup_filter([1, 3, 3, 1]).to(DT)
    x, w, s, b = _rand(2, 3, 4, 4, seed=12), _rand(4, 3, 3, 3, seed=13), _rand(2, 3, seed=14), _rand(4, seed=15)
    noise = _rand(2, 1, 8, 8, seed=16)
    for fused in (False, True):
        y = modulated_conv2d(x, w, s, noise=noise, up=2, padding=1, resample_filter=f, flip_weight=False,
                             fused=fused, bias=b, activation="lrelu", gain=math.sqrt(2) * 0.5, clamp=0.3)
        plain = modulated_conv2d_reference(x, w, s, noise, True, 2, 1, 1, f, flip_weight=False)
        expected = (torch.nn.functional.leaky_relu(plain + b.reshape(1, -1, 1, 1), 0.2)
                    * math.sqrt(2) * 0.5).clamp(-0.3, 0.3)
        torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("act", ["lrelu", "linear"])
@pytest.mark.parametrize("noise_shape", [None, (2, 1, 4, 4), (4, 4)])
def test_training_epilogue_matches_composition_to_second_order(act, noise_shape):
    """While autograd records, apply_epilogue with a tensor scale runs as one custom node
    (_ScaleBiasNoiseAct); it must equal the plain composition in value, gradient and second
    derivatives (path-length regularisation differentiates through it twice)."""
    from zoo.ops.activations import apply_epilogue
    y = _rand(2, 3, 4, 4, requires_grad=True, seed=40)
    s = _rand(2, 3, 1, 1, requires_grad=True, seed=41)
    b = _rand(3, requires_grad=True, seed=42)
    inputs = [y, s, b]
    if noise_shape is not None:
        inputs.append(_rand(*noise_shape, requires_grad=True, seed=43))
    gain = math.sqrt(2) * 0.7

    def fast(yy, ss, bb, nn=None):
        return apply_epilogue(yy * 1, scale=ss, noise=nn, bias=bb, act=act, gain=gain, owned=True)

    def ref(yy, ss, bb, nn=None):
        u = yy * ss + bb.reshape(1, -1, 1, 1)
        if nn is not None:
            u = u + nn
        return (torch.nn.functional.leaky_relu(u, 0.2) if act == "lrelu" else u) * gain

    assert type(fast(*inputs).grad_fn).__name__ == "_ScaleBiasNoiseActBackward"
    _assert_same_fwd_and_grad(fast, ref, inputs)
    # Second derivatives: gradient of a gradient norm, as in path-length regularisation.
    outs = []
    for fn in (fast, ref):
        proj = torch.randn(2, 3, 4, 4, dtype=DT, generator=torch.Generator().manual_seed(44))
        grads = torch.autograd.grad((fn(*inputs) * proj).sum(), inputs, create_graph=True)
        penalty = sum(g.square().sum() for g in grads)
        outs.append(torch.autograd.grad(penalty, inputs, allow_unused=True))
    for t, a, b2 in zip(inputs, *outs):
        a = torch.zeros_like(t) if a is None else a
        b2 = torch.zeros_like(t) if b2 is None else b2
        torch.testing.assert_close(a, b2, atol=1e-10, rtol=1e-9)
    assert gradcheck(fast, inputs)
    assert gradgradcheck(fast, inputs)


def test_modulated_conv2d_inplace_input_only_without_autograd():
    x, w, s = _rand(2, 3, 4, 4, seed=17), _rand(4, 3, 3, 3, seed=18), _rand(2, 3, seed=19)
    expected = modulated_conv2d(x, w, s, padding=1, fused=False)
    x_copy = x.clone()
    with torch.no_grad():
        y = modulated_conv2d(x_copy, w, s, padding=1, fused=False, inplace_input=True)
    torch.testing.assert_close(y, expected)
    xg = x.clone().requires_grad_(True)
    modulated_conv2d(xg, w, s, padding=1, fused=False, inplace_input=True).sum().backward()  # no in-place error
    torch.testing.assert_close(xg.detach(), x)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("up,kernel", [(1, 3), (2, 3), (1, 1)])
def test_modulated_conv2d_gradcheck_and_gradgradcheck(fused, up, kernel):
    f = setup_filter([1, 3, 3, 1]).to(DT)
    x = _rand(2, 2, 3, 3, requires_grad=True, seed=20)
    w = _rand(2, 2, kernel, kernel, requires_grad=True, seed=21)
    s = (_rand(2, 2, seed=22) + 2).requires_grad_(True)
    b = _rand(2, requires_grad=True, seed=23)

    def fn(a, ww, ss, bb):
        return modulated_conv2d(a, ww, ss, up=up, padding=kernel // 2, resample_filter=f, flip_weight=(up == 1),
                                fused=fused, bias=bb, activation="lrelu", gain=math.sqrt(2))
    assert gradcheck(fn, [x, w, s, b])
    assert gradgradcheck(fn, [x, w, s, b])


def test_choose_fused_rule():
    w3, w1 = torch.zeros(512, 512, 3, 3), torch.zeros(3, 64, 1, 1)
    assert choose_fused(torch.zeros(8, 64, 16, 16), w1)                 # 1x1: batched matmul
    assert not choose_fused(torch.zeros(8, 512, 16, 16), w3)           # CPU batch > 1: shared weights
    assert not choose_fused(torch.zeros(1, 512, 4, 4), w3)
    assert not choose_fused(torch.zeros(1, 64, 256, 256), torch.zeros(64, 64, 3, 3))


def test_modulated_conv2d_shape_errors():
    with pytest.raises(ValueError, match="do not match"):
        modulated_conv2d(torch.zeros(2, 3, 4, 4), torch.zeros(4, 5, 3, 3), torch.zeros(2, 3))


# ---------------------------------------------------------------------------------------------
# Layers.
# ---------------------------------------------------------------------------------------------

def test_bias_act_semantics_and_no_mutation():
    x = torch.randn(4, 5, 3, 3)
    b = torch.randn(5)
    x0 = x.clone()
    y = bias_act(x, b, act="lrelu", clamp=0.5)
    expected = (torch.nn.functional.leaky_relu(x + b.reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)).clamp(-0.5, 0.5)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(x, x0)
    torch.testing.assert_close(bias_act(x, b, act="tanh", gain=2.0), torch.tanh(x + b.reshape(1, -1, 1, 1)) * 2)
    torch.testing.assert_close(bias_act(x), x)
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(x, act="gelu2")


def test_normalize_2nd_moment():
    x = torch.randn(7, 16) * 5
    y = normalize_2nd_moment(x)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(7), atol=1e-5, rtol=0)


def test_fully_connected_layer_storage_and_forward():
    torch.manual_seed(0)
    fc = FullyConnectedLayer(256, 128, bias_init=1, lr_multiplier=0.01, activation="lrelu")
    assert fc.weight.shape == (128, 256) and fc.bias.shape == (128,)
    assert fc.weight.std().item() == pytest.approx(100, rel=0.05)      # randn / lr_multiplier
    assert torch.all(fc.bias == 1)
    x = torch.randn(3, 256)
    expected = torch.nn.functional.leaky_relu(
        x @ (fc.weight * 0.01 / 16).t() + fc.bias * 0.01, 0.2) * math.sqrt(2)
    torch.testing.assert_close(fc(x), expected)
    lin = FullyConnectedLayer(6, 4, bias=False)
    torch.testing.assert_close(lin(x[:, :6]), x[:, :6] @ (lin.weight / math.sqrt(6)).t())


def test_conv2d_layer_storage_and_forward():
    torch.manual_seed(0)
    conv = Conv2dLayer(4, 6, 3, activation="lrelu", down=2, conv_clamp=0.7)
    assert conv.weight.shape == (6, 4, 3, 3) and conv.bias.shape == (6,)
    assert conv.resample_filter.shape == (4, 4)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 4, 8, 8)
    gain = 0.5
    plain = conv2d_resample_reference(x, conv.weight / math.sqrt(36), conv.resample_filter, down=2, padding=1)
    expected = (torch.nn.functional.leaky_relu(plain + conv.bias.reshape(1, -1, 1, 1), 0.2)
                * math.sqrt(2) * gain).clamp(-0.7 * gain, 0.7 * gain)
    torch.testing.assert_close(conv(x, gain=gain), expected)
    skip = Conv2dLayer(4, 6, 1, bias=False, down=2)
    assert skip.bias is None and skip(x).shape == (2, 6, 4, 4)


@pytest.mark.parametrize("make", [
    lambda: FullyConnectedLayer(3, 2, activation="lrelu", lr_multiplier=0.1, bias_init=0.3),
    lambda: Conv2dLayer(2, 3, 3, activation="lrelu"),
    lambda: Conv2dLayer(2, 3, 3, activation="lrelu", down=2),
    lambda: Conv2dLayer(2, 3, 1, bias=False, down=2),
    lambda: Conv2dLayer(2, 3, 3, activation="lrelu", up=2, conv_clamp=0.5),
])
def test_layers_gradcheck_and_gradgradcheck(make):
    torch.manual_seed(0)
    layer = make().to(DT)
    x = _rand(2, 3, requires_grad=True) if isinstance(layer, FullyConnectedLayer) \
        else _rand(2, 2, 4, 4, requires_grad=True)
    params = [p for p in layer.parameters()]
    names = [n for n, _ in layer.named_parameters()]

    def fn(inp, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), (inp,))
    assert gradcheck(fn, [x] + params)
    assert gradgradcheck(fn, [x] + params)


# ---------------------------------------------------------------------------------------------
# Minibatch standard deviation.
# ---------------------------------------------------------------------------------------------

def test_minibatch_stddev_grouping_matches_definition():
    torch.manual_seed(0)
    x = torch.randn(8, 6, 3, 3)
    y = minibatch_stddev(x, group_size=4, num_channels=2)
    assert y.shape == (8, 8, 3, 3)
    torch.testing.assert_close(y[:, :6], x)
    # Sample i is in group i % (N / G): here {0, 2, 4, 6} and {1, 3, 5, 7}.
    for grp in range(2):
        members = x[grp::2]                                        # [4, 6, 3, 3]
        for f in range(2):
            part = members[:, 3 * f: 3 * f + 3]
            expected = (part.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
            torch.testing.assert_close(y[grp::2, 6 + f], expected.expand(4, 3, 3))
    # Group size larger than the batch: one group.
    assert MinibatchStdLayer(group_size=32)(x).shape == (8, 7, 3, 3)


def test_minibatch_stddev_bad_batch_raises():
    with pytest.raises(ValueError, match=r"group size 4.*|batch size 6.*group size 4"):
        minibatch_stddev(torch.zeros(6, 4, 2, 2), group_size=4)
    with pytest.raises(ValueError) as info:
        MinibatchStdLayer(group_size=4)(torch.zeros(6, 4, 2, 2))
    assert "group" in str(info.value) and "6" in str(info.value)


def test_minibatch_stddev_gradcheck_and_gradgradcheck():
    x = _rand(4, 4, 2, 2, requires_grad=True, seed=30)
    fn = lambda t: minibatch_stddev(t, group_size=2, num_channels=2)  # noqa: E731
    assert gradcheck(fn, [x])
    assert gradgradcheck(fn, [x])


# ---------------------------------------------------------------------------------------------
# Convolutions with fast higher-order derivatives.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("stride,padding,groups,kernel", [(1, 1, 1, 3), (2, 1, 1, 3), (2, 0, 2, 3), (1, 0, 1, 1),
                                                          (2, 2, 2, 4)])
def test_convolution_matches_torch_to_second_order(transposed, stride, padding, groups, kernel):
    from zoo.ops import convolution
    x = _rand(2, 4, 7, 7, requires_grad=True, seed=40)
    w = _rand(4 if transposed else 6, (6 if transposed else 4) // groups, kernel, kernel, requires_grad=True, seed=41)
    b = _rand(6, requires_grad=True, seed=42)
    ours = convolution.conv_transpose2d if transposed else convolution.conv2d
    ref = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    kwargs = dict(stride=stride, padding=padding, groups=groups)
    if transposed and stride > 1:
        kwargs["output_padding"] = 1

    def penalty(conv):  # an R1-like second-order objective
        y = conv(x, w, b, **kwargs)
        (gx,) = torch.autograd.grad((y.square() * 0.5).sum(), x, create_graph=True)
        return gx.square().sum() + y.sum()

    ga = torch.autograd.grad(penalty(ours), [x, w, b])
    gb = torch.autograd.grad(penalty(ref), [x, w, b])
    for a, c in zip(ga, gb):
        torch.testing.assert_close(a, c)
    assert gradcheck(lambda *t: ours(*t, **kwargs), [x, w, b])
    assert gradgradcheck(lambda *t: ours(*t, **kwargs), [x, w, b])


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_mean_square_and_flat_view(layout):
    from zoo.ops.activations import flat_view, mean_square

    x = torch.randn([3, 5, 7, 6], generator=torch.Generator().manual_seed(0)) * 3
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
        assert flat_view(x).data_ptr() == x.data_ptr()  # a view, no copy
    elif layout == "strided":
        x = x[:, :, ::2]
    flat = flat_view(x)
    assert flat.shape == (x.numel(),) and torch.equal(flat.sort().values, x.reshape(-1).sort().values)
    ref = x.double().square().mean()
    assert abs(float(mean_square(x)) - float(ref)) <= 1e-5 * float(ref)
