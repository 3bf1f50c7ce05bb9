"""Perceptual path length (PPL), from the StyleGAN paper (Karras et al. 2019, section 4.2), with the
definition NVIDIA's stylegan2-ada-pytorch / stylegan3 code computes (``ppl2_wend``, ``ppl_zfull``, ...).

For each sample, two latents ``z0, z1 ~ N(0, I)`` and a label ``c`` are drawn, and a position ``t``
along the path between them: uniform in [0, 1] (``sampling='full'``) or 0 (``'end'``, the
endpoints). Two images are rendered a small step ``epsilon`` apart on that path:

* ``space='w'``: both latents go through the mapping network, and the ws are interpolated linearly,
  at ``t`` and ``t + epsilon``;
* ``space='z'``: the latents are interpolated on the unit sphere (spherical interpolation of
  ``z0/|z0|`` and ``z1/|z1|``, the result kept on the sphere), then mapped.

The per-layer noise inputs are the same for both images of a pair: rendering uses
``noise_mode='const'``, and every constant noise map is redrawn at random before each batch (and put
back afterwards). The pair is optionally centre-cropped (``crop``: rows 3/8..7/8, columns 2/8..6/8,
the face crop of the FFHQ metrics), box-downsampled by ``img_resolution // 256`` when the generator
is larger than 256 px, mapped from [-1, 1] to [0, 255] (grey images repeated to three channels) and
fed to the VGG16 LPIPS network, ``vgg(img, resize_images=False, return_lpips=True)``. A sample's
path length is the squared distance of the two LPIPS embeddings divided by ``epsilon ** 2``. The
metric is the mean over samples after dropping the outliers: only values between the 1st percentile
(rounded down to a sample, NumPy's ``'lower'``) and the 99th (rounded up, ``'higher'``) count.

ProGAN has no mapping network and so no W space; its Z-space PPL renders ``G(z, c)`` directly, with
the spherical interpolant scaled to the typical length ``sqrt(z_dim)`` of a Gaussian latent (a no-op
for generators that normalise their latents, as every generation here does by default).

The random numbers (``t``, latents, label indices, noise maps) come from one CPU generator seeded by
``seed``, so the result does not depend on the device; they are drawn in the order NVIDIA's sampler
draws them from torch's global generator. The final batch is shortened so that exactly
``num_samples`` samples count (NVIDIA renders whole batches and discards the surplus). The spherical
interpolation is computed in float64 (NVIDIA's runs in float32, whose rounding shows in the
difference quotient as ~0.1% per sample at ``epsilon = 1e-4``); everything else is float32 as there.
"""
from __future__ import annotations

import contextlib
import copy
import math
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from zoo.core.contract import generation_name, has_styles, input_transform, noise_inputs
from zoo.core.errors import NotApplicable
from zoo.sampling import slerp

__all__ = ["compute_ppl"]


# ------------------------------------------------------------------------------------------------
# Helpers shared with zoo.metrics.equivariance
# ------------------------------------------------------------------------------------------------

def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (b.index is None or a.index is None or a.index == b.index)


def on_device(module: torch.nn.Module, device) -> torch.nn.Module:
    """``module`` itself when all its tensors already live on ``device``, else a deep copy moved
    there (the caller's network is never moved). Anything that is not a module is returned as is."""
    if not isinstance(module, torch.nn.Module):
        return module
    dev = torch.device(device)
    for t in list(module.parameters()) + list(module.buffers()):
        if not _same_device(t.device, dev):
            return copy.deepcopy(module).to(dev)
    return module


def label_sampler(G, labels: Optional[torch.Tensor], device) -> Callable[[int, torch.Generator], torch.Tensor]:
    """``draw(n, generator) -> c [n, c_dim]``: rows of ``labels`` picked uniformly at random for a
    conditional G (as NVIDIA's metrics draw dataset labels), ``[n, 0]`` for an unconditional one."""
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0:
        return lambda n, gen: torch.zeros([n, 0], device=device)
    if labels is None:
        raise ValueError(f"the generator is conditional (c_dim={c_dim}): pass labels, a float tensor "
                         f"[N, {c_dim}] of dataset labels to draw c from")
    labels = torch.as_tensor(labels, dtype=torch.float32)
    if labels.ndim != 2 or labels.shape[1] != c_dim or labels.shape[0] == 0:
        raise ValueError(f"labels must be a non-empty [N, {c_dim}] tensor, got {tuple(labels.shape)}")
    labels = labels.to(device)

    def draw(n: int, gen: torch.Generator) -> torch.Tensor:
        return labels[torch.randint(labels.shape[0], [n], generator=gen).to(labels.device)]

    return draw


@contextlib.contextmanager
def preserved_state(G) -> Iterator[Callable[[torch.Generator], None]]:
    """Puts G in eval mode and yields ``randomize_noise(generator)``, which redraws every
    ``noise_const`` map; on exit (errors included) restores the train/eval flags, the noise maps
    and the StyleGAN3 input transform as they were."""
    flags = [(m, m.training) for m in G.modules()]
    noise = [module._buffers["noise_const"] for _, module, _ in noise_inputs(G)]
    saved_noise = [buf.detach().clone() for buf in noise]
    transform = input_transform(G)
    saved_transform = None if transform is None else transform.detach().clone()

    def randomize_noise(gen: torch.Generator) -> None:
        with torch.no_grad():
            for buf in noise:
                buf.copy_(torch.randn(buf.shape, generator=gen).to(buf.device, buf.dtype))

    try:
        G.eval()
        yield randomize_noise
    finally:
        with torch.no_grad():
            for buf, value in zip(noise, saved_noise):
                buf.copy_(value)
            if transform is not None:
                transform.copy_(saved_transform)
        for m, flag in flags:
            m.training = flag


def _check_counts(num_samples: int, batch_size: int) -> None:
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


# ------------------------------------------------------------------------------------------------
# PPL
# ------------------------------------------------------------------------------------------------

def _sphere_path(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points at fraction ``t [N]`` of the great-circle arc from ``z0/|z0|`` to ``z1/|z1|`` (unit
    vectors; ``t`` may pass 1 by epsilon), computed in float64."""
    a = F.normalize(z0.double(), dim=-1)
    b = F.normalize(z1.double(), dim=-1)
    return F.normalize(slerp(a, b, t.double().unsqueeze(-1)), dim=-1)


def prepare_for_vgg(img: torch.Tensor, img_resolution: int, crop: bool) -> torch.Tensor:
    """Generator output in [-1, 1] -> the VGG16 input: optional face crop (rows 3/8..7/8, columns
    2/8..6/8), box-downsampling by ``img_resolution // 256`` when that exceeds 1 (the factor is taken
    from the full resolution, before any crop, as NVIDIA does), [0, 255] range, three channels."""
    if crop:
        if img.shape[2] != img.shape[3]:
            raise ValueError(f"crop needs square images, got {tuple(img.shape[2:])}")
        e = img.shape[2] // 8
        img = img[:, :, 3 * e:7 * e, 2 * e:6 * e]
    factor = int(img_resolution) // 256
    if factor > 1:
        img = F.avg_pool2d(img, factor)
    img = (img + 1) * (255 / 2)
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    return img


def trimmed_mean(dist: np.ndarray) -> float:
    """Mean of the values between the 1st percentile (NumPy ``method='lower'``) and the 99th
    (``method='higher'``), both included."""
    dist = np.asarray(dist, dtype=np.float64).reshape(-1)
    try:
        lo = np.percentile(dist, 1, method="lower")
        hi = np.percentile(dist, 99, method="higher")
    except TypeError:  # NumPy < 1.22
        lo = np.percentile(dist, 1, interpolation="lower")
        hi = np.percentile(dist, 99, interpolation="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def compute_ppl(G, vgg, *, num_samples: int, epsilon: float = 1e-4, space: str = "w", sampling: str = "end",
                crop: bool = False, batch_size: int = 2, device="cpu", seed: int = 0,
                labels: Optional[torch.Tensor] = None) -> float:
    """Perceptual path length of generator ``G`` over ``num_samples`` samples (see the module
    docstring for the definition). ``vgg``: the LPIPS network of :func:`zoo.sampling.load_vgg16`
    (or anything called the same way). ``labels``: ``[N, c_dim]`` dataset labels, required for a
    conditional G. Raises :class:`zoo.sampling.NotApplicable` for W-space PPL on a generator without
    a mapping network (ProGAN). G's noise maps and train/eval flags are left as they were."""
    if space not in ("w", "z"):
        raise ValueError(f"space must be 'w' or 'z', got {space!r}")
    if sampling not in ("full", "end"):
        raise ValueError(f"sampling must be 'full' or 'end', got {sampling!r}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    _check_counts(num_samples, batch_size)
    styled = has_styles(G)
    if space == "w" and not styled:
        raise NotApplicable(f"W-space PPL needs a mapping network, and a {generation_name(G)} generator has none "
                            "(ProGAN maps z straight to images); use space='z'")
    if vgg is None:
        raise ValueError("PPL needs the VGG16 LPIPS network (zoo.sampling.load_vgg16)")

    dev = torch.device(device)
    G = on_device(G, dev)
    vgg = on_device(vgg, dev)
    draw_c = label_sampler(G, labels, dev)
    gen = torch.Generator().manual_seed(int(seed))
    eps = float(epsilon)
    dists = []
    with preserved_state(G) as randomize_noise, torch.no_grad():
        for start in range(0, int(num_samples), int(batch_size)):
            n = min(int(batch_size), int(num_samples) - start)
            t = torch.rand([n], generator=gen)                       # drawn for 'end' too: same stream
            if sampling == "end":
                t = torch.zeros_like(t)
            z = torch.randn([2 * n, G.z_dim], generator=gen)
            z0, z1 = z[:n], z[n:]
            c = draw_c(n, gen)
            c2 = torch.cat([c, c])
            randomize_noise(gen)

            if space == "w":
                w = G.mapping(z.to(dev), c2)
                w0, w1 = w[:n], w[n:]
                tw = t.to(dev, w.dtype).view(-1, 1, 1)
                img = G.synthesis(torch.cat([w0.lerp(w1, tw), w0.lerp(w1, tw + eps)]), noise_mode="const")
            else:
                zt = torch.cat([_sphere_path(z0, z1, t), _sphere_path(z0, z1, t + eps)]).float().to(dev)
                if styled:
                    img = G.synthesis(G.mapping(zt, c2), noise_mode="const")
                else:
                    img = G(zt * math.sqrt(G.z_dim), c2, noise_mode="const")

            feats = vgg(prepare_for_vgg(img.float(), G.img_resolution, crop), resize_images=False,
                        return_lpips=True)
            f0, f1 = feats[:n], feats[n:]
            dists.append(((f0 - f1).double().square().flatten(1).sum(1) / eps ** 2).cpu())
    return trimmed_mean(torch.cat(dists).numpy())
