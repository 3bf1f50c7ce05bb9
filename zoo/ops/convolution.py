"""``conv2d`` / ``conv_transpose2d`` whose gradients are again convolutions.

First-order training is unchanged (one native ``convolution_backward`` call). The difference is in
second-order derivatives (R1 and path-length regularisation differentiate a gradient): PyTorch's
generic double backward of a convolution computes the weight term by convolving batch-transposed
copies of the activations (``[C, N, H, W]``), which on CPU costs a large strided copy plus a slow
convolution -- about a third of an R1 step of a 32-px StyleGAN2 discriminator. Here the backward
is written with ordinary forward convolutions and one explicit weight-gradient op, each of which
has a cheap derivative, so derivatives of any order use the fast kernels:

* the input gradient of a convolution is the *adjoint* convolution (``conv2d`` <->
  ``conv_transpose2d`` with the same weight, stride, padding and groups);
* the weight gradient ``gw = W(gy, x)`` is bilinear; its derivative towards ``gy`` is the forward
  convolution of ``x`` with ``ggw``, and towards ``x`` the adjoint convolution of ``gy`` with ``ggw``.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["conv2d", "conv_transpose2d", "engine_needs_grad"]


def _pair(v) -> List[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(t) for t in v]


# cfg = (stride, padding, output_padding, groups, transposed)

def _convolution(x, w, b, cfg):
    stride, padding, output_padding, groups, transposed = cfg
    return torch.ops.aten.convolution(x, w, b, stride, padding, [1, 1], transposed, output_padding, groups)


def _adjoint_config(cfg, x_shape, y_shape, w_shape) -> Tuple:
    """Configuration of the convolution that maps ``gy`` (shape ``y_shape``) back to ``x_shape``."""
    stride, padding, output_padding, groups, transposed = cfg
    if transposed:  # adjoint of conv_transpose2d is conv2d (output size comes out right by itself)
        return (stride, padding, [0, 0], groups, False)
    # Adjoint of conv2d is conv_transpose2d; output_padding restores the rows a stride dropped.
    kh, kw = w_shape[2], w_shape[3]
    op = [x_shape[2 + i] + 2 * padding[i] - (y_shape[2 + i] - 1) * stride[i] - (kh, kw)[i] for i in range(2)]
    return (stride, padding, op, groups, True)


def engine_needs_grad(ctx, i: int) -> bool:
    """Whether the running backward pass needs the gradient of input ``i``.

    ``ctx.needs_input_grad`` only says whether the input requires grad. ``autograd.grad(..., inputs=x)``
    (R1, path length) needs input gradients only, so weight gradients would be computed and thrown
    away -- NVIDIA's ``no_weight_gradients()`` context exists for this. Asking the engine whether the
    input's node will run makes the saving automatic."""
    if not ctx.needs_input_grad[i]:
        return False
    node = ctx.next_functions[i][0]
    if node is None:
        return False
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):  # outside the engine or an older torch: be safe
        return True


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, cfg):
        y = _convolution(x, w, b, cfg)
        ctx.save_for_backward(x, w)
        ctx.cfg = cfg
        ctx.has_bias = b is not None
        ctx.y_shape = tuple(y.shape)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        cfg = ctx.cfg
        need_x, need_w, need_b = (engine_needs_grad(ctx, i) for i in range(3))
        if not torch.is_grad_enabled():
            # Plain first-order backward: the fused native kernel.
            stride, padding, output_padding, groups, transposed = cfg
            bias_sizes = [w.shape[1] * groups if transposed else w.shape[0]] if ctx.has_bias else None
            masks = [need_x, need_w, need_b and ctx.has_bias]
            if x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float16) and need_x and need_w:
                # oneDNN's joint input+weight backward of strided and transposed bf16 convolutions falls
                # back to a slow kernel on CPU (measured 3-4x slower than fp32); the two separate
                # passes each run the fast bf16 kernel (2x faster than fp32). Same values.
                gx = torch.ops.aten.convolution_backward(gy, x, w, None, stride, padding, [1, 1], transposed,
                                                         output_padding, groups, [True, False, False])[0]
                _, gw, gb = torch.ops.aten.convolution_backward(gy, x, w, bias_sizes, stride, padding, [1, 1],
                                                                transposed, output_padding, groups, [False] + masks[1:])
                return gx, gw, gb, None
            gx, gw, gb = torch.ops.aten.convolution_backward(
                gy, x, w, bias_sizes, stride, padding, [1, 1], transposed, output_padding, groups, masks)
            return gx, gw, gb, None
        # create_graph=True: a differentiable decomposition into forward-style ops.
        gx = gw = gb = None
        if need_x:
            gx = _Conv.apply(gy, w, None, _adjoint_config(cfg, x.shape, gy.shape, w.shape))
        if need_w:
            gw = _ConvWeightGrad.apply(gy, x, w, cfg)
        if need_b and ctx.has_bias:
            gb = gy.sum(dim=[0, 2, 3])
        return gx, gw, gb, None


class _ConvWeightGrad(torch.autograd.Function):
    """``gw = dL/dw`` of a convolution given ``gy`` and ``x`` (``w`` only supplies the shape)."""

    @staticmethod
    def forward(ctx, gy, x, w, cfg):
        stride, padding, output_padding, groups, transposed = cfg
        _, gw, _ = torch.ops.aten.convolution_backward(gy, x, w, None, stride, padding, [1, 1], transposed,
                                                       output_padding, groups, [False, True, False])
        ctx.save_for_backward(gy, x)
        ctx.cfg = cfg
        return gw

    @staticmethod
    def backward(ctx, ggw):
        gy, x = ctx.saved_tensors
        cfg = ctx.cfg
        g_gy = g_x = None
        if engine_needs_grad(ctx, 0):     # d/dgy <gw, ggw> = the forward convolution of x with ggw
            g_gy = _Conv.apply(x, ggw, None, cfg)
        if engine_needs_grad(ctx, 1):     # d/dx <gw, ggw> = the adjoint convolution of gy with ggw
            g_x = _Conv.apply(gy, ggw, None, _adjoint_config(cfg, x.shape, gy.shape, ggw.shape))
        return g_gy, g_x, None, None


def _needs_graph(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def conv2d(x: torch.Tensor, w: torch.Tensor, bias: Optional[torch.Tensor] = None, stride=1, padding=0,
           groups: int = 1) -> torch.Tensor:
    """Same as ``F.conv2d`` (no dilation), with fast derivatives of every order."""
    if not _needs_graph(x, w, bias):
        return F.conv2d(x, w, bias, stride=stride, padding=padding, groups=groups)
    cfg = (_pair(stride), _pair(padding), [0, 0], int(groups), False)
    return _Conv.apply(x, w, bias, cfg)


def conv_transpose2d(x: torch.Tensor, w: torch.Tensor, bias: Optional[torch.Tensor] = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1) -> torch.Tensor:
    """Same as ``F.conv_transpose2d`` (no dilation), with fast derivatives of every order."""
    if not _needs_graph(x, w, bias):
        return F.conv_transpose2d(x, w, bias, stride=stride, padding=padding, output_padding=output_padding,
                                  groups=groups)
    cfg = (_pair(stride), _pair(padding), _pair(output_padding), int(groups), True)
    return _Conv.apply(x, w, bias, cfg)
