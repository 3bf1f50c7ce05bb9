"""``python -m zoo.data.prepare source=PATH dest=OUT.zip|OUT_DIR [key=value ...]``: the dataset tool
(:func:`zoo.data.prepare.prepare_dataset`, ``conf/prepare.yaml``, :class:`PrepareConfig`)."""
from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any, Dict, Optional

from omegaconf import MISSING, OmegaConf

from zoo.apps.common import AppSpec, hydra_main
from zoo.core.errors import ConfigError
from zoo.data.prepare import format_summary, prepare_dataset

__all__ = ["PrepareConfig", "run", "main", "APP"]


@dataclass
class PrepareConfig:
    """Schema of ``conf/prepare.yaml``; see :mod:`zoo.data.prepare` for every option."""

    source: str = MISSING
    dest: str = MISSING
    resolution: Any = None  # power of two (square output); null: keep the source size; WxH for center-crop-wide
    transform: Optional[str] = None  # null (resize) | center-crop | center-crop-wide
    resize_filter: str = "lanczos"  # lanczos (NVIDIA's default) | box (reproduces the FFHQ-256 numbers)
    max_images: Optional[int] = None
    strict: bool = False  # stop at the first bad image instead of skipping it
    overwrite: bool = False
    source_kind: Optional[str] = None  # null: detect | folder | zip | cifar10
    channels: Optional[int] = None  # null: 1 if every image is grayscale, else 3
    labels: bool = True  # keep the source's labels (dataset.json / CIFAR-10 classes)
    split: str = "train"  # CIFAR-10: train | test | all
    workers: Optional[int] = None  # null: automatic; 0: in this process
    progress: bool = True


def run(cfg: Any) -> Dict[str, Any]:
    """Run the tool on a composed ``conf/prepare.yaml`` config and print the summary."""
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        raise ConfigError(missing[0], "is required", f"pass {missing[0]}=PATH")
    options = OmegaConf.to_container(cfg, resolve=True)
    options = {k: v for k, v in options.items() if k in PrepareConfig.__dataclass_fields__}  # type: ignore[union-attr]
    summary = prepare_dataset(**options)
    print(format_summary(summary), flush=True)
    return summary


def _unwind_on_sigterm() -> None:
    def on_sigterm(signum, frame):  # unwind like Ctrl-C, so the temporary output is removed
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)


APP = AppSpec("prepare", run, schema=PrepareConfig, setup=_unwind_on_sigterm)


def main(argv=None) -> None:
    hydra_main(APP, argv)
