"""The training loop end to end on the built-in data: a few steps, checkpoints, exact resume,
2-process (gloo) equivalence, and the user errors it must report clearly."""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

import zoo
from conftest import ROOT, TINY, PicklePayload, compose_cfg
import zoo.apps.sample as sample_app
import zoo.apps.train as train_app
from zoo.core.errors import ConfigError
from zoo.core.checkpoint import CheckpointError, find_latest_checkpoint, load_checkpoint, save_checkpoint

ITER = 8 / 1000  # kimg of one iteration at batch 8


def _train(tmp_path, name, *extra):
    cfg = compose_cfg(overrides=TINY + [f"run_root={tmp_path}/runs", *extra])
    return train_app.train(cfg, run_dir=str(tmp_path / "runs" / name))


def _state(run_dir):
    return load_checkpoint(find_latest_checkpoint(run_dir))


def _assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        if atol == 0:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=atol, msg=k)


def test_few_steps_write_grids_metrics_and_a_self_describing_checkpoint(tmp_path):
    run_dir = _train(tmp_path, "run", f"kimg={3 * ITER}", "image_kimg=0.016")
    files = set(os.listdir(run_dir))
    assert {"reals.png", "fakes_init.png", "stats.jsonl", "network-snapshot-000000.pt"} <= files
    assert any(f.startswith("fakes0") for f in files)
    state = torch.load(os.path.join(run_dir, "network-snapshot-000000.pt"), weights_only=True)
    assert state["generation"] == "stylegan2"
    assert state["progress"] == {"cur_nimg": 24, "batch_idx": 3}
    assert state["config"]["model"]["channel_base"] == 256
    assert state["hparams"]["r1_gamma"] == pytest.approx(0.0002 * 16 ** 2 / 8)  # auto rule resolved
    assert {"G", "D", "G_ema", "G_opt", "D_opt", "loss", "G_kwargs", "D_kwargs", "rng"} <= state.keys()
    records = [json.loads(line) for line in open(os.path.join(run_dir, "stats.jsonl"))]
    assert records and all(torch.isfinite(torch.tensor(r["Loss/G/loss"])) for r in records)
    assert "Timing/sec_per_kimg" in records[-1] and "Resources/peak_mem_gb" in records[-1]
    job = json.load(open(os.path.join(run_dir, "job.json")))
    assert job["status"] == "done" and job["generation"] == "stylegan2" and job["kimg"] == pytest.approx(0.024)
    assert job["params_G"] == sum(p.numel() for p in zoo.load(state, which="G").parameters())
    assert job["sec_per_kimg"] > 0 and job["peak_mem_gb"] > 0 and job["last_checkpoint"].endswith(".pt")

    G = zoo.load(os.path.join(run_dir, "network-snapshot-000000.pt"))
    assert not G.training and G.img_resolution == 16
    img = G(torch.randn(2, G.z_dim), None, noise_mode="const")
    assert img.shape == (2, 3, 16, 16)
    D = zoo.load(os.path.join(run_dir, "network-snapshot-000000.pt"), which="D")
    assert D(img, None).shape == (2, 1)


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path):
    extra = ["model.D_reg_interval=4", "model.G_reg_interval=2"]  # regularizers on both sides of the cut
    full = _state(_train(tmp_path, "full", f"kimg={6 * ITER}", *extra))
    part_dir = _train(tmp_path, "part", f"kimg={3 * ITER}", *extra)
    part = _state(part_dir)
    assert part["progress"]["batch_idx"] == 3
    resumed = _state(_train(tmp_path, "resumed", f"kimg={6 * ITER}", f"resume={find_latest_checkpoint(part_dir)}", *extra))
    assert resumed["progress"] == full["progress"]
    for which in ("G", "D", "G_ema"):
        _assert_same(resumed[which], full[which])
    assert torch.equal(resumed["loss"]["pl_mean"], full["loss"]["pl_mean"])


def test_conditional_training_and_sampling(tmp_path):
    run_dir = _train(tmp_path, "cond", f"kimg={2 * ITER}", "data.use_labels=true")
    state = _state(run_dir)
    assert state["G_kwargs"]["c_dim"] == 5 and state["D_kwargs"]["c_dim"] == 5  # the 5 shape classes
    ckpt = find_latest_checkpoint(run_dir)
    with pytest.raises(ConfigError, match="class_idx"):
        sample_app.sample(compose_cfg("sample", overrides=[f"ckpt={ckpt}", "seeds=0-1"]), outdir=str(tmp_path / "s"))
    out = sample_app.sample(compose_cfg("sample", overrides=[f"ckpt={ckpt}", "seeds=0-1", "class_idx=3"]),
                     outdir=str(tmp_path / "s"))
    assert os.path.exists(os.path.join(out, "seed0001.png"))


def test_ctrl_c_saves_the_state_and_resume_auto_continues(tmp_path):
    import signal
    import time

    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=ROOT)
    runs = tmp_path / "runs"
    args = [sys.executable, os.path.join(ROOT, "train.py"), *TINY, f"run_root={runs}", "kimg=100", "tick_kimg=0.008",
            "snap_kimg=100", "image_kimg=100"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.glob("*/stats.jsonl")):
        time.sleep(0.2)
    while time.time() < deadline and len(next(runs.glob("*/stats.jsonl")).read_text().splitlines()) < 2:
        time.sleep(0.2)  # a few iterations in
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    ckpt = find_latest_checkpoint(str(runs))
    assert ckpt is not None and "interrupted; state saved" in out
    stopped_at = load_checkpoint(ckpt)["progress"]["batch_idx"]
    assert stopped_at >= 2

    cfg = compose_cfg(overrides=TINY + [f"run_root={runs}", "resume=auto", f"kimg={(stopped_at + 1) * ITER}"])
    assert train_app.train(cfg) == os.path.dirname(ckpt)
    assert load_checkpoint(find_latest_checkpoint(str(runs)))["progress"]["batch_idx"] == stopped_at + 1


def test_resume_auto_continues_the_latest_run(tmp_path, capsys):
    run_dir = _train(tmp_path, "first", f"kimg={2 * ITER}")
    cont = _train(tmp_path, "second", f"kimg={4 * ITER}", "resume=auto")
    assert cont == run_dir  # continued in place
    assert _state(run_dir)["progress"]["batch_idx"] == 4
    assert "resume=auto: continuing" in capsys.readouterr().out


def test_resume_refuses_a_checkpoint_of_another_generation(tmp_path):
    run_dir = _train(tmp_path, "run", f"kimg={ITER}")
    path = find_latest_checkpoint(run_dir)
    state = load_checkpoint(path)
    state["generation"] = "progan"
    bad = save_checkpoint(str(tmp_path / "other.pt"), state)
    with pytest.raises(CheckpointError, match="'progan'.*'stylegan2'"):
        _train(tmp_path, "again", f"kimg={2 * ITER}", f"resume={bad}")


def test_resume_refuses_a_different_architecture(tmp_path):
    path = find_latest_checkpoint(_train(tmp_path, "run", f"kimg={ITER}"))
    with pytest.raises(CheckpointError, match="channel_max"):
        _train(tmp_path, "again", f"kimg={2 * ITER}", f"resume={path}", "model.channel_max=64")


def test_untrusted_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = PicklePayload(os.system, f"touch {marker}")
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "zoo-checkpoint", "payload": evil}, f, protocol=2)
    with pytest.raises(CheckpointError, match="not a loadable zoo checkpoint"):
        zoo.load(str(path))
    assert not marker.exists()


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = str(tmp_path / "ckpt.pt")
    save_checkpoint(path, {"x": torch.ones(3)})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, {"x": torch.zeros(3)})
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(3))  # old file intact
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temp file left behind


@pytest.mark.distributed
def test_two_gloo_processes_equal_one_process_on_the_same_total_batch(tmp_path):
    common = ["batch=8", f"kimg={2 * ITER}", "model.D_reg_interval=2"]
    # One thread per process on both sides, so oneDNN reduces in the same order. The 1/rounds
    # loss gain is a power of two and each chunk is one backward pass, so the chunk gradients
    # associate identically: the runs agree bit for bit, running statistics (w_avg, pl_mean) too.
    one = _state(_train(tmp_path, "one", *common, "gpus=1", "batch_gpu=4", "threads=1"))
    two = _state(_train(tmp_path, "two", *common, "gpus=2", "threads=1"))
    assert two["progress"] == one["progress"]
    for which in ("G", "D", "G_ema"):
        _assert_same(one[which], two[which])
    assert torch.equal(one["loss"]["pl_mean"], two["loss"]["pl_mean"])


def _run_script(script, args, cwd):
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_train_and_sample_scripts_end_to_end_from_another_directory(tmp_path):
    run_dir = tmp_path / "run"
    r = _run_script("train.py", TINY + [f"kimg={2 * ITER}", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = find_latest_checkpoint(str(run_dir))
    assert ckpt is not None

    out1, out2 = tmp_path / "s1", tmp_path / "s2"
    for out in (out1, out2):
        r = _run_script("sample.py", [f"ckpt={ckpt}", "seeds=0-3", "trunc=0.7", f"outdir={out}", "device=cpu"], cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
    names = sorted(os.listdir(out1))
    assert names == ["grid.png", "sample.json", "seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png"]
    for n in names[2:]:
        assert (out1 / n).read_bytes() == (out2 / n).read_bytes()  # seeds give the same image every run

    r = _run_script("sample.py", [f"ckpt={ckpt}", "model=stylegan2", f"outdir={tmp_path / 's3'}"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]


def test_sample_refuses_a_checkpoint_of_another_generation(tmp_path):
    from omegaconf import open_dict

    run_dir = _train(tmp_path, "run", f"kimg={ITER}")
    cfg = compose_cfg("sample", overrides=[f"ckpt={find_latest_checkpoint(run_dir)}", "model=stylegan2"])
    with open_dict(cfg):
        cfg.model.name = "stylegan3"  # as if model=stylegan3 had been asked for
    with pytest.raises(ConfigError, match="holds a 'stylegan2' model, not 'stylegan3'"):
        sample_app.sample(cfg, outdir=str(tmp_path / "out"))


def test_train_script_reports_bad_input_in_one_line(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"this is not a png")
    tiny = [o for o in TINY if not o.startswith("data.num_images")]  # a shapes-only option
    r = _run_script("train.py", tiny + ["data=folder", f"data.path={folder}", f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path)
    assert r.returncode == 2
    assert "broken.png" in r.stderr and "Traceback" not in r.stderr

    r = _run_script("train.py", TINY + ["resolution=48", f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path)
    assert r.returncode == 2 and "resolution" in r.stderr and "power of two" in r.stderr


@pytest.mark.slow
def test_multirun_sweep_writes_one_directory_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    r = _run_script("train.py", ["-m", *TINY, f"kimg={ITER}", "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = sorted(os.listdir(sweep))
    assert [j for j in jobs if not j.startswith(".") and j != "multirun.yaml"] == ["0_stylegan2", "1_stylegan2"]
    for job in ("0_stylegan2", "1_stylegan2"):
        assert find_latest_checkpoint(str(sweep / job)) is not None


@pytest.mark.slow
def test_torchrun_launch_shares_one_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=ROOT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           os.path.join(ROOT, "train.py"), *TINY, "gpus=2", f"kimg={2 * ITER}", f"hydra.run.dir={run_dir}"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _state(str(run_dir))["progress"]["batch_idx"] == 2


def test_a_failing_job_is_recorded_as_failed(tmp_path):
    cfg = compose_cfg(overrides=TINY + [f"run_root={tmp_path}/runs", "batch=7"])  # not divisible by mbstd
    with pytest.raises(ConfigError):
        train_app.train(cfg, run_dir=str(tmp_path / "runs" / "bad"))
    job = json.load(open(tmp_path / "runs" / "bad" / "job.json"))
    assert job["status"] == "failed" and "batch" in job["error"]
