"""Projection of an image into W (or W+), as NVIDIA's ``projector.py``, and its LPIPS network."""
from __future__ import annotations

import math
import os
import warnings
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from zoo.core.contract import noise_inputs
from zoo.core.download import cache_dir, cached_download, load_torchscript, verify_sha256
from zoo.core.errors import DetectorError
from zoo.sampling.figures import labels_for, model_device, noise_override, require_styles, synthesize

__all__ = ["project", "render_projection", "load_vgg16", "VGG16_URL"]

VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"


def load_vgg16(spec: Optional[str] = "auto", sha256: Optional[str] = None, download: bool = True,
               device: Any = "cpu") -> Optional[torch.nn.Module]:
    """The VGG16/LPIPS feature network as a TorchScript module called like NVIDIA's
    ``vgg16(img, resize_images=False, return_lpips=True)`` on ``[N, 3, H, W]`` float images in
    [0, 255]. ``spec``: a local ``.pt`` path; ``'auto'`` for the cached copy of NVIDIA's file
    (``$ZOO_CACHE`` or ``~/.cache/zoo``, downloaded from :data:`VGG16_URL` on first use if
    ``download``, by :func:`zoo.core.download.cached_download`, the zoo's one downloader);
    ``None`` / ``'none'`` for no network. The checksum is ``sha256`` when given, otherwise the one
    recorded when the file was first downloaded (trust on first use); a mismatch is an error.
    Returns None (with a warning) when no network can be had."""
    if spec is None or str(spec).lower() in ("none", "null", "mse"):
        return None
    if str(spec).lower() == "auto":
        try:
            path = cached_download(VGG16_URL, "vgg16.pt", sha256=sha256, download=download, cache=cache_dir(),
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
    require_styles(G, "projection")
    device = model_device(G)
    if isinstance(target, np.ndarray):
        target = torch.from_numpy(target.reshape(target.shape[0], target.shape[1], -1)).permute(2, 0, 1)
    target = target.to(device, torch.float32)
    if tuple(target.shape) != (G.img_channels, G.img_resolution, G.img_resolution):
        raise ValueError(f"target must be [{G.img_channels}, {G.img_resolution}, {G.img_resolution}], "
                         f"got {tuple(target.shape)}")
    gen = torch.Generator().manual_seed(int(seed))
    labels = labels_for(G, w_avg_samples, c)
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
        with noise_override(G, noise):
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
    with noise_override(G, noise or {}):
        return synthesize(G, ws, "const")
