"""zoo: ProGAN → StyleGAN3 in one PyTorch package, behind one registry.

    import zoo
    G = zoo.load("outputs/.../network-snapshot-000100.pt")        # EMA generator, eval mode, CPU
    img = G(z, c=None, truncation_psi=0.7, noise_mode="const")    # NCHW float in [-1, 1]
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load", "__version__"]


def load(path: Any, which: str = "G_ema", device: Any = "cpu"):
    """Load a network from a zoo checkpoint, rebuilt through the registry from the generation name
    and init kwargs stored in the file (``torch.load(weights_only=True)``: no code is executed).
    ``path`` may also be an NVIDIA ``.pkl`` (stylegan2-ada-pytorch / stylegan3), imported through
    ``zoo.interop`` without running code from it, or an already loaded checkpoint dict.

    ``which``: ``'G_ema'`` (default, the generator to sample from), ``'G'`` or ``'D'``.
    Returns the module in eval mode with gradients off, on ``device``.
    """
    from zoo import registry
    from zoo.interop import load_any
    from zoo.training.checkpoint import CheckpointError

    if which not in ("G_ema", "G", "D"):
        raise ValueError(f"which must be 'G_ema', 'G' or 'D', got {which!r}")
    state = path if isinstance(path, dict) else load_any(path)
    if isinstance(path, dict):
        path = "<checkpoint dict>"
    try:
        spec = registry.get(state["generation"])
    except KeyError as e:
        raise CheckpointError(f"{path!r}: {e}") from None
    if state.get(which) is None:
        raise CheckpointError(f"{path!r} holds no {which} network")
    if which == "D":
        net = spec.build_discriminator(**state["D_kwargs"])
    else:
        net = spec.build_generator(**state["G_kwargs"])
    net.load_state_dict(state[which])
    net.eval().requires_grad_(False)
    net.generation = state["generation"]
    return net.to(device)
