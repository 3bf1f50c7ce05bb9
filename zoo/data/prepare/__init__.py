"""Dataset tool: convert images into NVIDIA's dataset format (what ``dataset_tool.py`` writes).

    python -m zoo.data.prepare source=~/ffhq/images1024x1024 dest=~/datasets/ffhq256.zip resolution=256 resize_filter=box
    python -m zoo.data.prepare source=~/photos dest=~/datasets/photos128.zip resolution=128 transform=center-crop
    python -m zoo.data.prepare source=~/data/cifar10/cifar-10-python.tar.gz dest=~/datasets/cifar10.zip
    python -m zoo.data.prepare source=~/lsun/car_images dest=~/datasets/car512 resolution=512x384 transform=center-crop-wide

or from Python: ``summary = prepare_dataset(source, dest, resolution=256, resize_filter="box")``.

**Sources** (the kind is detected from the path; ``source_kind=folder|zip|cifar10`` overrides it):

* an image folder, searched recursively (FFHQ's ``images1024x1024``, exported LSUN images, ...), or a
  zip of images (an NVIDIA-format zip included).  Files are taken in the order of their relative
  paths (``/`` separators, sorted); hidden entries (a path part starting with ``.``) and macOS
  ``__MACOSX`` folders are ignored, as are files whose extension PIL cannot open.  An optional
  ``dataset.json`` at the root, ``{"labels": [[relpath, int or [floats]], ...]}``, carries the
  labels over (every image then needs one; ``labels=false`` drops them).
* CIFAR-10: torchvision's ``cifar-10-python.tar.gz`` (read in place) or the extracted
  ``cifar-10-batches-py`` folder (or a folder holding either, as ``data=cifar10`` uses), read with
  :mod:`zoo.data.cifar`'s safe reader; class labels are kept; ``split=train|test|all`` (train:
  the 50,000 images NVIDIA's tool writes).
* LSUN ``*_lmdb`` databases are refused with instructions: ``lmdb`` is not a dependency, so export
  the images first (``python data.py export <category>_lmdb --out_dir <dir>`` from
  github.com/fyu/lsun) and pass that folder.  MNIST's idx files are not supported.

**Output** (NVIDIA's layout, readable by ``data=folder`` and NVIDIA's own loader): ``dest`` ending in
``.zip`` gives an uncompressed zip (``ZIP_STORED``, fixed timestamps, so equal inputs give equal
bytes), anything else a folder; images ``00000/img00000000.png, 00000/img00000001.png, ...``
(PNG, ``compress_level=0``) numbered contiguously over the images written; ``dataset.json`` =
``{"labels": [["00000/img00000000.png", 6], ...]}`` or ``{"labels": null}``.

**Options**

* ``resolution``: the output side, a power of two (>= 4); outputs are square.  ``null`` keeps the
  source size, which requires every image to be square, the same size and a power of two (else a
  clear error suggests ``resolution=``).  ``WxH`` (e.g. ``512x384``) is accepted: ``RxR`` means R, and
  a wide ``WxH`` (H < W) is the letterbox content size for ``transform=center-crop-wide``.
* ``transform``: ``null`` (default) resizes the whole image to ``resolution`` x ``resolution`` as NVIDIA
  does, stretching non-square images (the summary counts them); ``center-crop`` takes the largest
  centred square, then resizes; ``center-crop-wide`` crops the image's centre rows to the W:H aspect
  ratio, resizes that to W x H and pastes it into the middle of a black W x W canvas (LSUN car's
  512x384-in-512 layout).  Images narrower than W or wider than W:H cannot fill the box and are skipped
  as too small, as NVIDIA's tool drops them.  (NVIDIA's ``center_crop_wide`` keeps ``round(W*h/w)``
  source rows rather than ``round(w*H/W)``, which squashes the result unless the source is exactly W
  wide, NVlabs/stylegan2-ada-pytorch#47; this tool crops the intended W:H region.)
* ``resize_filter``: ``lanczos`` (default, as NVIDIA's tool) or ``box``.  **``box`` is what reproduces
  the published FFHQ-256 FIDs** (NVIDIA's README: ``--resize-filter=box`` is required to reproduce
  the paper's numbers; Lanczos is otherwise the better filter).  Images already at the output size
  are never resampled.
* ``max_images``: use only the first N source images (in the order above), like NVIDIA's
  ``--max-images``; bad images among them are skipped, so fewer may be written.
* ``channels``: ``null`` (default) writes grayscale (L, 1 channel) when *every* source image is
  grayscale (modes 1, L, LA, 16-bit I), else RGB; ``1`` or ``3`` forces it.  Everything else is
  converted with PIL: RGBA/LA lose their alpha channel (dropped, not composited), palette (P),
  CMYK and YCbCr images become RGB, grayscale images in a colour dataset are replicated to RGB
  (NVIDIA's tool stops on mixed L/RGB data and on RGBA), and 16-bit grayscale is scaled to 8 bits.
  The summary lists what was converted.  EXIF orientation is ignored, as in NVIDIA's tool.
* ``strict``: bad images (corrupt or truncated files, files that are not images, unsupported modes,
  images too small for ``center-crop-wide``) are skipped and named in the summary; ``strict=true``
  stops at the first one instead.
* ``overwrite``: an existing ``dest`` is refused unless ``overwrite=true`` (an empty folder is fine).
* ``workers``: processes that decode/resize/encode in parallel (``null``: up to 8 for large
  sources, ``0``: in this process); the output is the same for any value.

Nothing half-written is ever left at ``dest``: the dataset is built in a hidden temporary file or
folder next to it (``.<name>.<random>.tmp``) and renamed into place at the end; on an error,
Ctrl-C or SIGTERM the temporary is removed (only a SIGKILL can leave one behind).  The summary says
how many images were written and skipped (with their names and reasons), the resolution, channels,
labels, output path and time.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from zoo.core.errors import ConfigError, DatasetError
from zoo.core.parse import is_power_of_two
from zoo.core.runtime import format_duration

from ..cifar import SPLITS as CIFAR_SPLITS
from ..cifar import CIFAR10Dataset
from ..image_files import LABELS_FILE
from ..writer import DatasetWriter
from .options import MIN_SIDE, check_dest, check_int, parse_filter, parse_resolution, parse_transform
from .process import GRAY_MODES, Processor, worker_init, worker_run
from .sources import (SOURCE_KINDS, detect_source_kind, label_table, list_images, listing, normalise_labels,
                      progress_bar, read_labels_file, scan_headers)

__all__ = ["prepare_dataset", "format_summary", "detect_source_kind"]

_AUTO_WORKERS_MIN_IMAGES = 256


def prepare_dataset(
    source: str,
    dest: str,
    resolution: Any = None,
    transform: Optional[str] = None,
    resize_filter: str = "lanczos",
    max_images: Optional[int] = None,
    strict: bool = False,
    overwrite: bool = False,
    source_kind: Optional[str] = None,
    channels: Optional[int] = None,
    labels: bool = True,
    split: str = "train",
    workers: Optional[int] = 0,
    progress: bool = False,
) -> Dict[str, Any]:
    """Convert ``source`` into an NVIDIA-format dataset at ``dest`` (``*.zip`` or a folder).

    See the module docstring for every option.  Returns the summary dict: ``dest``, ``format``
    ('zip' | 'folder'), ``source``, ``source_kind``, ``considered`` (source images looked at),
    ``images`` (written), ``skipped`` ([{'name', 'reason'}], in source order), ``resolution``,
    ``channels``, ``mode``, ``labels`` (bool), ``label_dim``, ``transform``, ``resize_filter``,
    ``stretched`` (non-square images resized without a transform), ``converted`` ({source mode:
    count}), ``ignored_files`` (non-image files in the source), ``seconds``.

    Raises :class:`~zoo.core.errors.ConfigError` for bad options and :class:`DatasetError` for data
    problems (both ``ValueError``); nothing is left at ``dest`` then.
    """
    t0 = time.time()
    transform = parse_transform(transform)
    side, wide_h = parse_resolution(resolution, transform)
    resize_filter = parse_filter(resize_filter)
    max_images = check_int(max_images, "max_images", 1, "use a positive number of images, or null for all")
    channels = check_int(channels, "channels", 1, "use channels=1 (grayscale), channels=3 (RGB) or null (from the data)")
    if channels not in (None, 1, 3):
        raise ConfigError("channels", f"{channels} channels are not supported", "use channels=1, channels=3 or null")
    workers = check_int(workers, "workers", 0, "use workers=0 (in this process), a number of processes, or null (automatic)")
    if split not in CIFAR_SPLITS:
        raise ConfigError("split", f"unknown CIFAR-10 split {split!r}", f"use one of {', '.join(sorted(CIFAR_SPLITS))}")
    if source is None or str(source).strip() in ("", "???"):
        raise ConfigError("source", "is required", "pass source=/path/to/images (a folder, a .zip or cifar-10-python.tar.gz)")
    if dest is None or str(dest).strip() in ("", "???"):
        raise ConfigError("dest", "is required", "pass dest=/path/to/out.zip (or a folder)")
    source = os.path.abspath(os.path.expanduser(str(source)))
    dest = os.path.abspath(os.path.expanduser(str(dest)))
    if source_kind is not None and str(source_kind).lower() not in ("", "auto", "null", "none"):
        kind = str(source_kind).lower()
        if kind not in SOURCE_KINDS:
            raise ConfigError("source_kind", f"unknown source kind {source_kind!r}", f"use one of {', '.join(SOURCE_KINDS)} or null (detect)")
        if not os.path.exists(source):
            raise DatasetError(f"source not found: {source!r} does not exist.")
    else:
        kind = detect_source_kind(source)
    check_dest(source, dest, bool(overwrite), kind)

    # -- the source's items and labels ----------------------------------------------------------
    skipped: List[Tuple[str, str]] = []
    cifar_images: Optional[np.ndarray] = None
    label_values: Optional[List[Any]] = None
    ignored = 0
    keep_side: Optional[int] = None
    if kind == "cifar10":
        ds = CIFAR10Dataset(source, split=split, use_labels=True)
        n = ds.num_raw_images if max_images is None else min(ds.num_raw_images, max_images)
        cifar_images = ds.raw_images[:n]
        names = [f"{split}[{i}]" for i in range(n)]
        if labels:
            label_values = [int(v) for v in ds.raw_class_labels[:n]]
        mode = "L" if channels == 1 else "RGB"
        keep_side = 32
        candidates = names
    else:
        all_names, ignored = list_images(kind, source)
        if not all_names:
            raise DatasetError(f"no image files found in {source!r} ({ignored} other file(s)); it must contain images PIL can read (.png, .jpg, ...).")
        names = all_names if max_images is None else all_names[:max_images]
        table = label_table(read_labels_file(kind, source), f"{source}/{LABELS_FILE}") if labels else None
        if table is not None:
            missing = [f for f in names if f not in table]
            if missing:
                raise DatasetError(
                    f"{source}/{LABELS_FILE} has labels but none for {len(missing)} image(s): {listing(missing)}. "
                    f"Add them, or pass labels=false to write the dataset without labels."
                )
            label_values = [table[f] for f in names]
        candidates = list(names)
        mode = {1: "L", 3: "RGB"}.get(channels or 0, "")
        if channels is None or side is None:
            sizes, modes, bad = scan_headers(kind, source, names, progress)
            if bad and strict:
                raise DatasetError(f"cannot read image {source}/{bad[0][0]} ({bad[0][1]}); strict=true stops at the first bad image. "
                                   f"Remove or re-encode it, or run with strict=false to skip bad images.")
            skipped.extend(bad)
            bad_names = {b for b, _ in bad}
            candidates = [f for f in names if f not in bad_names]
            if not candidates:
                raise DatasetError(f"none of the {len(names)} image file(s) in {source!r} can be read: {listing([f'{b} ({r})' for b, r in bad])}.")
            if channels is None:
                mode = "L" if all(modes[f] in GRAY_MODES for f in candidates) else "RGB"
            if side is None:
                fix = ("Pass resolution=<power of two> to resize them (add transform=center-crop to keep the aspect ratio), "
                       "e.g. resolution=256 transform=center-crop")
                nonsquare = [f"{f} ({sizes[f][0]}x{sizes[f][1]})" for f in candidates if sizes[f][0] != sizes[f][1]]
                if nonsquare:
                    raise DatasetError(f"resolution=null keeps the source size, but {len(nonsquare)} image(s) are not square: {listing(nonsquare)}. {fix}.")
                odd = [f"{f} ({sizes[f][0]}x{sizes[f][1]})" for f in candidates if not (is_power_of_two(sizes[f][0]) and sizes[f][0] >= MIN_SIDE)]
                if odd:
                    raise DatasetError(f"resolution=null keeps the source size, but the side of {listing(odd)} is not a power of two >= {MIN_SIDE}. {fix}.")
                first = sizes[candidates[0]]
                mixed = [f"{f} ({sizes[f][0]}x{sizes[f][1]})" for f in candidates if sizes[f] != first]
                if mixed:
                    raise DatasetError(f"resolution=null keeps the source size, but the images differ in size: {candidates[0]} is "
                                       f"{first[0]}x{first[1]}, {listing(mixed)} differ(s). {fix}.")
                keep_side = first[0]
    out_side = side if side is not None else keep_side
    label_dim = 0
    if label_values is not None:
        label_values, label_dim = normalise_labels(names, label_values, source)
        label_of = dict(zip(names, label_values))

    # -- convert --------------------------------------------------------------------------------
    processor = Processor(kind, source, mode, transform, side, wide_h, resize_filter, keep_side)
    index_of = {name: i for i, name in enumerate(names)}
    jobs: Iterator[Tuple[int, str, Optional[np.ndarray]]] = (
        (index_of[name], name, None if cifar_images is None else cifar_images[index_of[name]].transpose(1, 2, 0))
        for name in candidates
    )
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if len(candidates) >= _AUTO_WORKERS_MIN_IMAGES else 0
        workers = 0 if workers <= 1 else workers
    pool = None
    writer: Optional[DatasetWriter] = None
    stretched = 0
    converted: Dict[str, int] = {}
    try:
        try:
            writer = DatasetWriter(dest)
        except OSError as exc:
            raise DatasetError(f"cannot write next to dest {dest!r} ({exc}); check the folder and its permissions.") from None
        if workers and len(candidates) > 1:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods and sys.platform != "darwin" else "spawn")
            pool = ctx.Pool(workers, initializer=worker_init, initargs=(processor,))
            chunk = max(1, min(32, len(candidates) // (workers * 8)))
            results = pool.imap(worker_run, jobs, chunksize=chunk)
        else:
            results = map(processor, jobs)
        for index, png, reason, was_stretched, src_mode in progress_bar(results, len(candidates), "prepare", progress):
            name = names[index]
            if png is None:
                if strict:
                    raise DatasetError(
                        f"cannot use image {name!r} of {source!r} ({reason}); strict=true stops at the first bad image. "
                        f"Remove or fix it, or run with strict=false to skip bad images."
                    )
                skipped.append((name, str(reason)))
                continue
            try:
                writer.add_image(png, None if label_values is None else label_of[name])
            except OSError as exc:
                raise DatasetError(f"writing {dest!r} failed ({exc}); nothing was written there.") from None
            stretched += int(bool(was_stretched))
            if src_mode is not None:
                converted[src_mode] = converted.get(src_mode, 0) + 1
        if writer.count == 0:
            raise DatasetError(f"no image of {source!r} could be used, so nothing was written; skipped: "
                               f"{listing([f'{n} ({r})' for n, r in skipped])}.")
        try:
            writer.commit(bool(overwrite), labels=label_values is not None)
        except OSError as exc:
            raise DatasetError(f"writing {dest!r} failed ({exc}); nothing was written there.") from None
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
            pool = None
        if writer is not None:
            writer.abort()
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        processor.close()

    order = {n: i for i, n in enumerate(names)}
    skipped.sort(key=lambda s: order.get(s[0], -1))
    return {
        "dest": dest,
        "format": "zip" if writer.is_zip else "folder",
        "source": source,
        "source_kind": kind,
        "considered": len(names),
        "images": writer.count,
        "skipped": [{"name": n, "reason": r} for n, r in skipped],
        "resolution": out_side,
        "letterbox": [out_side, wide_h] if wide_h is not None else None,
        "channels": 1 if mode == "L" else 3,
        "mode": mode,
        "labels": label_values is not None,
        "label_dim": label_dim,
        "transform": transform,
        "resize_filter": resize_filter,
        "stretched": stretched,
        "converted": converted,
        "ignored_files": ignored,
        "seconds": time.time() - t0,
    }


def format_summary(summary: Dict[str, Any], max_listed: int = 50) -> str:
    """The human-readable report that ``python -m zoo.data.prepare`` prints."""
    s = summary
    res = s["resolution"]
    lines = [f"[prepare] wrote {s['images']} image{'s' if s['images'] != 1 else ''} to {s['dest']} ({s['format']}) "
             f"in {format_duration(s['seconds'])}"]
    src = f"  source:   {s['source']} ({s['source_kind']}; {s['considered']} image{'s' if s['considered'] != 1 else ''} considered"
    if s.get("ignored_files"):
        src += f", {s['ignored_files']} non-image file{'s' if s['ignored_files'] != 1 else ''} ignored"
    lines.append(src + ")")
    how = f"transform {s['transform']}" if s["transform"] else "no transform"
    if s.get("letterbox"):
        how += f" ({s['letterbox'][0]}x{s['letterbox'][1]} letterboxed)"
    lines.append(f"  images:   {res}x{res}, {s['channels']} channel{'s' if s['channels'] != 1 else ''} ({s['mode']}); "
                 f"{how}, resize filter {s['resize_filter']}")
    if s["labels"]:
        lines.append(f"  labels:   yes (label_dim {s['label_dim']})")
    else:
        lines.append('  labels:   no ("labels": null)')
    skipped = s["skipped"]
    lines.append(f"  skipped:  {len(skipped)}" + (":" if skipped else ""))
    for item in skipped[:max_listed]:
        lines.append(f"    {item['name']}: {item['reason']}")
    if len(skipped) > max_listed:
        lines.append(f"    ... and {len(skipped) - max_listed} more")
    if s.get("stretched"):
        lines.append(f"  note:     {s['stretched']} non-square image(s) were stretched to {res}x{res} (no transform); "
                     f"transform=center-crop keeps the aspect ratio")
    if s.get("converted"):
        parts = ", ".join(f"{n} {m}" + (" (alpha dropped)" if m in ("RGBA", "LA", "La", "RGBa", "PA") else "")
                          for m, n in sorted(s["converted"].items()))
        lines.append(f"  note:     converted to {s['mode']}: {parts}")
    return "\n".join(lines)
