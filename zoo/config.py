"""Typed configuration schemas (Hydra structured configs) and start-up validation.

Every YAML file in ``conf/`` extends one of these dataclasses, so a misspelled key or a value of the
wrong type fails while Hydra composes the config.  Checks that need several keys at once (batch
divisibility, the minibatch-stddev group, the dataset path, the GPU count) run in :func:`validate`
at the start of ``train.py``; each failure raises :class:`ConfigError` naming the key and the fix.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

__all__ = [
    "ConfigError", "TrainConfig", "SampleConfig", "DataConfig", "LoggerConfig", "ModelConfig",
    "StyleGAN2Config", "StyleGAN3Config", "MetricsConfig", "MetricsAppConfig", "register_schemas", "validate", "resolve_hparams", "parse_seeds",
]


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and how to fix it."""

    def __init__(self, key: str, problem: str, fix: str):
        self.key = key
        super().__init__(f"{key}: {problem}. Fix: {fix}")


# ------------------------------------------------------------------------------------------------
# Schemas
# ------------------------------------------------------------------------------------------------

@dataclass
class ModelConfig:
    """Keys shared by every generation. ``null`` hyperparameters are filled by the generation's
    ``auto`` rules (see ``zoo.registry``) from the resolution and the total batch."""

    name: str = MISSING
    z_dim: int = 512
    w_dim: int = 512
    channel_base: int = 32768
    channel_max: int = 512
    mbstd_group: int = 4
    mbstd_channels: int = 1
    glr: Optional[float] = None
    dlr: Optional[float] = None
    adam_betas: List[float] = field(default_factory=lambda: [0.0, 0.99])
    adam_eps: float = 1e-8
    r1_gamma: Optional[float] = None
    ema_kimg: Optional[float] = None
    ema_rampup: Optional[float] = 0.05
    G_reg_interval: Optional[int] = None
    D_reg_interval: Optional[int] = 16


@dataclass
class StyleGAN2Config(ModelConfig):
    name: str = "stylegan2"
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.998
    use_noise: bool = True
    conv_clamp: Optional[int] = None
    style_mixing_prob: float = 0.9
    pl_weight: float = 2.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    G_reg_interval: Optional[int] = 4


def _official_minibatch() -> Dict[int, int]:
    # ProGAN 'v2-8gpus' / StyleGAN 8-GPU minibatch_dict (total batch); other resolutions: `batch` (32).
    return {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}


def _official_lr() -> Dict[int, float]:
    # ProGAN 'v2-8gpus' / StyleGAN G_lrate_dict = D_lrate_dict; other resolutions: glr / dlr (0.001).
    return {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}


@dataclass
class GrowingConfig:
    """Progressive growing (ProGAN / StyleGAN v1): see zoo/training/growing.py."""

    start_resolution: int = 4          # lod_initial_resolution
    stable_kimg: float = 600.0         # lod_training_kimg: images per resolution at full opacity
    fade_kimg: float = 600.0           # lod_transition_kimg: images while the next resolution fades in
    # Per-resolution dicts are merged by command-line overrides; null drops a whole dict.
    minibatch: Optional[Dict[int, int]] = field(default_factory=_official_minibatch)  # total batch per resolution
    lr: Optional[Dict[int, float]] = field(default_factory=_official_lr)              # G and D lr per resolution
    reset_optimizer: bool = True       # reset_opt_for_new_lod: Adam state reset when a fade starts or ends
    auto_scale: bool = True            # runs too short for the schedule: scale stable/fade to fit kimg / 2


@dataclass
class ProGANConfig(ModelConfig):
    name: str = "progan"
    channel_base: int = 16384          # = 2 * fmap_base (8192) of the original: nf(res) = min(channel_base / res, channel_max)
    use_pixelnorm: bool = True
    ema_beta: Optional[float] = 0.999  # G_smoothing: a constant EMA beta per iteration
    ema_rampup: Optional[float] = None
    D_reg_interval: Optional[int] = None
    wgan_lambda: float = 10.0
    wgan_target: float = 1.0
    wgan_epsilon: float = 0.001
    cond_weight: float = 1.0           # AC-GAN label terms (conditional training)
    growing: GrowingConfig = field(default_factory=GrowingConfig)


@dataclass
class StyleGANConfig(ModelConfig):
    name: str = "stylegan"
    channel_base: int = 16384
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    use_noise: bool = True
    r1_gamma: Optional[float] = 10.0
    ema_kimg: Optional[float] = 10.0
    ema_rampup: Optional[float] = None
    style_mixing_prob: float = 0.9
    D_reg_interval: Optional[int] = None
    growing: GrowingConfig = field(default_factory=lambda: GrowingConfig(start_resolution=8))


@dataclass
class StyleGAN3Config(ModelConfig):
    """StyleGAN3 (alias-free). ``config``: ``t`` (translation equivariant, 3x3 convs) or ``r``
    (rotation equivariant: 1x1 convs, radial filters, G channel_base/channel_max doubled, blurred D
    inputs at the start). ``channel_base``/``channel_max`` are the values *before* R's doubling,
    as in NVIDIA's ``--cbase``/``--cmax``; D always uses them undoubled."""

    name: str = "stylegan3"
    config: str = "t"
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.998
    conv_clamp: Optional[int] = 256
    magnitude_ema_beta: Optional[float] = None  # null: 0.5 ** (batch / 20000) (NVIDIA train.py)
    style_mixing_prob: float = 0.0
    pl_weight: float = 0.0
    blur_init_sigma: Optional[float] = None  # null: 10 for config r, 0 for t
    blur_fade_kimg: Optional[float] = None  # null: batch * 200 / 32
    G_reg_interval: Optional[int] = None


@dataclass
class DataConfig:
    # shapes (built in, procedural) | folder | zip | image (folder or zip) | cifar10 | ffhq
    name: str = MISSING
    kind: str = MISSING
    path: Optional[str] = None
    resolution: Optional[int] = None  # native resolution; null = read it from the data
    mirror: bool = False
    use_labels: bool = False
    max_size: Optional[int] = None
    num_images: Optional[int] = None  # procedural datasets: how many images
    download: bool = False  # torchvision datasets only
    workers: int = 0
    seed: int = 0  # fixes the dataset's content (procedural data, max_size subsets), not the run's randomness
    root: Optional[str] = None  # where named datasets (ffhq{res}.zip) live
    prepare_hint: Optional[str] = None  # how to produce the dataset when it is missing


@dataclass
class LoggerConfig:
    name: str = "none"  # none | wandb
    mode: str = "offline"  # wandb: offline (no account needed) | online | disabled
    project: str = "zoo"
    entity: Optional[str] = None
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)


@dataclass
class MetricsConfig:
    """Quality metrics (``zoo.metrics``), during training and in ``python -m zoo.metrics``.

    Names: ``fid{N}k[_full]``, ``kid{N}k[_full]``, ``pr{N}k3[_full]``, ``ppl2_{w|z}{end|full}``,
    ``ppl_{w|z}{end|full}`` (cropped), ``eqt{N}k_int``, ``eqt{N}k_frac``, ``eqr{N}k`` (N: thousands
    of samples; ``python -m zoo.metrics --help`` and ``zoo.metrics.metric_names_help()`` list them)."""

    names: List[str] = field(default_factory=list)  # e.g. [fid50k_full, kid50k_full, pr50k3_full, ppl2_wend] or [fid2k]
    every_kimg: Optional[float] = None  # training: run the metrics every this many kimg (null: at every snapshot) and at the end
    detector: Optional[str] = None  # FID/KID feature network: local TorchScript path; null: NVIDIA's Inception-v3 (cached download)
    vgg: Optional[str] = None  # PR/PPL network: local TorchScript path; null: NVIDIA's VGG16 (cached download)
    detector_sha256: Optional[str] = None  # expected sha256 of the detector file (null: recorded on first download)
    vgg_sha256: Optional[str] = None
    cache_dir: Optional[str] = None  # downloads and dataset statistics; null: $ZOO_CACHE or ~/.cache/zoo
    download: bool = True  # allow downloading the default detectors
    cache: bool = True  # keep dataset statistics in <cache_dir>/metric-stats (reused while the data is unchanged)
    batch: int = 64  # images per detector call (and per generated batch)
    batch_gen: Optional[int] = None  # images per generator call; null: batch, at most 4 x 1024^2 pixels (4 at 1024 px)
    workers: Optional[int] = None  # data-loading processes for the dataset pass; null: 3 on CUDA, 0 on CPU
    seed: int = 0  # latents, labels and subsets of every metric derive from it


@dataclass
class MetricsAppConfig:
    """``python -m zoo.metrics ckpt=... metrics.names=[...] [data=...]`` (``conf/metrics.yaml``).

    ``resolution`` is set from the generator (it only serves the ``${resolution}`` of data configs
    such as ``conf/data/ffhq.yaml``). ``model``, ``kimg``, ``tick_kimg``, ``image_kimg`` and
    ``snap_kimg`` are ignored: they exist so that ``data=shapes``, whose config also sets training
    keys, composes here too."""

    ckpt: str = MISSING
    data: Optional[DataConfig] = None  # null: the dataset recorded in the checkpoint's training config
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    which: str = "G_ema"
    device: str = "auto"
    gpus: int = 1  # processes (one per GPU with NCCL, or gloo CPU workers), as NVIDIA's calc_metrics --gpus
    out: Optional[str] = None  # results file (jsonl, appended); null: metrics.jsonl next to the checkpoint
    progress: bool = True  # progress bars
    resolution: Optional[int] = None  # set from the generator; do not pass
    model: Any = None  # ignored (set by data=shapes)
    kimg: Any = None  # ignored (set by data=shapes)
    tick_kimg: Any = None  # ignored
    image_kimg: Any = None  # ignored
    snap_kimg: Any = None  # ignored


@dataclass
class TrainConfig:
    model: Any = MISSING
    data: DataConfig = MISSING
    logger: LoggerConfig = MISSING
    resolution: Optional[int] = None
    gpus: int = 1
    batch: int = 32
    batch_gpu: Optional[int] = None  # per-GPU batch per pass; smaller than batch/gpus = accumulation
    kimg: float = 25000
    seed: int = 0
    resume: Optional[str] = None  # null | auto | path to a checkpoint
    device: str = "auto"  # auto | cpu | cuda
    run_root: str = "outputs"
    tick_kimg: float = 4.0  # progress/log interval
    image_kimg: float = 50.0  # sample-grid interval
    snap_kimg: float = 200.0  # checkpoint interval
    grid_size: List[int] = field(default_factory=lambda: [8, 4])  # sample grid columns x rows
    threads: Optional[int] = None  # torch CPU threads per process (null: torch's default)
    progress: bool = True  # tqdm progress bar
    experiment: Optional[str] = None  # name of the experiment preset, for bookkeeping
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


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


MODEL_SCHEMAS: Dict[str, type] = {"stylegan2": StyleGAN2Config}
MODEL_SCHEMAS.update(progan=ProGANConfig, stylegan=StyleGANConfig)
MODEL_SCHEMAS.update(stylegan3=StyleGAN3Config)
__all__ += ["GrowingConfig", "ProGANConfig", "StyleGANConfig"]


def register_schemas() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent). YAML files extend them through their
    defaults lists: ``conf/train.yaml`` → ``schema_train``; ``conf/model/stylegan2.yaml`` →
    ``/schema/model/stylegan2``, and so on."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="schema_train", node=TrainConfig)
    cs.store(name="schema_sample", node=SampleConfig)
    cs.store(name="schema_metrics", node=MetricsAppConfig)
    cs.store(group="schema/data", name="base", node=DataConfig)
    cs.store(group="schema/logger", name="base", node=LoggerConfig)
    for name, node in MODEL_SCHEMAS.items():
        cs.store(group="schema/model", name=name, node=node)


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------

def _is_pow2(x: int) -> bool:
    return x > 0 and (x & (x - 1)) == 0


def parse_seeds(spec: Any) -> List[int]:
    """``'0-3,7'`` → ``[0, 1, 2, 3, 7]``; also accepts an int or a list."""
    if isinstance(spec, int):
        return [spec]
    if isinstance(spec, (list, tuple)) or OmegaConf.is_list(spec):
        return [int(s) for s in spec]
    out: List[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            elif part:
                out.append(int(part))
        except ValueError:
            raise ConfigError("seeds", f"cannot parse {part!r}", "use e.g. seeds=0-15 or seeds=[1,5,9]") from None
    if not out:
        raise ConfigError("seeds", "no seeds given", "use e.g. seeds=0-15")
    return out


def parse_floats(spec: Any, key: str, count: int) -> List[float]:
    """``'0.1,0'``, ``[0.1, 0]`` or a number (repeated) -> ``count`` floats."""
    if isinstance(spec, (int, float)):
        values = [float(spec)] * count
    else:
        parts = list(spec) if (isinstance(spec, (list, tuple)) or OmegaConf.is_list(spec)) else str(spec).split(",")
        try:
            values = [float(v) for v in parts]
        except ValueError:
            values = []
    if len(values) != count:
        example = ",".join(["0.1"] + ["0"] * (count - 1))
        raise ConfigError(key, f"expected {count} numbers, got {spec!r}", f"use e.g. {key}={example}")
    return values


def check_resolution(res: Any, key: str = "resolution") -> int:
    if not isinstance(res, int) or not _is_pow2(res) or not 4 <= res <= 1024:
        raise ConfigError(key, f"{res!r} is not a power of two between 4 and 1024",
                          "use one of 4, 8, 16, 32, 64, 128, 256, 512, 1024")
    return res


def validate(cfg: DictConfig, *, check_data: bool = True) -> None:
    """Run the cross-key checks. Raises :class:`ConfigError` on the first problem found."""
    from zoo import registry

    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra"))
    if missing:
        raise ConfigError(missing[0], "is required but not set", f"pass {missing[0]}=... on the command line")
    try:
        registry.get(cfg.model.name)
    except KeyError as e:
        raise ConfigError("model", str(e), f"choose model=<one of {', '.join(registry.names())}>") from None
    if cfg.model.name == "stylegan3" and str(cfg.model.get("config")).lower() not in ("t", "r"):
        raise ConfigError("model.config", f"{cfg.model.get('config')!r} is not a StyleGAN3 config",
                          "use model.config=t (translation equivariant) or model.config=r (rotation)")

    if cfg.resolution is not None:
        check_resolution(cfg.resolution)
    if cfg.gpus < 1:
        raise ConfigError("gpus", f"must be >= 1, got {cfg.gpus}", "use gpus=1 or more")
    if cfg.batch < 1:
        raise ConfigError("batch", f"must be >= 1, got {cfg.batch}", "use e.g. batch=32")
    if cfg.batch % cfg.gpus != 0:
        raise ConfigError("batch", f"total batch {cfg.batch} is not divisible by gpus={cfg.gpus}",
                          f"use a batch that is a multiple of {cfg.gpus}, e.g. batch={cfg.gpus * max(1, cfg.batch // cfg.gpus)}")
    batch_gpu = cfg.batch_gpu or cfg.batch // cfg.gpus
    if cfg.batch_gpu is not None and (cfg.batch_gpu < 1 or cfg.batch % (cfg.gpus * cfg.batch_gpu) != 0):
        raise ConfigError("batch_gpu", f"batch={cfg.batch} is not divisible by gpus×batch_gpu = {cfg.gpus}×{cfg.batch_gpu}",
                          f"choose batch_gpu dividing {cfg.batch // cfg.gpus} (batch/gpus), or leave batch_gpu=null")
    group = cfg.model.get("mbstd_group")
    if group:
        g = min(group, batch_gpu)
        if batch_gpu % g != 0:
            raise ConfigError("model.mbstd_group", f"minibatch-stddev group {group} does not divide the per-GPU batch {batch_gpu}",
                              f"use a batch_gpu that is a multiple of {group}, or set model.mbstd_group to a divisor of {batch_gpu}")
    if cfg.model.get("growing") is not None:
        _validate_growing(cfg)
    for key in ("kimg", "tick_kimg", "image_kimg", "snap_kimg"):
        if cfg[key] <= 0:
            raise ConfigError(key, f"must be > 0, got {cfg[key]}", f"use a positive value, e.g. {key}=1")
    if cfg.device not in ("auto", "cpu", "cuda") and not str(cfg.device).startswith("cuda:"):
        raise ConfigError("device", f"unknown device {cfg.device!r}", "use device=auto, cpu or cuda")
    import torch

    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but is not available", "use device=auto or device=cpu")
    if cfg.gpus > 1 and torch.cuda.is_available() and cfg.device != "cpu":
        visible = torch.cuda.device_count()
        if cfg.gpus > visible:
            raise ConfigError("gpus", f"gpus={cfg.gpus} but only {visible} CUDA device(s) are visible",
                              f"use gpus<={visible} (or check CUDA_VISIBLE_DEVICES)")
    if cfg.logger.name not in ("none", "wandb"):
        raise ConfigError("logger", f"unknown logger {cfg.logger.name!r}", "use logger=wandb or logger=none")
    if cfg.logger.mode not in ("offline", "online", "disabled"):
        raise ConfigError("logger.mode", f"unknown wandb mode {cfg.logger.mode!r}", "use offline, online or disabled")
    _validate_metrics(cfg)
    if check_data:
        _validate_data(cfg)


def _validate_metrics(cfg: DictConfig) -> None:
    metrics = cfg.get("metrics")
    if metrics is None:
        return
    if metrics.every_kimg is not None and metrics.every_kimg <= 0:
        raise ConfigError("metrics.every_kimg", f"must be > 0, got {metrics.every_kimg}",
                          "use e.g. metrics.every_kimg=50, or null to evaluate at every snapshot")
    if metrics.batch < 1:
        raise ConfigError("metrics.batch", f"must be >= 1, got {metrics.batch}", "use e.g. metrics.batch=64")
    if metrics.names:
        from zoo.metrics import check_metric_names

        check_metric_names(list(metrics.names))  # ConfigError naming the bad name and the valid forms


def _validate_growing(cfg: DictConfig) -> None:
    """Progressive growing: the schedule's values, and every per-resolution batch against gpus,
    batch_gpu and the minibatch-stddev group (as the checks above do for ``batch``)."""
    g = cfg.model.growing
    check_resolution(g.start_resolution, "model.growing.start_resolution")
    for key in ("stable_kimg", "fade_kimg"):
        if g[key] < 0:
            raise ConfigError(f"model.growing.{key}", f"must be >= 0, got {g[key]}", f"use e.g. model.growing.{key}=600")
    for res, lr in (g.lr or {}).items():
        check_resolution(res, f"model.growing.lr.{res}")
        if lr <= 0:
            raise ConfigError(f"model.growing.lr.{res}", f"must be > 0, got {lr}", "use a positive learning rate")
    group = cfg.model.get("mbstd_group")
    for res, batch in (g.minibatch or {}).items():
        key = f"model.growing.minibatch.{res}"
        check_resolution(res, key)
        if batch < 1 or batch % cfg.gpus != 0:
            raise ConfigError(key, f"batch {batch} at {res} px is not a positive multiple of gpus={cfg.gpus}",
                              f"use a multiple of {cfg.gpus}")
        per_gpu = batch // cfg.gpus
        batch_gpu = min(cfg.batch_gpu or per_gpu, per_gpu)
        if per_gpu % batch_gpu != 0:
            raise ConfigError(key, f"batch {batch} at {res} px is not divisible by gpus×batch_gpu = {cfg.gpus}×{batch_gpu}",
                              "choose per-resolution batches that are multiples of gpus×batch_gpu, or leave batch_gpu=null")
        if group and batch_gpu % min(group, batch_gpu) != 0:
            raise ConfigError(key, f"minibatch-stddev group {group} does not divide the per-GPU batch {batch_gpu} at {res} px",
                              f"use a multiple of {group}, or set model.mbstd_group to a divisor of {batch_gpu}")


def _validate_data(cfg: DictConfig) -> None:
    d = cfg.data
    if d.kind in ("folder", "zip", "image", "ffhq"):
        if not d.path:
            raise ConfigError("data.path", f"dataset {d.name!r} needs a path", "pass data.path=/path/to/images_or.zip")
        if not os.path.exists(d.path):
            hint = f" {d.prepare_hint}" if d.prepare_hint else ""
            raise ConfigError("data.path", f"dataset not found at {d.path!r}.{hint}",
                              "point data.path at an existing image folder or NVIDIA-format zip")
    elif d.kind == "cifar10":
        if not d.path:
            raise ConfigError("data.path", "cifar10 needs a directory", "pass data.path=DIR (holding cifar-10-python.tar.gz) and, to fetch it, data.download=true")


# ------------------------------------------------------------------------------------------------
# Hyperparameter resolution
# ------------------------------------------------------------------------------------------------

def resolve_hparams(model_cfg: Dict[str, Any], resolution: int, batch: int) -> Dict[str, Any]:
    """Return a copy of the model config with every ``null`` auto hyperparameter filled in."""
    from zoo import registry

    out = dict(model_cfg)
    spec = registry.get(out["name"])
    auto = dict(spec.auto_hparams(resolution, batch))
    if spec.config_hparams is not None:
        auto.update(spec.config_hparams(out))
    for key, value in auto.items():
        if out.get(key) is None:
            out[key] = value
    return out
