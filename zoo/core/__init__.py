"""The zoo's leaf layer: what every other layer may use and which imports nothing else of the zoo.

- :mod:`~zoo.core.errors`: the one hierarchy of user errors (problem, key, fix).
- :mod:`~zoo.core.checkpoint`: the checkpoint format (self-describing, ``weights_only``, atomic).
- :mod:`~zoo.core.distributed`: process groups and collectives (training and metrics), and where a
  process started by torchrun or submitit sits (rank, node, world size).
- :mod:`~zoo.core.files`: atomic writes and hashes; :mod:`~zoo.core.download`: the cached downloader.
- :mod:`~zoo.core.images`: uint8 conversion, grids, PNG/GIF/WebP/MP4 writers.
- :mod:`~zoo.core.contract`: what a generator offers (styles, noise inputs, input transform, seeds).
- :mod:`~zoo.core.runtime`: devices, the CPU allocator, peak memory, durations.
- :mod:`~zoo.core.parse`: seeds, number lists, resolutions.
"""
__version__ = "0.1.0"
