"""``python -m zoo.interop.export ckpt=SRC format=nvidia|rosinality out=DST.pt [flavour=stylegan3|ada]``:
a checkpoint (anything ``zoo.load`` reads) in NVIDIA's or rosinality's layout
(:func:`zoo.interop.export.export`, ``conf/export.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

from omegaconf import MISSING, DictConfig, OmegaConf

from zoo.apps.common import AppSpec, hydra_main
from zoo.core.errors import ConfigError
from zoo.interop.export import export

__all__ = ["ExportConfig", "run", "main", "APP"]


@dataclass
class ExportConfig:
    ckpt: str = MISSING  # anything zoo.load reads (zoo .pt, NVIDIA .pkl, rosinality .pt, an nvidia export)
    format: str = MISSING  # nvidia (StyleGAN2, StyleGAN3) | rosinality (StyleGAN2 only)
    out: str = MISSING  # the file to write (atomically)
    flavour: str = "stylegan3"  # nvidia, StyleGAN2: stylegan3 (the stylegan3 repo's kwargs) | ada (stylegan2-ada-pytorch's)


def run(cfg: DictConfig) -> Dict[str, Any]:
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        raise ConfigError(missing[0], "is required",
                          "pass ckpt=SRC format=nvidia|rosinality out=DST.pt (python -m zoo.interop.export --help)")
    s = export(str(cfg.ckpt), str(cfg.format), str(cfg.out), flavour=str(cfg.flavour))
    if s["format"] == "nvidia":
        print(f"[zoo] {cfg.ckpt} -> {s['out']}: {s['generation']}{' config ' + s['config'].upper() if s['config'] else ''} "
              f"state dicts {'/'.join(s['networks'])} for {s['G_class_name']} ({s['flavour']} kwargs)", flush=True)
    else:
        a = s["args"]
        print(f"[zoo] {cfg.ckpt} -> {s['out']}: {'/'.join(s['networks'])} + latent_avg for rosinality "
              f"Generator({a['size']}, {a['style_dim']}, {a['n_mlp']}, channel_multiplier={a['channel_multiplier']}) / "
              f"Discriminator({a['size']}, channel_multiplier={a['channel_multiplier']})", flush=True)
        for n in s["notes"]:
            print(f"[zoo] note: {n}", flush=True)
    return s


APP = AppSpec("export", run, schema=ExportConfig)


def main(argv=None) -> None:
    hydra_main(APP, argv)
