"""Generation name → spec: the registry, under the name the README and the developers' guide use.
The mechanism and the built-in generations live in :mod:`zoo.generations`; this module re-exports them.

    >>> from zoo import registry
    >>> registry.names()
    ['progan', 'stylegan', 'stylegan2', 'stylegan3']
    >>> G = registry.get('stylegan2').build_generator(img_resolution=64, channel_base=4096)
"""
from zoo.generations import (GenerationSpec, UnknownGenerationError, get, names, register, resolve_hparams,
                             specs)

__all__ = ["GenerationSpec", "UnknownGenerationError", "get", "names", "register", "resolve_hparams", "specs"]
