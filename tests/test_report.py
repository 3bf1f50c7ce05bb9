"""zoo.report: every planned job of a sweep appears (done, failed, running, never started), metric
columns (final and best), timing/memory, protocol, and the Pillow plot."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from zoo import report


def _job(sweep, name, job=None, stats=(), metrics=(), overrides=()):
    d = sweep / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if job is not None:
        (d / "job.json").write_text(json.dumps(job))
    (d / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stats))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    return d


PROTOCOL = {"detector": "cifar10-detector.pt", "detector_sha256": "ab" * 32, "num_gen": 2000, "num_real": 50000,
            "dataset_name": "cifar10", "dataset_hash": "cd" * 16, "truncation_psi": 1.0}


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
              "kimg_target": 4, "sec_per_kimg": 12.5, "peak_mem_gb": 1.5, "peak_mem_kind": "process_max_rss",
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
    assert "cifar10-detector.pt (abababab" in md and "2000 generated" in md and "50000 real" in md
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
    assert report.main([str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert report.main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "report.md" in out and "| 0_progan" in out
    assert os.path.isfile(sweep / "report.png")
