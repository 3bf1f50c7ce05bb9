"""Train a GAN of the zoo.  python train.py [model=stylegan2] [data=shapes] [gpus=1] [key=value ...]

See README.md for the options; `python train.py --cfg job` prints the composed config."""
import os

import hydra
from omegaconf import DictConfig

from zoo.config import register_schemas

register_schemas()
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    from zoo.cli import report_user_errors, train

    report_user_errors(train, cfg)


if __name__ == "__main__":
    import sys

    from zoo.cli import listify_argv

    sys.argv = listify_argv(sys.argv, (), always=("metrics.names",))  # metrics.names=fid2k needs no brackets
    main()
