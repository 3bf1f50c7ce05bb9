"""The augmentation pipelines (zoo.ops.augment): each transform against its definition, the
probabilities and parameter distributions, p = 0 as the exact identity, and first and second
derivatives (R1 differentiates D(augment(x)) w.r.t. x)."""
import math

import numpy as np
import pytest
import torch

from zoo.ops.augment import PRESETS, SYM2, SYM6, AugmentPipe, DiffAugment, _rotate2d, _scale2d, _translate2d, filter_bank


def _smooth(n=1, size=32, seed=0):
    """Band-limited test images (a few low-frequency sinusoids per channel), values within about ±2."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")
    out = torch.zeros(n, 3, size, size, dtype=torch.float64)
    for i in range(n):
        for c in range(3):
            fx, fy, ph = (torch.rand(3, generator=g, dtype=torch.float64) * torch.tensor([0.25, 0.25, 6.28], dtype=torch.float64))
            out[i, c] = torch.sin(fx * xx + fy * yy + ph) + torch.cos(0.15 * xx - 0.1 * yy + c)
    return out.float()


def _analytic(size, fn):
    """``fn(x, y)`` on the pixel centres of a ``size`` image, in centred pixel coordinates."""
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64) - c, torch.arange(size, dtype=torch.float64) - c,
                            indexing="ij")
    return fn(xx, yy)[None, None].float()


def test_wavelets_are_orthonormal_and_the_filter_bank_sums_to_identity():
    for h, moments in ((SYM2, 2), (SYM6, 6)):
        h = np.asarray(h)
        assert h.sum() == pytest.approx(math.sqrt(2)) and (h ** 2).sum() == pytest.approx(1)
        for shift in range(1, len(h) // 2):
            assert np.dot(h[:-2 * shift], h[2 * shift:]) == pytest.approx(0, abs=1e-12)
        g = h * (-1.0) ** np.arange(len(h))  # the high-pass: vanishing moments
        for k in range(moments):
            assert abs(np.sum(g * np.arange(len(h)) ** k)) < 1e-8 * max(1, len(h) ** k)
    bank = filter_bank(SYM2, 4)
    assert bank.shape == (4, 43)
    delta = np.zeros(43)
    delta[21] = 1
    np.testing.assert_allclose(bank.sum(0), delta, atol=1e-12)
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-15)  # zero phase
    # Band 0 keeps a constant signal, the others remove it; band 3 passes the Nyquist frequency.
    alt = (-1.0) ** np.arange(43)
    assert bank[0].sum() == pytest.approx(1) and np.abs(bank[1:].sum(1)).max() < 1e-12
    assert np.dot(bank[3], alt) == pytest.approx(-1 if (21 % 2) else 1) and abs(np.dot(bank[0], alt)) < 1e-12


def test_presets_are_nvidias():
    blit, geom = {"xflip", "rotate90", "xint"}, {"scale", "rotate", "aniso", "xfrac"}
    color = {"brightness", "contrast", "lumaflip", "hue", "saturation"}
    expected = {"blit": blit, "geom": geom, "color": color, "filter": {"imgfilter"}, "noise": {"noise"},
                "cutout": {"cutout"}, "bg": blit | geom, "bgc": blit | geom | color,
                "bgcf": blit | geom | color | {"imgfilter"}, "bgcfn": blit | geom | color | {"imgfilter", "noise"},
                "bgcfnc": blit | geom | color | {"imgfilter", "noise", "cutout"}}
    assert {k: set(v) for k, v in PRESETS.items()} == expected
    assert all(m == 1 for v in PRESETS.values() for m in v.values())
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        AugmentPipe.from_preset("bgcx")


@pytest.mark.parametrize("preset", list(PRESETS))
def test_p_zero_is_the_identity_bit_for_bit_and_draws_nothing(preset):
    x = torch.randn(4, 3, 32, 32)
    pipe = AugmentPipe.from_preset(preset, p=0.0)
    torch.manual_seed(0)
    out = pipe(x)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert out is x and torch.equal(after, torch.rand(1))
    pipe.set_probability(0.3)  # and p > 0 does change the batch
    assert pipe(x).shape == x.shape and not torch.equal(pipe(x), x)


def test_geometric_identity_and_integer_translation_keep_pixels():
    x = torch.randn(2, 3, 16, 16)
    pipe = AugmentPipe(xint=1, p=1.0)
    n = x.shape[0]
    same = pipe._resample(x, torch.eye(3).expand(n, 3, 3))  # up, identity resampling, down: orthogonal pair
    torch.testing.assert_close(same, x, atol=2e-5, rtol=0)
    # out(x, y) = in(x - tx, y - ty): a move by (3, -2) pixels, reflected content entering at the borders
    moved = pipe._resample(x, _translate2d(-3.0, 2.0, n, "cpu"))
    torch.testing.assert_close(moved[..., 0:14, 3:16], x[..., 2:16, 0:13], atol=2e-5, rtol=0)
    reflected = x.flip(-1)[..., :, -4:-1]  # column -1 reflects to 1, -2 to 2, -3 to 3 (reflect padding)
    torch.testing.assert_close(moved[..., 0:14, 0:3], reflected[..., 2:16, :], atol=2e-5, rtol=0)


def test_integer_translation_draws_whole_pixels_up_to_an_eighth():
    torch.manual_seed(1)
    x = torch.randn(16, 3, 32, 32)
    out = AugmentPipe(xint=1, p=1.0)(x)
    for k in range(x.shape[0]):
        errors = {(dy, dx): float((out[k, :, 4:-4, 4:-4] - torch.roll(x[k], (dy, dx), (1, 2))[:, 4:-4, 4:-4]).abs().max())
                  for dy in range(-4, 5) for dx in range(-4, 5)}
        best = min(errors, key=errors.get)
        assert errors[best] < 5e-5, (k, best, errors[best])  # some whole-pixel shift within 0.125 * 32 = 4 px


def test_xflip_and_rotate90_flip_and_rotate():
    x = _smooth(1)
    pipe = AugmentPipe(xflip=1, p=1.0)
    flipped = pipe._resample(x, _scale2d(-1.0, 1.0, 1, "cpu"))
    # sym6 is nearly, not exactly, linear-phase: the mirror image is exact up to ~2 % of the range (4 % of the amplitude for these frequencies)
    assert float((flipped - x.flip(-1)).abs().max()) < 0.08 < float((flipped - x).abs().max())
    rotated = pipe._resample(x, _rotate2d(torch.tensor([math.pi / 2]), 1, "cpu"))  # the inverse of a -90 degree turn
    assert float((rotated - torch.rot90(x, 1, (2, 3))).abs().max()) < 0.08
    torch.manual_seed(0)
    out = AugmentPipe(xflip=1, p=1.0)(_smooth(64))
    ref = _smooth(64)
    is_flip = [(out[k] - ref[k].flip(-1)).abs().max() < 0.08 for k in range(64)]
    is_same = [(out[k] - ref[k]).abs().max() < 1e-4 for k in range(64)]
    assert all(a or b for a, b in zip(is_flip, is_same)) and 20 < sum(is_flip) < 44  # each with probability 1/2


@pytest.mark.parametrize("name, G_inv, fn", [
    ("scale 1.25", _scale2d(1 / 1.25, 1 / 1.25, 1, "cpu"), lambda x, y: torch.sin(0.2 * x / 1.25) * torch.cos(0.15 * y / 1.25)),
    ("rotate 30", _rotate2d(torch.tensor([math.radians(30)]), 1, "cpu"),
     lambda x, y: torch.sin(0.2 * (math.cos(math.radians(30)) * x - math.sin(math.radians(30)) * y))
     * torch.cos(0.15 * (math.sin(math.radians(30)) * x + math.cos(math.radians(30)) * y))),
    ("aniso 1.2", _scale2d(1 / 1.2, 1.2, 1, "cpu"), lambda x, y: torch.sin(0.2 * x / 1.2) * torch.cos(0.15 * y * 1.2)),
    ("xfrac 0.4,-1.3", _translate2d(-0.4, 1.3, 1, "cpu"), lambda x, y: torch.sin(0.2 * (x - 0.4)) * torch.cos(0.15 * (y + 1.3))),
])
def test_general_geometry_resamples_the_transformed_image(name, G_inv, fn):
    """out(u) = in(G_inv u): compared with the analytic transformed image away from the borders."""
    src = _analytic(32, lambda x, y: torch.sin(0.2 * x) * torch.cos(0.15 * y))
    out = AugmentPipe(scale=1, p=1.0)._resample(src, G_inv)
    err = (out - _analytic(32, fn))[..., 6:-6, 6:-6].abs().max()
    assert float(err) < 0.02, (name, float(err))  # bilinear on the 2x-upsampled image


def test_colour_transforms_on_constant_images():
    """Each colour transform is an affine map per image: check it on constant colours."""
    torch.manual_seed(0)
    n = 256
    colours = torch.rand(n, 3) * 2 - 1
    x = colours[:, :, None, None].expand(n, 3, 4, 4).contiguous()
    luma = torch.ones(3) / math.sqrt(3)
    def scaled(out):  # out = c * x with one c per image
        c = (out * x).sum(dim=(1, 2, 3), keepdim=True) / x.square().sum(dim=(1, 2, 3), keepdim=True)
        return (out - c * x).abs().max() < 1e-5 and (c > 0).all()

    for name, check in [
        ("brightness", lambda out: (out - x).std(dim=(1, 2, 3)).max() < 1e-6),       # the same offset on every channel
        ("contrast", scaled),                                                          # the same factor on every channel
        ("hue", lambda out: (out.mean(1) - x.mean(1)).abs().max() < 1e-5 and (out.norm(dim=1) - x.norm(dim=1)).abs().max() < 1e-5),
        ("saturation", lambda out: (out.mean(1) - x.mean(1)).abs().max() < 1e-5),    # luma kept, chroma scaled
    ]:
        out = AugmentPipe(**{name: 1}, p=1.0)(x)
        assert check(out), name
        assert (out - out[:, :, :1, :1]).abs().max() < 1e-6  # still constant images
        assert (out - x).abs().amax(dim=(1, 2, 3)).gt(1e-4).float().mean() > 0.5  # and most of them changed
    out = AugmentPipe(lumaflip=1, p=1.0)(x)[:, :, 0, 0]
    reflected = colours - 2 * (colours @ luma)[:, None] * luma  # Householder reflection of the luma component
    kept = (out - colours).abs().amax(1) < 1e-6
    flipped = (out - reflected).abs().amax(1) < 1e-5
    assert bool((kept | flipped).all()) and 90 < int(flipped.sum()) < 166
    # chroma scaled by one positive factor per image
    out = AugmentPipe(saturation=1, p=1.0)(x)[:, :, 0, 0]
    chroma_in, chroma_out = colours - colours.mean(1, keepdim=True), out - out.mean(1, keepdim=True)
    ratio = chroma_out / chroma_in
    assert (ratio.std(1) < 1e-3).all() and (ratio.mean(1) > 0).all()
    # single-channel images: the mean of the RGB outputs for a grey input
    grey = torch.rand(8, 1, 4, 4)
    torch.manual_seed(3)
    out1 = AugmentPipe(brightness=1, contrast=1, p=1.0)(grey)
    torch.manual_seed(3)
    out3 = AugmentPipe(brightness=1, contrast=1, p=1.0)(grey.expand(8, 3, 4, 4))
    torch.testing.assert_close(out1, out3[:, :1])


def test_parameter_distributions_and_probability_multipliers():
    torch.manual_seed(0)
    n = 4000
    x = torch.ones(n, 3, 2, 2)
    b = (AugmentPipe(brightness=1, p=0.3)(x) - x)[:, 0, 0, 0]
    changed = b != 0
    assert abs(float(changed.float().mean()) - 0.3) < 0.03                 # applied with probability p
    assert abs(float(b[changed].std()) - 0.2) < 0.02                         # N(0, 0.2)
    c = AugmentPipe(contrast=1, p=1.0)(x)[:, 0, 0, 0]
    assert abs(float(torch.log2(c).std()) - 0.5) < 0.03                      # 2^N(0, 0.5)
    half = AugmentPipe(brightness=0.5, p=0.6)(x)[:, 0, 0, 0] != 1
    assert abs(float(half.float().mean()) - 0.3) < 0.03                      # multiplier * p
    noise = AugmentPipe(noise=1, p=1.0)(torch.zeros(n, 3, 8, 8)).std(dim=(1, 2, 3))
    assert abs(float(noise.mean()) - 0.1 * math.sqrt(2 / math.pi)) < 0.005  # sigma = |N(0, 0.1)|


def test_cutout_zeroes_a_square_of_half_the_size():
    torch.manual_seed(0)
    x = torch.ones(64, 3, 16, 16)
    out = AugmentPipe(cutout=1, p=1.0)(x)
    for k in range(64):
        zero = out[k, 0] == 0
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert (out[k] == 0).sum() == 3 * zero.sum()  # the same pixels in every channel
        if zero.any():
            assert zero.sum() == len(rows) * len(cols) and len(rows) <= 8 and len(cols) <= 8  # one rectangle, 0.5 * 16
            inner = rows.min() > 0 and rows.max() < 15 and cols.min() > 0 and cols.max() < 15
            assert not inner or (len(rows), len(cols)) == (8, 8)


def test_image_space_filter_keeps_constants_scaled_and_is_a_filter():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    pipe = AugmentPipe(imgfilter=1, p=1.0)
    out = pipe(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    torch.manual_seed(1)
    const = pipe(torch.ones(4, 3, 32, 32))
    assert (const - const[:, :, :1, :1]).abs().max() < 1e-5  # a constant stays constant (only band 0's gain)


def test_same_seed_same_augmentation():
    x = torch.randn(4, 3, 32, 32)
    pipe = AugmentPipe.from_preset("bgcfnc", p=0.7)
    torch.manual_seed(9)
    a = pipe(x)
    torch.manual_seed(9)
    assert torch.equal(a, pipe(x))


@pytest.mark.parametrize("preset, size", [("bgc", 8), ("bgcfnc", 24)])
def test_first_and_second_derivatives(preset, size):
    """gradcheck and gradgradcheck in float64: R1 needs d/dx and d/dtheta of |d D(augment(x)) / dx|^2."""
    pipe = AugmentPipe.from_preset(preset, p=0.9)
    x = torch.randn(2, 3, size, size, dtype=torch.float64, requires_grad=True)

    def f(img):
        torch.manual_seed(5)  # the same draws in every evaluation
        return pipe(img)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, fast_mode=True)
    assert torch.autograd.gradgradcheck(f, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_diffaugment_transforms_and_derivatives():
    x = torch.randn(32, 3, 16, 16)
    torch.manual_seed(0)
    moved = DiffAugment("translation")(x)
    for k in range(32):  # an integer shift of up to 2 px (1/8 of 16), zeros entering
        ok = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = torch.zeros_like(x[k])
                ys, xs = slice(max(0, -dy), 16 - max(0, dy)), slice(max(0, -dx), 16 - max(0, dx))
                yt, xt = slice(max(0, dy), 16 - max(0, -dy)), slice(max(0, dx), 16 - max(0, -dx))
                ref[:, ys, xs] = x[k, :, yt, xt]
                ok = ok or torch.equal(moved[k], ref)
        assert ok, k
    torch.manual_seed(0)
    cut = DiffAugment("cutout")(torch.ones(32, 3, 16, 16))
    sizes = (cut[:, 0] == 0).sum(dim=(1, 2))
    assert (sizes <= 64).all() and (sizes == 64).float().mean() > 0.15  # an 8x8 square, clipped at the borders (28 % whole)
    torch.manual_seed(0)
    col = DiffAugment("color")(torch.zeros(64, 3, 2, 2))
    assert (col - col[:, :1]).abs().max() < 1e-6 and col.abs().max() <= 0.5  # brightness U(-0.5, 0.5) on grey
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        DiffAugment("color,zoom")
    xd = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    aug = DiffAugment()

    def f(img):
        torch.manual_seed(2)
        return aug(img)

    assert torch.autograd.gradcheck(f, (xd,), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(f, (xd,), eps=1e-6, atol=1e-6)
