"""Collect the jobs of a sweep into one table and one plot.

    python -m zoo.report SWEEP_DIR [--out DIR]

``SWEEP_DIR`` is what ``python train.py -m ...`` created (``<run_root>/multirun/<date-time>/``, one
``<num>_<generation>/`` directory per job). Writes ``report.md`` (one row per job: generation, config,
parameters of G and D, kimg, final and best value of every metric, s/kimg, peak memory, wall time,
status, the metric protocol) and ``report.png`` (every metric against kimg, one line per job).

Every planned job appears: the sweep's own ``multirun.yaml`` says which jobs Hydra was asked for, so
a job that failed, was interrupted, is still running or never started shows up as such instead of
silently missing from the table.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from omegaconf import MISSING, OmegaConf

from zoo.apps.common import AppSpec, hydra_main
from zoo.core.errors import ConfigError
from zoo.core.runtime import format_duration

__all__ = ["JobReport", "ReportConfig", "collect", "write_report", "render_markdown", "render_plot", "main", "APP"]

# Result keys where smaller is better; everything else (precision, recall, EQ PSNR) is larger-is-better.
_LOWER_IS_BETTER = ("fid", "kid", "ppl")


@dataclass
class JobReport:
    num: int
    name: str                       # directory name, e.g. "2_stylegan2"
    overrides: List[str]
    path: Optional[str] = None      # None: never started
    job: Dict[str, Any] = field(default_factory=dict)
    stats: List[Dict[str, Any]] = field(default_factory=list)
    metrics: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.path is None:
            return "not started"
        status = self.job.get("status")
        if status is None:
            return "failed before start (no job.json)"
        if status == "running":
            age = time.time() - float(self.job.get("updated", 0))
            return f"running or killed (last update {age / 60:.0f} min ago)"
        if status == "failed":
            return f"failed: {self.job.get('error', '?')}"
        return status

    @property
    def generation(self) -> str:
        gen = self.job.get("generation")
        if gen:
            return gen
        for o in self.overrides:
            if o.startswith("model="):
                return o.split("=", 1)[1]
        return "?"

    @property
    def config(self) -> str:
        cfg = self.job.get("config_name")
        return str(cfg) if cfg else ""

    @property
    def kimg(self) -> Optional[float]:
        if "kimg" in self.job:
            return float(self.job["kimg"])
        return float(self.stats[-1]["kimg"]) if self.stats else None

    @property
    def sec_per_kimg(self) -> Optional[float]:
        if "sec_per_kimg" in self.job:
            return float(self.job["sec_per_kimg"])
        ticks = [r["Timing/sec_per_kimg"] for r in self.stats[1:] if "Timing/sec_per_kimg" in r]
        return statistics.median(ticks) if ticks else None

    @property
    def peak_mem_gb(self) -> Optional[float]:
        if "peak_mem_gb" in self.job:
            return float(self.job["peak_mem_gb"])
        mems = [r["Resources/peak_mem_gb"] for r in self.stats if "Resources/peak_mem_gb" in r]
        return max(mems) if mems else None

    @property
    def wall_time(self) -> Optional[float]:
        if "wall_time" in self.job:
            return float(self.job["wall_time"])
        if self.stats and "Timing/total_sec" in self.stats[-1]:
            return float(self.stats[-1]["Timing/total_sec"])
        return None

    def series(self) -> Dict[str, List[Tuple[float, float]]]:
        """Result key -> [(kimg, value), ...] in the order computed."""
        out: Dict[str, List[Tuple[float, float]]] = {}
        for rec in self.metrics:
            for key, value in rec.get("results", {}).items():
                if value is not None and math.isfinite(float(value)):
                    out.setdefault(key, []).append((float(rec.get("kimg", 0.0)), float(value)))
        return out

    def protocols(self) -> Dict[str, Dict[str, Any]]:
        """Metric name -> protocol of its last record."""
        return {rec["metric"]: rec.get("protocol", {}) for rec in self.metrics if "metric" in rec}


def _read_jsonl(path: str) -> List[Dict[str, Any]]:
    if not os.path.isfile(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a killed job
                    continue
    return out


def _planned_jobs(sweep_dir: str) -> List[List[str]]:
    """The override lists of every job Hydra's basic sweeper was asked to run, in job-number order."""
    path = os.path.join(sweep_dir, "multirun.yaml")
    if not os.path.isfile(path):
        return []
    try:  # Hydra's own expansion of the sweep (a private module: without it, the job directories still count)
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser
    except ImportError:
        return []
    task = list(OmegaConf.load(path).hydra.overrides.task)
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(task), None)
    return [list(job) for batch in batches for job in batch]


def _job_dirs(sweep_dir: str) -> Dict[int, str]:
    out = {}
    for name in os.listdir(sweep_dir):
        head = name.split("_", 1)[0]
        if head.isdigit() and os.path.isdir(os.path.join(sweep_dir, name)):
            out[int(head)] = name
    return out


def _job_overrides(job_dir: str) -> List[str]:
    path = os.path.join(job_dir, ".hydra", "overrides.yaml")
    if not os.path.isfile(path):
        return []
    return [str(o) for o in OmegaConf.load(path)]


def collect(sweep_dir: str) -> List[JobReport]:
    """One :class:`JobReport` per planned or existing job of the sweep, by job number."""
    if not os.path.isdir(sweep_dir):
        raise FileNotFoundError(f"{sweep_dir!r} is not a directory (pass the sweep directory of `python train.py -m ...`)")
    planned = _planned_jobs(sweep_dir)
    dirs = _job_dirs(sweep_dir)
    if not planned and not dirs:
        raise FileNotFoundError(f"{sweep_dir!r} holds no sweep: no multirun.yaml and no <num>_<name>/ job directories")
    jobs = []
    for num in range(max(len(planned), max(dirs, default=-1) + 1)):
        overrides = planned[num] if num < len(planned) else []
        if num not in dirs:
            gen = next((o.split("=", 1)[1] for o in overrides if o.startswith("model=")), "job")
            jobs.append(JobReport(num, f"{num}_{gen}", overrides))
            continue
        path = os.path.join(sweep_dir, dirs[num])
        jobs.append(JobReport(
            num, dirs[num], _job_overrides(path) or overrides, path=path,
            job=json.load(open(os.path.join(path, "job.json"))) if os.path.isfile(os.path.join(path, "job.json")) else {},
            stats=_read_jsonl(os.path.join(path, "stats.jsonl")),
            metrics=_read_jsonl(os.path.join(path, "metrics.jsonl")),
        ))
    return jobs


# ------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------

def _fmt(v: Optional[float]) -> str:
    """FID-like values with one decimal (120.3, 12.3), small ones with 3 significant digits (0.512, 0.0123)."""
    if v is None:
        return "–"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"


def _count(n: Optional[int]) -> str:
    return "–" if n is None else f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n:,}"




def _best(key: str, points: Sequence[Tuple[float, float]]) -> Tuple[float, float]:
    lower = key.startswith(_LOWER_IS_BETTER)
    return (min if lower else max)(points, key=lambda p: p[1])


def _protocol_text(p: Dict[str, Any]) -> str:
    parts = []
    det = p.get("detector") or p.get("detector_name")
    if det:
        sha = p.get("detector_sha256") or ""
        parts.append(f"detector {os.path.basename(str(det))}" + (f" ({sha[:10]})" if sha else ""))
    if p.get("num_gen") is not None:
        parts.append(f"{p['num_gen']} generated")
    if p.get("num_real") is not None:
        parts.append(f"{p['num_real']} real")
    data = p.get("dataset")
    if isinstance(data, dict):
        parts.append(f"data {data.get('name')} ({str(data.get('content_hash', ''))[:10]}, {data.get('num_images')} images"
                     f"{', x-flips' if data.get('mirror') else ''})")
    elif data or p.get("dataset_name"):
        h = p.get("dataset_hash") or ""
        parts.append(f"data {data or p.get('dataset_name')}" + (f" ({str(h)[:10]})" if h else ""))
    if p.get("truncation_psi") is not None:
        parts.append(f"ψ={p['truncation_psi']}")
    return ", ".join(parts)


def _comparable(p: Dict[str, Any]) -> Dict[str, Any]:
    """Protocol fields that must agree for two jobs' numbers to be comparable."""
    drop = {"kimg", "generation", "real_stats_cached", "world_size", "timestamp", "total_time"}
    return {k: v for k, v in p.items() if k not in drop}


def render_markdown(jobs: Sequence[JobReport], sweep_dir: str) -> str:
    keys: List[str] = []
    for job in jobs:
        for key in job.series():
            if key not in keys:
                keys.append(key)
    lines = [f"# Sweep report: `{os.path.abspath(sweep_dir)}`", ""]
    done = sum(j.status == "done" for j in jobs)
    lines.append(f"{len(jobs)} job(s): {done} done, {len(jobs) - done} not done. Generated {time.strftime('%Y-%m-%d %H:%M')}.")
    lines.append("")

    # Protocol: printed once when every job used the same one, per job otherwise.
    protocols: Dict[str, Dict[str, Any]] = {}
    mismatch = []
    for job in jobs:
        for metric, p in job.protocols().items():
            if metric in protocols and _comparable(protocols[metric]) != _comparable(p):
                mismatch.append(f"{metric} ({job.name})")
            protocols.setdefault(metric, p)
    if protocols:
        lines.append("Metric protocol:")
        for metric, p in protocols.items():
            lines.append(f"- `{metric}`: {_protocol_text(p)}")
        if mismatch:
            lines.append(f"- **not comparable**: the protocol differs for {', '.join(mismatch)}")
        lines.append("")

    head = ["job", "generation", "config", "status", "params G", "params D", "kimg"]
    for key in keys:
        head += [f"{key} final", f"{key} best (kimg)"]
    head += ["s/kimg", "peak mem", "wall time"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" for _ in head) + "|")
    for job in jobs:
        series = job.series()
        target = job.job.get("kimg_target")
        kimg = job.kimg
        kimg_text = "–" if kimg is None else f"{kimg:g}" + (f" / {float(target):g}" if target is not None else "")
        status = job.status.replace("|", "/").replace("\n", " ")
        row = [job.name, job.generation, job.config, status if len(status) <= 90 else status[:87] + "...",
               _count(job.job.get("params_G")), _count(job.job.get("params_D")), kimg_text]
        for key in keys:
            pts = series.get(key)
            if not pts:
                row += ["–", "–"]
                continue
            bk, bv = _best(key, pts)
            row += [_fmt(pts[-1][1]), f"{_fmt(bv)} ({bk:g})"]
        mem = job.peak_mem_gb
        mem_text = "–" if mem is None else f"{mem:.2f} GB" + {"process_peak_rss": " RSS", "process_lifetime_peak_rss": " RSS (process lifetime)"}.get(job.job.get("peak_mem_kind"), "")
        row += [_fmt(job.sec_per_kimg), mem_text, format_duration(job.wall_time)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "s/kimg: training time per thousand real images shown to D, metric evaluation excluded. "
              "Peak memory: of training (metric evaluation is measured apart, `metrics_peak_mem_gb` in job.json), "
              "CUDA max allocated on GPU, peak resident set of the process on CPU.", ""]
    overrides = [f"- `{job.name}`: {' '.join(job.overrides) or '–'}" for job in jobs]
    lines += ["Overrides per job:", *overrides, ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Plot (Pillow only: matplotlib is not a dependency of the zoo)
# ------------------------------------------------------------------------------------------------

_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> List[float]:
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + 1e-9 * step:
        if t >= lo - 1e-9 * step:
            ticks.append(round(t, 12))
        t += step
    return ticks


def render_plot(jobs: Sequence[JobReport], path: str, panel: Tuple[int, int] = (480, 320)) -> Optional[str]:
    """One panel per metric result key, x = kimg, one line (with markers) per job; a shared legend."""
    from PIL import Image, ImageDraw, ImageFont

    keys: List[str] = []
    for job in jobs:
        for key in job.series():
            if key not in keys:
                keys.append(key)
    font = ImageFont.load_default()
    pw, ph = panel
    cols = min(len(keys), 2) or 1
    rows = max(1, math.ceil(len(keys) / cols))
    legend_h = 18 * (len(jobs) + 1)
    img = Image.new("RGB", (pw * cols, ph * rows + legend_h), "white")
    draw = ImageDraw.Draw(img)
    if not keys:
        draw.text((10, 10), "no metric results in this sweep (metrics.names was empty or no job got that far)", fill="black", font=font)
    left, right, top, bottom = 60, 15, 25, 35
    for i, key in enumerate(keys):
        ox, oy = (i % cols) * pw, (i // cols) * ph
        pts_all = [p for job in jobs for p in job.series().get(key, [])]
        xs, ys = [p[0] for p in pts_all], [p[1] for p in pts_all]
        x0, x1 = 0.0, max(xs) if xs else 1.0
        y0, y1 = min(ys), max(ys)
        pad = (y1 - y0) * 0.05 or abs(y1) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
        X = lambda x: ox + left + (x - x0) / ((x1 - x0) or 1) * (pw - left - right)
        Y = lambda y: oy + ph - bottom - (y - y0) / ((y1 - y0) or 1) * (ph - top - bottom)
        draw.rectangle([ox + left, oy + top, ox + pw - right, oy + ph - bottom], outline="black")
        draw.text((ox + left, oy + 6), f"{key} vs kimg", fill="black", font=font)
        for t in _nice_ticks(y0, y1):
            draw.line([ox + left - 4, Y(t), ox + left, Y(t)], fill="black")
            draw.line([ox + left + 1, Y(t), ox + pw - right - 1, Y(t)], fill=(230, 230, 230))
            draw.text((ox + 4, Y(t) - 6), f"{t:.4g}", fill="black", font=font)
        for t in _nice_ticks(x0, x1):
            draw.line([X(t), oy + ph - bottom, X(t), oy + ph - bottom + 4], fill="black")
            draw.text((X(t) - 8, oy + ph - bottom + 6), f"{t:g}", fill="black", font=font)
        draw.text((ox + pw // 2 - 12, oy + ph - 14), "kimg", fill="black", font=font)
        for j, job in enumerate(jobs):
            pts = job.series().get(key, [])
            color = _COLORS[j % len(_COLORS)]
            if len(pts) > 1:
                draw.line([(X(x), Y(y)) for x, y in pts], fill=color, width=2)
            for x, y in pts:
                draw.ellipse([X(x) - 3, Y(y) - 3, X(x) + 3, Y(y) + 3], fill=color)
    ly = ph * rows + 6
    for j, job in enumerate(jobs):
        color = _COLORS[j % len(_COLORS)]
        draw.line([10, ly + 18 * j + 7, 40, ly + 18 * j + 7], fill=color, width=3)
        label = f"{job.name} ({job.generation}{' ' + job.config if job.config else ''}): {job.status}"
        draw.text((48, ly + 18 * j), label[:140], fill="black", font=font)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img.save(path)
    return path


def write_report(sweep_dir: str, out_dir: Optional[str] = None) -> Tuple[str, str]:
    """Write ``report.md`` and ``report.png`` into ``out_dir`` (default: the sweep directory)."""
    jobs = collect(sweep_dir)
    out_dir = out_dir or sweep_dir
    os.makedirs(out_dir, exist_ok=True)
    md = os.path.join(out_dir, "report.md")
    with open(md, "w") as f:
        f.write(render_markdown(jobs, sweep_dir))
    png = render_plot(jobs, os.path.join(out_dir, "report.png"))
    return md, png


@dataclass
class ReportConfig:
    """``conf/report.yaml``: ``python -m zoo.report SWEEP_DIR [--out DIR]`` (or ``sweep=... out=...``)."""

    sweep: str = MISSING  # the sweep directory written by `python train.py -m ...`
    out: Optional[str] = None  # where to write report.md / report.png (null: the sweep directory)


def run(cfg: Any) -> Tuple[str, str]:
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        raise ConfigError("sweep", "is required", "pass the sweep directory: python -m zoo.report SWEEP_DIR")
    try:
        md, png = write_report(cfg.sweep, cfg.out)
    except FileNotFoundError as e:
        raise ConfigError("sweep", str(e), "pass the directory `python train.py -m ...` wrote "
                          "(<run_root>/multirun/<date>-<time>)") from None
    with open(md) as f:
        print(f.read())
    print(f"[zoo] wrote {md} and {png}")
    return md, png


APP = AppSpec("report", run, schema=ReportConfig, positional=("sweep",), options={"--out": "out"})


def main(argv=None) -> None:
    hydra_main(APP, argv)
