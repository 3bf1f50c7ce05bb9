"""Bias + activation + gain + clamp, and the "epilogue" that fuses them with a per-channel scale.

``bias_act(x, b, act, gain, clamp)`` computes ``clamp(act(x + b) * gain)``, the semantics of
NVIDIA's ``bias_act`` op; the default gains are those of the StyleGAN papers (``sqrt(2)`` for
``relu``/``lrelu``, applied *after* the bias).

Speed notes. ``linear``, ``relu`` and ``lrelu`` are positively homogeneous (``act(a * t) ==
a * act(t)`` for ``a > 0``), so the gain is folded into the (small) bias/scale tensors instead of
costing a pass over the activations: ``act(y * s + b) * g == act(y * (s g) + b g)``. Affine parts
take one fused elementwise op (``addcmul``/``add`` with ``alpha``), the activation then runs in
place on that fresh tensor (autograd-safe: ``leaky_relu_`` saves its output, which has the same
sign as its input). When autograd is not recording and the caller owns the tensor, everything runs
in place, because on CPU a fresh large allocation costs several times more than an in-place pass
(page faults: 60 ms vs 15 ms for a 134 MB tensor on the 2-core reference machine).
"""
from __future__ import annotations

import math
from typing import Dict, NamedTuple, Optional

import torch
import torch.nn.functional as F

from .convolution import engine_needs_grad

__all__ = ["ActivationSpec", "activation_funcs", "bias_act", "apply_epilogue", "normalize_2nd_moment", "flat_view",
           "mean_square", "activation_backward", "activation_grad", "act_clamp_"]


class ActivationSpec(NamedTuple):
    func: callable           # out-of-place activation
    def_alpha: float         # default slope/parameter
    def_gain: float          # default gain applied after the activation
    homogeneous: bool        # act(a * t) == a * act(t) for a > 0 (lets gains fold into bias/scale)


def _lrelu(x, alpha):
    return F.leaky_relu(x, alpha)


activation_funcs: Dict[str, ActivationSpec] = {
    "linear":   ActivationSpec(lambda x, a: x, 0.0, 1.0, True),
    "relu":     ActivationSpec(lambda x, a: F.relu(x), 0.0, math.sqrt(2), True),
    "lrelu":    ActivationSpec(_lrelu, 0.2, math.sqrt(2), True),
    "tanh":     ActivationSpec(lambda x, a: torch.tanh(x), 0.0, 1.0, False),
    "sigmoid":  ActivationSpec(lambda x, a: torch.sigmoid(x), 0.0, 1.0, False),
    "elu":      ActivationSpec(lambda x, a: F.elu(x), 0.0, 1.0, False),
    "selu":     ActivationSpec(lambda x, a: F.selu(x), 0.0, 1.0, False),
    "softplus": ActivationSpec(lambda x, a: F.softplus(x), 0.0, 1.0, False),
    "swish":    ActivationSpec(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2), False),
}


def _spec(act: str) -> ActivationSpec:
    try:
        return activation_funcs[act]
    except KeyError:
        raise ValueError(f"unknown activation {act!r}; choose from {sorted(activation_funcs)}") from None


def _recording(*tensors) -> bool:
    """True if autograd will record an op on these tensors."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _channel_view(t: Optional[torch.Tensor], ndim: int, dim: int = 1) -> Optional[torch.Tensor]:
    """Reshape a per-channel vector ``[C]`` to broadcast along ``dim`` of an ``ndim`` tensor."""
    if t is None or t.ndim != 1:
        return t
    shape = [1] * ndim
    shape[dim] = -1
    return t.reshape(shape)


def activation_backward(g: torch.Tensor, z: torch.Tensor, alpha: Optional[float], clamp: Optional[float]) -> torch.Tensor:
    """``g * act'(u)`` for ``z = clamp(lrelu(u, alpha))`` (``alpha=None``: linear), read from the output
    ``z`` (same sign as ``u``): 0 where the clamp is active, ``alpha`` where ``z <= 0``, 1 elsewhere.
    Two fused passes, no masks."""
    if clamp is not None:
        g = torch.ops.aten.hardtanh_backward(g, z, -clamp, clamp)   # 0 where |z| >= clamp
    if alpha is not None:
        g = torch.ops.aten.leaky_relu_backward(g, z, alpha, True)
    return g


class _ActivationGrad(torch.autograd.Function):
    """:func:`activation_backward` as an op whose own derivative is again this op: it is linear in
    ``g`` and piecewise constant in ``z``. Autograd's built-in formulas also return ``zeros_like(z)``
    for the dependence on ``z`` (zero almost everywhere), which costs a fill and an add over a full
    activation in every double backward (R1, path length); here that term is simply absent."""

    @staticmethod
    def forward(ctx, g, z, alpha, clamp):
        ctx.save_for_backward(z)
        ctx.alpha, ctx.clamp = alpha, clamp
        return activation_backward(g, z, alpha, clamp)

    @staticmethod
    def backward(ctx, gg):
        (z,) = ctx.saved_tensors
        return activation_grad(gg, z, ctx.alpha, ctx.clamp), None, None, None


def activation_grad(g: torch.Tensor, z: torch.Tensor, alpha: Optional[float], clamp: Optional[float] = None) -> torch.Tensor:
    """:func:`activation_backward`, differentiable (for double backward) when autograd records."""
    if torch.is_grad_enabled() and g.requires_grad:
        return _ActivationGrad.apply(g, z, alpha, clamp)
    return activation_backward(g, z, alpha, clamp)


def _activate_(u: torch.Tensor, alpha: Optional[float], clamp: Optional[float]) -> torch.Tensor:
    if alpha is not None:
        F.leaky_relu_(u, alpha)
    if clamp is not None:
        u.clamp_(-clamp, clamp)
    return u


class _ActClamp(torch.autograd.Function):
    """In-place ``clamp(lrelu(u, alpha))`` (``alpha=None``: linear) that saves only its output."""

    @staticmethod
    def forward(ctx, u, alpha, clamp):
        ctx.mark_dirty(u)
        z = _activate_(u, alpha, clamp)
        ctx.save_for_backward(z)
        ctx.alpha, ctx.clamp = alpha, clamp
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return activation_grad(g, z, ctx.alpha, ctx.clamp), None, None


def act_clamp_(u: torch.Tensor, alpha: Optional[float], clamp: Optional[float]) -> torch.Tensor:
    """``clamp(lrelu(u, alpha), -clamp, clamp)`` in place on a tensor the caller owns (``alpha=None``:
    linear; ``clamp=None``: no clamp), as one autograd node keeping only the output when recording."""
    if alpha is None and clamp is None:
        return u
    if torch.is_grad_enabled() and u.requires_grad:
        return _ActClamp.apply(u, alpha, clamp)
    return _activate_(u, alpha, clamp)


class _ScaleBiasNoiseAct(torch.autograd.Function):
    """``z = clamp(act(y * scale + bias [+ noise]))`` for ``act`` in (``linear``, ``lrelu``) as one
    autograd node, used while autograd records (training).

    Same forward ops as the composition (``addcmul``, ``add_``, ``leaky_relu_``, ``clamp_``), but a
    cheaper backward: autograd's ``addcmul`` formula computes ``grad * (y * 1)`` for the scale, i.e.
    an extra pass over the activations multiplying by the constant 1, and its ``clamp`` formula
    builds masks with four more passes. The backward is written with differentiable ops, so second
    derivatives (path length) work and are exact."""

    @staticmethod
    def forward(ctx, y, scale, bias, noise, alpha, clamp):
        z = torch.addcmul(bias, y, scale) if bias is not None else y * scale
        if noise is not None:
            z.add_(noise)
        if alpha is not None:
            z = F.leaky_relu_(z, alpha)
        if clamp is not None:
            z = z.clamp_(-clamp, clamp)
        ctx.alpha, ctx.clamp = alpha, clamp
        ctx.shapes = (None if bias is None else bias.shape, None if noise is None else noise.shape)
        ctx.save_for_backward(y, scale, z if (alpha is not None or clamp is not None) else None)
        return z

    @staticmethod
    def backward(ctx, g):
        y, scale, z = ctx.saved_tensors
        bias_shape, noise_shape = ctx.shapes
        gz = g if z is None else activation_grad(g, z, ctx.alpha, ctx.clamp)
        need_y, need_s, need_b, need_n = (engine_needs_grad(ctx, i) for i in range(4))
        gy = gz * scale if need_y else None
        gs = (gz * y).sum_to_size(scale.shape) if need_s else None
        gb = gz.sum_to_size(bias_shape) if need_b else None
        gn = gz.sum_to_size(noise_shape) if need_n else None
        return gy, gs, gb, gn, None, None


def apply_epilogue(y: torch.Tensor, *, scale: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None,
                   bias: Optional[torch.Tensor] = None, act: str = "linear", alpha: Optional[float] = None,
                   gain: float = 1.0, clamp: Optional[float] = None, owned: bool = False) -> torch.Tensor:
    """``clamp(act(y * scale + noise + bias) * gain, -clamp, clamp)`` in as few passes as possible.

    ``scale``/``noise``/``bias`` broadcast against ``y`` (``bias`` may be a ``[C]`` vector).
    ``owned=True`` means the caller just created ``y`` (with an op such as a convolution or matmul
    whose backward does not read its output) and nobody else holds it, so it may be overwritten:
    the activation then runs in place even under autograd, and without autograd the affine part
    does too.
    """
    spec = _spec(act)
    alpha = spec.def_alpha if alpha is None else float(alpha)
    bias = _channel_view(bias, y.ndim)
    if bias is not None:
        bias = bias.to(y.dtype)
    recording = _recording(y, scale, noise, bias)
    inplace = owned and not recording

    if spec.homogeneous and gain > 0:
        # act(t) * gain == act(t * gain): move the gain onto the small operands.
        if gain != 1:
            scale = gain if scale is None else scale * gain
            noise = None if noise is None else noise * gain
            bias = None if bias is None else bias * gain
        post_gain = 1.0
    else:
        post_gain = gain

    # Training fast path: a tensor scale, an optional noise, lrelu/linear and clamp as one autograd node.
    if (recording and isinstance(scale, torch.Tensor) and act in ("lrelu", "linear") and post_gain == 1
            and scale.ndim == y.ndim and (noise is None or noise.ndim <= y.ndim)):
        if noise is not None and noise.ndim < y.ndim:
            noise = noise.reshape((1,) * (y.ndim - noise.ndim) + tuple(noise.shape))
        return _ScaleBiasNoiseAct.apply(y, scale, bias, noise, alpha if act == "lrelu" else None,
                                        float(clamp) if clamp is not None and clamp >= 0 else None)

    # Affine part: z = y * scale + bias (+ noise), one fused op.
    z = y
    fresh = False
    if scale is not None and not isinstance(scale, torch.Tensor):  # python scalar
        if bias is not None:
            z = torch.add(bias, y, alpha=scale, out=y) if inplace else torch.add(bias, y, alpha=scale)
            fresh = True
        elif scale != 1:
            z = y.mul_(scale) if owned else y * scale   # mul by a constant never needs y for backward
            fresh = True
    elif scale is not None:
        if bias is not None:
            z = torch.addcmul(bias, y, scale, out=y) if inplace else torch.addcmul(bias, y, scale)
        else:
            z = y.mul_(scale) if inplace else y * scale
        fresh = True
    elif bias is not None:
        z = y.add_(bias) if owned else y + bias
        fresh = True
    fresh = fresh or owned
    if noise is not None:
        z = z.add_(noise) if fresh else z + noise
        fresh = True

    # Activation (in place on a tensor we own), then gain and clamp.
    if fresh and act in ("lrelu", "linear") and post_gain == 1 and clamp is not None and clamp >= 0:
        return act_clamp_(z, alpha if act == "lrelu" else None, float(clamp))
    if act == "lrelu":
        z = F.leaky_relu_(z, alpha) if fresh else F.leaky_relu(z, alpha)
    elif act == "relu":
        z = F.relu_(z) if fresh else F.relu(z)
    elif act != "linear":
        z = spec.func(z, alpha)
        fresh = True
    if post_gain != 1:
        z = z * post_gain
        fresh = True
    if clamp is not None and clamp >= 0:
        z = z.clamp_(-clamp, clamp) if (fresh and not recording) else z.clamp(-clamp, clamp)
    return z


def bias_act(x: torch.Tensor, b: Optional[torch.Tensor] = None, dim: int = 1, act: str = "linear",
             alpha: Optional[float] = None, gain: Optional[float] = None,
             clamp: Optional[float] = None) -> torch.Tensor:
    """``clamp(act(x + b) * gain)`` with ``b`` broadcast along ``dim``; ``gain=None`` uses the
    activation's default gain (``sqrt(2)`` for relu/lrelu). Never modifies ``x``."""
    spec = _spec(act)
    gain = spec.def_gain if gain is None else float(gain)
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {tuple(b.shape)} does not match dim {dim} of {tuple(x.shape)}")
        b = _channel_view(b, x.ndim, dim)
    return apply_epilogue(x, bias=b, act=act, alpha=alpha, gain=gain, clamp=clamp, owned=False)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Pixel norm: ``x / sqrt(mean(x ** 2, dim) + eps)``."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def flat_view(x: torch.Tensor) -> torch.Tensor:
    """All elements of ``x`` as a 1-D tensor, without a copy for contiguous and channels-last
    tensors (in memory order). Whole-tensor reductions over a strided channels-last tensor are
    ~25x slower on CPU than over its flat view (measured: min/max of 4x128x150x150 58 vs 2.3 ms)."""
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        x = x.permute(0, 2, 3, 1)
    return x.reshape(-1)


def mean_square(x: torch.Tensor) -> torch.Tensor:
    """``x.square().mean()`` as one dot product of the flat view: no temporary and ~15x faster on
    CPU (a 32x128x52x52 activation: 1.1 vs 15-21 ms). Differs by summation order only (relative
    ~1e-5 in float32; the elementwise form uses cascade summation, the dot product vector lanes)."""
    flat = flat_view(x)
    if flat.numel() == 0:
        return flat.new_tensor(float("nan"))
    return torch.dot(flat, flat) / flat.numel()
