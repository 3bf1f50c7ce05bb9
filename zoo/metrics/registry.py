"""Metric names: parsing, validation and help.

Names follow NVIDIA's (``metrics/metric_main.py`` of stylegan2-ada-pytorch and stylegan3) and are
parsed generically, so any sample count works (``fid2k`` for a quick look, ``fid50k_full`` for the
paper number):

=============================  ====================================================================
form                           meaning
=============================  ====================================================================
``fid{N}k_full``               FID, N thousand generated images against every image of the dataset
``fid{N}k``                    legacy FID: against the first N thousand dataset images
``kid{N}k_full``               KID (100 subsets of up to 1000), against up to 1M dataset images
``kid{N}k``                    legacy KID: against the first N thousand dataset images
``pr{N}k{K}_full``             precision/recall with K-NN manifolds (K=3 in the papers), up to 200k reals
``pr{N}k{K}``                  legacy precision/recall: against the first N thousand dataset images
``ppl2_{w|z}{end|full}``       perceptual path length, 50k samples, epsilon 1e-4, no crop (StyleGAN2)
``ppl_{w|z}{end|full}``        stylegan2-ada-pytorch's PPL: the same with the face crop
``..._{N}k`` after a PPL name  N thousand PPL samples instead of 50 (``ppl2_wend_2k``)
``eqt{N}k_int``                EQ-T: PSNR (dB) under integer translation (StyleGAN3 only)
``eqt{N}k_frac``               EQ-T_frac: fractional (sub-pixel) translation (StyleGAN3 only)
``eqr{N}k``                    EQ-R: rotation (StyleGAN3 only)
=============================  ====================================================================

Only the unflipped dataset images are used as reals (``_full`` and legacy alike). This module only
parses; :mod:`zoo.metrics.compute` runs the metrics.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Dict, Iterable, List, Optional, Tuple

from zoo.core.errors import ConfigError

__all__ = ["MetricSpec", "parse_metric", "check_metric_names", "metric_names_help", "FORMS",
           "KID_SUBSETS", "KID_SUBSET_SIZE", "KID_FULL_MAX_REAL", "PR_FULL_MAX_REAL", "PPL_EPSILON",
           "PPL_DEFAULT_SAMPLES", "EQ_TRANSLATE_MAX", "EQ_ROTATE_MAX"]

KID_SUBSETS = 100           # NVIDIA: num_subsets
KID_SUBSET_SIZE = 1000      # NVIDIA: max_subset_size
KID_FULL_MAX_REAL = 1_000_000
PR_FULL_MAX_REAL = 200_000
PPL_EPSILON = 1e-4
PPL_DEFAULT_SAMPLES = 50_000
EQ_TRANSLATE_MAX = 0.125    # fraction of the image
EQ_ROTATE_MAX = 1.0         # fraction of pi
EQ_BATCH = 4                # NVIDIA: one random transform per batch of 4
PPL_BATCH = 2               # NVIDIA: one set of noise maps per batch of 2 pairs

# (form, description): the text of the error for an unknown name and of metric_names_help().
FORMS: List[Tuple[str, str]] = [
    ("fid{N}k_full", "Frechet Inception distance, N thousand generated images vs the whole dataset (fid50k_full)"),
    ("fid{N}k", "legacy FID vs the first N thousand dataset images (fid50k, fid2k)"),
    ("kid{N}k_full", "kernel Inception distance, 100 subsets of up to 1000, vs up to 1M reals (kid50k_full)"),
    ("kid{N}k", "legacy KID vs the first N thousand dataset images (kid50k)"),
    ("pr{N}k{K}_full", "precision and recall, K-nearest-neighbour manifolds of VGG16 features, up to 200k reals (pr50k3_full)"),
    ("pr{N}k{K}", "legacy precision and recall vs the first N thousand dataset images (pr50k3)"),
    ("ppl2_{w|z}{end|full}[_{N}k]", "perceptual path length in W or Z, endpoints or full path, no crop, 50k samples or N thousand (ppl2_wend)"),
    ("ppl_{w|z}{end|full}[_{N}k]", "stylegan2-ada-pytorch's PPL with the face crop (ppl_zfull)"),
    ("eqt{N}k_int", "EQ-T, PSNR in dB under integer translation; StyleGAN3 only (eqt50k_int)"),
    ("eqt{N}k_frac", "EQ-T_frac, fractional translation; StyleGAN3 only (eqt50k_frac)"),
    ("eqr{N}k", "EQ-R, rotation; StyleGAN3 only (eqr50k)"),
]


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """What a metric name means.

    kind:      ``'fid'`` | ``'kid'`` | ``'pr'`` | ``'ppl'`` | ``'eq'``.
    num_gen:   generated images (FID/KID/PR) or samples (PPL/EQ).
    max_real:  most dataset images compared with (None: all of them); None for PPL/EQ.
    full:      the ``_full`` protocol (whole dataset) rather than the legacy N-reals one.
    nhood:     PR's neighbourhood size K.
    space, sampling, crop, epsilon: PPL's options.
    eq:        EQ's kind: ``'int'`` | ``'frac'`` | ``'rot'``.
    """

    name: str
    kind: str
    num_gen: int
    max_real: Optional[int] = None
    full: bool = False
    nhood: Optional[int] = None
    space: Optional[str] = None
    sampling: Optional[str] = None
    crop: Optional[bool] = None
    epsilon: Optional[float] = None
    eq: Optional[str] = None

    @property
    def detector(self) -> Optional[str]:
        """The feature network: ``'inception'`` (FID, KID), ``'vgg'`` (PR features, PPL's LPIPS) or None."""
        return {"fid": "inception", "kid": "inception", "pr": "vgg", "ppl": "vgg"}.get(self.kind)

    @property
    def needs_reals(self) -> bool:
        return self.kind in ("fid", "kid", "pr")

    def result_keys(self) -> List[str]:
        """The keys of the metric's ``results`` dict (NVIDIA's)."""
        if self.kind == "pr":
            return [f"{self.name}_precision", f"{self.name}_recall"]
        return [self.name]


_N = r"([1-9]\d*)"
_PATTERNS = [
    (re.compile(rf"(fid|kid){_N}k(_full)?"), "dist"),
    (re.compile(rf"pr{_N}k{_N}(_full)?"), "pr"),
    (re.compile(rf"ppl(2?)_([wz])(end|full)(?:_{_N}k)?"), "ppl"),
    (re.compile(rf"eqt{_N}k_(int|frac)"), "eqt"),
    (re.compile(rf"eqr{_N}k"), "eqr"),
]


def _unknown(name: object) -> ValueError:
    forms = ", ".join(f for f, _ in FORMS)
    return ConfigError("metrics.names", f"unknown metric {name!r}",
                       f"use names of the forms {forms} (N: thousands of samples, e.g. fid50k_full, "
                       f"kid50k_full, pr50k3_full, ppl2_wend, eqt50k_int, eqr50k, or fid2k for a quick run)")


def parse_metric(name: str) -> MetricSpec:
    """Parse a metric name (see the module docstring) into a :class:`MetricSpec`.

    Raises :class:`zoo.core.errors.ConfigError` (a ``ValueError``) naming the bad name and listing the
    valid forms."""
    if not isinstance(name, str):
        raise _unknown(name)
    for pattern, family in _PATTERNS:
        m = pattern.fullmatch(name)
        if m is None:
            continue
        if family == "dist":
            kind, n, full = m.group(1), int(m.group(2)) * 1000, m.group(3) is not None
            if full:
                max_real = None if kind == "fid" else KID_FULL_MAX_REAL
            else:
                max_real = n
            return MetricSpec(name, kind, num_gen=n, max_real=max_real, full=full)
        if family == "pr":
            n, k, full = int(m.group(1)) * 1000, int(m.group(2)), m.group(3) is not None
            return MetricSpec(name, "pr", num_gen=n, max_real=PR_FULL_MAX_REAL if full else n, full=full, nhood=k)
        if family == "ppl":
            num = int(m.group(4)) * 1000 if m.group(4) else PPL_DEFAULT_SAMPLES
            return MetricSpec(name, "ppl", num_gen=num, space=m.group(2), sampling=m.group(3),
                              crop=m.group(1) != "2", epsilon=PPL_EPSILON)
        if family == "eqt":
            return MetricSpec(name, "eq", num_gen=int(m.group(1)) * 1000, eq=m.group(2))
        return MetricSpec(name, "eq", num_gen=int(m.group(1)) * 1000, eq="rot")
    raise _unknown(name)


def check_metric_names(names: Iterable[str]) -> List[MetricSpec]:
    """Parse every name (e.g. at the start of training, so a typo fails before any work). Raises
    :class:`zoo.core.errors.ConfigError` (a ``ValueError``) on the first bad or repeated name."""
    if isinstance(names, str):
        names = [names]
    specs: Dict[str, MetricSpec] = {}
    for name in names:
        spec = parse_metric(name)
        if spec.name in specs:
                    raise ConfigError("metrics.names", f"metric {name!r} is listed twice", "list each metric once")
        specs[spec.name] = spec
    return list(specs.values())


def metric_names_help() -> str:
    """A readable table of the valid metric names."""
    width = max(len(f) for f, _ in FORMS)
    lines = ["Metric names (N: thousands of generated images or samples):"]
    lines += [f"  {form:<{width}}  {text}" for form, text in FORMS]
    return "\n".join(lines)
