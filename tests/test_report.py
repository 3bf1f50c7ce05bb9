"""zoo.report: every planned job of a sweep appears (done, failed, running, never started), metric
columns (final and best), timing/memory, protocol, and the Pillow plot."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from zoo.apps import report


def _job(sweep, name, job=None, stats=(), metrics=(), overrides=()):
    d = sweep / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if job is not None:
        (d / "job.json").write_text(json.dumps(job))
    (d / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stats))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    return d


PROTOCOL = {"detector": "cifar10-detector", "detector_sha256": "ab" * 32, "num_gen": 2000, "num_real": 50000,
            "dataset": {"name": "cifar10", "content_hash": "cd" * 16, "num_images": 50000, "mirror": False},
            "truncation_psi": 1.0}


def _fid(kimg, value, **extra):
    return {"metric": "fid2k_full", "results": {"fid2k_full": value}, "kimg": kimg,
            "protocol": dict(PROTOCOL, kimg=kimg, **extra)}


@pytest.fixture
def sweep(tmp_path):
    s = tmp_path / "sweep"
    s.mkdir()
    (s / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n    - model=progan,stylegan2,stylegan3\n    - kimg=4\n")
    _job(s, "0_progan", overrides=["model=progan", "kimg=4"],
         job={"status": "done", "generation": "progan", "params_G": 123456, "params_D": 654321, "kimg": 4.0,
              "kimg_target": 4, "sec_per_kimg": 12.5, "peak_mem_gb": 1.5, "peak_mem_kind": "process_peak_rss",
              "wall_time": 75.0},
         stats=[{"kimg": 1.0, "Timing/sec_per_kimg": 12.0}],
         metrics=[_fid(2.0, 150.0), _fid(4.0, 120.0)])
    _job(s, "1_stylegan2", overrides=["model=stylegan2", "kimg=4"],
         job={"status": "failed", "generation": "stylegan2", "error": "RuntimeError: boom", "kimg_target": 4},
         stats=[{"kimg": 1.0, "Timing/sec_per_kimg": 9.0, "Resources/peak_mem_gb": 1.1, "Timing/total_sec": 9.5},
                {"kimg": 2.0, "Timing/sec_per_kimg": 8.0, "Resources/peak_mem_gb": 1.2, "Timing/total_sec": 18.0}],
         metrics=[_fid(2.0, 90.0), _fid(3.0, 95.0)])
    return s


def test_every_planned_job_is_a_row_with_its_status(sweep):
    jobs = report.collect(str(sweep))
    assert [j.name for j in jobs] == ["0_progan", "1_stylegan2", "2_stylegan3"]
    assert jobs[0].status == "done"
    assert jobs[1].status.startswith("failed: RuntimeError: boom")
    assert jobs[2].status == "not started" and jobs[2].overrides == ["model=stylegan3", "kimg=4"]
    # the failed job's numbers come from its logs
    assert jobs[1].kimg == 2.0 and jobs[1].peak_mem_gb == pytest.approx(1.2) and jobs[1].wall_time == 18.0


def test_markdown_has_final_and_best_metrics_timing_and_protocol(sweep):
    md_path, png_path = report.write_report(str(sweep))
    md = open(md_path).read()
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ") and "_" in line.split("|")[1]}
    assert set(rows) == {"0_progan", "1_stylegan2", "2_stylegan3"}
    cells = [c.strip() for c in rows["0_progan"].split("|")[1:-1]]
    head = [c.strip() for c in md.splitlines()[[i for i, l in enumerate(md.splitlines()) if l.startswith("| job")][0]].split("|")[1:-1]]
    row = dict(zip(head, cells))
    assert row["fid2k_full final"] == "120.0" and row["fid2k_full best (kimg)"] == "120.0 (4)"
    assert row["params G"] == "0.12 M" and row["params D"] == "0.65 M" and row["kimg"] == "4 / 4"
    assert row["s/kimg"] == "12.5" and row["peak mem"] == "1.50 GB RSS" and row["wall time"] == "1.2 min"
    sg2 = dict(zip(head, [c.strip() for c in rows["1_stylegan2"].split("|")[1:-1]]))
    assert sg2["fid2k_full final"] == "95.0" and sg2["fid2k_full best (kimg)"] == "90.0 (2)"   # lower is better
    assert sg2["status"].startswith("failed")
    assert "not started" in rows["2_stylegan3"]
    assert "cifar10-detector (abababab" in md and "2000 generated" in md and "50000 real" in md
    assert "data cifar10 (cdcdcdcdcd, 50000 images)" in md
    assert "not comparable" not in md


def test_a_different_protocol_is_flagged(sweep):
    with open(sweep / "1_stylegan2" / "metrics.jsonl", "a") as f:
        f.write(json.dumps(dict(_fid(4.0, 80.0), protocol=dict(PROTOCOL, num_real=10000))) + "\n")
    md = report.render_markdown(report.collect(str(sweep)), str(sweep))
    assert "not comparable" in md and "fid2k_full (1_stylegan2)" in md


def test_plot_draws_one_coloured_line_per_job(sweep):
    _, png = report.write_report(str(sweep), str(sweep / "out"))
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[0] > 300 and img.shape[1] >= 480
    for color in report._COLORS[:2]:   # progan and stylegan2 have points, in their own colours
        assert (np.abs(img.astype(int) - color).sum(-1) == 0).sum() > 20


def test_cli_errors_and_output(sweep, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        report.main([str(tmp_path / "nope")])
    assert e.value.code == 2 and "not a directory" in capsys.readouterr().err
    report.main([str(sweep)])
    out = capsys.readouterr().out
    assert "report.md" in out and "| 0_progan" in out
    assert os.path.isfile(sweep / "report.png")


def test_two_generation_sweep_with_metrics_produces_the_report(tmp_path):
    """`python train.py -m model=stylegan2,stylegan3 ... metrics.names=fid1k_full` end to end, then
    `python -m zoo.report`: one row per generation with its FID, parameters, timing and memory."""
    import subprocess
    import sys

    from conftest import ROOT, TinyDetector, save_torchscript

    det = save_torchscript(TinyDetector(), str(tmp_path / "det.pt"))
    sweep = tmp_path / "sweep"
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=ROOT, ZOO_CACHE=str(tmp_path / "cache"))
    args = ["-m", "model=stylegan2,stylegan3", "data=shapes", "data.num_images=64", "resolution=16",
            "model.channel_base=256", "model.channel_max=16", "model.z_dim=16", "model.w_dim=16",
            "model.mapping_layers=2", "batch=8", "kimg=0.032", "tick_kimg=0.016", "snap_kimg=0.016",
            "image_kimg=1", "metrics.names=[fid1k_full,kid1k_full]", "metrics.every_kimg=0.016",
            f"metrics.detector={det}", "metrics.download=false", "logger=none", "progress=false",
            "device=cpu", f"hydra.sweep.dir={sweep}"]
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([sys.executable, "-m", "zoo.report", str(sweep)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = report.collect(str(sweep))
    assert [(j.name, j.status) for j in jobs] == [("0_stylegan2", "done"), ("1_stylegan3", "done")]
    for job in jobs:
        series = job.series()
        assert [k for k, _ in series["fid1k_full"]] == [0.016, 0.032] and len(series["kid1k_full"]) == 2
        assert job.job["params_G"] > 0 and job.sec_per_kimg > 0 and job.peak_mem_gb > 0
        assert job.protocols()["fid1k_full"]["num_gen"] == 1000
    md = (sweep / "report.md").read_text()
    assert "| 0_stylegan2 | stylegan2 |" in md and "| 1_stylegan3 | stylegan3 | t | done |" in md
    assert "det.pt" in md and "not comparable" not in md
    assert Image.open(sweep / "report.png").size[0] >= 480
