"""The figures of the papers as functions: style mixing, interpolation, truncation strips and
stochastic variation (projection: :mod:`zoo.sampling.projection`).

Every function takes a generator with NVIDIA's interface (``G.mapping``, ``G.synthesis``, ``z_dim``,
``w_dim``, ``num_ws``) as returned by :func:`zoo.load`, so notebooks need not shell out::

    import zoo, zoo.sampling as S
    G = zoo.load("network-snapshot-000100.pt")
    rows, cols = S.ws_from_seeds(G, [85, 100, 75]), S.ws_from_seeds(G, [55, 821, 1789])
    grid = S.style_mix(G, rows, cols, S.parse_layers("coarse", G))     # [3, 3, C, H, W]
    frames = S.interpolate(G, S.z_from_seeds([0, 5, 9], G.z_dim), frames=60, space="w", loop=True)
    S.save_animation(S.to_uint8(frames), "walk.gif", fps=30)

ProGAN has no mapping network, no styles and no noise inputs: only plain images and interpolation in
z apply to it, and the other functions say so. StyleGAN3 has no noise inputs.

Noise inputs are the generators' ``noise_const`` buffers (one ``[res, res]`` map per layer, in
``G.synthesis.named_buffers()`` order, as NVIDIA's projector enumerates them); stochastic variation
and projection work by swapping those buffers for other maps while rendering with
``noise_mode='const'``.
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from zoo.core.contract import generation_name, has_styles, noise_inputs, z_from_seeds
from zoo.core.errors import NotApplicable

__all__ = [
    "layer_resolutions", "parse_layers", "ws_from_seeds", "synthesize", "style_mix", "interpolate",
    "interpolation_path", "slerp", "truncate", "truncation_strip", "noise_variations", "noise_override", "PRESETS",
]

# StyleGAN paper, Fig. 3: coarse styles 4^2-8^2, middle 16^2-32^2, fine 64^2-1024^2 (bounds in pixels).
PRESETS: Dict[str, Tuple[int, int]] = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}


def require_styles(G, what: str) -> None:
    if not has_styles(G):
        raise NotApplicable(f"{what} needs a mapping network and styles, and a {generation_name(G)} generator has none "
                            "(ProGAN maps z straight to images); use mode=images or mode=interpolate space=z")


def layer_resolutions(G) -> List[int]:
    """The resolution each of the ``num_ws`` styles acts at, for the coarse/middle/fine presets.

    StyleGAN (v1): two styles per resolution. StyleGAN2: the styles of a block's convolutions (the
    ToRGB style, shared with the next block's first conv, counts for that conv). StyleGAN3 has no
    resolution pyramid: a layer counts at ``2 * cutoff`` (the size of an image that holds its band
    limit), so the input is at 4 and the last layers at the output resolution."""
    require_styles(G, "style layers")
    syn = G.synthesis
    if hasattr(syn, "input") and hasattr(syn, "layer_names"):  # StyleGAN3
        res = [2 * float(syn.input.bandwidth)]
        res += [2 * float(getattr(syn, n).out_cutoff) for n in syn.layer_names]
        return [int(round(r)) for r in res[:G.num_ws]]
    blocks = [getattr(syn, f"b{r}") for r in syn.block_resolutions]
    if all(hasattr(b, "num_conv") for b in blocks):  # StyleGAN2
        res: List[Optional[int]] = [None] * G.num_ws
        w_idx = 0
        for r, b in zip(syn.block_resolutions, blocks):
            for j in range(b.num_conv):
                res[w_idx + j] = r
            for j in range(b.num_torgb):
                if w_idx + b.num_conv + j < G.num_ws and res[w_idx + b.num_conv + j] is None:
                    res[w_idx + b.num_conv + j] = r
            w_idx += b.num_conv
        return [int(r) for r in res]
    return [r for r in syn.block_resolutions for _ in range(2)][:G.num_ws]  # StyleGAN (v1)


def parse_layers(spec: Any, G, kind: str = "styles") -> List[int]:
    """Layer selection -> sorted indices. ``spec``: ``'0-6'``, ``'0,2,4'``, ``[0, 1]``, an int, a preset
    ``coarse`` / ``middle`` / ``fine`` (by resolution, as in the StyleGAN paper), or a mix
    (``'coarse,middle'``). ``kind='styles'`` indexes ``ws``; ``kind='noise'`` the noise inputs
    (:func:`noise_inputs`). ``None`` / ``'all'``: every layer."""
    if kind == "styles":
        require_styles(G, "style mixing")
        count, res = G.num_ws, layer_resolutions(G)
    else:
        res = [r for _, _, r in noise_inputs(G)]
        count = len(res)
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(range(count))
    if isinstance(spec, int):
        tokens = [str(spec)]
    elif isinstance(spec, str):
        tokens = spec.split(",")
    else:
        tokens = [str(t) for t in spec]
    out = set()
    for tok in (t.strip().lower() for t in tokens):
        if not tok:
            continue
        if tok in PRESETS:
            lo, hi = PRESETS[tok]
            sel = [i for i, r in enumerate(res) if lo <= r <= hi]
            if not sel:
                raise ValueError(f"the model has no {tok} {kind} layers ({lo}^2 and up to {min(hi, 1024)}^2 px); "
                                 f"its {kind} layers act at {sorted(set(res))} px")
            out.update(sel)
            continue
        try:
            if "-" in tok[1:]:
                a, b = (int(x) for x in tok.split("-", 1))
                sel = list(range(a, b + 1))
            else:
                sel = [int(tok)]
        except ValueError:
            raise ValueError(f"cannot parse {tok!r}: use a range like 0-6, indices like 0,2,4 or "
                             f"coarse/middle/fine") from None
        if not sel or min(sel) < 0 or max(sel) >= count:
            raise ValueError(f"{tok!r} is out of range: the model has {count} {kind} layers (0-{count - 1})")
        out.update(sel)
    return sorted(out)


# ------------------------------------------------------------------------------------------------
# Latents and rendering
# ------------------------------------------------------------------------------------------------

def model_device(G) -> torch.device:
    try:
        return next(G.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def labels_for(G, n: int, c: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    if not G.c_dim:
        return None
    if c is None:
        raise ValueError(f"the model is conditional ({G.c_dim} classes): pass c (one-hot [N, {G.c_dim}])")
    c = c.to(model_device(G), torch.float32)
    return c.expand(n, -1) if c.shape[0] == 1 else c


def ws_from_seeds(G, seeds: Sequence[int], c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                  truncation_cutoff: Optional[int] = None) -> torch.Tensor:
    """``[len(seeds), num_ws, w_dim]`` through ``G.mapping`` (with optional truncation)."""
    require_styles(G, "w latents")
    z = z_from_seeds(seeds, G.z_dim).to(model_device(G))
    with torch.no_grad():
        return G.mapping(z, labels_for(G, len(seeds), c), truncation_psi=truncation_psi,
                         truncation_cutoff=truncation_cutoff)


def synthesize(G, ws: torch.Tensor, noise_mode: str = "const", batch: int = 8) -> torch.Tensor:
    """``G.synthesis`` over ``ws [N, num_ws, w_dim]`` in chunks of ``batch``, without gradients."""
    require_styles(G, "rendering ws")
    out = []
    with torch.no_grad():
        for i in range(0, ws.shape[0], batch):
            out.append(G.synthesis(ws[i:i + batch].to(model_device(G)), noise_mode=noise_mode))
    return torch.cat(out)


def _render_z(G, z: torch.Tensor, c: Optional[torch.Tensor], noise_mode: str, batch: int, **trunc) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, z.shape[0], batch):
            zi = z[i:i + batch].to(model_device(G))
            out.append(G(zi, labels_for(G, zi.shape[0], c), noise_mode=noise_mode, **trunc))
    return torch.cat(out)


# ------------------------------------------------------------------------------------------------
# Style mixing
# ------------------------------------------------------------------------------------------------

def style_mix(G, row_ws: torch.Tensor, col_ws: torch.Tensor, layers: Iterable[int], noise_mode: str = "const",
              batch: int = 8) -> torch.Tensor:
    """The style-mixing figure: image ``[i, j]`` takes every style from ``row_ws[i]`` except the
    ``layers``, which come from ``col_ws[j]`` (NVIDIA's style_mixing.py). Returns
    ``[rows, cols, C, H, W]`` in [-1, 1]."""
    require_styles(G, "style mixing")
    layers = sorted(set(int(l) for l in layers))
    if layers and (layers[0] < 0 or layers[-1] >= G.num_ws):
        raise ValueError(f"layers must lie in 0..{G.num_ws - 1}, got {layers}")
    R, C = row_ws.shape[0], col_ws.shape[0]
    ws = row_ws.unsqueeze(1).repeat(1, C, 1, 1)
    if layers:
        ws[:, :, layers] = col_ws.unsqueeze(0).expand(R, -1, -1, -1)[:, :, layers].to(ws.dtype)
    img = synthesize(G, ws.reshape(R * C, *ws.shape[2:]), noise_mode, batch)
    return img.reshape(R, C, *img.shape[1:])


# ------------------------------------------------------------------------------------------------
# Interpolation
# ------------------------------------------------------------------------------------------------

def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the last dim, ``t`` of shape ``[..., 1]`` in [0, 1]; exact at the ends."""
    an, bn = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    theta = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1, 1))
    s = torch.sin(theta)
    small = s.abs() < 1e-6
    safe = torch.where(small, torch.ones_like(s), s)
    out = (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / safe
    out = torch.where(small, torch.lerp(a, b, t), out)
    out = torch.where(t == 0, a, out)
    return torch.where(t == 1, b, out)


def _segment_ts(num_keys: int, frames: int, loop: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per output frame: index of the segment's start key and the position in [0, 1) (or the last
    key at t = 1 when not looping). ``frames`` per segment; ``loop`` adds the segment back to key 0."""
    segments = num_keys if loop else num_keys - 1
    idx, ts = [], []
    for s in range(segments):
        for f in range(frames):
            idx.append(s)
            ts.append(f / frames)
    if not loop:
        idx.append(num_keys - 2)
        ts.append(1.0)
    return torch.tensor(idx), torch.tensor(ts, dtype=torch.float32)


def interpolation_path(G, z: torch.Tensor, frames: int, space: str = "w", loop: bool = False,
                       c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                       truncation_cutoff: Optional[int] = None) -> torch.Tensor:
    """The latents of a walk through the keyframes ``z [K, z_dim]``: ``[F, num_ws, w_dim]`` ws for
    ``space='w'`` (linear interpolation of the mapped keyframes) or ``[F, z_dim]`` z for
    ``space='z'`` (spherical interpolation). Frame ``k * frames`` is keyframe ``k`` exactly;
    ``F = frames * K`` when looping, ``frames * (K - 1) + 1`` otherwise."""
    if space not in ("w", "z"):
        raise ValueError(f"space must be 'w' or 'z', got {space!r}")
    if frames < 1:
        raise ValueError("frames must be >= 1")
    K = z.shape[0]
    if K < 1 or (K < 2 and not loop):
        raise ValueError("an interpolation needs at least two keyframes (one when looping)")
    idx, ts = _segment_ts(K, frames, loop)
    nxt = (idx + 1) % K
    if space == "w":
        require_styles(G, "interpolation in W")
        with torch.no_grad():
            keys = G.mapping(z.to(model_device(G)), labels_for(G, K, c), truncation_psi=truncation_psi,
                             truncation_cutoff=truncation_cutoff)
        t = ts.to(keys.device).view(-1, 1, 1)
        return torch.lerp(keys[idx], keys[nxt], t)
    z = z.to(model_device(G), torch.float32)
    return slerp(z[idx], z[nxt], ts.to(z.device).view(-1, 1))


def interpolate(G, z: torch.Tensor, frames: int = 60, space: str = "w", loop: bool = False,
                c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None,
                noise_mode: str = "const", batch: int = 8) -> torch.Tensor:
    """Render the walk of :func:`interpolation_path`: ``[F, C, H, W]`` in [-1, 1]. ``space='w'`` lerps
    in W (StyleGAN generations); ``space='z'`` slerps in Z (every generation, ProGAN included)."""
    path = interpolation_path(G, z, frames, space, loop, c, truncation_psi, truncation_cutoff)
    if space == "w":
        return synthesize(G, path, noise_mode, batch)
    trunc = {}
    if truncation_psi != 1:
        require_styles(G, "truncation")
        trunc = dict(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    return _render_z(G, path, c, noise_mode, batch, **trunc)


# ------------------------------------------------------------------------------------------------
# Truncation
# ------------------------------------------------------------------------------------------------

def truncate(G, ws: torch.Tensor, psi: float, cutoff: Optional[int] = None) -> torch.Tensor:
    """The truncation trick ``w_avg + psi * (w - w_avg)`` on the first ``cutoff`` styles (all if None)."""
    require_styles(G, "truncation")
    w_avg = G.mapping.w_avg.to(ws.device, ws.dtype)
    n = ws.shape[1] if cutoff is None else min(int(cutoff), ws.shape[1])
    out = ws.clone()
    out[:, :n] = w_avg.lerp(ws[:, :n], float(psi))
    return out


def truncation_strip(G, ws: torch.Tensor, psis: Sequence[float], cutoff: Optional[int] = None,
                     noise_mode: str = "const", batch: int = 8) -> torch.Tensor:
    """``[N, len(psis), C, H, W]``: each of the (untruncated) ``ws`` rendered at every psi."""
    out = torch.stack([synthesize(G, truncate(G, ws, p, cutoff), noise_mode, batch) for p in psis], dim=1)
    return out


# ------------------------------------------------------------------------------------------------
# Stochastic variation
# ------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def noise_override(G, maps: Dict[str, torch.Tensor]):
    """Temporarily replace ``noise_const`` buffers (by name) with other ``[res, res]`` tensors."""
    saved = []
    try:
        for name, module, _ in noise_inputs(G):
            if name in maps:
                saved.append((module, module._buffers["noise_const"]))
                module._buffers["noise_const"] = maps[name]
        yield
    finally:
        for module, buf in saved:
            module._buffers["noise_const"] = buf


def noise_variations(G, ws: torch.Tensor, n: int = 8, noise_layers: Any = None, noise_mode: str = "random",
                     seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stochastic variation (StyleGAN paper, Figs. 4 and 5): the same ``ws [1, num_ws, w_dim]``
    rendered ``n`` times with different noise. ``noise_mode='random'`` draws fresh maps (seeded by
    ``seed`` and the variation index) for the ``noise_layers`` (indices into :func:`noise_inputs`, a
    preset like ``'fine'``, or None for all) and keeps the others at their constant maps;
    ``'const'`` and ``'none'`` render every variation with the same noise, so all are identical.
    Returns the images ``[n, C, H, W]`` and the per-pixel standard deviation over them, averaged
    over channels, ``[H, W]``."""
    require_styles(G, "stochastic variation")
    inputs = noise_inputs(G)
    if not inputs:
        raise NotApplicable(f"a {generation_name(G)} generator has no noise inputs, so there is no stochastic variation")
    if noise_mode not in ("random", "const", "none"):
        raise ValueError(f"noise_mode must be random, const or none, got {noise_mode!r}")
    layers = set(parse_layers(noise_layers, G, kind="noise"))
    ws = ws[:1].to(model_device(G))
    imgs = []
    for i in range(n):
        maps = {}
        if noise_mode == "random":
            gen = torch.Generator().manual_seed(int(seed) * 1000003 + i)
            for j, (name, module, res) in enumerate(inputs):
                if j in layers:
                    buf = module._buffers["noise_const"]
                    maps[name] = torch.randn([res, res], generator=gen).to(buf.device, buf.dtype)
        with noise_override(G, maps):
            imgs.append(synthesize(G, ws, "none" if noise_mode == "none" else "const"))
    imgs = torch.cat(imgs)
    return imgs, imgs.float().std(dim=0, unbiased=False).mean(dim=0)
