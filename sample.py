"""Generate images from a checkpoint.  python sample.py ckpt=PATH [mode=images|mixing|interpolate|noise|truncation|project]
[seeds=0-15] [trunc=0.7] [noise_mode=const]

See README.md for the options."""
import os
import sys

import hydra
from omegaconf import DictConfig

from zoo.config import register_schemas

register_schemas()
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="sample")
def main(cfg: DictConfig) -> None:
    from zoo.cli import report_user_errors, sample

    report_user_errors(sample, cfg)


if __name__ == "__main__":
    from zoo.cli import listify_argv

    sys.argv = listify_argv(sys.argv, ("seeds", "translate", "rows", "cols", "psis", "styles", "noise_layers"))
    main()
