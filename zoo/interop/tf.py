"""Import NVIDIA's TensorFlow-era network pickles -- the ``(G, D, Gs)`` tuple of TF ``Network``
objects of StyleGAN2 (``stylegan2`` and ``stylegan2-ada`` TF), StyleGAN (``G_style``/``D_basic``) and
ProGAN (``G_paper``/``D_paper``) -- as zoo checkpoints, without TensorFlow and without running code
from the file.

:mod:`zoo.interop.safe_pickle` reads every ``Network`` as a :class:`TFNetwork` dict (its
``__getstate__``: ``static_kwargs``, ``components``, ``variables`` = ``[(name, ndarray)]``; the
network-building source it carries is never executed). The variables of a network and its
components are collected under scoped names (``mapping/Dense0/weight``, ``synthesis/64x64/Conv0_up/
weight``, ``dlatent_avg``...). The architecture is read from the variable shapes (checked against
``static_kwargs``), the zoo network is built through :mod:`zoo.generations`, and **every** zoo tensor is
filled from exactly one TF variable by a fixed rule (transposes, flips, ``+1``...); a TF variable
that no rule consumes, one that is missing, or a shape that does not fit fails naming it.

Layout rules (TF -> zoo):

* dense ``[in, out]`` -> ``[out, in]``; conv ``[kh, kw, in, out]`` -> ``[out, in, kh, kw]``;
* StyleGAN2: ``Conv0_up`` and the G ``Skip`` are also flipped spatially (TF computes them as
  transposed convolutions); ``mod_bias + 1`` -> ``affine.bias`` (TF adds the 1 at run time);
  ``Const/const[0]``; noise ``noise{i}[0, 0]`` (``i = 2 log2 r - 5`` for conv0, ``- 4`` for conv1);
  ``dlatent_avg`` -> ``mapping.w_avg``; the channel counts use ``channel_base = 2 * fmap_base``;
* StyleGAN / ProGAN: the same transposes; a ``Conv0_up`` computed by TF as a transposed convolution
  (ProGAN always -- its weight is stored ``[k, k, out, in]`` --, StyleGAN at output resolutions >= 128
  with ``fused_scale='auto'``) is flipped spatially, since the zoo computes nearest-upsampling + a
  convolution; equalized-lr conventions (gain inside the weight scale, ``lrmul`` on weight and bias)
  are the originals', so values are copied as they are; ``lod`` is kept.

Equalized-learning-rate scales are run-time constants in both codes (the stored weights are the
same numbers), so no value is rescaled.
"""
from __future__ import annotations

import collections
import os
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from zoo import generations
from zoo.core.errors import InteropError
from zoo.core.files import file_sha256
from zoo.interop.safe_pickle import TFNetwork, jsonable, safe_load

__all__ = ["import_tf_pickle", "is_tf_tuple", "tf_variables", "identify_tf", "FORMAT_NAME"]

FORMAT_NAME = "nvidia-tf"

# ------------------------------------------------------------------------------------------------
# Variables
# ------------------------------------------------------------------------------------------------


def is_tf_tuple(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data)


def tf_variables(net: TFNetwork, prefix: str = "") -> "collections.OrderedDict[str, np.ndarray]":
    """All variables of ``net`` and its components, named ``component/.../variable``."""
    out: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
    variables = net.get("variables")
    if variables is None:
        raise InteropError(f"TF network {net.get('name')!r} holds no 'variables' list (a Theano-era ProGAN "
                           "pickle? those are not supported)")
    for item in variables:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise InteropError(f"TF network {net.get('name')!r}: malformed variable entry {item!r:.80}")
        name, value = item
        if not isinstance(value, (np.ndarray, np.generic, float, int)):
            raise InteropError(f"TF variable {prefix + name!r} is a {type(value).__name__}, not an array")
        out[prefix + name] = np.asarray(value)
    for cname, comp in net.components.items():
        if not isinstance(comp, TFNetwork):
            raise InteropError(f"TF network {net.get('name')!r}: component {cname!r} is a {type(comp).__name__}")
        out.update(tf_variables(comp, prefix + str(cname) + "/"))
    return out


def _shape(v: Dict[str, np.ndarray], name: str, where: str) -> Tuple[int, ...]:
    if name not in v:
        raise InteropError(f"{where}: TF variable {name!r} is missing")
    return tuple(v[name].shape)


def _count(v: Dict[str, np.ndarray], prefix: str) -> int:
    """``1 + max(i)`` over variables named ``{prefix}{i}/...`` (0 if none): numbered layers, counted
    from any of their variables so that a missing one is reported by name."""
    idx = [int(m.group(1)) for k in v for m in [re.match(re.escape(prefix) + r"(\d+)/", k)] if m]
    return max(idx) + 1 if idx else 0


def _res_scopes(v: Dict[str, np.ndarray], prefix: str = "") -> List[int]:
    res = set()
    for k in v:
        m = re.match(re.escape(prefix) + r"(\d+)x(\d+)/", k)
        if m:
            if m.group(1) != m.group(2):
                raise InteropError(f"TF variable {k!r}: non-square resolutions are not supported")
            res.add(int(m.group(1)))
    return sorted(res)


# ------------------------------------------------------------------------------------------------
# static_kwargs checking
# ------------------------------------------------------------------------------------------------

# Accepted and without effect on the computed function (speed/precision paths, training or
# sampling-time options, or kwargs whose value the tensors already determine).
_NEUTRAL_KWARGS = {"num_fp16_res", "fused_modconv", "dtype", "is_template_graph", "randomize_noise",
                   "truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                   "style_mixing_prob", "structure", "conditioning", "force_clean_graph", "is_training",
                   "is_validation", "return_dlatents", "mapping_func", "synthesis_func", "components",
                   "num_channels", "resolution", "label_size", "latent_size", "dlatent_size", "fmap_base",
                   "fmap_max", "mapping_layers", "mapping_fmaps", "label_fmaps", "use_noise", "architecture",
                   "dlatent_avg_beta", "w_avg_beta", "mapping_lrmul", "conv_clamp", "resample_kernel",
                   "blur_filter", "fused_scale", "mbstd_group_size", "mbstd_num_features", "cmap_dim"}

# kwarg -> the only value(s) the importer supports (the originals' defaults).
_REQUIRED_VALUES: Dict[str, Tuple[Any, ...]] = {
    "fmap_decay": (1, 1.0), "fmap_min": (1, 0), "nonlinearity": ("lrelu",), "mapping_nonlinearity": ("lrelu",),
    "normalize_latents": (True,), "use_wscale": (True,), "use_pixel_norm": (False,),
    "use_instance_norm": (True,), "use_styles": (True,), "const_input_layer": (True,), "use_leakyrelu": (True,),
    "pixelnorm_epsilon": (1e-8,), "mapping_gain": (np.sqrt(2),), "gain": (np.sqrt(2),),
}


def _check_kwargs(kwargs: Dict[str, Any], where: str, extra_ok: Sequence[str] = ()) -> None:
    for k, v in kwargs.items():
        if k in _NEUTRAL_KWARGS or k in extra_ok:
            continue
        if k in _REQUIRED_VALUES:
            ok = _REQUIRED_VALUES[k]
            if not any((v == o) if not isinstance(o, float) else (isinstance(v, (int, float)) and abs(v - o) < 1e-6)
                       for o in ok):
                raise InteropError(f"{where}: static kwarg {k}={v!r} is not supported by the importer "
                                   f"(supported: {ok[0]!r})")
            continue
        raise InteropError(f"{where}: unknown static kwarg {k}={v!r}; the importer does not know whether it "
                           "changes the architecture")


def _agree(kwargs: Dict[str, Any], key: str, value: Any, where: str) -> None:
    if kwargs.get(key) is not None and kwargs[key] != value:
        raise InteropError(f"{where}: static kwarg {key}={kwargs[key]!r} disagrees with the variables ({value!r})")


def _channel_rule(ch: Dict[int, int], kwargs: Dict[str, Any], where: str, default_fmap_base: int) -> Tuple[int, int]:
    """``(channel_base, channel_max)`` with ``min(channel_base // r, channel_max) == ch[r]`` for every
    resolution (``channel_base = 2 * fmap_base`` when the kwargs name one)."""
    cmax = max(ch.values())
    if kwargs.get("fmap_max") is not None:
        cmax = int(kwargs["fmap_max"])
    candidates = [2 * int(kwargs.get("fmap_base", default_fmap_base))]
    candidates += [c * r for r, c in sorted(ch.items()) if c < cmax]
    for base in candidates:
        if all(min(base // r, cmax) == c for r, c in ch.items()):
            return base, cmax
    raise InteropError(f"{where}: the channel counts {dict(sorted(ch.items()))} do not follow "
                       f"min(2 * fmap_base / res, fmap_max) for fmap_base {kwargs.get('fmap_base', default_fmap_base)}, "
                       f"fmap_max {cmax}")


# ------------------------------------------------------------------------------------------------
# Rule-based filling of a zoo network
# ------------------------------------------------------------------------------------------------

def _t_id(x: np.ndarray) -> np.ndarray:
    return x


def _t_dense(x: np.ndarray) -> np.ndarray:          # [in, out] -> [out, in]
    return x.T


def _t_conv(x: np.ndarray) -> np.ndarray:           # [kh, kw, in, out] -> [out, in, kh, kw]
    return x.transpose(3, 2, 0, 1)


def _t_conv_flip(x: np.ndarray) -> np.ndarray:      # transposed-conv weights: flip, then as conv
    return x[::-1, ::-1].transpose(3, 2, 0, 1)


def _t_conv_outin_flip(x: np.ndarray) -> np.ndarray:  # ProGAN Conv0_up: [kh, kw, out, in], flipped
    return x[::-1, ::-1].transpose(2, 3, 0, 1)


def _t_first(x: np.ndarray) -> np.ndarray:          # [1, C, 4, 4] -> [C, 4, 4]
    return x[0]


def _t_noise(x: np.ndarray) -> np.ndarray:          # [1, 1, r, r] -> [r, r]
    return x[0, 0]


def _t_plus1(x: np.ndarray) -> np.ndarray:          # StyleGAN2 mod_bias (TF adds 1 at run time)
    return x + 1


Rule = Tuple[str, Optional[Callable[..., Any]], Optional[Callable[[np.ndarray], np.ndarray]]]
DERIVED = (None, None)   # zoo buffer computed from the kwargs (resampling filters): keep the built value


def _fill(net: torch.nn.Module, v: Dict[str, np.ndarray], rules: Sequence[Rule], where: str,
          ignorable: Callable[[str], bool] = lambda name: False) -> Dict[str, torch.Tensor]:
    """Fill every tensor of ``net`` from the TF variables ``v``: each zoo key must match one rule
    ``(regex, name(*groups) -> TF name or list of alternatives, transform)``; every TF variable must
    be used (or be ``ignorable``). Returns the CPU state dict after a strict load."""
    compiled = [(re.compile(rx), name, fn) for rx, name, fn in rules]
    sd: Dict[str, torch.Tensor] = collections.OrderedDict()
    used = set()
    missing, shapes = [], []
    for key, ref in net.state_dict().items():
        for rx, name_fn, fn in compiled:
            m = rx.fullmatch(key)
            if m:
                break
        else:  # a zoo tensor no rule covers: an importer bug, not a file problem
            raise InteropError(f"{where}: no TF variable rule for the zoo tensor {key!r}")
        if name_fn is None:
            sd[key] = ref.detach().clone()
            continue
        names = name_fn(*m.groups())
        names = [names] if isinstance(names, str) else list(names)
        tf_name = next((n for n in names if n in v), None)
        if tf_name is None:
            missing.append(f"{names[0]!r} (for {key})")
            continue
        used.add(tf_name)
        value = fn(np.asarray(v[tf_name]))
        t = torch.from_numpy(np.array(value, order="C")).to(ref.dtype)   # (ascontiguousarray makes 0-d 1-d)
        if tuple(t.shape) != tuple(ref.shape):
            shapes.append(f"TF variable {tf_name!r} of shape {tuple(v[tf_name].shape)} gives {tuple(t.shape)} for "
                          f"{key!r}, the zoo network needs {tuple(ref.shape)}")
            continue
        sd[key] = t
    extra = [k for k in v if k not in used and not ignorable(k)]
    problems = []
    if missing:
        problems.append("TF variable(s) missing from the file: " + ", ".join(missing[:6]))
    problems += shapes[:5]
    if extra:
        problems.append("TF variable(s) the importer does not know (unsupported variant?): "
                        + ", ".join(repr(k) for k in extra[:6]))
    if problems:
        raise InteropError(f"{where}: " + "; ".join(problems))
    net.load_state_dict(sd, strict=True)
    return {k: t.detach().cpu().clone() for k, t in net.state_dict().items()}


def _is_lod(name: str) -> bool:
    return name == "lod" or name.endswith("/lod")


# ------------------------------------------------------------------------------------------------
# StyleGAN2 (stylegan2 TF, stylegan2-ada TF)
# ------------------------------------------------------------------------------------------------

def _sg2_G_kwargs(v: Dict[str, np.ndarray], kw: Dict[str, Any], where: str) -> Dict[str, Any]:
    if any(k.startswith("synthesis/ToRGB_lod") for k in v):
        raise InteropError(f"{where}: a StyleGAN2 'orig' architecture generator (ToRGB_lod* variables, "
                           "configs A-D) is not supported; only the 'skip' (configs E/F) and 'resnet' generators are")
    if "mapping/LabelConcat/weight" in v:
        raise InteropError(f"{where}: the original StyleGAN2-TF label conditioning (mapping/LabelConcat) is not "
                           "supported; conditional networks import from stylegan2-ada TF (mapping/LabelEmbed)")
    _check_kwargs(kw, where)
    res_list = _res_scopes(v, "synthesis/")
    if not res_list or res_list[0] != 4:
        raise InteropError(f"{where}: no synthesis/4x4/... variables")
    R = res_list[-1]
    if res_list != [2 ** i for i in range(2, int(np.log2(R)) + 1)]:
        raise InteropError(f"{where}: synthesis resolutions {res_list} are not 4, 8, ..., {R}")
    _agree(kw, "resolution", R, where)
    ch = {4: _shape(v, "synthesis/4x4/Const/const", where)[1]}
    for r in res_list[1:]:
        ch[r] = _shape(v, f"synthesis/{r}x{r}/Conv1/weight", where)[3]
    last_rgb = f"synthesis/{R}x{R}/ToRGB/weight"
    img_channels = _shape(v, last_rgb, where)[3]
    _agree(kw, "num_channels", img_channels, where)
    skips = [r for r in res_list[1:] if f"synthesis/{r}x{r}/Skip/weight" in v]
    architecture = "resnet" if skips else "skip"
    _agree(kw, "architecture", architecture, where)
    L, w_dim = _mapping_common(v, kw, where)
    c_dim = _shape(v, "mapping/LabelEmbed/weight", where)[0] if "mapping/LabelEmbed/weight" in v else 0
    if c_dim and v["mapping/LabelEmbed/weight"].shape[1] != w_dim:
        raise InteropError(f"{where}: label_fmaps != dlatent_size is not supported")
    z_dim = _shape(v, "mapping/Dense0/weight", where)[0] - (w_dim if c_dim else 0)
    for k, val in (("latent_size", z_dim), ("dlatent_size", w_dim), ("label_size", c_dim), ("mapping_layers", L)):
        _agree(kw, k, val, where)
    if kw.get("mapping_fmaps") not in (None, w_dim) or kw.get("label_fmaps") not in (None, w_dim):
        raise InteropError(f"{where}: mapping_fmaps/label_fmaps other than dlatent_size are not supported")
    base, cmax = _channel_rule(ch, kw, where, 16384)
    use_noise = any(re.fullmatch(r"synthesis/(noise\d+|.*/noise_strength)", k) for k in v)
    _agree(kw, "use_noise", use_noise, where)
    out = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=R, img_channels=img_channels,
               mapping_layers=L, mapping_lr_multiplier=float(kw.get("mapping_lrmul", 0.01)),
               w_avg_beta=float(kw.get("w_avg_beta", kw.get("dlatent_avg_beta", 0.995)) or 0.995),
               channel_base=base, channel_max=cmax, use_noise=use_noise,
               conv_clamp=None if kw.get("conv_clamp") is None else float(kw["conv_clamp"]),
               architecture=architecture)
    if kw.get("resample_kernel") is not None:
        out["resample_filter"] = [float(x) for x in kw["resample_kernel"]]
    return out


def _sg2_G_rules() -> List[Rule]:
    S = "synthesis"
    conv0 = lambda r: f"{S}/{r}x{r}/Conv0_up"
    conv1 = lambda r: f"{S}/4x4/Conv" if r == "4" else f"{S}/{r}x{r}/Conv1"
    n0 = lambda r: f"{S}/noise{2 * int(np.log2(int(r))) - 5}"
    n1 = lambda r: f"{S}/noise{2 * int(np.log2(int(r))) - 4}"
    return [
        (r"mapping\.w_avg", lambda: "dlatent_avg", _t_id),
        (r"mapping\.embed\.weight", lambda: "mapping/LabelEmbed/weight", _t_dense),
        (r"mapping\.embed\.bias", lambda: "mapping/LabelEmbed/bias", _t_id),
        (r"mapping\.fc(\d+)\.weight", lambda i: f"mapping/Dense{i}/weight", _t_dense),
        (r"mapping\.fc(\d+)\.bias", lambda i: f"mapping/Dense{i}/bias", _t_id),
        (r"synthesis\.b4\.const", lambda: f"{S}/4x4/Const/const", _t_first),
        (r"synthesis\.b(\d+)\.conv0\.weight", lambda r: conv0(r) + "/weight", _t_conv_flip),
        (r"synthesis\.b(\d+)\.conv1\.weight", lambda r: conv1(r) + "/weight", _t_conv),
        (r"synthesis\.b(\d+)\.conv0\.noise_const", lambda r: n0(r), _t_noise),
        (r"synthesis\.b(\d+)\.conv1\.noise_const", lambda r: n1(r), _t_noise),
        (r"synthesis\.b(\d+)\.conv0\.(bias|noise_strength)", lambda r, p: f"{conv0(r)}/{p}", _t_id),
        (r"synthesis\.b(\d+)\.conv1\.(bias|noise_strength)", lambda r, p: f"{conv1(r)}/{p}", _t_id),
        (r"synthesis\.b(\d+)\.conv0\.affine\.weight", lambda r: conv0(r) + "/mod_weight", _t_dense),
        (r"synthesis\.b(\d+)\.conv1\.affine\.weight", lambda r: conv1(r) + "/mod_weight", _t_dense),
        (r"synthesis\.b(\d+)\.conv0\.affine\.bias", lambda r: conv0(r) + "/mod_bias", _t_plus1),
        (r"synthesis\.b(\d+)\.conv1\.affine\.bias", lambda r: conv1(r) + "/mod_bias", _t_plus1),
        (r"synthesis\.b(\d+)\.torgb\.weight", lambda r: f"{S}/{r}x{r}/ToRGB/weight", _t_conv),
        (r"synthesis\.b(\d+)\.torgb\.bias", lambda r: f"{S}/{r}x{r}/ToRGB/bias", _t_id),
        (r"synthesis\.b(\d+)\.torgb\.affine\.weight", lambda r: f"{S}/{r}x{r}/ToRGB/mod_weight", _t_dense),
        (r"synthesis\.b(\d+)\.torgb\.affine\.bias", lambda r: f"{S}/{r}x{r}/ToRGB/mod_bias", _t_plus1),
        (r"synthesis\.b(\d+)\.skip\.weight", lambda r: f"{S}/{r}x{r}/Skip/weight", _t_conv_flip),
        (r".*resample_filter", *DERIVED),
    ]


def _sg2_D_kwargs(v: Dict[str, np.ndarray], kw: Dict[str, Any], G_kwargs: Dict[str, Any], where: str):
    _check_kwargs(kw, where)
    R, img_channels, c_dim = G_kwargs["img_resolution"], G_kwargs["img_channels"], G_kwargs["c_dim"]
    res_list = _res_scopes(v)
    if not res_list or res_list[-1] != R:
        raise InteropError(f"{where}: the discriminator's top resolution {res_list[-1] if res_list else None} "
                           f"is not the generator's {R}")
    _agree(kw, "resolution", R, where)
    top_rgb = _shape(v, f"{R}x{R}/FromRGB/weight", where)
    if top_rgb[2] != img_channels:
        raise InteropError(f"{where}: FromRGB takes {top_rgb[2]} channels, the generator makes {img_channels}")
    ch = {r: _shape(v, f"{r}x{r}/Conv0/weight", where)[3] for r in res_list if r > 4}
    ch[4] = _shape(v, "4x4/Conv/weight", where)[3]
    mbstd = _shape(v, "4x4/Conv/weight", where)[2] - ch[4]
    if any(f"{r}x{r}/Skip/weight" in v for r in res_list):
        architecture = "resnet"
    elif "4x4/FromRGB/weight" in v:
        architecture = "skip"
    else:
        architecture = "orig"
    _agree(kw, "architecture", architecture, where)
    base, cmax = _channel_rule(ch, kw, where, 16384)
    label = kw.get("label_size", c_dim)
    if label != c_dim:
        raise InteropError(f"{where}: label_size {label} but the generator has c_dim {c_dim}")
    out = dict(c_dim=c_dim, img_resolution=R, img_channels=img_channels, channel_base=base, channel_max=cmax,
               architecture=architecture, mbstd_num_channels=mbstd,
               mbstd_group_size=int(kw.get("mbstd_group_size", 4)) if mbstd else 4,
               conv_clamp=None if kw.get("conv_clamp") is None else float(kw["conv_clamp"]))
    if kw.get("mbstd_num_features") is not None and mbstd and int(kw["mbstd_num_features"]) != mbstd:
        raise InteropError(f"{where}: mbstd_num_features={kw['mbstd_num_features']} disagrees with 4x4/Conv ({mbstd})")
    if c_dim:
        if "LabelEmbed/weight" not in v:
            raise InteropError(f"{where}: a conditional discriminator without LabelEmbed (the original "
                               "StyleGAN2-TF label conditioning) is not supported")
        L = _count(v, "Mapping")
        out.update(cmap_dim=_shape(v, "Output/weight", where)[1], mapping_layers=L,
                   mapping_lr_multiplier=float(kw.get("mapping_lrmul", 0.1)))
    elif _shape(v, "Output/weight", where)[1] != 1:
        raise InteropError(f"{where}: unconditional discriminator with {v['Output/weight'].shape[1]} outputs")
    if kw.get("resample_kernel") is not None:
        out["resample_filter"] = [float(x) for x in kw["resample_kernel"]]
    return out


def _sg2_D_rules() -> List[Rule]:
    def scope(r, layer):
        name = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[layer]
        return f"{r}x{r}/{name}"
    return [
        (r"b(\d+)\.(fromrgb|conv0|conv1|skip)\.weight", lambda r, l: scope(r, l) + "/weight", _t_conv),
        (r"b(\d+)\.(fromrgb|conv0|conv1)\.bias", lambda r, l: scope(r, l) + "/bias", _t_id),
        (r"b4\.conv\.weight", lambda: "4x4/Conv/weight", _t_conv),
        (r"b4\.conv\.bias", lambda: "4x4/Conv/bias", _t_id),
        (r"b4\.fc\.weight", lambda: "4x4/Dense0/weight", _t_dense),
        (r"b4\.fc\.bias", lambda: "4x4/Dense0/bias", _t_id),
        (r"b4\.out\.weight", lambda: "Output/weight", _t_dense),
        (r"b4\.out\.bias", lambda: "Output/bias", _t_id),
        (r"mapping\.embed\.weight", lambda: "LabelEmbed/weight", _t_dense),
        (r"mapping\.embed\.bias", lambda: "LabelEmbed/bias", _t_id),
        (r"mapping\.fc(\d+)\.weight", lambda i: f"Mapping{i}/weight", _t_dense),
        (r"mapping\.fc(\d+)\.bias", lambda i: f"Mapping{i}/bias", _t_id),
        (r".*resample_filter", *DERIVED),
    ]


# ------------------------------------------------------------------------------------------------
# StyleGAN (v1): G_style (G_mapping + G_synthesis), D_basic
# ------------------------------------------------------------------------------------------------

def _mapping_common(v, kw, where):
    L = _count(v, "mapping/Dense")
    if L == 0:
        raise InteropError(f"{where}: TF variable 'mapping/Dense0/weight' is missing")
    w_dim = _shape(v, f"mapping/Dense{L - 1}/weight", where)[1]
    for i in range(L):
        if _shape(v, f"mapping/Dense{i}/weight", where)[1] != w_dim:
            raise InteropError(f"{where}: mapping/Dense{i} is narrower/wider than dlatent_size {w_dim} "
                               "(mapping_fmaps != dlatent_size is not supported)")
    return L, w_dim


def _sg1_fused(kw: Dict[str, Any], r: int) -> bool:
    fs = kw.get("fused_scale", "auto")
    return r >= 128 if fs == "auto" else bool(fs)


def _sg1_G_kwargs(v, kw, where):
    _check_kwargs(kw, where)
    if "synthesis/4x4/Dense/weight" in v:
        raise InteropError(f"{where}: const_input_layer=False (4x4/Dense) is not supported")
    res_list = _res_scopes(v, "synthesis/")
    R = res_list[-1] if res_list else 0
    if not res_list or res_list != [2 ** i for i in range(2, int(np.log2(R)) + 1)]:
        raise InteropError(f"{where}: synthesis resolutions {res_list} are not 4, 8, ..., R")
    _agree(kw, "resolution", R, where)
    ch = {4: _shape(v, "synthesis/4x4/Const/const", where)[1]}
    for r in res_list[1:]:
        ch[r] = _shape(v, f"synthesis/{r}x{r}/Conv1/weight", where)[3]
    img_channels = _shape(v, "synthesis/ToRGB_lod0/weight", where)[3]
    _agree(kw, "num_channels", img_channels, where)
    L, w_dim = _mapping_common(v, kw, where)
    c_dim, z_in = 0, _shape(v, "mapping/Dense0/weight", where)[0]
    if "mapping/LabelConcat/weight" in v:
        c_dim, z = _shape(v, "mapping/LabelConcat/weight", where)
        if z_in != 2 * z:
            raise InteropError(f"{where}: mapping/LabelConcat is [{c_dim}, {z}] but mapping/Dense0 takes {z_in}")
        z_in = z
    for k, val in (("latent_size", z_in), ("dlatent_size", w_dim), ("label_size", c_dim), ("mapping_layers", L)):
        _agree(kw, k, val, where)
    if kw.get("mapping_fmaps") not in (None, w_dim):
        raise InteropError(f"{where}: mapping_fmaps other than dlatent_size is not supported")
    base, cmax = _channel_rule(ch, kw, where, 8192)
    use_noise = any(re.fullmatch(r"synthesis/(noise\d+|.*/Noise/weight)", k) for k in v)
    _agree(kw, "use_noise", use_noise, where)
    out = dict(z_dim=z_in, c_dim=c_dim, w_dim=w_dim, img_resolution=R, img_channels=img_channels,
               mapping_layers=L, mapping_lr_multiplier=float(kw.get("mapping_lrmul", 0.01)),
               w_avg_beta=float(kw.get("dlatent_avg_beta", 0.995) or 0.995), channel_base=base, channel_max=cmax,
               use_noise=use_noise)
    if "blur_filter" in kw:
        out["blur_filter"] = None if kw["blur_filter"] is None else [float(x) for x in kw["blur_filter"]]
    return out


def _sg1_G_rules(kw: Dict[str, Any], R: int) -> List[Rule]:
    S = "synthesis"

    def scope(r, layer):
        if r == "4":
            return f"{S}/4x4/" + {"const": "Const", "conv": "Conv"}[layer]
        return f"{S}/{r}x{r}/" + {"conv0_up": "Conv0_up", "conv1": "Conv1"}[layer]

    def noise(r, layer):   # layer index: 2 log2(r) - 4 for the first layer of a block, + 1 for the second
        return f"{S}/noise{2 * int(np.log2(int(r))) - 4 + (1 if layer in ('conv', 'conv1') else 0)}"

    def torgb(r, p):
        return f"{S}/ToRGB_lod{int(np.log2(R)) - int(np.log2(int(r)))}/{p}"

    # conv0_up: a transposed convolution in TF where fused_scale applies (flipped), else upscale + conv.
    rules: List[Rule] = [(rf"synthesis\.b({r})\.conv0_up\.conv\.weight", lambda r: scope(r, "conv0_up") + "/weight",
                          _t_conv_flip if _sg1_fused(kw, r) else _t_conv)
                         for r in (2 ** i for i in range(3, int(np.log2(R)) + 1))]
    return rules + [
        (r"mapping\.w_avg", lambda: "dlatent_avg", _t_id),
        (r"mapping\.embed", lambda: "mapping/LabelConcat/weight", _t_id),
        (r"mapping\.fc(\d+)\.weight", lambda i: f"mapping/Dense{i}/weight", _t_dense),
        (r"mapping\.fc(\d+)\.bias", lambda i: f"mapping/Dense{i}/bias", _t_id),
        (r"synthesis\.lod", lambda: ["lod", f"{S}/lod"], _t_id),
        (r"synthesis\.b(\d+)\.torgb\.weight", lambda r: torgb(r, "weight"), _t_conv),
        (r"synthesis\.b(\d+)\.torgb\.bias", lambda r: torgb(r, "bias"), _t_id),
        (r"synthesis\.b4\.const\.const", lambda: f"{S}/4x4/Const/const", _t_first),
        (r"synthesis\.b(\d+)\.(conv|conv1)\.conv\.weight", lambda r, l: scope(r, l) + "/weight", _t_conv),
        (r"synthesis\.b(\d+)\.(\w+)\.noise_strength", lambda r, l: scope(r, l) + "/Noise/weight", _t_id),
        (r"synthesis\.b(\d+)\.(\w+)\.noise_const", noise, _t_noise),
        (r"synthesis\.b(\d+)\.(\w+)\.bias", lambda r, l: scope(r, l) + "/bias", _t_id),
        (r"synthesis\.b(\d+)\.(\w+)\.style\.weight", lambda r, l: scope(r, l) + "/StyleMod/weight", _t_dense),
        (r"synthesis\.b(\d+)\.(\w+)\.style\.bias", lambda r, l: scope(r, l) + "/StyleMod/bias", _t_id),
        (r".*blur_filter", *DERIVED),
    ]


def _progressive_D(v, kw, G_kwargs, where, default_fmap_base, labels_out: Callable[[int], int]):
    """Shared reading of ProGAN's D_paper / StyleGAN's D_basic."""
    _check_kwargs(kw, where)
    R, img_channels, c_dim = G_kwargs["img_resolution"], G_kwargs["img_channels"], G_kwargs["c_dim"]
    res_list = _res_scopes(v)
    if not res_list or res_list[-1] != R:
        raise InteropError(f"{where}: the discriminator's top resolution {res_list[-1] if res_list else None} "
                           f"is not the generator's {R}")
    _agree(kw, "resolution", R, where)
    ch = {r: _shape(v, f"{r}x{r}/Conv0/weight", where)[3] for r in res_list if r > 4}
    ch[4] = _shape(v, "4x4/Conv/weight", where)[3]
    mbstd = _shape(v, "4x4/Conv/weight", where)[2] - ch[4]
    base, cmax = _channel_rule(ch, kw, where, default_fmap_base)
    n_out = _shape(v, "4x4/Dense1/weight", where)[1]
    if n_out != labels_out(c_dim):
        raise InteropError(f"{where}: 4x4/Dense1 has {n_out} outputs, expected {labels_out(c_dim)} for label_size {c_dim}")
    rgb = _shape(v, "FromRGB_lod0/weight", where)
    if rgb[2] != img_channels:
        raise InteropError(f"{where}: FromRGB takes {rgb[2]} channels, the generator makes {img_channels}")
    return dict(c_dim=c_dim, img_resolution=R, img_channels=img_channels, channel_base=base, channel_max=cmax,
                mbstd_num_channels=mbstd, mbstd_group_size=int(kw.get("mbstd_group_size", 4)) if mbstd else 4)


def _progressive_D_rules(R: int) -> List[Rule]:
    lod = lambda r: int(np.log2(R)) - int(np.log2(int(r)))
    return [
        (r"lod", lambda: "lod", _t_id),
        (r"b(\d+)\.fromrgb\.weight", lambda r: f"FromRGB_lod{lod(r)}/weight", _t_conv),
        (r"b(\d+)\.fromrgb\.bias", lambda r: f"FromRGB_lod{lod(r)}/bias", _t_id),
        (r"b(\d+)\.conv0\.weight", lambda r: f"{r}x{r}/Conv0/weight", _t_conv),
        (r"b(\d+)\.conv0\.bias", lambda r: f"{r}x{r}/Conv0/bias", _t_id),
        (r"b(\d+)\.conv1_down\.weight", lambda r: [f"{r}x{r}/Conv1_down/weight", f"{r}x{r}/Conv1/weight"], _t_conv),
        (r"b(\d+)\.conv1_down\.bias", lambda r: [f"{r}x{r}/Conv1_down/bias", f"{r}x{r}/Conv1/bias"], _t_id),
        (r"b4\.conv\.weight", lambda: "4x4/Conv/weight", _t_conv),
        (r"b4\.conv\.bias", lambda: "4x4/Conv/bias", _t_id),
        (r"b4\.dense(\d)\.weight", lambda i: f"4x4/Dense{i}/weight", _t_dense),
        (r"b4\.dense(\d)\.bias", lambda i: f"4x4/Dense{i}/bias", _t_id),
        (r".*blur_filter", *DERIVED),
    ]


# ------------------------------------------------------------------------------------------------
# ProGAN: G_paper, D_paper
# ------------------------------------------------------------------------------------------------

def _progan_G_kwargs(v, kw, where):
    _check_kwargs(kw, where, extra_ok=("use_pixelnorm",))
    res_list = _res_scopes(v)
    R = res_list[-1] if res_list else 0
    if not res_list or res_list != [2 ** i for i in range(2, int(np.log2(R)) + 1)]:
        raise InteropError(f"{where}: resolutions {res_list} are not 4, 8, ..., R")
    _agree(kw, "resolution", R, where)
    d_in, d_out = _shape(v, "4x4/Dense/weight", where)
    ch = {4: _shape(v, "4x4/Conv/weight", where)[3]}
    if d_out != 16 * ch[4]:
        raise InteropError(f"{where}: 4x4/Dense has {d_out} outputs, expected 16 x {ch[4]}")
    for r in res_list[1:]:
        ch[r] = _shape(v, f"{r}x{r}/Conv1/weight", where)[3]
    img_channels = _shape(v, "ToRGB_lod0/weight", where)[3]
    _agree(kw, "num_channels", img_channels, where)
    c_dim = int(kw.get("label_size", 0))
    z_dim = d_in - c_dim
    if kw.get("latent_size") is not None and int(kw["latent_size"]) != z_dim:
        raise InteropError(f"{where}: latent_size {kw['latent_size']} + label_size {c_dim} != 4x4/Dense input {d_in}")
    base, cmax = _channel_rule(ch, kw, where, 8192)
    return dict(z_dim=z_dim, c_dim=c_dim, img_resolution=R, img_channels=img_channels, channel_base=base,
                channel_max=cmax, use_pixelnorm=bool(kw.get("use_pixelnorm", True)))


def _progan_G_rules(R: int) -> List[Rule]:
    lod = lambda r: int(np.log2(R)) - int(np.log2(int(r)))
    return [
        (r"lod", lambda: "lod", _t_id),
        (r"b4\.dense\.weight", lambda: "4x4/Dense/weight", _t_dense),
        (r"b4\.dense_bias", lambda: "4x4/Dense/bias", _t_id),
        (r"b4\.conv\.weight", lambda: "4x4/Conv/weight", _t_conv),
        (r"b4\.conv\.bias", lambda: "4x4/Conv/bias", _t_id),
        (r"b(\d+)\.conv0_up\.bias", lambda r: [f"{r}x{r}/Conv0_up/bias", f"{r}x{r}/Conv0/bias"], _t_id),
        (r"b(\d+)\.conv1\.weight", lambda r: f"{r}x{r}/Conv1/weight", _t_conv),
        (r"b(\d+)\.conv1\.bias", lambda r: f"{r}x{r}/Conv1/bias", _t_id),
        (r"b(\d+)\.torgb\.weight", lambda r: f"ToRGB_lod{lod(r)}/weight", _t_conv),
        (r"b(\d+)\.torgb\.bias", lambda r: f"ToRGB_lod{lod(r)}/bias", _t_id),
    ]


def _progan_up_rules(v: Dict[str, np.ndarray], R: int) -> List[Rule]:
    """``Conv0_up`` (fused, ``[k, k, out, in]``, transposed conv: flipped) or ``Conv0`` (upscale2d +
    conv, ``[k, k, in, out]``), per block."""
    rules: List[Rule] = []
    for i in range(3, int(np.log2(R)) + 1):
        r = 2 ** i
        fused = f"{r}x{r}/Conv0_up/weight" in v
        name = f"{r}x{r}/Conv0_up/weight" if fused else f"{r}x{r}/Conv0/weight"
        rules.append((rf"b{r}\.conv0_up\.weight", (lambda n: (lambda: n))(name),
                      _t_conv_outin_flip if fused else _t_conv))
    return rules


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------

def identify_tf(Gs: TFNetwork, v: Optional[Dict[str, np.ndarray]] = None) -> str:
    """``'stylegan2'``, ``'stylegan'`` or ``'progan'`` from the generator's variables."""
    v = tf_variables(Gs) if v is None else v
    syn = Gs.components.get("synthesis")
    syn_func = str(syn.get("build_func_name")) if isinstance(syn, TFNetwork) else ""
    if syn_func.endswith("G_synthesis_stylegan_revised"):
        raise InteropError(f"unsupported TF generator: synthesis network {syn_func!r} (StyleGAN2 paper configs "
                           "A-D) is not supported; only config E/F StyleGAN2 ('G_synthesis_stylegan2'), "
                           "stylegan2-ada, StyleGAN and ProGAN generators are")
    if any(re.fullmatch(r"synthesis/.*/mod_weight", k) for k in v):
        return "stylegan2"
    if any(re.fullmatch(r"synthesis/.*/StyleMod/weight", k) for k in v):
        return "stylegan"
    if not Gs.components and any(re.fullmatch(r"(4x4/Dense|ToRGB_lod\d+)/weight", k) for k in v):
        return "progan"
    sample = ", ".join(list(v)[:6])
    raise InteropError(f"unsupported TF generator (build_func_name {Gs.get('build_func_name')!r}, version "
                       f"{Gs.get('version')}): neither StyleGAN2 ('synthesis/4x4/Conv/mod_weight'), StyleGAN "
                       f"('synthesis/4x4/Const/StyleMod/weight') nor ProGAN ('4x4/Dense/weight') variables; "
                       f"found {sample}{', ...' if len(v) > 6 else ''}")


def _flavour(generation: str, G: TFNetwork, v: Dict[str, np.ndarray]) -> str:
    if generation == "stylegan2":
        return "stylegan2-ada-tf" if ("mapping/LabelEmbed/weight" in v or "num_fp16_res" in G.static_kwargs
                                      or "conv_clamp" in G.static_kwargs) else "stylegan2-tf"
    return {"stylegan": "stylegan-tf", "progan": "progan-tf"}[generation]


def convert_tf_networks(G: TFNetwork, D: TFNetwork, Gs: TFNetwork) -> Dict[str, Any]:
    """``(G, D, Gs)`` stubs -> the parts of a zoo checkpoint (generation, kwargs, state dicts)."""

    vs = {"G": tf_variables(G), "D": tf_variables(D), "G_ema": tf_variables(Gs)}
    generation = identify_tf(Gs, vs["G_ema"])
    kws = {"G": G.static_kwargs, "D": D.static_kwargs, "G_ema": Gs.static_kwargs}
    vg = vs["G_ema"]
    if generation == "stylegan2":
        G_kwargs = _sg2_G_kwargs(vg, kws["G_ema"], "Gs")
        D_kwargs = _sg2_D_kwargs(vs["D"], kws["D"], G_kwargs, "D")
        G_rules, D_rules = _sg2_G_rules(), _sg2_D_rules()
        ignorable = _is_lod
    elif generation == "stylegan":
        G_kwargs = _sg1_G_kwargs(vg, kws["G_ema"], "Gs")
        D_kwargs = _progressive_D(vs["D"], kws["D"], G_kwargs, "D", 8192, lambda c: max(c, 1))
        D_kwargs["conditioning"] = "switch"
        if "blur_filter" in kws["D"]:
            bf = kws["D"]["blur_filter"]
            D_kwargs["blur_filter"] = None if bf is None else [float(x) for x in bf]
        G_rules = _sg1_G_rules(kws["G_ema"], G_kwargs["img_resolution"])
        D_rules = _progressive_D_rules(G_kwargs["img_resolution"])
        ignorable = _is_lod       # the synthesis copy of G's lod
    else:
        G_kwargs = _progan_G_kwargs(vg, kws["G_ema"], "Gs")
        D_kwargs = _progressive_D(vs["D"], kws["D"], G_kwargs, "D", 8192, lambda c: 1 + c)
        D_kwargs["conditioning"] = "acgan"
        G_rules = _progan_up_rules(vg, G_kwargs["img_resolution"]) + _progan_G_rules(G_kwargs["img_resolution"])
        D_rules = _progressive_D_rules(G_kwargs["img_resolution"])
        ignorable = lambda name: False
    spec = generations.get(generation)
    state: Dict[str, Any] = {"generation": generation, "G_kwargs": G_kwargs, "D_kwargs": D_kwargs}
    for k, net_name in (("G_ema", "Gs"), ("G", "G")):
        if k == "G" and generation == "progan":
            G_rules_k = _progan_up_rules(vs["G"], G_kwargs["img_resolution"]) + _progan_G_rules(G_kwargs["img_resolution"])
        else:
            G_rules_k = G_rules
        net = spec.build_generator(**G_kwargs)
        state[k] = _fill(net, vs[k], G_rules_k, net_name, ignorable)
    net = spec.build_discriminator(**D_kwargs)
    state["D"] = _fill(net, vs["D"], D_rules, "D", ignorable)
    state["_flavour"] = _flavour(generation, Gs, vg)
    return state


def import_tf_pickle(path: str, data: Any = None) -> Dict[str, Any]:
    """Read a TF-era ``(G, D, Gs)`` pickle (or take its already safely unpickled ``data``) and return
    a zoo checkpoint dict with ``source: {file, sha256, format: 'nvidia-tf', ...}``."""

    if data is None:
        if not os.path.isfile(path):
            raise InteropError(f"checkpoint not found: {path!r}")
        data = safe_load(path)
    if not is_tf_tuple(data):
        raise InteropError(f"{path!r}: expected a (G, D, Gs) tuple of TensorFlow Network objects")
    G, D, Gs = data
    try:
        state = convert_tf_networks(G, D, Gs)
    except InteropError as e:
        raise InteropError(f"{path!r}: {e}") from None
    flavour = state.pop("_flavour")
    nets = {"G": G, "D": D, "Gs": Gs}
    state["source"] = {
        "file": os.path.basename(path),
        "sha256": file_sha256(path),
        "format": FORMAT_NAME,
        "flavour": flavour,
        "config": None,
        "class_names": {k: str(n.get("build_func_name")) for k, n in nets.items()},
        "network_versions": {k: n.get("version") for k, n in nets.items()},
        "module_src_sha256": {k: n.module_src_sha256 for k, n in nets.items()},
        "static_kwargs": {k: jsonable(n.static_kwargs) for k, n in nets.items()},
    }
    return state


