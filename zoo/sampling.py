"""The figures of the papers as functions: style mixing, interpolation, truncation strips,
stochastic variation and projection of an image into W.

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
import math
import os
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from zoo.utils import to_uint8, z_from_seed

__all__ = [
    "has_styles", "generation_name", "noise_inputs", "layer_resolutions", "parse_layers", "z_from_seeds", "ws_from_seeds",
    "synthesize", "style_mix", "interpolate", "interpolation_path", "slerp", "truncate", "truncation_strip",
    "noise_variations", "project", "load_vgg16", "save_animation", "save_mp4", "to_uint8", "VGG16_URL",
    "PRESETS", "NotApplicable", "render_projection",
]

VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"

# StyleGAN paper, Fig. 3: coarse styles 4^2-8^2, middle 16^2-32^2, fine 64^2-1024^2 (bounds in pixels).
PRESETS: Dict[str, Tuple[int, int]] = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}


class NotApplicable(ValueError):
    """The operation does not exist for this generation (e.g. style mixing on ProGAN)."""


def generation_name(G) -> str:
    """The generation of ``G`` (``G.generation`` as set by :func:`zoo.load`, else its module name)."""
    return getattr(G, "generation", type(G).__module__.rsplit(".", 1)[-1])


def has_styles(G) -> bool:
    """Whether G has a mapping network and per-layer styles (every generation except ProGAN)."""
    return hasattr(G, "mapping") and hasattr(G, "synthesis") and hasattr(G, "num_ws")


def _require_styles(G, what: str) -> None:
    if not has_styles(G):
        raise NotApplicable(f"{what} needs a mapping network and styles, and a {generation_name(G)} generator has none "
                            "(ProGAN maps z straight to images); use mode=images or mode=interpolate space=z")


def noise_inputs(G) -> List[Tuple[str, torch.nn.Module, int]]:
    """``(buffer name, module, resolution)`` of every per-layer noise input, in the order of
    ``G.synthesis.named_buffers()``. Empty for ProGAN, StyleGAN3 and ``use_noise=False``."""
    if not hasattr(G, "synthesis"):
        return []
    out = []
    for name, module in G.synthesis.named_modules():
        buf = module._buffers.get("noise_const")
        if buf is not None:
            out.append((f"{name}.noise_const" if name else "noise_const", module, int(buf.shape[-1])))
    return out


def layer_resolutions(G) -> List[int]:
    """The resolution each of the ``num_ws`` styles acts at, for the coarse/middle/fine presets.

    StyleGAN (v1): two styles per resolution. StyleGAN2: the styles of a block's convolutions (the
    ToRGB style, shared with the next block's first conv, counts for that conv). StyleGAN3 has no
    resolution pyramid: a layer counts at ``2 * cutoff`` (the size of an image that holds its band
    limit), so the input is at 4 and the last layers at the output resolution."""
    _require_styles(G, "style layers")
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
        _require_styles(G, "style mixing")
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

def _device(G) -> torch.device:
    try:
        return next(G.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """``[len(seeds), z_dim]``: NumPy ``RandomState(seed).randn(1, z_dim)`` per seed, as NVIDIA."""
    return torch.cat([z_from_seed(int(s), z_dim) for s in seeds])


def _labels(G, n: int, c: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    if not G.c_dim:
        return None
    if c is None:
        raise ValueError(f"the model is conditional ({G.c_dim} classes): pass c (one-hot [N, {G.c_dim}])")
    c = c.to(_device(G), torch.float32)
    return c.expand(n, -1) if c.shape[0] == 1 else c


def ws_from_seeds(G, seeds: Sequence[int], c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
                  truncation_cutoff: Optional[int] = None) -> torch.Tensor:
    """``[len(seeds), num_ws, w_dim]`` through ``G.mapping`` (with optional truncation)."""
    _require_styles(G, "w latents")
    z = z_from_seeds(seeds, G.z_dim).to(_device(G))
    with torch.no_grad():
        return G.mapping(z, _labels(G, len(seeds), c), truncation_psi=truncation_psi,
                         truncation_cutoff=truncation_cutoff)


def synthesize(G, ws: torch.Tensor, noise_mode: str = "const", batch: int = 8) -> torch.Tensor:
    """``G.synthesis`` over ``ws [N, num_ws, w_dim]`` in chunks of ``batch``, without gradients."""
    _require_styles(G, "rendering ws")
    out = []
    with torch.no_grad():
        for i in range(0, ws.shape[0], batch):
            out.append(G.synthesis(ws[i:i + batch].to(_device(G)), noise_mode=noise_mode))
    return torch.cat(out)


def _render_z(G, z: torch.Tensor, c: Optional[torch.Tensor], noise_mode: str, batch: int, **trunc) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, z.shape[0], batch):
            zi = z[i:i + batch].to(_device(G))
            out.append(G(zi, _labels(G, zi.shape[0], c), noise_mode=noise_mode, **trunc))
    return torch.cat(out)


# ------------------------------------------------------------------------------------------------
# Style mixing
# ------------------------------------------------------------------------------------------------

def style_mix(G, row_ws: torch.Tensor, col_ws: torch.Tensor, layers: Iterable[int], noise_mode: str = "const",
              batch: int = 8) -> torch.Tensor:
    """The style-mixing figure: image ``[i, j]`` takes every style from ``row_ws[i]`` except the
    ``layers``, which come from ``col_ws[j]`` (NVIDIA's style_mixing.py). Returns
    ``[rows, cols, C, H, W]`` in [-1, 1]."""
    _require_styles(G, "style mixing")
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
        _require_styles(G, "interpolation in W")
        with torch.no_grad():
            keys = G.mapping(z.to(_device(G)), _labels(G, K, c), truncation_psi=truncation_psi,
                             truncation_cutoff=truncation_cutoff)
        t = ts.to(keys.device).view(-1, 1, 1)
        return torch.lerp(keys[idx], keys[nxt], t)
    z = z.to(_device(G), torch.float32)
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
        _require_styles(G, "truncation")
        trunc = dict(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    return _render_z(G, path, c, noise_mode, batch, **trunc)


# ------------------------------------------------------------------------------------------------
# Truncation
# ------------------------------------------------------------------------------------------------

def truncate(G, ws: torch.Tensor, psi: float, cutoff: Optional[int] = None) -> torch.Tensor:
    """The truncation trick ``w_avg + psi * (w - w_avg)`` on the first ``cutoff`` styles (all if None)."""
    _require_styles(G, "truncation")
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
def _noise_override(G, maps: Dict[str, torch.Tensor]):
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
    _require_styles(G, "stochastic variation")
    inputs = noise_inputs(G)
    if not inputs:
        raise NotApplicable(f"a {generation_name(G)} generator has no noise inputs, so there is no stochastic variation")
    if noise_mode not in ("random", "const", "none"):
        raise ValueError(f"noise_mode must be random, const or none, got {noise_mode!r}")
    layers = set(parse_layers(noise_layers, G, kind="noise"))
    ws = ws[:1].to(_device(G))
    imgs = []
    for i in range(n):
        maps = {}
        if noise_mode == "random":
            gen = torch.Generator().manual_seed(int(seed) * 1000003 + i)
            for j, (name, module, res) in enumerate(inputs):
                if j in layers:
                    buf = module._buffers["noise_const"]
                    maps[name] = torch.randn([res, res], generator=gen).to(buf.device, buf.dtype)
        with _noise_override(G, maps):
            imgs.append(synthesize(G, ws, "none" if noise_mode == "none" else "const"))
    imgs = torch.cat(imgs)
    return imgs, imgs.float().std(dim=0, unbiased=False).mean(dim=0)


# ------------------------------------------------------------------------------------------------
# Projection
# ------------------------------------------------------------------------------------------------

def _cache_dir() -> str:
    from zoo.metrics.detectors import cache_dir

    return cache_dir()


def load_vgg16(spec: Optional[str] = "auto", sha256: Optional[str] = None, download: bool = True,
               device: Any = "cpu") -> Optional[torch.nn.Module]:
    """The VGG16/LPIPS feature network as a TorchScript module called like NVIDIA's
    ``vgg16(img, resize_images=False, return_lpips=True)`` on ``[N, 3, H, W]`` float images in
    [0, 255]. ``spec``: a local ``.pt`` path; ``'auto'`` for the cached copy of NVIDIA's file
    (``$ZOO_CACHE`` or ``~/.cache/zoo``, downloaded from :data:`VGG16_URL` on first use if
    ``download``, by :func:`zoo.metrics.detectors.cached_download`, the metrics' downloader);
    ``None`` / ``'none'`` for no network. The checksum is ``sha256`` when given, otherwise the one
    recorded when the file was first downloaded (trust on first use); a mismatch is an error.
    Returns None (with a warning) when no network can be had."""
    from zoo.metrics.detectors import DetectorError, cached_download, load_torchscript, verify_sha256

    if spec is None or str(spec).lower() in ("none", "null", "mse"):
        return None
    if str(spec).lower() == "auto":
        try:
            path = cached_download(VGG16_URL, "vgg16.pt", sha256=sha256, download=download, cache=_cache_dir(),
                                   key="vgg", sha_key="vgg_sha256", what="the VGG16 feature network")
        except DetectorError as e:
            if e.reason == "offline":
                warnings.warn(f"no VGG16 at {e.path} and downloads are off")
            else:
                warnings.warn(f"could not download the VGG16 feature network ({e}); pass vgg=PATH to a local copy")
            return None
    else:
        path = os.path.expanduser(str(spec))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"VGG16 TorchScript file not found: {path!r}")
        verify_sha256(path, sha256, key="vgg_sha256")
    return load_torchscript(path, device)


def _noise_regularizer(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Multi-scale autocorrelation penalty of the noise maps (StyleGAN2 paper, appendix D): squared
    mean of each map times its one-pixel shift in x and y, at every scale down to 8x8."""
    loss = torch.zeros([])
    for m in maps:
        v = m[None, None]
        while True:
            loss = loss + (v * torch.roll(v, 1, dims=3)).mean() ** 2 + (v * torch.roll(v, 1, dims=2)).mean() ** 2
            if v.shape[2] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return loss


def _to_vgg_input(img: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] in [0, 255] -> 3 channels, area-downsampled to 256 px if larger (as NVIDIA)."""
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    if img.shape[2] > 256:
        img = F.interpolate(img, size=(256, 256), mode="area")
    return img


def project(G, target: Any, *, steps: int = 1000, vgg: Optional[torch.nn.Module] = None, w_plus: bool = False,
            c: Optional[torch.Tensor] = None, seed: int = 303, w_avg_samples: int = 10000, initial_lr: float = 0.1,
            initial_noise_factor: float = 0.05, lr_rampup_length: float = 0.05, lr_rampdown_length: float = 0.25,
            noise_ramp_length: float = 0.75, regularize_noise_weight: float = 1e5,
            callback: Optional[Callable[[int, torch.Tensor, float], None]] = None) -> Dict[str, Any]:
    """Find the w (or w+ with ``w_plus``) whose image reproduces ``target``, as NVIDIA's projector:
    start at the mean of ``w_avg_samples`` mapped z; Adam (0.9, 0.999) on w and every noise map
    with lr ``initial_lr`` ramped up over the first ``lr_rampup_length`` and down by a cosine over
    the last ``lr_rampdown_length`` of the steps; Gaussian noise of ``initial_noise_factor * w_std``
    added to w, decaying quadratically to 0 at ``noise_ramp_length``; loss = sum of squared LPIPS
    feature differences from ``vgg`` (images in [0, 255], 256 px at most) + ``regularize_noise_weight``
    x the noise autocorrelation penalty; noise maps renormalised to zero mean and unit variance
    after each step. Without ``vgg`` the distance is the pixel MSE (in [-1, 1] units), with a warning.
    Generations without noise inputs (StyleGAN3) skip the noise terms.

    ``target``: ``[C, H, W]`` tensor in [0, 255] or an ``H x W x C`` uint8 array at G's resolution.
    Returns ``{'ws': [steps, num_ws, w_dim] per step, 'loss': [...], 'dist': [...], 'noise': {name: map}}``;
    the final image is ``G.synthesis(ws[-1:], noise_mode='const')`` with the returned noise
    (:func:`render_projection`)."""
    _require_styles(G, "projection")
    device = _device(G)
    if isinstance(target, np.ndarray):
        target = torch.from_numpy(target.reshape(target.shape[0], target.shape[1], -1)).permute(2, 0, 1)
    target = target.to(device, torch.float32)
    if tuple(target.shape) != (G.img_channels, G.img_resolution, G.img_resolution):
        raise ValueError(f"target must be [{G.img_channels}, {G.img_resolution}, {G.img_resolution}], "
                         f"got {tuple(target.shape)}")
    gen = torch.Generator().manual_seed(int(seed))
    labels = _labels(G, w_avg_samples, c)
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(123).randn(w_avg_samples, G.z_dim)).float().to(device)
        w_samples = G.mapping(z, labels)[:, :1].double()
    w_avg = w_samples.mean(0, keepdim=True)                      # [1, 1, w_dim]
    w_std = float(((w_samples - w_avg) ** 2).sum() / w_avg_samples) ** 0.5
    w_opt = w_avg.float().repeat(1, G.num_ws if w_plus else 1, 1).clone().requires_grad_(True)

    inputs = noise_inputs(G)
    noise = {name: torch.randn([res, res], generator=gen).to(device).requires_grad_(True)
             for name, _, res in inputs}
    if vgg is None:
        warnings.warn("no VGG16/LPIPS network: projecting with the pixel MSE instead (pass vgg=PATH for the "
                      "official perceptual loss)")
        target_feat = None
    else:
        target_feat = vgg(_to_vgg_input(target[None]), resize_images=False, return_lpips=True).detach()
    opt = torch.optim.Adam([w_opt] + list(noise.values()), betas=(0.9, 0.999), lr=initial_lr)
    ws_out = torch.empty([steps, G.num_ws, G.w_dim])
    losses, dists = [], []
    for step in range(steps):
        t = step / steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        lr_ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
        lr_ramp = 0.5 - 0.5 * math.cos(lr_ramp * math.pi)
        lr_ramp = lr_ramp * min(1.0, t / lr_rampup_length)
        for group in opt.param_groups:
            group["lr"] = initial_lr * lr_ramp
        w = w_opt + torch.randn(w_opt.shape, generator=gen).to(device) * w_noise_scale
        ws = w if w_plus else w.repeat(1, G.num_ws, 1)
        with _noise_override(G, noise):
            synth = G.synthesis(ws, noise_mode="const")
        if target_feat is None:
            dist = (synth - (target[None] / 127.5 - 1)).square().mean()
        else:
            synth_feat = vgg(_to_vgg_input((synth + 1) * (255 / 2)), resize_images=False, return_lpips=True)
            dist = (target_feat - synth_feat).square().sum()
        reg = _noise_regularizer(list(noise.values())) if noise else torch.zeros([])
        loss = dist + reg * regularize_noise_weight
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for m in noise.values():
                m -= m.mean()
                m *= m.square().mean().rsqrt()
        ws_out[step] = w_opt.detach().cpu().expand(1, G.num_ws, -1)[0]
        losses.append(float(loss.detach()))
        dists.append(float(dist.detach()))
        if callback is not None:
            callback(step, ws_out[step:step + 1], dists[-1])
    return {"ws": ws_out, "loss": losses, "dist": dists,
            "noise": {k: v.detach() for k, v in noise.items()}}


def render_projection(G, ws: torch.Tensor, noise: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
    """Render projected ``ws`` with the projection's noise maps (or G's constant noise)."""
    with _noise_override(G, noise or {}):
        return synthesize(G, ws, "const")


# ------------------------------------------------------------------------------------------------
# Animations
# ------------------------------------------------------------------------------------------------

def _pil_frames(frames: np.ndarray) -> List[Image.Image]:
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    return [Image.fromarray(f) for f in frames]


def save_animation(frames: np.ndarray, path: str, fps: float = 30, loop: bool = True) -> str:
    """Write ``[F, H, W, C]`` uint8 frames as an animated GIF or WebP (by the extension) with Pillow.
    GIF delays are in 10 ms units, so the frame time is rounded to that (30 fps -> 30 ms)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".gif", ".webp"):
        raise ValueError(f"animations are written as .gif or .webp, not {ext!r}")
    ims = _pil_frames(frames)
    duration = max(10, int(round(1000 / fps / 10)) * 10) if ext == ".gif" else max(1, int(round(1000 / fps)))
    kwargs: Dict[str, Any] = dict(save_all=True, append_images=ims[1:], duration=duration, loop=0 if loop else 1)
    if ext == ".gif":
        kwargs.update(optimize=False, disposal=1)
    else:
        kwargs.update(lossless=True)
    if not loop and ext == ".gif":
        kwargs.pop("loop")  # no NETSCAPE loop block: play once
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    ims[0].save(path, **kwargs)
    return path


def save_mp4(frames: np.ndarray, path: str, fps: float = 30) -> Optional[str]:
    """Write ``[F, H, W, C]`` uint8 frames as H.264 MP4 with imageio-ffmpeg (an optional extra:
    ``pip install 'zoo[video]'``). Returns the path, or None (with a message) when it is not installed."""
    try:
        import imageio_ffmpeg
    except ImportError:
        print("[zoo] MP4 skipped: imageio-ffmpeg is not installed (pip install imageio-ffmpeg, or "
              "pip install 'zoo[video]'); the GIF/WebP was written", flush=True)
        return None
    frames = np.asarray(frames)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    h, w = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(path, (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=2, output_params=["-crf", "18"])
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    return path
