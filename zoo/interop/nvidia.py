"""Import NVIDIA's PyTorch network pickles (stylegan2-ada-pytorch and stylegan3) as zoo checkpoints.

The pickle is read with :mod:`zoo.interop.safe_pickle` (no code from the file runs). Each network
is a :class:`~zoo.interop.safe_pickle.PersistentObject` stub whose state dict is rebuilt from its
``nn.Module`` state; the architecture (StyleGAN2 or StyleGAN3 T/R, resolution, channels, mapping
depth, c_dim, img_channels) is read from the init kwargs and checked against the tensors; the zoo
network is built through :mod:`zoo.generations` and loaded with strict key and shape checks.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, Optional, Tuple

import torch

from zoo import generations
from zoo.core.errors import InteropError
from zoo.core.files import file_sha256
from zoo.interop.safe_pickle import PersistentObject, jsonable, plain, read_torch_file, safe_load
from zoo.interop.tf import import_tf_pickle, is_tf_tuple

__all__ = ["import_nvidia_pickle", "network_kwargs", "identify"]

FORMAT_NAME = "nvidia-pytorch-pickle"

# Official state-dict name -> zoo name. The zoo modules use NVIDIA's names throughout (tested for
# every tensor of both generations), so the maps are empty; a rename goes here, never ad hoc.
KEY_MAP: Dict[str, Dict[str, str]] = {"stylegan2": {}, "stylegan3": {}}

# Init kwargs that only select speed/precision paths in NVIDIA's code (not the computed function,
# which is fp32 here) or only training behaviour: accepted and dropped.
_IGNORED_KWARGS = {"num_fp16_res", "fp16_channels_last", "fused_modconv_default", "use_fp16",
                   "freeze_layers", "class_name"}


# ------------------------------------------------------------------------------------------------
# Identification
# ------------------------------------------------------------------------------------------------

def identify(G: PersistentObject, sd: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, Any]:
    """Generation, config, flavour and the data-derived sizes of an official generator stub."""
    sd = G.state_dict() if sd is None else sd
    kw = G.init_kwargs
    if "synthesis.input.freqs" in sd:
        generation = "stylegan3"
    elif "synthesis.b4.const" in sd:
        generation = "stylegan2"
    else:
        raise InteropError(f"G ({G.class_name}): neither StyleGAN2 ('synthesis.b4.const') nor StyleGAN3 "
                           "('synthesis.input.freqs') tensors found; unsupported network")
    fc = sorted(int(m.group(1)) for k in sd for m in [re.fullmatch(r"mapping\.fc(\d+)\.weight", k)] if m)
    if not fc or fc != list(range(len(fc))):
        raise InteropError("G: mapping.fc{i}.weight tensors missing or not numbered 0..L-1")
    info: Dict[str, Any] = dict(
        generation=generation,
        flavour="stylegan2-ada-pytorch" if "synthesis_kwargs" in kw else "stylegan3",
        mapping_layers=len(fc),
        w_dim=int(sd["mapping.fc0.weight"].shape[0]),
        c_dim=int(sd["mapping.embed.weight"].shape[1]) if "mapping.embed.weight" in sd else 0,
    )
    info["z_dim"] = int(sd["mapping.fc0.weight"].shape[1]) - (info["w_dim"] if info["c_dim"] else 0)
    if generation == "stylegan2":
        blocks = [int(m.group(1)) for k in sd for m in [re.match(r"synthesis\.b(\d+)\.", k)] if m]
        info["img_resolution"] = max(blocks)
        info["img_channels"] = int(sd[f"synthesis.b{max(blocks)}.torgb.weight"].shape[0])
    else:
        layers = {}
        for k in sd:
            m = re.match(r"synthesis\.L(\d+)_(\d+)_(\d+)\.", k)
            if m:
                layers[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
        last = max(layers)
        info["img_resolution"], info["img_channels"] = layers[last]
        w0 = sd.get(f"synthesis.L0_{layers[0][0]}_{layers[0][1]}.weight")
        info["conv_kernel"] = int(w0.shape[-1]) if w0 is not None else 3
        df = sd.get(f"synthesis.L0_{layers[0][0]}_{layers[0][1]}.down_filter")
        info["use_radial_filters"] = bool(df is not None and df.ndim == 2)
        info["config"] = "r" if info["conv_kernel"] == 1 else "t"
    return info


def _take(src: Dict[str, Any], key: str, dst: Dict[str, Any], ours: str, where: str, unknown: set) -> None:
    if key in src:
        dst[ours] = src[key]
        unknown.discard(key)


def _check_unknown(unknown: set, where: str) -> None:
    unknown = {k for k in unknown if k not in _IGNORED_KWARGS}
    if unknown:
        raise InteropError(f"{where}: init kwarg(s) {', '.join(sorted(unknown))} not supported by the importer "
                           "(they may change the architecture)")


def _mapping_kwargs(mk: Dict[str, Any], where: str, out: Dict[str, Any]) -> None:
    unknown = set(mk)
    _take(mk, "num_layers", out, "mapping_layers", where, unknown)
    _take(mk, "lr_multiplier", out, "mapping_lr_multiplier", where, unknown)
    _take(mk, "w_avg_beta", out, "w_avg_beta", where, unknown)
    for k in ("embed_features", "layer_features"):
        if mk.get(k) is not None:
            raise InteropError(f"{where}.mapping_kwargs.{k}={mk[k]!r} is not supported")
        unknown.discard(k)
    if mk.get("activation", "lrelu") != "lrelu":
        raise InteropError(f"{where}.mapping_kwargs.activation={mk['activation']!r} is not supported")
    unknown.discard("activation")
    for k in ("z_dim", "c_dim", "w_dim", "num_ws"):
        unknown.discard(k)
    _check_unknown(unknown, f"{where}.mapping_kwargs")


def network_kwargs(G: PersistentObject, D: Optional[PersistentObject], info: Dict[str, Any]) -> Tuple[Dict, Dict]:
    """zoo init kwargs for G and D from the official init kwargs (plus what :func:`identify` read
    from the tensors, which must agree with them)."""
    gk = G.init_kwargs
    generation, ada = info["generation"], info["flavour"] == "stylegan2-ada-pytorch"
    G_kwargs: Dict[str, Any] = dict(z_dim=info["z_dim"], c_dim=info["c_dim"], w_dim=info["w_dim"],
                                    img_resolution=info["img_resolution"], img_channels=info["img_channels"],
                                    mapping_layers=info["mapping_layers"])
    for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        if k in gk and gk[k] is not None and int(gk[k]) != G_kwargs[k]:
            raise InteropError(f"G: init kwarg {k}={gk[k]} disagrees with the tensors ({G_kwargs[k]})")
    unknown = set(gk) - {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
                         "synthesis_kwargs"}
    if generation == "stylegan2":
        G_kwargs.update(w_avg_beta=0.995 if ada else 0.998, conv_clamp=None if ada else 256)
    mapping: Dict[str, Any] = {}
    _mapping_kwargs(gk.get("mapping_kwargs") or {}, "G", mapping)
    if "mapping_layers" in mapping and mapping["mapping_layers"] != info["mapping_layers"]:
        raise InteropError(f"G: mapping_kwargs.num_layers={mapping['mapping_layers']} but the file holds "
                           f"{info['mapping_layers']} mapping layers")
    G_kwargs.update(mapping)
    syn = dict(gk.get("synthesis_kwargs") or {})
    syn.update({k: gk[k] for k in unknown})   # stylegan3 flattens the synthesis kwargs
    unknown = set(syn)
    if generation == "stylegan2":
        for k in ("channel_base", "channel_max", "conv_clamp", "architecture", "resample_filter", "use_noise"):
            _take(syn, k, G_kwargs, k, "G", unknown)
        if G_kwargs.get("architecture", "skip") != "skip":
            raise InteropError(f"G: architecture={G_kwargs['architecture']!r}: only NVIDIA's default 'skip' G "
                               "is supported by the importer")
        if "resample_filter" in G_kwargs:
            G_kwargs["resample_filter"] = [float(v) for v in G_kwargs["resample_filter"]]
    else:
        for k in ("channel_base", "channel_max", "conv_kernel", "use_radial_filters", "magnitude_ema_beta",
                  "conv_clamp", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                  "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res", "filter_size",
                  "lrelu_upsampling"):
            _take(syn, k, G_kwargs, k, "G", unknown)
        unknown.discard("num_fp16_res")
        for k in ("conv_kernel", "use_radial_filters"):
            if k in G_kwargs and G_kwargs[k] != info[k]:
                raise InteropError(f"G: init kwarg {k}={G_kwargs[k]!r} disagrees with the tensors ({info[k]!r})")
            G_kwargs[k] = info[k]
    _check_unknown(unknown, "G")

    # Discriminator: StyleGAN2's in both releases (nested block/mapping/epilogue kwargs).
    D_kwargs: Dict[str, Any] = dict(c_dim=info["c_dim"], img_resolution=info["img_resolution"],
                                    img_channels=info["img_channels"], conv_clamp=None if ada else 256)
    if D is not None:
        dk = D.init_kwargs
        unknown = set(dk)
        for k in ("c_dim", "img_resolution", "img_channels"):
            if k in dk and dk[k] is not None and int(dk[k]) != D_kwargs[k]:
                raise InteropError(f"D: init kwarg {k}={dk[k]} disagrees with G ({D_kwargs[k]})")
            unknown.discard(k)
        for k in ("channel_base", "channel_max", "conv_clamp", "architecture", "cmap_dim"):
            _take(dk, k, D_kwargs, k, "D", unknown)
        bk = dict(dk.get("block_kwargs") or {})
        unknown.discard("block_kwargs")
        if bk.get("activation", "lrelu") != "lrelu":
            raise InteropError(f"D.block_kwargs.activation={bk['activation']!r} is not supported")
        bunknown = set(bk) - {"activation"}
        _take(bk, "resample_filter", D_kwargs, "resample_filter", "D", bunknown)
        _check_unknown(bunknown, "D.block_kwargs")
        dmap: Dict[str, Any] = {}
        _mapping_kwargs(dk.get("mapping_kwargs") or {}, "D", dmap)
        unknown.discard("mapping_kwargs")
        dmap.pop("w_avg_beta", None)
        D_kwargs.update(dmap)
        ek = dict(dk.get("epilogue_kwargs") or {})
        unknown.discard("epilogue_kwargs")
        eunknown = set(ek) - {"activation"}
        _take(ek, "mbstd_group_size", D_kwargs, "mbstd_group_size", "D", eunknown)
        _take(ek, "mbstd_num_channels", D_kwargs, "mbstd_num_channels", "D", eunknown)
        _check_unknown(eunknown, "D.epilogue_kwargs")
        if D_kwargs.get("architecture", "resnet") != "resnet":
            raise InteropError(f"D: architecture={D_kwargs['architecture']!r}: only NVIDIA's default 'resnet' D "
                               "is supported by the importer")
        if "resample_filter" in D_kwargs:
            D_kwargs["resample_filter"] = [float(v) for v in D_kwargs["resample_filter"]]
        _check_unknown(unknown, "D")
    return G_kwargs, D_kwargs


# ------------------------------------------------------------------------------------------------
# Strict loading
# ------------------------------------------------------------------------------------------------

def load_strict(net: torch.nn.Module, sd: Dict[str, torch.Tensor], name: str, generation: str) -> None:
    """``net.load_state_dict(sd, strict=True)`` after an explicit check that names the first
    offending keys (missing, unexpected, or of another shape)."""
    key_map = KEY_MAP.get(generation, {})
    sd = {key_map.get(k, k): v for k, v in sd.items()}
    ours = net.state_dict()
    missing = [k for k in ours if k not in sd]
    unexpected = [k for k in sd if k not in ours]
    shapes = [k for k in ours if k in sd and tuple(ours[k].shape) != tuple(sd[k].shape)]
    problems = []
    if unexpected:
        problems.append("unexpected key(s) in the file: " + ", ".join(f"'{k}'" for k in unexpected[:5]))
    if missing:
        problems.append("key(s) missing from the file: " + ", ".join(f"'{k}'" for k in missing[:5]))
    for k in shapes[:5]:
        problems.append(f"key '{k}' has shape {tuple(sd[k].shape)} in the file but {tuple(ours[k].shape)} "
                        f"in the zoo {generation} model")
    if problems:
        raise InteropError(f"{name}: the file's tensors do not match the zoo {generation} network built from "
                           f"its kwargs: " + "; ".join(problems))
    net.load_state_dict(sd, strict=True)


def _cpu_state(net: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def import_nvidia_pickle(path: str) -> Dict[str, Any]:
    """Read an NVIDIA PyTorch pickle and return a zoo checkpoint dict (the format of
    :mod:`zoo.core.checkpoint`) with ``source: {file, sha256, format, ...}``."""

    if not os.path.isfile(path):
        raise InteropError(f"checkpoint not found: {path!r}")
    data = safe_load(path)
    if isinstance(data, tuple):
        if is_tf_tuple(data):  # NVIDIA's TensorFlow releases (StyleGAN2-TF, StyleGAN, ProGAN)
            return import_tf_pickle(path, data)
        raise InteropError(f"{path!r}: a tuple of {len(data)} "
                           f"({', '.join(type(x).__name__ for x in data[:4])}) is not a TensorFlow-era "
                           "(G, D, Gs) tuple of Network objects")
    if not isinstance(data, dict) or not any(k in data for k in ("G_ema", "G")):
        raise InteropError(f"{path!r}: expected a dict with G / D / G_ema networks "
                           f"(got {type(data).__name__} with keys {sorted(data) if isinstance(data, dict) else '-'})")
    nets = {k: data.get(k) for k in ("G", "D", "G_ema")}
    for k, v in nets.items():
        if v is not None and not isinstance(v, PersistentObject):
            raise InteropError(f"{path!r}: {k} is a {type(v).__name__}, not a persistent network object")
    G_ref = nets["G_ema"] or nets["G"]
    sds = {k: v.state_dict() for k, v in nets.items() if v is not None}
    info = identify(G_ref, sds["G_ema" if nets["G_ema"] is not None else "G"])
    G_kwargs, D_kwargs = network_kwargs(G_ref, nets["D"], info)
    spec = generations.get(info["generation"])
    state: Dict[str, Any] = {"generation": info["generation"], "G_kwargs": G_kwargs, "D_kwargs": D_kwargs}
    for k in ("G", "G_ema"):
        if k in sds:
            net = spec.build_generator(**G_kwargs)
            load_strict(net, sds[k], k, info["generation"])
            state[k] = _cpu_state(net)
    if "D" in sds:
        net = spec.build_discriminator(**D_kwargs)
        load_strict(net, sds["D"], "D", info["generation"])
        state["D"] = _cpu_state(net)
    state.setdefault("G_ema", state.get("G"))
    state.setdefault("G", state["G_ema"])
    aug = data.get("augment_pipe")
    if isinstance(aug, PersistentObject) and aug.is_module:
        state["augment_pipe"] = {k: v.clone() for k, v in aug.state_dict().items()}
    tsk = data.get("training_set_kwargs")
    state["source"] = {
        "file": os.path.basename(path),
        "sha256": file_sha256(path),
        "format": FORMAT_NAME,
        "flavour": info["flavour"],
        "config": info.get("config"),
        "class_names": {k: v.class_name for k, v in nets.items() if v is not None},
        "module_src_sha256": {k: v.module_src_sha256 for k, v in nets.items() if v is not None},
        "init_kwargs": {k: jsonable(v.init_kwargs) for k, v in nets.items() if v is not None},
        "training_set_kwargs": jsonable(plain(tsk)) if isinstance(tsk, dict) else None,
    }
    return state


# ------------------------------------------------------------------------------------------------
# The files ``python -m zoo.interop.export format=nvidia`` writes (NVIDIA's state dicts and init kwargs)
# ------------------------------------------------------------------------------------------------

NVIDIA_EXPORT_FORMAT = "zoo-nvidia-state-dicts"

NVIDIA_EXPORT_VERSION = 1

def is_nvidia_export(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == NVIDIA_EXPORT_FORMAT

class _Net:
    """The view of a network that :mod:`zoo.interop.nvidia`'s identification reads (class name, init
    kwargs, state dict), for state dicts exported by :func:`to_nvidia`."""

    def __init__(self, class_name: str, init_kwargs: Dict[str, Any], sd: Dict[str, torch.Tensor]):
        self.class_name = str(class_name)
        self.init_kwargs = init_kwargs
        self._sd = sd

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return dict(self._sd)

def import_nvidia_export(path: str, data: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A zoo checkpoint dict from a file written by ``export format=nvidia`` (or any ``.pt`` in that
    layout): the architecture is identified and checked as for NVIDIA's pickles, weights load strictly."""
    if data is None:
        data = read_torch_file(path)
    if not is_nvidia_export(data):
        raise InteropError(f"{path!r}: not a '{NVIDIA_EXPORT_FORMAT}' file")
    if int(data.get("format_version", 0)) > NVIDIA_EXPORT_VERSION:
        raise InteropError(f"{path!r} was written by a newer zoo (format {data['format_version']})")
    for k in ("G_ema", "G", "D"):
        if data.get(k) is not None and not isinstance(data[k], dict):
            raise InteropError(f"{path!r}: {k} is a {type(data[k]).__name__}, not a state dict")
    ref = "G_ema" if data.get("G_ema") is not None else "G"
    if data.get(ref) is None or not isinstance(data.get("G_init_kwargs"), dict):
        raise InteropError(f"{path!r}: needs G_ema (or G) and G_init_kwargs")
    G = _Net(data.get("G_class_name", ""), data["G_init_kwargs"], data[ref])
    D = _Net(data.get("D_class_name", ""), data.get("D_init_kwargs") or {}, data["D"]) if data.get("D") is not None else None
    info = identify(G, data[ref])
    G_kwargs, D_kwargs = network_kwargs(G, D, info)
    spec = generations.get(info["generation"])
    state: Dict[str, Any] = {"generation": info["generation"], "G_kwargs": G_kwargs, "D_kwargs": D_kwargs}
    for k in ("G_ema", "G"):
        if data.get(k) is not None:
            net = spec.build_generator(**G_kwargs)
            load_strict(net, data[k], k, info["generation"])
            state[k] = {n: v.detach().cpu().clone() for n, v in net.state_dict().items()}
    if D is not None:
        net = spec.build_discriminator(**D_kwargs)
        load_strict(net, data["D"], "D", info["generation"])
        state["D"] = {n: v.detach().cpu().clone() for n, v in net.state_dict().items()}
    state.setdefault("G_ema", state.get("G"))
    state.setdefault("G", state["G_ema"])
    if isinstance(data.get("augment_pipe"), dict):
        state["augment_pipe"] = {k: v.clone() for k, v in data["augment_pipe"].items()}
    state["source"] = {
        "file": os.path.basename(str(path)),
        "sha256": file_sha256(path) if os.path.isfile(str(path)) else None,
        "format": NVIDIA_EXPORT_FORMAT,
        "flavour": info["flavour"],
        "config": info.get("config"),
        "class_names": {"G": G.class_name, "D": D.class_name if D is not None else None},
        "init_kwargs": {"G": data["G_init_kwargs"], "D": data.get("D_init_kwargs")},
        "exported_from": data.get("source"),
    }
    return state
