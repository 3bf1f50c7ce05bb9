"""Export zoo checkpoints to the layouts other StyleGAN code loads:

    python -m zoo.interop.export ckpt=run/network-snapshot-001000.pt format=nvidia out=G-nvidia.pt
    python -m zoo.interop.export ckpt=ffhq-256.pt format=rosinality out=ffhq-256-rosinality.pt
    python -m zoo.interop.export ckpt=stylegan2-ffhq-1024x1024.pkl format=rosinality out=ffhq.pt

Arguments are ``key=value`` pairs (a Hydra app, ``zoo.apps.export``; ``--help`` lists them):

- ``ckpt``: anything ``zoo.load`` reads (zoo ``.pt``, NVIDIA ``.pkl``, rosinality ``.pt``, an
  export written by this module).
- ``format``: ``nvidia`` (StyleGAN2, StyleGAN3) or ``rosinality`` (StyleGAN2 only).
- ``out``: the file to write (atomically).
- ``flavour`` (nvidia, StyleGAN2 only): ``stylegan3`` (default; the kwargs of the stylegan3
  repository's ``networks_stylegan2``, synthesis kwargs flattened) or ``ada`` (stylegan2-ada-pytorch's
  ``training/networks.py``, nested ``synthesis_kwargs``).

``nvidia``: a plain ``.pt`` (``torch.save`` of tensors and plain containers: no code, loadable with
``torch.load(weights_only=True)``)::

    {format: 'zoo-nvidia-state-dicts', format_version: 1, generation, config, flavour,
     G_ema, G, D: state dicts named exactly as NVIDIA's modules name parameters and buffers,
     G_init_kwargs, D_init_kwargs: the kwargs NVIDIA's classes take, G_class_name, D_class_name,
     augment_pipe (its buffers, when the checkpoint has them), source}

so that, in NVIDIA's repository, ``G = Generator(**d['G_init_kwargs']);
G.load_state_dict(d['G_ema'], strict=True)`` renders the zoo's images (``num_fp16_res`` is 0: the
zoo computes in float32; raise it for NVIDIA's mixed-precision speed at the cost of exactness).

``rosinality``: ``{g_ema, g, d, latent_avg}`` for rosinality's ``Generator(size, 512, n_mlp,
channel_multiplier)`` / ``Discriminator(size, channel_multiplier)``; the arguments are printed.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

from zoo.core.checkpoint import save_checkpoint
from zoo.core.errors import InteropError
from zoo.core.files import atomic_torch_save
from zoo.interop.load import load_any
from zoo.interop.nvidia import KEY_MAP, NVIDIA_EXPORT_FORMAT, NVIDIA_EXPORT_VERSION
from zoo.interop.rosinality import to_rosinality

__all__ = ["export", "to_nvidia", "nvidia_init_kwargs", "FORMATS"]

FORMATS = ("nvidia", "rosinality")

_CLASS_NAMES = {
    ("stylegan2", "stylegan3"): ("training.networks_stylegan2.Generator", "training.networks_stylegan2.Discriminator"),
    ("stylegan2", "ada"): ("training.networks.Generator", "training.networks.Discriminator"),
    ("stylegan3", "stylegan3"): ("training.networks_stylegan3.Generator", "training.networks_stylegan2.Discriminator"),
}
_SG3_SYNTHESIS = ("channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                  "last_stopband_rel", "margin_size", "output_scale", "conv_kernel", "filter_size",
                  "lrelu_upsampling", "use_radial_filters", "conv_clamp", "magnitude_ema_beta")


# ------------------------------------------------------------------------------------------------
# NVIDIA layout
# ------------------------------------------------------------------------------------------------

def nvidia_init_kwargs(generation: str, G_kwargs: Dict[str, Any], D_kwargs: Optional[Dict[str, Any]],
                       flavour: str = "stylegan3") -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """The init kwargs of NVIDIA's Generator / Discriminator for zoo init kwargs (all architecture
    kwargs explicit, so NVIDIA's defaults of either repository cannot change the network)."""
    if generation not in ("stylegan2", "stylegan3"):
        raise InteropError(f"the nvidia format holds StyleGAN2 and StyleGAN3 networks; this checkpoint is "
                           f"{generation!r} (NVIDIA's {generation} code is TensorFlow and has no PyTorch layout)")
    if flavour not in ("stylegan3", "ada"):
        raise InteropError(f"flavour must be 'stylegan3' or 'ada', got {flavour!r}")
    if generation == "stylegan3" and flavour != "stylegan3":
        raise InteropError("flavour=ada applies to StyleGAN2 only (stylegan2-ada-pytorch has no StyleGAN3)")
    g = G_kwargs
    Gk: Dict[str, Any] = dict(z_dim=int(g["z_dim"]), c_dim=int(g["c_dim"]), w_dim=int(g["w_dim"]),
                              img_resolution=int(g["img_resolution"]), img_channels=int(g["img_channels"]))
    Gk["mapping_kwargs"] = dict(num_layers=int(g["mapping_layers"]),
                                lr_multiplier=float(g.get("mapping_lr_multiplier", 0.01)),
                                w_avg_beta=float(g.get("w_avg_beta", 0.998)))
    if generation == "stylegan2":
        syn = dict(channel_base=int(g.get("channel_base", 32768)), channel_max=int(g.get("channel_max", 512)),
                   num_fp16_res=0, conv_clamp=g.get("conv_clamp"), architecture=str(g.get("architecture", "skip")),
                   resample_filter=[float(v) for v in g.get("resample_filter", [1, 3, 3, 1])],
                   use_noise=bool(g.get("use_noise", True)))
        if flavour == "ada":
            Gk["synthesis_kwargs"] = syn
        else:
            Gk.update(syn)
    else:
        for k in _SG3_SYNTHESIS:
            if k in g:
                Gk[k] = g[k]
        Gk["num_fp16_res"] = 0
    Dk = None
    if D_kwargs is not None:
        d = D_kwargs
        Dk = dict(c_dim=int(d["c_dim"]), img_resolution=int(d["img_resolution"]), img_channels=int(d["img_channels"]),
                  architecture=str(d.get("architecture", "resnet")), channel_base=int(d.get("channel_base", 32768)),
                  channel_max=int(d.get("channel_max", 512)), num_fp16_res=0, conv_clamp=d.get("conv_clamp"),
                  cmap_dim=d.get("cmap_dim"),
                  block_kwargs=dict(resample_filter=[float(v) for v in d.get("resample_filter", [1, 3, 3, 1])]),
                  mapping_kwargs=dict(num_layers=int(d.get("mapping_layers", 8)),
                                      lr_multiplier=float(d.get("mapping_lr_multiplier", 0.01))),
                  epilogue_kwargs=dict(mbstd_group_size=d.get("mbstd_group_size", 4),
                                       mbstd_num_channels=int(d.get("mbstd_num_channels", 1))))
    return Gk, Dk


def _nvidia_sd(sd: Dict[str, torch.Tensor], generation: str) -> "Dict[str, torch.Tensor]":

    inv = {v: k for k, v in KEY_MAP.get(generation, {}).items()}
    return {inv.get(k, k): v.detach().cpu().clone() for k, v in sd.items()}


def _config(state: Dict[str, Any]) -> Optional[str]:
    if state["generation"] != "stylegan3":
        return None
    return "r" if int(state["G_kwargs"].get("conv_kernel", 3)) == 1 else "t"


def to_nvidia(state: Dict[str, Any], flavour: str = "stylegan3") -> Dict[str, Any]:
    """A zoo checkpoint dict in the NVIDIA state-dict layout (see the module docstring)."""
    gen = state.get("generation")
    has_D = state.get("D") is not None
    Gk, Dk = nvidia_init_kwargs(gen, state["G_kwargs"], state.get("D_kwargs") if has_D else None, flavour)
    G_cls, D_cls = _CLASS_NAMES[(gen, flavour)]
    out: Dict[str, Any] = {"format": NVIDIA_EXPORT_FORMAT, "format_version": NVIDIA_EXPORT_VERSION,
                           "generation": gen, "config": _config(state),
                           "flavour": "stylegan2-ada-pytorch" if flavour == "ada" else "stylegan3"}
    for k in ("G_ema", "G", "D"):
        if state.get(k) is not None:
            out[k] = _nvidia_sd(state[k], gen)
    out.update(G_init_kwargs=Gk, G_class_name=G_cls)
    if has_D:
        out.update(D_init_kwargs=Dk, D_class_name=D_cls)
    if isinstance(state.get("augment_pipe"), dict):
        out["augment_pipe"] = {k: v.detach().cpu().clone() for k, v in state["augment_pipe"].items()}
    src = state.get("source")
    out["source"] = dict(src) if isinstance(src, dict) else None
    return out


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------

def export(ckpt: Any, format: str, out: str, flavour: str = "stylegan3") -> Dict[str, Any]:
    """Write ``ckpt`` (a path ``zoo.interop.load_any`` reads, or a checkpoint dict) to ``out`` in
    ``format`` (``'nvidia'`` or ``'rosinality'``). Returns a summary dict (and, for rosinality, the
    constructor arguments and behaviour notes)."""

    if format not in FORMATS:
        raise InteropError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    state = ckpt if isinstance(ckpt, dict) else load_any(str(ckpt))
    summary: Dict[str, Any] = {"format": format, "out": out, "generation": state.get("generation")}
    if format == "nvidia":
        payload = to_nvidia(state, flavour=flavour)
        summary.update(config=payload["config"], flavour=payload["flavour"], G_class_name=payload["G_class_name"],
                       networks=[k for k in ("G_ema", "G", "D") if k in payload])
    else:
        payload, args, notes = to_rosinality(state)
        summary.update(args=args, notes=notes, networks=[k for k in ("g_ema", "g", "d") if k in payload])
    _save(out, payload)
    return summary


def _save(path: str, payload: Dict[str, Any]) -> None:
    # save_checkpoint adds 'format'/'format_version' keys when absent, which the rosinality layout
    # must not carry; both write atomically.
    if "format" in payload:
        save_checkpoint(path, payload)
    else:
        atomic_torch_save(path, payload)


if __name__ == "__main__":  # python -m zoo.interop.export ckpt=... format=... out=...
    from zoo.apps.export import main

    main()
