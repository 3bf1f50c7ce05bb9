"""Generate images from a checkpoint.  python sample.py ckpt=PATH [mode=images|mixing|interpolate|noise|truncation|project]
[seeds=0-15] [trunc=0.7] [noise_mode=const]

See README.md for the options (zoo/apps/sample.py)."""
from zoo.apps.sample import main

if __name__ == "__main__":
    main()
