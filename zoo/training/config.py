"""The training config: the schemas of ``conf/train.yaml`` and ``conf/logger/``, and the checks
that need several keys at once (batch divisibility, the GPU count, the generation's own checks, the
dataset path, metric names), run at the start of ``train.py`` before anything is written.

Every YAML file in ``conf/`` extends a dataclass schema (this module's, ``zoo.generations``'s model
schemas, ``zoo.data.DataConfig``, ``zoo.metrics.MetricsConfig``), so a misspelled key or a value of
the wrong type fails while Hydra composes the config; :func:`validate` raises
:class:`zoo.core.errors.ConfigError` naming the key and the fix for everything else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

from zoo import generations
from zoo.core.errors import ConfigError
from zoo.core.parse import check_resolution
from zoo.data.config import DataConfig, check_data_config
from zoo.generations.spec import RunShape
from zoo.metrics.config import MetricsConfig
from zoo.metrics.registry import check_metric_names
from zoo.ops import precision as P
from zoo.ops.precision import LOW_DTYPES, PRECISIONS
from zoo.training.augment import AugConfig, check_aug_config
from zoo.training.finetune import check_init

__all__ = ["TrainConfig", "LoggerConfig", "validate", "validate_start", "check_precision", "LOGGERS", "DEVICES"]

LOGGERS = ("none", "wandb")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class LoggerConfig:
    name: str = "none"  # none | wandb
    mode: str = "offline"  # wandb: offline (no account needed) | online | disabled
    project: str = "zoo"
    entity: Optional[str] = None
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    """``conf/train.yaml``: pick a generation (``model=``), a dataset (``data=``) and the run size."""

    model: Any = MISSING
    data: DataConfig = MISSING
    logger: LoggerConfig = MISSING
    resolution: Optional[int] = None  # a power of two in 4..1024 (train.yaml: the dataset's); ffhq/folder data use it
    gpus: int = 1  # processes per node: N > 1 spawns N (NCCL on CUDA, gloo on CPU), or torchrun/SLURM starts them
    nodes: int = 1  # machines (torchrun --nnodes, SLURM nodes); world size nodes × gpus
    batch: int = 32  # total batch over all GPUs of all nodes (drives lr/gamma/EMA auto rules, never the GPU count)
    batch_gpu: Optional[int] = None  # per-GPU batch per pass; null = batch/(nodes×gpus); smaller = accumulation
    kimg: float = 25000  # training length in thousands of real images shown to D
    seed: int = 0
    resume: Optional[str] = None  # null | auto (continue the newest run under run_root) | /path/to/checkpoint.pt
    init: Optional[str] = None  # start a NEW run from the weights of any file zoo.load reads (fine-tuning)
    init_strict: bool = True  # init: refuse any tensor that differs; false: copy what matches, list the rest
    freeze_d: int = 0  # Freeze-D: the first N layers of D (from the input) get no updates (NVIDIA's --freezed)
    aug: AugConfig = MISSING  # augmentation of D's inputs (conf/aug/: auto, ada, fixed, noaug, diffaugment)
    device: str = "auto"  # auto (cuda if available) | cpu | cuda
    run_root: str = "outputs"  # every run gets <run_root>/<date>-<time>-<model>-<data><res>/
    tick_kimg: float = 4.0  # progress and stats.jsonl interval
    image_kimg: float = 50.0  # fixed-seed sample grid interval
    snap_kimg: float = 200.0  # checkpoint interval
    snap_minutes: Optional[float] = None  # also a checkpoint every this many minutes of wall time (clusters)
    grid_size: List[int] = field(default_factory=lambda: [8, 4])  # sample grid columns x rows
    threads: Optional[int] = None  # torch CPU threads per process (null: torch's default)
    progress: bool = True  # tqdm progress bar
    experiment: Optional[str] = None  # name of the experiment preset, for bookkeeping
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # Mixed precision (NVIDIA's policy, zoo/ops/precision.py): fp32 | mixed | auto (mixed on CUDA and on
    # CPUs with bf16 arithmetic, fp32 elsewhere).
    precision: str = "auto"
    precision_dtype: Optional[str] = None  # mixed: null = fp16 on CUDA, bf16 on CPU; or fp16 | bf16
    num_fp16_res: int = 4  # mixed: the highest resolutions of G and D in low precision (StyleGAN3: its layer rule)


def check_precision(precision: str, dtype: Optional[str], device: str, num_fp16_res: int = 4) -> None:
    """The precision keys against the device (shared by train.py, sample.py and zoo.bench)."""
    import torch

    if precision not in PRECISIONS:
        raise ConfigError("precision", f"unknown precision {precision!r}", "use precision=fp32, mixed or auto")
    if dtype is not None and dtype not in LOW_DTYPES:
        raise ConfigError("precision_dtype", f"unknown low-precision dtype {dtype!r}",
                          "use precision_dtype=fp16 or bf16, or leave it null (fp16 on CUDA, bf16 on CPU)")
    if num_fp16_res < 0:
        raise ConfigError("num_fp16_res", f"must be >= 0, got {num_fp16_res}", "use e.g. num_fp16_res=4 (0: all fp32)")
    if precision == "fp32":
        return
    cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not cuda and dtype == "fp16":
        raise ConfigError("precision_dtype", "float16 convolutions are not accelerated on CPUs",
                          "use precision_dtype=bf16 (or null) on CPU, or precision=fp32")
    if cuda and dtype == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision_dtype", "this GPU has no bfloat16 support", "use precision_dtype=fp16 (or null)")
    if precision == "mixed" and not cuda and not P.cpu_supports_bf16():
        raise ConfigError("precision", "this CPU has no bfloat16 arithmetic (AVX512-BF16 or AMX): mixed precision "
                          "would be slower than float32 here", "use precision=fp32 (or auto)")


def _check_device(device: str, gpus: int) -> None:
    """Per node: ``gpus`` processes need that many visible CUDA devices, unless a launcher (torchrun,
    SLURM) binds one device to each process."""
    import torch

    from zoo.core.distributed import launcher_env

    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ConfigError("device", f"unknown device {device!r}", "use device=auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but is not available", "use device=auto or device=cpu")
    if gpus > 1 and torch.cuda.is_available() and device != "cpu":
        visible = torch.cuda.device_count()
        if gpus > visible and not (visible == 1 and launcher_env() is not None):
            raise ConfigError("gpus", f"gpus={gpus} but only {visible} CUDA device(s) are visible",
                              f"use gpus<={visible} (or check CUDA_VISIBLE_DEVICES)")


def validate(cfg: DictConfig, *, check_data: bool = True) -> None:
    """Run the cross-key checks of a composed train config. Raises :class:`ConfigError` on the first
    problem found."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra"))
    if missing:
        raise ConfigError(missing[0], "is required but not set", f"pass {missing[0]}=... on the command line")
    try:
        spec = generations.get(cfg.model.name)
    except KeyError as e:
        raise ConfigError("model", str(e), f"choose model=<one of {', '.join(generations.names())}>") from None
    if cfg.resolution is not None:
        check_resolution(cfg.resolution)
    for key in ("gpus", "nodes"):
        if cfg[key] < 1:
            raise ConfigError(key, f"must be >= 1, got {cfg[key]}", f"use {key}=1 or more")
    if cfg.batch < 1:
        raise ConfigError("batch", f"must be >= 1, got {cfg.batch}", "use e.g. batch=32")
    world = cfg.nodes * cfg.gpus  # the batch is split over every process of every node
    names, values = ("gpus", f"{cfg.gpus}") if cfg.nodes == 1 else ("nodes×gpus", f"{cfg.nodes}×{cfg.gpus}")
    if cfg.batch % world != 0:
        procs = f"gpus={cfg.gpus}" if cfg.nodes == 1 else f"{names} = {values} = {world}"
        raise ConfigError("batch", f"total batch {cfg.batch} is not divisible by {procs}",
                          f"use a batch that is a multiple of {world}, e.g. batch={world * max(1, cfg.batch // world)}")
    if cfg.batch_gpu is not None and (cfg.batch_gpu < 1 or cfg.batch % (world * cfg.batch_gpu) != 0):
        raise ConfigError("batch_gpu",
                          f"batch={cfg.batch} is not divisible by {names}×batch_gpu = {values}×{cfg.batch_gpu}",
                          f"choose batch_gpu dividing {cfg.batch // world} (batch/{names}), or leave batch_gpu=null")
    if spec.check is not None:
        model = OmegaConf.to_container(cfg.model, resolve=True)
        spec.check(model, RunShape(gpus=world, batch=cfg.batch, batch_gpu=cfg.batch_gpu or cfg.batch // world))
    for key in ("kimg", "tick_kimg", "image_kimg", "snap_kimg"):
        if cfg[key] <= 0:
            raise ConfigError(key, f"must be > 0, got {cfg[key]}", f"use a positive value, e.g. {key}=1")
    if cfg.snap_minutes is not None and cfg.snap_minutes <= 0:
        raise ConfigError("snap_minutes", f"must be > 0, got {cfg.snap_minutes}",
                          "use e.g. snap_minutes=30, or null for checkpoints every snap_kimg only")
    _check_device(cfg.device, cfg.gpus)
    check_precision(cfg.precision, cfg.precision_dtype, cfg.device, cfg.num_fp16_res)
    if cfg.logger.name not in LOGGERS:
        raise ConfigError("logger", f"unknown logger {cfg.logger.name!r}", "use logger=wandb or logger=none")
    if cfg.logger.mode not in ("offline", "online", "disabled"):
        raise ConfigError("logger.mode", f"unknown wandb mode {cfg.logger.mode!r}", "use offline, online or disabled")
    _validate_metrics(cfg)
    validate_start(cfg)
    if check_data:
        check_data_config(cfg.data)


def validate_start(cfg: DictConfig) -> None:
    """The checks ``train.py`` runs before it writes anything: ``aug.*``, ``init=`` (with ``resume=``,
    the file itself, loaded once and kept for the run) and ``freeze_d``."""
    check_aug_config(cfg.get("aug"))
    check_init(cfg)


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
        check_metric_names(list(metrics.names))  # ConfigError naming the bad name and the valid forms
