"""``python -m zoo.metrics ckpt=PATH metrics.names=[fid50k_full,...] [data=...]``: see
:mod:`zoo.metrics.app` and ``conf/metrics.yaml``."""
import os
import sys

import hydra
from omegaconf import DictConfig

from zoo.config import register_schemas

register_schemas()
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="metrics")
def main(cfg: DictConfig) -> None:
    from zoo.metrics.app import main_cli

    main_cli(cfg)


if __name__ == "__main__":
    from zoo.cli import listify_argv

    sys.argv = listify_argv(sys.argv, (), always=("metrics.names",))
    main()
