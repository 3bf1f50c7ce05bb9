"""``python sample.py ckpt=PATH [mode=images|mixing|interpolate|noise|truncation|project] [seeds=0-15]
[trunc=0.7] [noise_mode=const] ...``: render a checkpoint (any file ``zoo.load`` reads) in one of the
papers' figures (``conf/sample.yaml``, :class:`SampleConfig`).

Each mode (``run_<mode>``) gets the loaded generator, the composed config, the one-hot label
``c [1, c_dim]`` and the output directory, writes its files and returns ``{'files': [...], **details
for sample.json}``. Operations that do not exist for a generation (styles on ProGAN, noise on
StyleGAN3) raise a ``ConfigError`` that says so."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from omegaconf import MISSING, DictConfig, OmegaConf

from zoo import generations
from zoo import sampling as S
from zoo.apps.common import AppSpec, hydra_main, hydra_output_dir
from zoo.core.contract import input_transform, set_input_transform, z_from_seeds
from zoo.core.errors import ConfigError
from zoo.core.files import file_sha256
from zoo.core.images import make_grid, save_image, to_uint8
from zoo.core.parse import parse_floats, parse_seeds
from zoo.core.runtime import resolve_device, tune_cpu_allocator
from zoo.interop.load import load_any, load_network
from zoo.training.config import check_precision

__all__ = ["SampleConfig", "sample", "main", "MODES", "APP"]


@dataclass
class SampleConfig:
    ckpt: str = MISSING
    model: Any = None  # optional config-group choice: must match the checkpoint's generation
    which: str = "G_ema"
    seeds: Any = "0-15"
    trunc: float = 1.0
    trunc_cutoff: Optional[int] = None
    noise_mode: Optional[str] = None  # const | random | none; null: random for mode=noise, const otherwise
    class_idx: Optional[int] = None
    outdir: Optional[str] = None  # null: the Hydra run directory
    grid: Any = True  # images/mixing/truncation/noise: write grid.png; interpolate: WxH walks at once
    device: str = "auto"
    precision: str = "fp32"  # fp32 (exact, the same image on every machine) | mixed (fp16 on CUDA, bf16 on CPU) | auto
    precision_dtype: Optional[str] = None  # mixed: null = by device; fp16 | bf16
    batch: int = 8
    translate: Any = None  # StyleGAN3: [tx, ty] in image widths (0.1 = 10% of the image), or "tx,ty"
    rotate: float = 0.0  # StyleGAN3: degrees, counter-clockwise
    # Modes (zoo.sampling): images | mixing | interpolate | noise | truncation | project
    mode: str = "images"
    ws: Optional[str] = None  # images: render the ws [N, num_ws, w_dim] of an .npz (e.g. projected_w.npz)
    rows: Any = "85,100,75"  # mixing: row seeds (all styles except `styles`)
    cols: Any = "55,821,1789"  # mixing: column seeds (supply `styles`)
    styles: Any = "0-6"  # mixing: layer range/indices or coarse | middle | fine
    space: str = "w"  # interpolate: w (lerp) | z (slerp); project: w | w+
    frames: int = 60  # interpolate: frames per keyframe transition
    loop: bool = True  # interpolate: return to the first seed
    fps: float = 30.0  # interpolate / project: animation frame rate
    format: str = "gif"  # interpolate / project: gif | webp (and an MP4 when imageio-ffmpeg is installed)
    mp4: bool = True  # also write an MP4 when imageio-ffmpeg is importable
    seed: Optional[int] = None  # noise: the seed whose w is varied (null: first of seeds); project: RNG seed (303)
    variations: int = 8  # noise: number of noise realisations
    noise_layers: Any = None  # noise: which noise inputs vary (indices, ranges, coarse|middle|fine; null: all)
    psis: Any = "1,0.7,0.5,0,-0.5"  # truncation: psi values of the strip
    target: Optional[str] = None  # project: the target image
    steps: int = 1000  # project: optimisation steps
    vgg: Optional[str] = "auto"  # project: VGG16 TorchScript path | auto (cached NVIDIA download) | none (pixel MSE)
    vgg_sha256: Optional[str] = None  # project: expected sha256 of the VGG16 file


def _parse_grid_wh(spec: Any):
    """``grid`` of mode=interpolate: ``WxH`` (or true/1 for one walk)."""
    if spec is True or spec is None or spec == 1:
        return 1, 1
    try:
        w, h = (int(v) for v in str(spec).lower().split("x"))
        if w < 1 or h < 1:
            raise ValueError
        return w, h
    except ValueError:
        raise ConfigError("grid", f"cannot parse {spec!r} as WxH", "use e.g. grid=2x2 (walks per row x rows)") from None


def _require(G, generation: str, what: str, mode: str) -> None:
    if not S.has_styles(G):
        raise ConfigError("mode", f"{what} does not apply to {generation}: it has no mapping network, no styles "
                          "and no noise inputs (z goes straight to the image)",
                          "use mode=images or mode=interpolate space=z with this checkpoint")


def _c(G, c: torch.Tensor):
    return c if G.c_dim else None


def _save(arr: np.ndarray, outdir: str, name: str, files: List[str]) -> None:
    save_image(arr, os.path.join(outdir, name))
    files.append(name)


def _seeds(spec: Any, key: str) -> List[int]:
    return parse_seeds(spec, key)


def _layers(spec: Any, G, kind: str, key: str) -> List[int]:
    try:
        return S.parse_layers(spec, G, kind)
    except ValueError as e:
        raise ConfigError(key, str(e), f"use e.g. {key}=0-3 or {key}=coarse (or middle, fine)") from None


def _write_animation(frames: np.ndarray, outdir: str, stem: str, cfg, files: List[str], loop: bool) -> None:
    fmt = str(cfg.format).lower()
    if fmt not in ("gif", "webp"):
        raise ConfigError("format", f"unknown animation format {cfg.format!r}", "use format=gif or format=webp")
    if cfg.fps <= 0:
        raise ConfigError("fps", f"{cfg.fps} is not a positive frame rate", "use e.g. fps=30")
    S.save_animation(frames, os.path.join(outdir, f"{stem}.{fmt}"), fps=cfg.fps, loop=loop)
    files.append(f"{stem}.{fmt}")
    if cfg.mp4 and S.save_mp4(frames, os.path.join(outdir, f"{stem}.mp4"), fps=cfg.fps):
        files.append(f"{stem}.mp4")


# ------------------------------------------------------------------------------------------------

def run_images(G, cfg, c, outdir, *, noise_mode, seeds, generation) -> Dict[str, Any]:
    """One PNG per seed (or per w of ``ws=FILE.npz``) and grid.png."""
    files: List[str] = []
    images = []
    if cfg.ws:
        _require(G, generation, "rendering saved ws", "images")
        if not os.path.isfile(cfg.ws):
            raise ConfigError("ws", f"{cfg.ws!r} does not exist", "pass ws=PATH to an .npz written by mode=project")
        with np.load(cfg.ws) as data:
            key = "w" if "w" in data.files else data.files[0]
            ws = torch.from_numpy(np.asarray(data[key], dtype=np.float32))
        if ws.ndim == 2:
            ws = ws.unsqueeze(1).repeat(1, G.num_ws, 1)
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
            raise ConfigError("ws", f"the array has shape {tuple(ws.shape)}, this generator takes "
                              f"[N, {G.num_ws}, {G.w_dim}]", "use ws= from a projection with this checkpoint")
        torch.manual_seed(0)
        images = to_uint8(S.synthesize(G, ws, noise_mode, cfg.batch))
        names = [f"proj{i:02d}.png" for i in range(len(images))]
    else:
        chunks = []
        with torch.no_grad():
            for i in range(0, len(seeds), cfg.batch):
                chunk = seeds[i:i + cfg.batch]
                z = z_from_seeds(chunk, G.z_dim).to(c.device)
                if noise_mode == "random":  # random noise, but still reproducible per seed
                    torch.manual_seed(chunk[0])
                img = G(z, c.expand(len(chunk), -1), truncation_psi=cfg.trunc, truncation_cutoff=cfg.trunc_cutoff,
                        noise_mode=noise_mode)
                chunks.append(to_uint8(img))
        images = np.concatenate(chunks)
        names = [f"seed{s:04d}.png" for s in seeds]
    for name, im in zip(names, images):
        _save(im, outdir, name, files)
    if cfg.grid:
        cols = int(len(images) ** 0.5 + 0.999)
        _save(make_grid(images, cols), outdir, "grid.png", files)
    return {"files": files}


def run_mixing(G, cfg, c, outdir, *, noise_mode, seeds, generation) -> Dict[str, Any]:
    """The style-mixing figure (NVIDIA's style_mixing.py): grid.png with the column sources on the top
    row, the row sources in the left column and ``row-col.png`` for every image."""
    _require(G, generation, "style mixing", "mixing")
    rows, cols = _seeds(cfg.rows, "rows"), _seeds(cfg.cols, "cols")
    layers = _layers(cfg.styles, G, "styles", "styles")
    all_seeds = sorted(set(rows + cols))
    ws = S.truncate(G, S.ws_from_seeds(G, all_seeds, _c(G, c)), cfg.trunc, cfg.trunc_cutoff)
    w = {s: ws[i:i + 1] for i, s in enumerate(all_seeds)}
    torch.manual_seed(0)
    src = dict(zip(all_seeds, to_uint8(S.synthesize(G, ws, noise_mode, cfg.batch))))
    mixed = S.style_mix(G, torch.cat([w[s] for s in rows]), torch.cat([w[s] for s in cols]), layers,
                        noise_mode, cfg.batch)
    mixed = to_uint8(mixed.flatten(0, 1)).reshape(len(rows), len(cols), *src[rows[0]].shape)
    files: List[str] = []
    for s in all_seeds:
        _save(src[s], outdir, f"{s}-{s}.png", files)
    for i, r in enumerate(rows):
        for j, q in enumerate(cols):
            _save(mixed[i, j], outdir, f"{r}-{q}.png", files)
    if cfg.grid:
        blank = np.zeros_like(src[rows[0]])
        cells = [blank] + [src[q] for q in cols]
        for i, r in enumerate(rows):
            cells += [src[r]] + [mixed[i, j] for j in range(len(cols))]
        _save(make_grid(np.stack(cells), len(cols) + 1), outdir, "grid.png", files)
    return {"files": files, "rows": rows, "cols": cols, "style_layers": layers,
            "layer_resolutions": S.layer_resolutions(G)}


def run_interpolate(G, cfg, c, outdir, *, noise_mode, seeds, generation) -> Dict[str, Any]:
    """A walk through the seeds (lerp in W or slerp in Z) as GIF/WebP (+ MP4); ``grid=WxH`` splits
    the seeds into W*H walks shown side by side."""
    if cfg.space not in ("w", "z"):
        raise ConfigError("space", f"interpolation space must be w or z, got {cfg.space!r}", "use space=w or space=z")
    if cfg.space == "w" and not S.has_styles(G):
        raise ConfigError("space", f"{generation} has no W space (no mapping network)", "use space=z")
    if cfg.frames < 1:
        raise ConfigError("frames", f"{cfg.frames} frames per transition", "use e.g. frames=60")
    gw, gh = _parse_grid_wh(cfg.grid)
    walks = gw * gh
    if len(seeds) % walks:
        raise ConfigError("seeds", f"{len(seeds)} seeds cannot be split into grid={gw}x{gh} = {walks} walks",
                          f"pass a multiple of {walks} seeds")
    keys = len(seeds) // walks
    if keys < 2 and not cfg.loop:
        raise ConfigError("seeds", "an interpolation needs at least two seeds per walk", "pass more seeds or loop=true")
    trunc = dict(truncation_psi=cfg.trunc, truncation_cutoff=cfg.trunc_cutoff)
    if cfg.trunc != 1 and not S.has_styles(G):
        raise ConfigError("trunc", f"truncation does not apply to {generation} (no W space)", "use trunc=1")
    videos = []
    for k in range(walks):
        z = S.z_from_seeds(seeds[k * keys:(k + 1) * keys], G.z_dim)
        torch.manual_seed(0)
        videos.append(to_uint8(S.interpolate(G, z, cfg.frames, cfg.space, cfg.loop, _c(G, c), noise_mode=noise_mode,
                                             batch=cfg.batch, **trunc)))
    frames = np.stack([make_grid(np.stack([v[f] for v in videos]), gw, gh) for f in range(len(videos[0]))])
    files: List[str] = []
    _write_animation(frames, outdir, "interpolation", cfg, files, loop=cfg.loop)
    return {"files": files, "num_frames": int(len(frames)), "walks": [seeds[k * keys:(k + 1) * keys] for k in range(walks)]}


def run_noise(G, cfg, c, outdir, *, noise_mode, seeds, generation) -> Dict[str, Any]:
    """Stochastic variation: the same w with ``variations`` noise realisations (in ``noise_layers``),
    ``noise_std.png`` (per-pixel standard deviation, scaled so the largest is white) and grid.png."""
    _require(G, generation, "stochastic variation", "noise")
    if not S.noise_inputs(G):
        raise ConfigError("mode", f"{generation} has no noise inputs, so noise variation does not apply",
                          "use mode=images, mixing, interpolate, truncation or project")
    if cfg.variations < 1:
        raise ConfigError("variations", f"{cfg.variations}", "use e.g. variations=8")
    seed = seeds[0] if cfg.seed is None else int(cfg.seed)
    layers = _layers(cfg.noise_layers, G, "noise", "noise_layers")
    ws = S.truncate(G, S.ws_from_seeds(G, [seed], _c(G, c)), cfg.trunc, cfg.trunc_cutoff)
    imgs, std = S.noise_variations(G, ws, cfg.variations, layers, noise_mode, seed=seed)
    ims = to_uint8(imgs)
    files: List[str] = []
    for i, im in enumerate(ims):
        _save(im, outdir, f"seed{seed:04d}-noise{i:02d}.png", files)
    peak = float(std.max())
    std_img = (std / peak * 255 if peak > 0 else std * 0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()[..., None]
    _save(std_img, outdir, f"seed{seed:04d}-std.png", files)
    if cfg.grid:
        cells = np.concatenate([ims, np.repeat(std_img, ims.shape[-1], axis=-1)[None]])
        _save(make_grid(cells, len(cells)), outdir, "grid.png", files)
    names = [n for n, _, _ in S.noise_inputs(G)]
    return {"files": files, "seed": seed, "noise_layers_varied": [names[i] for i in layers], "std_max": peak}


def run_truncation(G, cfg, c, outdir, *, noise_mode, seeds, generation) -> Dict[str, Any]:
    """The truncation-trick strip per seed (one image per psi) and a grid (seeds x psis)."""
    _require(G, generation, "the truncation trick", "truncation")
    spec = cfg.psis
    count = len(spec) if not isinstance(spec, (str, int, float)) else len(str(spec).split(","))
    psis = parse_floats(spec, "psis", count)
    ws = S.ws_from_seeds(G, seeds, _c(G, c))
    torch.manual_seed(0)
    strips = to_uint8(S.truncation_strip(G, ws, psis, cfg.trunc_cutoff, noise_mode, cfg.batch).flatten(0, 1))
    strips = strips.reshape(len(seeds), len(psis), *strips.shape[1:])
    files: List[str] = []
    for s, strip in zip(seeds, strips):
        _save(make_grid(strip, len(psis)), outdir, f"seed{s:04d}-truncation.png", files)
    if cfg.grid:
        _save(make_grid(strips.reshape(-1, *strips.shape[2:]), len(psis)), outdir, "grid.png", files)
    return {"files": files, "psis": psis}


def run_project(G, cfg, c, outdir, *, noise_mode, seeds, generation) -> Dict[str, Any]:
    """Project ``target`` into W (``space=w``) or W+ (``space=w+``): target.png, proj.png,
    projected_w.npz (``w``: [1, num_ws, w_dim]) and a progress animation (target | projection)."""
    import warnings

    from PIL import Image

    _require(G, generation, "projection", "project")
    if not cfg.target:
        raise ConfigError("target", "mode=project needs a target image", "pass target=PATH.png")
    if not os.path.isfile(cfg.target):
        raise ConfigError("target", f"{cfg.target!r} does not exist", "pass target=PATH to an image")
    if cfg.space not in ("w", "w+"):
        raise ConfigError("space", f"projection space must be w or w+, got {cfg.space!r}", "use space=w or space=w+")
    if cfg.steps < 1:
        raise ConfigError("steps", f"{cfg.steps}", "use e.g. steps=1000")
    im = Image.open(cfg.target).convert("L" if G.img_channels == 1 else "RGB")
    w, h = im.size  # centre crop to a square, resize to G's resolution (as NVIDIA's projector)
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    im = im.resize((G.img_resolution, G.img_resolution), Image.LANCZOS)
    target_u8 = np.asarray(im, dtype=np.uint8).reshape(G.img_resolution, G.img_resolution, -1)
    try:
        vgg = S.load_vgg16(cfg.vgg, sha256=cfg.vgg_sha256, device=c.device)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError("vgg", str(e), "pass vgg=PATH to NVIDIA's vgg16.pt, vgg=auto or vgg=none (pixel MSE)") from None
    loss_name = "lpips-vgg16" if vgg is not None else "pixel-mse"
    if vgg is None:
        print("[zoo] warning: no VGG16 feature network; projecting with the pixel MSE", flush=True)
    seed = 303 if cfg.seed is None else int(cfg.seed)
    every = max(1, cfg.steps // 100)
    keep = []

    def progress(step, ws, dist):
        if step % every == 0 or step == cfg.steps - 1:
            keep.append(step)
        if step % max(1, cfg.steps // 10) == 0 or step == cfg.steps - 1:
            print(f"[zoo] project step {step + 1:5d}/{cfg.steps}: dist {dist:.5g}", flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MSE fallback was announced above
        result = S.project(G, target_u8, steps=cfg.steps, vgg=vgg, w_plus=cfg.space == "w+", c=_c(G, c), seed=seed,
                           callback=progress)
    files: List[str] = []
    _save(target_u8, outdir, "target.png", files)
    final = to_uint8(S.render_projection(G, result["ws"][-1:].to(c.device), result["noise"]))[0]
    _save(final, outdir, "proj.png", files)
    np.savez(os.path.join(outdir, "projected_w.npz"), w=result["ws"][-1:].numpy())
    files.append("projected_w.npz")
    frames = to_uint8(S.render_projection(G, result["ws"][keep].to(c.device), result["noise"]))
    frames = np.stack([np.concatenate([target_u8, f], axis=1) for f in frames])
    _write_animation(frames, outdir, "proj", cfg, files, loop=False)
    return {"files": files, "loss": loss_name, "seed_used": seed, "noise_maps_optimised": len(result["noise"]),
            "final_dist": result["dist"][-1],
            "first_dist": result["dist"][0]}


MODES = {"images": run_images, "mixing": run_mixing, "interpolate": run_interpolate, "noise": run_noise,
         "truncation": run_truncation, "project": run_project}


def sample(cfg: DictConfig, outdir: Optional[str] = None) -> str:
    """``sample.py``: render a checkpoint in one of :data:`MODES` (see ``zoo.sampling``). Writes the
    files and a ``sample.json`` (checkpoint sha256, generation, every option) into the output
    directory, prints where they went and returns it."""
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        raise ConfigError(missing[0], "is required", f"pass {missing[0]}=PATH")
    if cfg.mode not in MODES:
        raise ConfigError("mode", f"unknown mode {cfg.mode!r}", f"use one of {', '.join(MODES)}")
    noise_mode = cfg.noise_mode if cfg.noise_mode is not None else ("random" if cfg.mode == "noise" else "const")
    if noise_mode not in ("const", "random", "none"):
        raise ConfigError("noise_mode", f"unknown noise mode {noise_mode!r}", "use const, random or none")
    if cfg.which not in ("G_ema", "G"):
        raise ConfigError("which", f"cannot sample from {cfg.which!r}", "use which=G_ema or which=G")
    if cfg.batch < 1:
        raise ConfigError("batch", f"{cfg.batch} is not a positive batch size", "use e.g. batch=8")
    if cfg.mode != "interpolate" and not isinstance(cfg.grid, bool):
        raise ConfigError("grid", f"expected true or false for mode={cfg.mode}, got {cfg.grid!r}",
                          "use grid=true or grid=false (grid=WxH is for mode=interpolate)")
    seeds = parse_seeds(cfg.seeds)
    tune_cpu_allocator()
    state = load_any(cfg.ckpt)   # a zoo .pt, or an NVIDIA .pkl imported on the fly
    generation = state.get("generation")
    if cfg.model is not None and cfg.model.name != generation:
        raise ConfigError("model", f"the checkpoint holds a {generation!r} model, not {cfg.model.name!r}",
                          f"drop model= or use model={generation}")
    generations.get(generation)
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, cfg.precision_dtype, str(device))
    G = load_network(state, which=cfg.which, device=device, precision=cfg.precision,
                     precision_dtype=cfg.precision_dtype)
    if cfg.translate is not None or cfg.rotate:
        if input_transform(G) is None:
            raise ConfigError("translate" if cfg.translate is not None else "rotate",
                              f"a {generation} generator has no input transform (StyleGAN3 only)",
                              "drop translate=/rotate=")
        translate = parse_floats(cfg.translate if cfg.translate is not None else 0.0, "translate", 2)
        set_input_transform(G, translate, float(cfg.rotate))

    c = torch.zeros([1, G.c_dim], device=device)
    if G.c_dim:
        if cfg.class_idx is None:
            raise ConfigError("class_idx", f"the model is conditional ({G.c_dim} classes)", f"pass class_idx=0..{G.c_dim - 1}")
        if not 0 <= cfg.class_idx < G.c_dim:
            raise ConfigError("class_idx", f"{cfg.class_idx} is out of range", f"use 0..{G.c_dim - 1}")
        c[:, cfg.class_idx] = 1
    elif cfg.class_idx is not None:
        raise ConfigError("class_idx", "the model is unconditional", "drop class_idx")

    outdir = outdir or cfg.outdir or hydra_output_dir() or "samples"
    os.makedirs(outdir, exist_ok=True)
    run_mode = MODES[cfg.mode]
    extra = run_mode(G, cfg, c, outdir, noise_mode=noise_mode, seeds=seeds, generation=generation)
    options = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in ("seeds", "ckpt", "model")}
    options["noise_mode"] = noise_mode
    info = {"ckpt": os.path.abspath(cfg.ckpt), "ckpt_sha256": file_sha256(cfg.ckpt), "generation": generation,
            "mode": cfg.mode, "seeds": seeds, **options, **{k: v for k, v in extra.items() if k != "files"}}
    with open(os.path.join(outdir, "sample.json"), "w") as f:
        json.dump(info, f, indent=2)
    files = extra.get("files", [])
    print(f"[zoo] mode={cfg.mode}: wrote {len(files)} file{'s' if len(files) != 1 else ''} ({', '.join(files[:4])}{', ...' if len(files) > 4 else ''}) "
          f"and sample.json to {os.path.abspath(outdir)}", flush=True)
    return outdir


APP = AppSpec("sample", sample, schema=SampleConfig,
              list_keys=("seeds", "translate", "rows", "cols", "psis", "styles", "noise_layers"))


def main(argv=None) -> None:
    hydra_main(APP, argv)
