"""Interactive exploration of one or two generators: what the browser visualizer renders, without HTTP.

:class:`Explorer` holds one or two generators (two for a side-by-side comparison) and renders one
image per generator from a dict of controls (:class:`Controls`)::

    from zoo.sampling.explore import Explorer
    ex = Explorer([G])                                   # or Explorer([G_a, G_b], labels=["a", "b"])
    ex.info()                                            # what each model offers (capabilities)
    frame, = ex.render({"seed": 3, "psi": 0.7, "feature_layer": "b64.conv1", "spectrum": True})
    frame.image, frame.features, frame.spectrum, frame.ms  # HWC uint8, HW uint8, HW uint8, timings

The controls, in the order they act:

* **seed** and **latent drag**: ``z`` is the seed's (NumPy ``RandomState(seed)``, as everywhere in
  the zoo) plus ``drag = (dx, dy)`` along two fixed orthonormal random directions of Z (the same for
  every seed; one unit = ``sqrt(z_dim)``, the typical length of ``z``, so ``dx = 1`` turns the
  normalised latent by about 45 degrees). Working in Z makes the drag identical for every generation,
  ProGAN included.
* **truncation** ``psi`` and ``cutoff`` (the first ``cutoff`` styles; null: all), as
  :func:`zoo.sampling.figures.truncate`.
* **style mixing**: the styles ``mix_layers = [lo, hi]`` (inclusive) come from ``mix_seed``'s w
  (truncated the same way); ``mix_seed`` null: no mixing.
* **SeFa** (Shen & Zhou 2021, closed-form factorisation): the eigenvectors of ``A^T A``, where ``A``
  stacks the effective weights of the style affine layers that read the styles ``sefa_layers``, are
  the directions in W that change those styles most. ``sefa_index`` picks one (0 = largest
  eigenvalue) and ``sefa_strength`` moves those styles along it, in units of the standard deviation
  of mapped w along that direction (1,000 fixed random latents). Computed once per layer range and cached.
* **noise**: ``noise_mode`` ``const`` (the model's stored maps), ``random`` (fresh maps drawn from
  ``noise_seed``, so a render is reproducible and the page re-rolls by changing the seed) or
  ``none``; ``noise_strength`` scales each noise input (list in :func:`zoo.core.contract.noise_inputs`
  order; 0 turns one off).
* **StyleGAN3 translate / rotate** of the Fourier input (:func:`zoo.core.contract.set_input_transform`;
  the model's own transform is restored after the render).
* **feature maps** of ``feature_layer`` (a name from ``info()['feature_layers']``), recorded by a
  forward hook: ``feature_mode='mean'`` the mean absolute activation over channels, ``'channels'``
  the first ``feature_channels`` channels tiled, each scaled to its own range.
* **spectrum** of the image: log magnitude (dB) of the 2-D FFT of its luma with the mean removed,
  fftshifted (zero frequency in the centre), the top 80 dB mapped to black..white.

Generations without a feature are told so by :meth:`View.capabilities` (ProGAN: no styles, so no
truncation, mixing or SeFa; StyleGAN3 and ProGAN: no noise; only StyleGAN3: translate / rotate) and
controls that do not apply are ignored, so one request serves two different models.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from zoo.core.contract import (generation_name, has_styles, input_transform, noise_inputs, set_input_transform,
                               z_from_seed)
from zoo.core.images import make_grid, to_uint8
from zoo.sampling.figures import layer_resolutions, model_device, noise_override, truncate

__all__ = ["Controls", "Frame", "View", "Explorer", "style_affines", "feature_layers", "sefa_directions",
           "spectrum_db", "spectrum_image", "feature_image", "DRAG_SEED", "SPECTRUM_RANGE_DB"]

DRAG_SEED = 123456789      # the two drag directions of Z
SIGMA_SEED = 987654321     # the seeds whose mapped w scale the SeFa strength
SIGMA_SAMPLES = 1000
SPECTRUM_RANGE_DB = 80.0
NOISE_MODES = ("const", "random", "none")
FEATURE_MODES = ("mean", "channels")


# ------------------------------------------------------------------------------------------------
# Controls
# ------------------------------------------------------------------------------------------------

@dataclass
class Controls:
    """Everything one render depends on (see the module docstring). Layer ranges are inclusive
    ``[lo, hi]`` pairs of style (ws) indices; the parts outside a model's ``num_ws`` are ignored."""

    seed: int = 0
    drag: Tuple[float, float] = (0.0, 0.0)
    class_idx: int = 0
    psi: float = 1.0
    cutoff: Optional[int] = None
    mix_seed: Optional[int] = None
    mix_layers: Tuple[int, int] = (0, 3)
    noise_mode: str = "const"
    noise_seed: int = 0
    noise_strength: Optional[List[float]] = None
    translate: Tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0
    sefa_index: Optional[int] = None
    sefa_strength: float = 0.0
    sefa_layers: Optional[Tuple[int, int]] = None   # None: every style
    feature_layer: Optional[str] = None
    feature_mode: str = "mean"
    feature_channels: int = 16
    spectrum: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Controls":
        """Controls from JSON-like values; a ``ValueError`` names the key that is wrong."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown control {unknown[0]!r} (known: {', '.join(sorted(names))})")
        out = cls()
        for key, value in d.items():
            setattr(out, key, _convert(key, value))
        if out.noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode: {out.noise_mode!r} is not one of {', '.join(NOISE_MODES)}")
        if out.feature_mode not in FEATURE_MODES:
            raise ValueError(f"feature_mode: {out.feature_mode!r} is not one of {', '.join(FEATURE_MODES)}")
        if not 1 <= out.feature_channels <= 256:
            raise ValueError(f"feature_channels: {out.feature_channels} is not in 1..256")
        if out.cutoff is not None and out.cutoff < 0:
            raise ValueError(f"cutoff: {out.cutoff} is negative")
        return out


_NULLABLE = {"cutoff", "mix_seed", "sefa_index", "sefa_layers", "feature_layer", "noise_strength"}
_INTS = {"seed", "class_idx", "cutoff", "mix_seed", "noise_seed", "sefa_index", "feature_channels"}
_FLOATS = {"psi", "rotate", "sefa_strength"}
_PAIRS = {"drag": float, "translate": float, "mix_layers": int, "sefa_layers": int}


def _number(key: str, value: Any, kind: type) -> Any:
    """``value`` as a finite float or an integer (an integral float is accepted); ``ValueError`` otherwise."""
    try:
        if isinstance(value, bool):
            raise ValueError
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: {value!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{key}: {value!r} is not finite")
    if kind is int:
        if v != int(v):
            raise ValueError(f"{key}: {value!r} is not an integer")
        return int(v)
    return v


def _convert(key: str, value: Any) -> Any:
    if value is None:
        if key in _NULLABLE:
            return None
        raise ValueError(f"{key}: may not be null")
    if key in _INTS:
        return _number(key, value, int)
    if key in _FLOATS:
        return _number(key, value, float)
    if key in _PAIRS:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") or len(value) != 2:
            raise ValueError(f"{key}: {value!r} is not a pair [a, b]")
        return tuple(_number(key, v, _PAIRS[key]) for v in value)
    if key == "noise_strength":
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise ValueError(f"{key}: {value!r} is not a list of numbers")
        return [_number(key, v, float) for v in value]
    if key == "spectrum":
        if not isinstance(value, bool):
            raise ValueError(f"{key}: {value!r} is not true or false")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{key}: {value!r} is not a string")
    return value


def _layer_range(pair: Optional[Tuple[int, int]], count: int) -> List[int]:
    """Inclusive ``[lo, hi]`` clipped to ``0..count-1`` (None: all)."""
    if pair is None:
        return list(range(count))
    lo, hi = min(pair), max(pair)
    return list(range(max(lo, 0), min(hi, count - 1) + 1))


# ------------------------------------------------------------------------------------------------
# What a generator offers: style affines, feature layers
# ------------------------------------------------------------------------------------------------

def style_affines(G) -> List[List[Tuple[str, torch.nn.Module]]]:
    """For every style index ``k`` of ``ws``, the affine layers (``name, module``, with ``weight
    [out, w_dim]`` and ``weight_gain``) that turn ``ws[:, k]`` into styles. StyleGAN2: the block's
    convolutions and its ToRGB (which reads the next block's first style); StyleGAN (v1): two
    AdaIN ``style`` layers per block; StyleGAN3: one per layer, and none for ``ws[:, 0]`` (the
    Fourier input's affine sets its rotation and translation, not a style). ProGAN: none."""
    if not has_styles(G):
        return []
    syn = G.synthesis
    out: List[List[Tuple[str, torch.nn.Module]]] = [[] for _ in range(G.num_ws)]
    if hasattr(syn, "input") and hasattr(syn, "layer_names"):  # StyleGAN3
        for i, name in enumerate(syn.layer_names):
            if 1 + i < G.num_ws:
                out[1 + i].append((f"{name}.affine", getattr(syn, name).affine))
        return out
    blocks = [(r, getattr(syn, f"b{r}")) for r in syn.block_resolutions]
    if all(hasattr(b, "num_conv") for _, b in blocks):  # StyleGAN2
        w_idx = 0
        for r, b in blocks:
            convs = [n for n in ("conv0", "conv1") if hasattr(b, n)]
            for j, n in enumerate(convs):
                out[w_idx + j].append((f"b{r}.{n}.affine", getattr(b, n).affine))
            if hasattr(b, "torgb") and w_idx + b.num_conv < G.num_ws:
                out[w_idx + b.num_conv].append((f"b{r}.torgb.affine", b.torgb.affine))
            w_idx += b.num_conv
        return out
    for i, (r, b) in enumerate(blocks):  # StyleGAN (v1)
        first, second = ("const", "conv") if hasattr(b, "const") else ("conv0_up", "conv1")
        out[2 * i].append((f"b{r}.{first}.style", getattr(b, first).style))
        out[2 * i + 1].append((f"b{r}.{second}.style", getattr(b, second).style))
    return out


def _effective_weight(module: torch.nn.Module) -> torch.Tensor:
    """The matrix the layer applies to w (equalized learning rate: stored weight times its gain)."""
    return module.weight.detach().double().cpu() * float(module.weight_gain)


def sefa_directions(G, layers: Optional[Sequence[int]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """SeFa (Shen & Zhou 2021): ``(eigenvalues [w_dim], directions [w_dim, w_dim])`` of ``A^T A``,
    ``A`` the effective weights of the style affines reading the styles ``layers`` (None: all)
    stacked along their outputs; eigenvalues descending, directions as unit rows, each with its
    largest-magnitude component positive (a fixed sign). float64."""
    per_style = style_affines(G)
    if not per_style:
        raise ValueError(f"a {generation_name(G)} generator has no styles, so no SeFa directions")
    layers = range(len(per_style)) if layers is None else layers
    mats = [_effective_weight(m) for k in layers for _, m in per_style[k]]
    if not mats:
        raise ValueError(f"no style affine layer reads the styles {list(layers)}")
    A = torch.cat(mats, dim=0)
    vals, vecs = torch.linalg.eigh(A.t() @ A)
    vals, dirs = vals.flip(0), vecs.flip(1).t().contiguous()
    sign = torch.sign(dirs.gather(1, dirs.abs().argmax(dim=1, keepdim=True)))
    return vals, dirs * sign


def feature_layers(G) -> List[Tuple[str, torch.nn.Module]]:
    """The synthesis layers whose outputs can be shown as feature maps, in execution order:
    StyleGAN3 the Fourier input and every ``L*`` layer; the others each block's convolution layers
    (``b{res}.conv0`` / ``conv1``, StyleGAN's ``const`` / ``conv`` / ``conv0_up``), without the
    ToRGBs (the image itself), resnet skips and ProGAN's dense layer (not an image)."""
    syn = G.synthesis if hasattr(G, "synthesis") else G
    if hasattr(syn, "input") and hasattr(syn, "layer_names"):
        return [("input", syn.input)] + [(n, getattr(syn, n)) for n in syn.layer_names]
    out = []
    for r in syn.block_resolutions:
        for name, child in getattr(syn, f"b{r}").named_children():
            if name not in ("torgb", "skip", "dense"):
                out.append((f"b{r}.{name}", child))
    return out


# ------------------------------------------------------------------------------------------------
# Images derived from a render: spectrum, feature maps
# ------------------------------------------------------------------------------------------------

def _luma(img: torch.Tensor) -> torch.Tensor:
    """``[C, H, W]`` -> ``[H, W]`` (Rec. 601 luma for RGB, the channel mean otherwise), float64."""
    img = img.detach().double().cpu()
    if img.shape[0] == 3:
        return 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    return img.mean(0)


def spectrum_db(img: torch.Tensor) -> torch.Tensor:
    """``[C, H, W]`` image -> ``[H, W]`` magnitude spectrum in dB (``20 log10 |FFT|``) of its luma with
    the mean removed, fftshifted: the zero frequency at ``(H // 2, W // 2)``, a horizontal cosine of
    ``k`` cycles per image at columns ``W // 2 +- k``."""
    gray = _luma(img)
    mag = torch.fft.fftshift(torch.fft.fft2(gray - gray.mean())).abs()
    return 20 * torch.log10(mag + 1e-12)


def spectrum_image(img: torch.Tensor, range_db: float = SPECTRUM_RANGE_DB) -> np.ndarray:
    """:func:`spectrum_db` as an ``[H, W]`` uint8 image: the strongest bin white, ``range_db`` below it
    and lower black (a flat image: all black)."""
    db = spectrum_db(img)
    top = float(db.max())
    if top < -200:  # nothing but the removed mean
        return np.zeros(tuple(db.shape), np.uint8)
    return ((db - (top - range_db)) / range_db).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


def _normalise(a: torch.Tensor) -> torch.Tensor:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else torch.zeros_like(a)


def feature_image(act: torch.Tensor, mode: str = "mean", channels: int = 16) -> np.ndarray:
    """One sample's activation ``[C, H, W]`` -> a uint8 ``[H', W']`` image: ``mean`` the mean absolute
    activation over channels scaled to its maximum; ``channels`` the first ``channels`` channels,
    each scaled to its own range, tiled row-major with a one-pixel black border around each."""
    act = act.detach().float().cpu()
    if mode == "mean":
        m = act.abs().mean(0)
        peak = float(m.max())
        return (m / peak if peak > 0 else m).mul(255).round().to(torch.uint8).numpy()
    tiles = torch.stack([_normalise(a) for a in act[:channels]])
    tiles = torch.nn.functional.pad(tiles, (1, 1, 1, 1)).mul(255).round().to(torch.uint8)
    cols = int(math.ceil(math.sqrt(tiles.shape[0])))
    return make_grid(tiles.unsqueeze(-1).numpy(), cols)[..., 0]


# ------------------------------------------------------------------------------------------------
# One generator
# ------------------------------------------------------------------------------------------------

@dataclass
class Frame:
    """One model's render: ``image`` HWC uint8, ``features`` / ``spectrum`` HW uint8 (or None),
    ``ms`` the timings (``render``: latents + synthesis, hooks included; ``spectrum``; ``total``),
    ``notes`` what was asked and does not apply to this model."""

    image: np.ndarray
    features: Optional[np.ndarray] = None
    spectrum: Optional[np.ndarray] = None
    ms: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


class View:
    """One generator and what is cached for it (drag directions, SeFa directions and scales)."""

    def __init__(self, G, label: str = ""):
        self.G = G
        self.label = label
        self.device = model_device(G)
        self.styles = has_styles(G)
        self.noise = noise_inputs(G)
        self.transform = input_transform(G) is not None
        self.features = dict(feature_layers(G))
        self.affines = style_affines(G)
        rnd = np.random.RandomState(DRAG_SEED)
        q, _ = np.linalg.qr(rnd.randn(G.z_dim, 2))  # two orthonormal directions
        self.drag_dirs = torch.from_numpy(q.T.copy()).float() * math.sqrt(G.z_dim)
        self._sefa: Dict[Tuple[int, ...], Tuple[torch.Tensor, torch.Tensor]] = {}
        self._w_sample: Optional[torch.Tensor] = None

    # -- what it offers ------------------------------------------------------------------------
    def capabilities(self) -> Dict[str, Any]:
        G = self.G
        num_ws = int(G.num_ws) if self.styles else 0
        return dict(
            label=self.label, generation=generation_name(G), resolution=int(G.img_resolution),
            img_channels=int(G.img_channels), z_dim=int(G.z_dim), c_dim=int(G.c_dim),
            styles=self.styles, num_ws=num_ws, w_dim=int(G.w_dim) if self.styles else 0,
            layer_resolutions=layer_resolutions(G) if self.styles else [],
            sefa_layers=[k for k in range(num_ws) if self.affines and self.affines[k]],
            noise_layers=[dict(name=n, resolution=r) for n, _, r in self.noise],
            transform=self.transform, feature_layers=list(self.features),
        )

    # -- latents -------------------------------------------------------------------------------
    def _c(self, c: Controls) -> Optional[torch.Tensor]:
        if not self.G.c_dim:
            return None
        if not 0 <= c.class_idx < self.G.c_dim:
            raise ValueError(f"class_idx: {c.class_idx} is out of range for a {self.G.c_dim}-class model")
        onehot = torch.zeros([1, self.G.c_dim], device=self.device)
        onehot[0, c.class_idx] = 1
        return onehot

    def z(self, c: Controls) -> torch.Tensor:
        """``[1, z_dim]``: the seed's z plus the drag along the two fixed directions."""
        dx, dy = c.drag
        return (z_from_seed(c.seed, self.G.z_dim) + dx * self.drag_dirs[0] + dy * self.drag_dirs[1]).to(self.device)

    def sefa(self, layers: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(directions [w_dim, w_dim] float32, sigma [w_dim])`` for the styles ``layers``, cached:
        :func:`sefa_directions` and the standard deviation of mapped w along each direction."""
        key = tuple(layers)
        if key not in self._sefa:
            _, dirs = sefa_directions(self.G, key)
            dirs = dirs.float()
            if self._w_sample is None:
                z = torch.from_numpy(np.random.RandomState(SIGMA_SEED).randn(SIGMA_SAMPLES, self.G.z_dim)).float()
                c = self._c(Controls())
                with torch.no_grad():
                    ws = self.G.mapping(z.to(self.device), None if c is None else c.expand(SIGMA_SAMPLES, -1))
                self._w_sample = ws[:, 0].float().cpu()
            sigma = (self._w_sample @ dirs.t()).std(dim=0)
            self._sefa[key] = (dirs.to(self.device), sigma.to(self.device))
        return self._sefa[key]

    def ws(self, c: Controls, notes: Optional[List[str]] = None) -> torch.Tensor:
        """``[1, num_ws, w_dim]`` after truncation, style mixing and the SeFa edit."""
        G = self.G
        notes = [] if notes is None else notes
        cvec = self._c(c)
        ws = G.mapping(self.z(c), cvec)
        trunc = c.psi != 1 and c.cutoff != 0
        ws = truncate(G, ws, c.psi, c.cutoff) if trunc else ws
        if c.mix_seed is not None:
            layers = _layer_range(c.mix_layers, G.num_ws)
            if layers:
                mix = G.mapping(z_from_seed(c.mix_seed, G.z_dim).to(self.device), cvec)
                ws[:, layers] = (truncate(G, mix, c.psi, c.cutoff) if trunc else mix)[:, layers]
        if c.sefa_index is not None and c.sefa_strength != 0:
            layers = [k for k in _layer_range(c.sefa_layers, G.num_ws) if self.affines[k]]
            if not layers:
                notes.append("SeFa: no style layer in the chosen range")
            elif not 0 <= c.sefa_index < G.w_dim:
                raise ValueError(f"sefa_index: {c.sefa_index} is out of range 0..{G.w_dim - 1}")
            else:
                dirs, sigma = self.sefa(layers)
                ws[:, layers] += c.sefa_strength * sigma[c.sefa_index] * dirs[c.sefa_index]
        return ws

    # -- rendering -----------------------------------------------------------------------------
    def _noise_maps(self, c: Controls) -> Dict[str, torch.Tensor]:
        """``noise_const`` replacements for ``const`` / ``random`` mode with per-layer strengths."""
        gains = c.noise_strength or []
        if c.noise_mode == "const" and all(g == 1 for g in gains[:len(self.noise)]):
            return {}
        gen = torch.Generator().manual_seed(int(c.noise_seed))
        maps = {}
        for i, (name, module, res) in enumerate(self.noise):
            base = (torch.randn([res, res], generator=gen).to(self.device) if c.noise_mode == "random"
                    else module._buffers["noise_const"])
            gain = gains[i] if i < len(gains) else 1.0
            maps[name] = base * gain if gain != 1 else base
        return maps

    def render(self, c: Controls) -> Frame:
        """Render ``c``: the image, and the feature map / spectrum when asked (see :class:`Frame`)."""
        G, notes = self.G, []
        if not self.styles:
            for key, off in (("psi", c.psi == 1), ("cutoff", c.cutoff is None), ("mix_seed", c.mix_seed is None),
                             ("sefa_index", c.sefa_index is None or c.sefa_strength == 0)):
                if not off:
                    notes.append(f"{key}: {generation_name(G)} has no styles")
        if not self.noise and (c.noise_mode != "const" or any(g != 1 for g in c.noise_strength or [])):
            notes.append(f"noise: {generation_name(G)} has no noise inputs")
        moved = tuple(c.translate) != (0.0, 0.0) or c.rotate != 0
        if moved and not self.transform:
            notes.append(f"translate/rotate: {generation_name(G)} has no input transform (StyleGAN3 only)")
        if self.styles and c.sefa_index is not None and c.sefa_strength != 0:
            layers = [k for k in _layer_range(c.sefa_layers, G.num_ws) if self.affines[k]]
            if layers:
                self.sefa(layers)  # computed once per range, outside inference mode and the timing
        hook, captured = None, {}
        if c.feature_layer is not None:
            module = self.features.get(c.feature_layer)
            if module is None:
                raise ValueError(f"feature_layer: {c.feature_layer!r} is not one of {', '.join(self.features)}")

            def record(_module, _inputs, output):
                out = output[0] if isinstance(output, (tuple, list)) else output
                captured["image"] = feature_image(out[0], c.feature_mode, c.feature_channels)
            hook = module.register_forward_hook(record)
        saved = input_transform(G).clone() if (moved and self.transform) else None
        t0 = time.perf_counter()
        try:
            if saved is not None:
                set_input_transform(G, c.translate, c.rotate)
            with torch.inference_mode():
                if self.styles:
                    ws = self.ws(c, notes)
                    noise_mode = "none" if c.noise_mode == "none" else "const"
                    with noise_override(G, self._noise_maps(c) if noise_mode == "const" else {}):
                        img = G.synthesis(ws, noise_mode=noise_mode)
                else:
                    img = G(self.z(c), self._c(c))
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
        finally:
            if hook is not None:
                hook.remove()
            if saved is not None:
                with torch.no_grad():
                    input_transform(G).copy_(saved)
        ms_render = (time.perf_counter() - t0) * 1000
        frame = Frame(image=to_uint8(img)[0], notes=notes)
        if c.feature_layer is not None:
            frame.features = captured.get("image")
            if frame.features is None:
                notes.append(f"feature_layer: {c.feature_layer} did not run (inactive at this level of detail)")
        t1 = time.perf_counter()
        if c.spectrum:
            frame.spectrum = spectrum_image(img[0].float().clamp(-1, 1))  # of the image as shown
        ms_spectrum = (time.perf_counter() - t1) * 1000
        frame.ms = dict(render=ms_render, spectrum=ms_spectrum, total=ms_render + ms_spectrum)
        return frame


# ------------------------------------------------------------------------------------------------
# One or two generators
# ------------------------------------------------------------------------------------------------

class Explorer:
    """One or two generators rendered from the same controls (a side-by-side comparison when two).

    :meth:`render` takes the controls as a dict; ``per_model`` (a list, one dict per model) overrides
    some of them for one model, e.g. ``{"per_model": [{"feature_layer": "b8.conv1"},
    {"feature_layer": "L3_52_512"}]}``, since feature layers have model-specific names."""

    def __init__(self, generators: Sequence[Any], labels: Optional[Sequence[str]] = None):
        if not 1 <= len(generators) <= 2:
            raise ValueError(f"an Explorer holds one or two generators, not {len(generators)}")
        labels = list(labels) if labels is not None else [f"model {i}" for i in range(len(generators))]
        self.views = [View(G, label) for G, label in zip(generators, labels)]

    def info(self) -> Dict[str, Any]:
        return dict(models=[v.capabilities() for v in self.views])

    def controls(self, params: Mapping[str, Any]) -> List[Controls]:
        """The :class:`Controls` of each model from a request dict (``per_model`` applied)."""
        params = dict(params)
        per_model = params.pop("per_model", None) or []
        if not isinstance(per_model, list) or len(per_model) > len(self.views):
            raise ValueError(f"per_model: expected a list of at most {len(self.views)} dicts")
        out = []
        for i in range(len(self.views)):
            extra = per_model[i] if i < len(per_model) else {}
            if not isinstance(extra, Mapping):
                raise ValueError(f"per_model[{i}]: expected a dict")
            out.append(Controls.from_dict({**params, **extra}))
        return out

    def render(self, params: Mapping[str, Any]) -> List[Frame]:
        return [view.render(c) for view, c in zip(self.views, self.controls(params))]
