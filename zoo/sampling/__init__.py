"""The figures of the papers as functions: style mixing, interpolation, truncation strips,
stochastic variation (:mod:`zoo.sampling.figures`) and projection of an image into W
(:mod:`zoo.sampling.projection`), for any zoo generator (:func:`zoo.load`)::

    import zoo, zoo.sampling as S
    G = zoo.load("network-snapshot-000100.pt")
    rows, cols = S.ws_from_seeds(G, [85, 100, 75]), S.ws_from_seeds(G, [55, 821, 1789])
    grid = S.style_mix(G, rows, cols, S.parse_layers("coarse", G))     # [3, 3, C, H, W]
    frames = S.interpolate(G, S.z_from_seeds([0, 5, 9], G.z_dim), frames=60, space="w", loop=True)
    S.save_animation(S.to_uint8(frames), "walk.gif", fps=30)

What a generator offers (styles, noise inputs, an input transform) is asked through
:mod:`zoo.core.contract`; the image and animation writers are :mod:`zoo.core.images`. Both are
re-exported here, so one import serves a notebook.
"""
from zoo.core.contract import generation_name, has_styles, noise_inputs, z_from_seeds
from zoo.core.errors import NotApplicable
from zoo.core.images import save_animation, save_mp4, to_uint8
from zoo.sampling.figures import (PRESETS, interpolate, interpolation_path, layer_resolutions, noise_variations,
                                  parse_layers, slerp, style_mix, synthesize, truncate, truncation_strip,
                                  ws_from_seeds)
from zoo.sampling.projection import VGG16_URL, load_vgg16, project, render_projection

__all__ = [
    "has_styles", "generation_name", "noise_inputs", "layer_resolutions", "parse_layers", "z_from_seeds", "ws_from_seeds",
    "synthesize", "style_mix", "interpolate", "interpolation_path", "slerp", "truncate", "truncation_strip",
    "noise_variations", "project", "load_vgg16", "save_animation", "save_mp4", "to_uint8", "VGG16_URL",
    "PRESETS", "NotApplicable", "render_projection",
]
