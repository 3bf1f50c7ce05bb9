"""Train a GAN of the zoo.  python train.py [model=stylegan2] [data=shapes] [gpus=1] [key=value ...]

See README.md for the options; `python train.py --cfg job` prints the composed config (zoo/apps/train.py)."""
from zoo.apps.train import main

if __name__ == "__main__":
    main()
