"""``python -m zoo.interop.convert SRC DST`` (or ``src=SRC dst=DST``): an NVIDIA pickle (PyTorch or
TensorFlow), a rosinality ``.pt`` or an ``export format=nvidia`` file to a zoo checkpoint, written
atomically (:func:`zoo.interop.load.convert`, ``conf/convert.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING, DictConfig, OmegaConf

from zoo.apps.common import AppSpec, hydra_main
from zoo.core.errors import ConfigError
from zoo.interop.load import convert

__all__ = ["ConvertConfig", "run", "main", "APP"]


@dataclass
class ConvertConfig:
    src: str = MISSING  # NVIDIA network pickle (.pkl: stylegan2-ada-pytorch, stylegan3, TF releases) or rosinality .pt
    dst: str = MISSING  # the zoo checkpoint to write (.pt)


def run(cfg: DictConfig) -> str:
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        raise ConfigError(missing[0], "is required", "pass SRC and DST: python -m zoo.interop.convert SRC.pkl DST.pt")
    state = convert(cfg.src, cfg.dst)
    src = state["source"]
    print(f"[zoo] {src['file']} ({src['flavour']}, sha256 {(src.get('sha256') or '')[:16]}...) -> {cfg.dst}: "
          f"{state['generation']}{' config ' + src['config'].upper() if src.get('config') else ''}, "
          f"{state['G_kwargs']['img_resolution']} px, c_dim {state['G_kwargs']['c_dim']}", flush=True)
    return cfg.dst


APP = AppSpec("convert", run, schema=ConvertConfig, positional=("src", "dst"))


def main(argv=None) -> None:
    hydra_main(APP, argv)
