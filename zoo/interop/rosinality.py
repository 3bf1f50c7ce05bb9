"""rosinality/stylegan2-pytorch checkpoints (``{g_ema, g, d, latent_avg}``) in and out.

rosinality's ``Generator(size, style_dim, n_mlp, channel_multiplier)`` and
``Discriminator(size, channel_multiplier)`` store the same numbers as NVIDIA's StyleGAN2 networks
(equalized-lr weights are kept unscaled in both: ``EqualLinear`` keeps ``randn / lr_mul`` and
applies ``lr_mul / sqrt(fan_in)`` at run time, the modulated convs keep ``randn`` and demodulate,
the bias of every ``modulation`` layer is stored with its +1 like NVIDIA's ``affine.bias``). What
differs is names and shapes; the map, per tensor of a generator of resolution ``R``
(``r = 8, 16, ..., R``, ``j`` = 0, 1, ... for ``r = 2**(j+3)``):

====================================  ============================================  ===============
rosinality                            zoo / NVIDIA                                  shape change
====================================  ============================================  ===============
``style.{i+1}.weight|bias``           ``mapping.fc{i}.weight|bias``                 -
``input.input``                       ``synthesis.b4.const``                        [1,C,4,4] / [C,4,4]
``conv1.*``                           ``synthesis.b4.conv1.*``                      (StyledConv, below)
``to_rgb1.*``                         ``synthesis.b4.torgb.*``                      (ToRGB, below)
``convs.{2j}.*``                      ``synthesis.b{r}.conv0.*``                    (StyledConv)
``convs.{2j}.conv.blur.kernel``       ``4 * synthesis.b{r}.conv0.resample_filter``  buffer
``convs.{2j+1}.*``                    ``synthesis.b{r}.conv1.*``                    (StyledConv)
``to_rgbs.{j}.*``                     ``synthesis.b{r}.torgb.*``                    (ToRGB)
``to_rgbs.{j}.upsample.kernel``       ``4 * synthesis.b{r}.resample_filter``        buffer
``noises.noise_0``                    ``synthesis.b4.conv1.noise_const``            [1,1,4,4] / [4,4]
``noises.noise_{2j+1}|{2j+2}``        ``synthesis.b{r}.conv0|conv1.noise_const``    [1,1,r,r] / [r,r]
StyledConv ``conv.weight``            ``weight``                                    [1,O,I,3,3] / [O,I,3,3]
StyledConv ``conv.modulation.*``      ``affine.*``                                  -
StyledConv ``noise.weight``           ``noise_strength``                            [1] / []
StyledConv ``activate.bias``          ``bias``                                      -
ToRGB ``conv.weight``                 ``weight``                                    [1,3,C,1,1] / [3,C,1,1]
ToRGB ``conv.modulation.*``           ``affine.*``                                  -
ToRGB ``bias``                        ``bias``                                      [1,3,1,1] / [3]
``latent_avg`` (checkpoint level)     ``mapping.w_avg`` of G_ema                    -
====================================  ============================================  ===============

Discriminator (``k = 1, 2, ...`` for ``r = R, R/2, ..., 8``): ``convs.0.0.weight``/``convs.0.1.bias``
= ``b{R}.fromrgb``; ``convs.{k}.conv1.0.weight``/``conv1.1.bias`` = ``b{r}.conv0``;
``convs.{k}.conv2.1.weight``/``conv2.2.bias`` = ``b{r}.conv1`` (``conv2.0.kernel`` = its
``resample_filter``); ``convs.{k}.skip.1.weight`` = ``b{r}.skip.weight`` (``skip.0.kernel`` = its
``resample_filter``); ``final_conv.0.weight``/``final_conv.1.bias`` = ``b4.conv``;
``final_linear.0`` = ``b4.fc``; ``final_linear.1`` = ``b4.out``.

No kernel is flipped or transposed: both implementations run the upsampling conv as a transposed
convolution of the stored kernel (they both flip TF's ``Conv0_up`` on conversion from TF).

Channels: rosinality's table is 512 up to 32 px and ``{64: 256, 128: 128, ..., 1024: 16} *
channel_multiplier`` above, which is NVIDIA's ``min(channel_base // res, channel_max)`` with
``channel_base = 16384 * channel_multiplier`` and ``channel_max = 512`` for multipliers 1 and 2
only (config-e and config-f); other configurations cannot be expressed and are refused on export.
rosinality has no ``conv_clamp``, no conditioning, 3 colour channels, a ``[1,3,3,1]`` blur and a
fixed minibatch-stddev group of 4; imported networks get ``conv_clamp=None``.
"""
from __future__ import annotations

import math
import os
import re
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import torch

from zoo import generations
from zoo.core.errors import InteropError
from zoo.core.files import file_sha256
from zoo.interop.nvidia import load_strict
from zoo.interop.safe_pickle import read_torch_file

__all__ = ["is_rosinality", "import_rosinality", "to_rosinality", "g_to_rosinality", "d_to_rosinality",
           "g_from_rosinality", "d_from_rosinality", "rosinality_args", "FORMAT_NAME"]

FORMAT_NAME = "rosinality-stylegan2-pytorch"
_DEFAULT_FILTER = [1.0, 3.0, 3.0, 1.0]
_LATENT_AVG_SAMPLES = 10000

Sd = Dict[str, torch.Tensor]


# ------------------------------------------------------------------------------------------------
# Detection and configuration
# ------------------------------------------------------------------------------------------------

def is_rosinality(obj: Any) -> bool:
    """True for a dict shaped like a rosinality checkpoint (``g_ema`` or ``g`` holding ``style.1.weight``)."""
    if not isinstance(obj, dict):
        return False
    for k in ("g_ema", "g"):
        sd = obj.get(k)
        if isinstance(sd, dict) and "style.1.weight" in sd and "input.input" in sd:
            return True
    return False


def _cm_from_channels(ch64: int) -> int:
    if ch64 % 256 or ch64 // 256 not in (1, 2):
        raise InteropError(f"rosinality checkpoint has {ch64} channels at 64 px, i.e. channel_multiplier "
                           f"{ch64 / 256:g}; only 1 (config-e) and 2 (config-f) map onto StyleGAN2's channel table")
    return ch64 // 256


def rosinality_args(G_kwargs: Dict[str, Any], D_kwargs: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], List[str]]:
    """``(dict(size, style_dim, n_mlp, channel_multiplier), notes)`` for a zoo StyleGAN2 config, or
    :class:`InteropError` when rosinality's classes cannot express it. ``notes`` lists behaviour
    differences that do not change the stored tensors (conv clamping, minibatch-stddev group)."""
    g = G_kwargs
    problems = []
    if g.get("c_dim", 0):
        problems.append(f"c_dim={g['c_dim']} (rosinality's networks are unconditional)")
    if g.get("img_channels", 3) != 3:
        problems.append(f"img_channels={g['img_channels']} (rosinality's ToRGB has 3 channels)")
    if g.get("z_dim", 512) != g.get("w_dim", 512):
        problems.append(f"z_dim={g['z_dim']} != w_dim={g['w_dim']} (rosinality has one style_dim)")
    if g.get("architecture", "skip") != "skip":
        problems.append(f"architecture={g['architecture']!r} (rosinality's G is 'skip')")
    if [float(v) for v in g.get("resample_filter", _DEFAULT_FILTER)] != _DEFAULT_FILTER:
        problems.append(f"resample_filter={g['resample_filter']} (export supports [1,3,3,1])")
    if not g.get("use_noise", True):
        problems.append("use_noise=False (rosinality's StyledConv always has noise inputs)")
    if abs(float(g.get("mapping_lr_multiplier", 0.01)) - 0.01) > 1e-12:
        problems.append(f"mapping_lr_multiplier={g['mapping_lr_multiplier']} (rosinality's lr_mlp default is 0.01)")
    base, cmax = int(g.get("channel_base", 32768)), int(g.get("channel_max", 512))
    res = int(g["img_resolution"])
    if res < 8:
        problems.append(f"img_resolution={res} (rosinality's size is at least 8)")
    res_list = [2 ** i for i in range(2, int(math.log2(max(res, 4))) + 1)]
    ours = [min(base // r, cmax) for r in res_list]
    cms = [m for m in (2, 1) if ours == [512 if r <= 32 else 16384 * m // r for r in res_list]]
    cm = cms[0] if cms else None
    if cm is None:
        problems.append(f"channel_base={base}, channel_max={cmax} give channels {dict(zip(res_list, ours))}; "
                        "rosinality's table is 512 up to 32 px and 16384*channel_multiplier/res above with "
                        "channel_multiplier 1 or 2 (channel_base 16384 or 32768 with channel_max 512)")
    if D_kwargs is not None:
        d = D_kwargs
        if d.get("architecture", "resnet") != "resnet":
            problems.append(f"D architecture={d['architecture']!r} (rosinality's D is 'resnet')")
        if (int(d.get("channel_base", base)), int(d.get("channel_max", cmax))) != (base, cmax):
            problems.append("D channel_base/channel_max differ from G's (rosinality uses one channel_multiplier)")
        if d.get("mbstd_num_channels", 1) != 1:
            problems.append(f"D mbstd_num_channels={d['mbstd_num_channels']} (rosinality uses 1)")
        if [float(v) for v in d.get("resample_filter", _DEFAULT_FILTER)] != _DEFAULT_FILTER:
            problems.append(f"D resample_filter={d['resample_filter']} (export supports [1,3,3,1])")
    if problems:
        raise InteropError("cannot export to the rosinality layout: " + "; ".join(problems))
    notes = []
    if g.get("conv_clamp") is not None or (D_kwargs or {}).get("conv_clamp") is not None:
        notes.append("conv_clamp is not part of rosinality's networks: activations are no longer clamped "
                     "(a difference only where they exceed the clamp)")
    if D_kwargs is not None and D_kwargs.get("mbstd_group_size", 4) != 4:
        notes.append(f"D mbstd_group_size={D_kwargs['mbstd_group_size']}: rosinality's D always uses 4")
    return dict(size=res, style_dim=int(g.get("w_dim", 512)), n_mlp=int(g.get("mapping_layers", 8)),
                channel_multiplier=int(cm)), notes


# ------------------------------------------------------------------------------------------------
# zoo (NVIDIA names) -> rosinality
# ------------------------------------------------------------------------------------------------

def _styled_out(out: Sd, r: str, sd: Sd, z: str) -> None:
    out[f"{r}.conv.weight"] = sd[f"{z}.weight"].unsqueeze(0)
    out[f"{r}.conv.modulation.weight"] = sd[f"{z}.affine.weight"]
    out[f"{r}.conv.modulation.bias"] = sd[f"{z}.affine.bias"]
    out[f"{r}.noise.weight"] = sd[f"{z}.noise_strength"].reshape(1)
    out[f"{r}.activate.bias"] = sd[f"{z}.bias"]


def _torgb_out(out: Sd, r: str, sd: Sd, z: str) -> None:
    out[f"{r}.conv.weight"] = sd[f"{z}.weight"].unsqueeze(0)
    out[f"{r}.conv.modulation.weight"] = sd[f"{z}.affine.weight"]
    out[f"{r}.conv.modulation.bias"] = sd[f"{z}.affine.bias"]
    out[f"{r}.bias"] = sd[f"{z}.bias"].reshape(1, -1, 1, 1)


def g_to_rosinality(sd: Sd, img_resolution: int, mapping_layers: int) -> Sd:
    """A zoo / NVIDIA StyleGAN2 generator state dict in rosinality's ``Generator`` layout."""
    sd = {k: v.detach().cpu() for k, v in sd.items()}
    out: Sd = OrderedDict()
    for i in range(mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"].unsqueeze(0)
    _styled_out(out, "conv1", sd, "synthesis.b4.conv1")
    _torgb_out(out, "to_rgb1", sd, "synthesis.b4.torgb")
    log_size = int(math.log2(img_resolution))
    for j, e in enumerate(range(3, log_size + 1)):
        z = f"synthesis.b{2 ** e}"
        _styled_out(out, f"convs.{2 * j}", sd, f"{z}.conv0")
        out[f"convs.{2 * j}.conv.blur.kernel"] = sd[f"{z}.conv0.resample_filter"] * 4
        _styled_out(out, f"convs.{2 * j + 1}", sd, f"{z}.conv1")
    for j, e in enumerate(range(3, log_size + 1)):
        z = f"synthesis.b{2 ** e}"
        out[f"to_rgbs.{j}.upsample.kernel"] = sd[f"{z}.resample_filter"] * 4
        _torgb_out(out, f"to_rgbs.{j}", sd, f"{z}.torgb")
    out["noises.noise_0"] = sd["synthesis.b4.conv1.noise_const"][None, None]
    for j, e in enumerate(range(3, log_size + 1)):
        z = f"synthesis.b{2 ** e}"
        out[f"noises.noise_{2 * j + 1}"] = sd[f"{z}.conv0.noise_const"][None, None]
        out[f"noises.noise_{2 * j + 2}"] = sd[f"{z}.conv1.noise_const"][None, None]
    return out


def d_to_rosinality(sd: Sd, img_resolution: int) -> Sd:
    """A zoo / NVIDIA StyleGAN2 (resnet) discriminator state dict in rosinality's ``Discriminator`` layout."""
    sd = {k: v.detach().cpu() for k, v in sd.items()}
    out: Sd = OrderedDict()
    R = img_resolution
    out["convs.0.0.weight"] = sd[f"b{R}.fromrgb.weight"]
    out["convs.0.1.bias"] = sd[f"b{R}.fromrgb.bias"]
    for k, e in enumerate(range(int(math.log2(R)), 2, -1), start=1):
        z = f"b{2 ** e}"
        out[f"convs.{k}.conv1.0.weight"] = sd[f"{z}.conv0.weight"]
        out[f"convs.{k}.conv1.1.bias"] = sd[f"{z}.conv0.bias"]
        out[f"convs.{k}.conv2.0.kernel"] = sd[f"{z}.conv1.resample_filter"]
        out[f"convs.{k}.conv2.1.weight"] = sd[f"{z}.conv1.weight"]
        out[f"convs.{k}.conv2.2.bias"] = sd[f"{z}.conv1.bias"]
        out[f"convs.{k}.skip.0.kernel"] = sd[f"{z}.skip.resample_filter"]
        out[f"convs.{k}.skip.1.weight"] = sd[f"{z}.skip.weight"]
    out["final_conv.0.weight"] = sd["b4.conv.weight"]
    out["final_conv.1.bias"] = sd["b4.conv.bias"]
    out["final_linear.0.weight"] = sd["b4.fc.weight"]
    out["final_linear.0.bias"] = sd["b4.fc.bias"]
    out["final_linear.1.weight"] = sd["b4.out.weight"]
    out["final_linear.1.bias"] = sd["b4.out.bias"]
    return out


def to_rosinality(state: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any], List[str]]:
    """``(checkpoint, args, notes)``: a zoo StyleGAN2 checkpoint dict as rosinality's
    ``{g_ema, g, d, latent_avg}`` (``g``/``d`` when the checkpoint holds them), the arguments its
    ``Generator(size, style_dim, n_mlp, channel_multiplier)`` / ``Discriminator(size,
    channel_multiplier)`` take, and notes on behaviour differences."""
    gen = state.get("generation")
    if gen != "stylegan2":
        raise InteropError(f"the rosinality format holds StyleGAN2 only (rosinality's model.py is StyleGAN2); this checkpoint is {gen!r} "
                           "(export StyleGAN3 with format=nvidia)")
    gk, dk = state["G_kwargs"], state.get("D_kwargs")
    args, notes = rosinality_args(gk, dk if state.get("D") is not None else None)
    R, L = args["size"], args["n_mlp"]
    G_ema = state.get("G_ema") if state.get("G_ema") is not None else state["G"]
    ckpt: Dict[str, Any] = {"g_ema": g_to_rosinality(G_ema, R, L)}
    if state.get("G") is not None:
        ckpt["g"] = g_to_rosinality(state["G"], R, L)
    if state.get("D") is not None:
        ckpt["d"] = d_to_rosinality(state["D"], R)
    ckpt["latent_avg"] = G_ema["mapping.w_avg"].detach().cpu().clone()
    return ckpt, args, notes


# ------------------------------------------------------------------------------------------------
# rosinality -> zoo
# ------------------------------------------------------------------------------------------------

def _need(sd: Sd, key: str, where: str) -> torch.Tensor:
    if key not in sd:
        raise InteropError(f"{where}: key '{key}' missing from the rosinality state dict")
    v = sd[key]
    if not isinstance(v, torch.Tensor):
        raise InteropError(f"{where}: '{key}' is a {type(v).__name__}, not a tensor")
    return v


def _shaped(t: torch.Tensor, shape: Tuple[int, ...], key: str, where: str) -> torch.Tensor:
    if t.numel() != math.prod(shape):
        raise InteropError(f"{where}: key '{key}' has shape {tuple(t.shape)}, which does not fit {shape}")
    return t.reshape(shape)


def _kernel_check(t: torch.Tensor, expected: torch.Tensor, key: str, where: str) -> None:
    if tuple(t.shape) != tuple(expected.shape) or not torch.allclose(t.float(), expected.float(), rtol=0, atol=1e-6):
        raise InteropError(f"{where}: blur kernel '{key}' is not the [1,3,3,1] filter the zoo network uses "
                           "(custom blur_kernel is not supported)")


def _generator_config(sd: Sd, where: str) -> Dict[str, Any]:
    n_mlp = sorted(int(m.group(1)) for k in sd for m in [re.fullmatch(r"style\.(\d+)\.weight", k)] if m)
    if not n_mlp or n_mlp != list(range(1, len(n_mlp) + 1)):
        raise InteropError(f"{where}: style.{{i}}.weight tensors missing or not numbered 1..n_mlp")
    style_dim = int(_need(sd, "style.1.weight", where).shape[1])
    n_torgb = len({int(m.group(1)) for k in sd for m in [re.match(r"to_rgbs\.(\d+)\.", k)] if m})
    size = 2 ** (n_torgb + 2)
    c4 = int(_need(sd, "input.input", where).shape[1])
    cm = 2
    if size >= 64:
        # convs.{2j} with r = 2**(j+3); 64 px is j = 3.
        cm = _cm_from_channels(int(_need(sd, "convs.6.conv.weight", where).shape[1]))
    if c4 != 512:
        raise InteropError(f"{where}: {c4} channels at 4 px; rosinality's table has 512")
    return dict(size=size, style_dim=style_dim, n_mlp=len(n_mlp), channel_multiplier=cm)


def _zoo_g_kwargs(cfg: Dict[str, Any]) -> Dict[str, Any]:
    return dict(z_dim=cfg["style_dim"], c_dim=0, w_dim=cfg["style_dim"], img_resolution=cfg["size"], img_channels=3,
                mapping_layers=cfg["n_mlp"], mapping_lr_multiplier=0.01, channel_base=16384 * cfg["channel_multiplier"],
                channel_max=512, conv_clamp=None, architecture="skip", resample_filter=list(_DEFAULT_FILTER),
                use_noise=True)


def _zoo_d_kwargs(cfg: Dict[str, Any]) -> Dict[str, Any]:
    return dict(c_dim=0, img_resolution=cfg["size"], img_channels=3, channel_base=16384 * cfg["channel_multiplier"],
                channel_max=512, architecture="resnet", mbstd_group_size=4, mbstd_num_channels=1, conv_clamp=None,
                resample_filter=list(_DEFAULT_FILTER))


def g_from_rosinality(rsd: Sd, ref: Sd, img_resolution: int, mapping_layers: int, where: str = "g") -> Sd:
    """rosinality ``Generator`` state dict -> zoo / NVIDIA names, shaped like ``ref`` (the state dict
    of the zoo generator built for it, which supplies the fixed ``resample_filter`` buffers).
    Every key of ``rsd`` must be used (a leftover is reported)."""
    used = set()

    def take(key: str, target: str) -> None:
        out[target] = _shaped(_need(rsd, key, where), tuple(ref[target].shape), key, where).clone()
        used.add(key)

    def kernel(key: str, target: str, gain: float) -> None:
        _kernel_check(_need(rsd, key, where), ref[target] * gain, key, where)
        used.add(key)

    def styled(r: str, z: str) -> None:
        take(f"{r}.conv.weight", f"{z}.weight")
        take(f"{r}.conv.modulation.weight", f"{z}.affine.weight")
        take(f"{r}.conv.modulation.bias", f"{z}.affine.bias")
        take(f"{r}.noise.weight", f"{z}.noise_strength")
        take(f"{r}.activate.bias", f"{z}.bias")

    def torgb(r: str, z: str) -> None:
        take(f"{r}.conv.weight", f"{z}.weight")
        take(f"{r}.conv.modulation.weight", f"{z}.affine.weight")
        take(f"{r}.conv.modulation.bias", f"{z}.affine.bias")
        take(f"{r}.bias", f"{z}.bias")

    out: Sd = {k: v.clone() for k, v in ref.items()}   # fixed buffers (resample filters) from the zoo model
    for i in range(mapping_layers):
        take(f"style.{i + 1}.weight", f"mapping.fc{i}.weight")
        take(f"style.{i + 1}.bias", f"mapping.fc{i}.bias")
    take("input.input", "synthesis.b4.const")
    styled("conv1", "synthesis.b4.conv1")
    torgb("to_rgb1", "synthesis.b4.torgb")
    take("noises.noise_0", "synthesis.b4.conv1.noise_const")
    for j, e in enumerate(range(3, int(math.log2(img_resolution)) + 1)):
        z = f"synthesis.b{2 ** e}"
        styled(f"convs.{2 * j}", f"{z}.conv0")
        kernel(f"convs.{2 * j}.conv.blur.kernel", f"{z}.conv0.resample_filter", 4)
        styled(f"convs.{2 * j + 1}", f"{z}.conv1")
        torgb(f"to_rgbs.{j}", f"{z}.torgb")
        kernel(f"to_rgbs.{j}.upsample.kernel", f"{z}.resample_filter", 4)
        take(f"noises.noise_{2 * j + 1}", f"{z}.conv0.noise_const")
        take(f"noises.noise_{2 * j + 2}", f"{z}.conv1.noise_const")
    left = [k for k in rsd if k not in used]
    if left:
        raise InteropError(f"{where}: unexpected key(s) in the rosinality state dict: "
                           + ", ".join(f"'{k}'" for k in left[:5]))
    return out


def d_from_rosinality(rsd: Sd, ref: Sd, img_resolution: int, where: str = "d") -> Sd:
    """rosinality ``Discriminator`` state dict -> zoo / NVIDIA names (see :func:`g_from_rosinality`)."""
    used = set()

    def take(key: str, target: str) -> None:
        out[target] = _shaped(_need(rsd, key, where), tuple(ref[target].shape), key, where).clone()
        used.add(key)

    out: Sd = {k: v.clone() for k, v in ref.items()}
    R = img_resolution
    take("convs.0.0.weight", f"b{R}.fromrgb.weight")
    take("convs.0.1.bias", f"b{R}.fromrgb.bias")
    for k, e in enumerate(range(int(math.log2(R)), 2, -1), start=1):
        z = f"b{2 ** e}"
        take(f"convs.{k}.conv1.0.weight", f"{z}.conv0.weight")
        take(f"convs.{k}.conv1.1.bias", f"{z}.conv0.bias")
        take(f"convs.{k}.conv2.1.weight", f"{z}.conv1.weight")
        take(f"convs.{k}.conv2.2.bias", f"{z}.conv1.bias")
        take(f"convs.{k}.skip.1.weight", f"{z}.skip.weight")
        for key, target in ((f"convs.{k}.conv2.0.kernel", f"{z}.conv1.resample_filter"),
                            (f"convs.{k}.skip.0.kernel", f"{z}.skip.resample_filter")):
            _kernel_check(_need(rsd, key, where), ref[target], key, where)
            used.add(key)
    take("final_conv.0.weight", "b4.conv.weight")
    take("final_conv.1.bias", "b4.conv.bias")
    take("final_linear.0.weight", "b4.fc.weight")
    take("final_linear.0.bias", "b4.fc.bias")
    take("final_linear.1.weight", "b4.out.weight")
    take("final_linear.1.bias", "b4.out.bias")
    left = [k for k in rsd if k not in used]
    if left:
        raise InteropError(f"{where}: unexpected key(s) in the rosinality state dict: "
                           + ", ".join(f"'{k}'" for k in left[:5]))
    return out




def import_rosinality(path: str, data: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A zoo checkpoint dict from a rosinality ``.pt`` (``g_ema``/``g``/``d``/``latent_avg``).

    The architecture (size, style_dim, n_mlp, channel_multiplier) is read from the tensors; the zoo
    StyleGAN2 networks are built through the registry and loaded strictly. Without ``latent_avg``
    (checkpoints written by rosinality's train.py) ``mapping.w_avg`` is estimated as the mean of
    10,000 mapped z (seed 0), as rosinality's ``mean_latent`` does, and the source records it."""

    if data is None:
        if not os.path.isfile(path):
            raise InteropError(f"checkpoint not found: {path!r}")
        data = read_torch_file(path)
    if not is_rosinality(data):
        raise InteropError(f"{path!r}: not a rosinality checkpoint (no g_ema/g state dict with 'style.1.weight')")
    ref_key = "g_ema" if isinstance(data.get("g_ema"), dict) else "g"
    cfg = _generator_config(data[ref_key], ref_key)
    G_kwargs, D_kwargs = _zoo_g_kwargs(cfg), _zoo_d_kwargs(cfg)
    spec = generations.get("stylegan2")
    state: Dict[str, Any] = {"generation": "stylegan2", "G_kwargs": G_kwargs, "D_kwargs": D_kwargs}
    latent_avg = data.get("latent_avg")
    if latent_avg is not None:
        if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != cfg["style_dim"]:
            raise InteropError(f"{path!r}: latent_avg must be a tensor of {cfg['style_dim']} values, got "
                               f"{tuple(latent_avg.shape) if isinstance(latent_avg, torch.Tensor) else type(latent_avg).__name__}")
        latent_avg = latent_avg.detach().reshape(-1).float().cpu()
    for ours, theirs in (("G_ema", "g_ema"), ("G", "g")):
        rsd = data.get(theirs)
        if not isinstance(rsd, dict):
            continue
        if _generator_config(rsd, theirs) != cfg:
            raise InteropError(f"{path!r}: {theirs} and {ref_key} have different architectures")
        net = spec.build_generator(**G_kwargs)
        sd = g_from_rosinality(rsd, net.state_dict(), cfg["size"], cfg["n_mlp"], theirs)
        if latent_avg is not None:
            sd["mapping.w_avg"] = latent_avg.clone()
        load_strict(net, sd, ours, "stylegan2")
        if latent_avg is None:
            latent_avg = _estimate_w_avg(net)
            sd["mapping.w_avg"] = latent_avg.clone()
            load_strict(net, sd, ours, "stylegan2")
        state[ours] = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    if isinstance(data.get("d"), dict):
        net = spec.build_discriminator(**D_kwargs)
        load_strict(net, d_from_rosinality(data["d"], net.state_dict(), cfg["size"]), "D", "stylegan2")
        state["D"] = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    state.setdefault("G_ema", state.get("G"))
    state.setdefault("G", state["G_ema"])
    state["source"] = {
        "file": os.path.basename(str(path)),
        "sha256": file_sha256(path) if os.path.isfile(str(path)) else None,
        "format": FORMAT_NAME,
        "flavour": "rosinality",
        "config": None,
        "rosinality_args": dict(cfg),
        "networks": [k for k in ("g_ema", "g", "d") if isinstance(data.get(k), dict)],
        "latent_avg": "from file" if data.get("latent_avg") is not None else
                      f"estimated: mean of {_LATENT_AVG_SAMPLES} mapped z (seed 0)",
    }
    return state


@torch.no_grad()
def _estimate_w_avg(G: torch.nn.Module) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([_LATENT_AVG_SAMPLES, G.z_dim], generator=gen)
    ws = torch.cat([G.mapping(zz, None, truncation_psi=1)[:, 0] for zz in z.split(1000)])
    return ws.mean(0).cpu()
