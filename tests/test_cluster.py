"""Beyond one machine: ``nodes=``, ranks from torchrun and submitit, two torchrun "nodes" on
127.0.0.1 against one process, Hydra's submitit launcher (a 2-job sweep, preempted and requeued),
stop signals with exact resume, requeueing through scontrol, and time-based snapshots."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, TINY, compose_cfg
import zoo.apps.train as train_app
import zoo.core.checkpoint as ckpt_lib
from zoo.apps.common import insert_overrides
from zoo.core import distributed as dist_lib
from zoo.core.checkpoint import find_latest_checkpoint, load_checkpoint
from zoo.core.errors import ConfigError
from zoo.training import cluster
from zoo.training.config import validate
from zoo.training.trainer import Trainer

ITER = 8 / 1000  # kimg of one iteration at batch 8
LAUNCH_VARS = ("TORCHELASTIC_RUN_ID", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "SUBMITIT_EXECUTOR",
               "SLURM_JOB_ID", "MASTER_ADDR", "MASTER_PORT")
SUBMITIT = "hydra_plugins.hydra_submitit_launcher"


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    return dict(env, WANDB_MODE="disabled", PYTHONPATH=ROOT, **extra)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(tmp_path, name, *extra):
    cfg = compose_cfg(overrides=TINY + [f"run_root={tmp_path}/runs", *extra])
    return train_app.train(cfg, run_dir=str(tmp_path / "runs" / name))


def _assert_same_state(a, b):
    assert a["progress"] == b["progress"]
    for which in ("G", "D", "G_ema"):
        assert a[which].keys() == b[which].keys()
        for k in a[which]:
            assert torch.equal(a[which][k], b[which][k]), (which, k)
    assert torch.equal(a["loss"]["pl_mean"], b["loss"]["pl_mean"])


def _wait_for_ticks(stats_glob, n, procs, deadline):
    """Wait until a ``stats.jsonl`` matching the glob has ``n`` lines (one per iteration here)."""
    while time.time() < deadline:
        for path in stats_glob():
            if len(path.read_text().splitlines()) >= n:
                return path
        if any(p.poll() is not None for p in procs):
            raise AssertionError("the training ended before it could be signalled")
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the training to start")


def _kill_all(procs):
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


# ------------------------------------------------------------------------------------------------
# Config and launcher environment
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, key, text", [
    (["nodes=2", "gpus=2", "batch=6"], "batch", "nodes×gpus = 2×2 = 4"),
    (["nodes=2", "gpus=2", "batch=16", "batch_gpu=3"], "batch_gpu", "nodes×gpus×batch_gpu = 2×2×3"),
    (["nodes=0"], "nodes", ">= 1"),
    (["snap_minutes=0"], "snap_minutes", "> 0"),
])
def test_nodes_split_the_total_batch_over_every_process(overrides, key, text):
    with pytest.raises(ConfigError) as e:
        validate(compose_cfg(overrides=TINY + overrides), check_data=False)
    assert e.value.key == key and text in str(e.value)
    validate(compose_cfg(overrides=TINY + ["nodes=2", "gpus=2", "batch=16", "batch_gpu=2"]), check_data=False)


def test_nodes_above_one_need_a_launcher(tmp_path, monkeypatch):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="torchrun --nnodes 2 --nproc_per_node 1") as e:
        _train(tmp_path, "run", "nodes=2")
    assert e.value.key == "nodes"
    assert json.load(open(tmp_path / "runs" / "run" / "job.json"))["status"] == "failed"


def test_ranks_come_from_torchrun_and_the_launch_must_match_nodes_and_gpus(tmp_path, monkeypatch):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    assert dist_lib.launcher_env() is None
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    for var, value in {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(var, value)
    env = dist_lib.launcher_env()
    assert env == dist_lib.LauncherEnv("torchrun", rank=3, local_rank=1, world_size=4, local_world_size=2)
    assert env.nodes == 2

    monkeypatch.setenv("RANK", "0")  # rank 0 records the failure; no process group is started
    with pytest.raises(ConfigError, match="started 4 processes .2 node.s. × 2. but nodes=1 gpus=2") as e:
        _train(tmp_path, "run", "gpus=2")
    assert e.value.key == "nodes" and "pass nodes=2 gpus=2" in str(e.value)
    with pytest.raises(ConfigError) as e:
        _train(tmp_path, "run", "nodes=2", "gpus=1")
    assert e.value.key == "gpus"


def test_ranks_and_rendezvous_of_a_submitit_slurm_task(monkeypatch):
    pytest.importorskip("submitit", reason="the [slurm] extra (hydra-submitit-launcher) is not installed")
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    slurm = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "4242", "SLURM_NTASKS": "16", "SLURM_JOB_NUM_NODES": "2",
             "SLURM_NODEID": "1", "SLURM_PROCID": "9", "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "gpu[007-008]"}
    for var, value in slurm.items():
        monkeypatch.setenv(var, value)
    env = dist_lib.launcher_env()
    assert env == dist_lib.LauncherEnv("submitit-slurm", rank=9, local_rank=1, world_size=16, local_world_size=8)
    joined = []
    monkeypatch.setattr(dist_lib, "init_process_group", lambda *args: joined.append(args))
    dist_lib.init_launched_group(env, torch.device("cpu"))
    assert joined == [(9, 16, torch.device("cpu"))]
    assert os.environ["MASTER_ADDR"] == "gpu007"  # the job's first node
    port = int(os.environ["MASTER_PORT"])
    assert 20000 <= port <= 60000
    monkeypatch.delenv("MASTER_PORT")
    dist_lib.init_launched_group(env, torch.device("cpu"))
    assert int(os.environ["MASTER_PORT"]) == port  # derived from the job id: the same on every task


# ------------------------------------------------------------------------------------------------
# Two torchrun "nodes" on 127.0.0.1
# ------------------------------------------------------------------------------------------------

@pytest.mark.distributed
def test_two_torchrun_nodes_equal_one_process_on_the_same_total_batch(tmp_path):
    common = ["batch=8", f"kimg={2 * ITER}", "model.D_reg_interval=2", "threads=1"]
    one = load_checkpoint(find_latest_checkpoint(_train(tmp_path, "one", *common, "gpus=1", "batch_gpu=4")))

    port, procs = _free_port(), []
    try:
        for node in (0, 1):  # c10d assigns the ranks; each "node" names its own run directory
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                   "--node_rank", str(node), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
                   "--rdzv-id", f"zoo-test-{port}", "--local-addr", "127.0.0.1", os.path.join(ROOT, "train.py"),
                   *TINY, *common, "nodes=2", "gpus=1", f"run_root={tmp_path}/runs", f"hydra.run.dir={tmp_path}/node{node}"]
            procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, start_new_session=True))
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        _kill_all(procs)
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    # one run directory, rank 0's: the other rank's Hydra directory is gone
    dirs = [d for d in ("node0", "node1") if (tmp_path / d).exists()]
    assert len(dirs) == 1 and all(f"run directory: {tmp_path / dirs[0]}" in o for o in outs)
    assert (tmp_path / dirs[0] / ".hydra").is_dir() and len(list((tmp_path / dirs[0]).glob("network-snapshot-*.pt"))) == 1
    _assert_same_state(load_checkpoint(find_latest_checkpoint(str(tmp_path / dirs[0]))), one)


# ------------------------------------------------------------------------------------------------
# Hydra's submitit launcher
# ------------------------------------------------------------------------------------------------

def test_submitit_launcher_takes_the_shape_of_the_job_from_nodes_and_gpus():
    pytest.importorskip(SUBMITIT, reason="the [slurm] extra (hydra-submitit-launcher) is not installed")
    argv = ["-m", "hydra/launcher=submitit_slurm", "nodes=2", "gpus=8"]
    extra = train_app.cluster_overrides(argv)
    assert extra == ["hydra.launcher.nodes=${nodes}", "hydra.launcher.tasks_per_node=${gpus}",
                     "hydra.launcher.gpus_per_node=${gpus}", "hydra.launcher.max_num_timeout=100"]
    cfg = compose_cfg(overrides=TINY + argv[1:] + extra, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node, launcher.max_num_timeout) == (2, 8, 8, 100)
    assert launcher._target_.endswith("SlurmLauncher")
    # keys given on the command line win; device=cpu asks SLURM for no GPUs; other launchers get nothing
    assert train_app.cluster_overrides(argv + ["hydra.launcher.tasks_per_node=1", "device=cpu"]) == \
        ["hydra.launcher.nodes=${nodes}", "hydra.launcher.max_num_timeout=100"]
    assert train_app.cluster_overrides(["-m", "seed=0,1"]) == []
    assert insert_overrides(["-m", "a=1", "--cfg", "job"], ["b=2"]) == ["-m", "a=1", "b=2", "--cfg", "job"]


def test_a_missing_launcher_plugin_is_one_clear_line(monkeypatch):
    import importlib.util

    from zoo.apps import common

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == SUBMITIT else real(name, *a))
    with pytest.raises(ConfigError, match=r'submitit_slurm needs the hydra-submitit-launcher plugin.*\.\[slurm\]'):
        common._check_launcher(["-m", "hydra/launcher=submitit_slurm"])
    common._check_launcher(["-m", "seed=0,1"])


@pytest.mark.distributed
def test_submitit_local_sweep_is_preempted_requeued_and_continues_exactly(tmp_path):
    """A 2-job sweep, 2 tasks each (gloo, submitit's rendezvous). Job 0 gets SIGTERM mid-run: it saves,
    submitit requeues it, the restarted tasks continue from the job's own checkpoint (resume=auto; job 1
    writes checkpoints under the same run_root meanwhile) and end with the weights of one
    uninterrupted process on the same total batch."""
    pytest.importorskip(SUBMITIT, reason="the [slurm] extra (hydra-submitit-launcher) is not installed")
    iters = 20
    common = ["batch=8", f"kimg={iters * ITER}", "threads=1"]
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "-m", "hydra/launcher=submitit_local", *TINY, *common,
           "gpus=2", "seed=0,1", "resume=auto", "tick_kimg=0.008", "snap_kimg=100", "image_kimg=100",
           f"run_root={tmp_path}/runs", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        _wait_for_ticks(lambda: list(sweep.glob("0_*/stats.jsonl")), 2, [proc], time.time() + 240)
        job0 = next(sweep.glob("0_*"))
        os.kill(json.load(open(job0 / "job.json"))["pid"], signal.SIGTERM)  # rank 0 of job 0
        out = proc.communicate(timeout=300)[0]
    finally:
        _kill_all([proc])
    assert proc.returncode == 0, out[-3000:]

    logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_0_log.out"))
    assert "[zoo] preempted; state saved to" in logs and "requeueing the job through submitit" in logs
    assert f"resume=auto: continuing {job0}" in logs
    assert "Requeued job" in logs  # submitit's own message
    jobs = {d.name: json.load(open(d / "job.json")) for d in sweep.iterdir() if d.name[0].isdigit()}
    assert sorted(jobs) == ["0_stylegan2", "1_stylegan2"] and all(j["status"] == "done" for j in jobs.values())
    assert jobs["0_stylegan2"]["resumed_from"].startswith(str(job0)) and jobs["1_stylegan2"]["resumed_from"] is None

    one = load_checkpoint(find_latest_checkpoint(_train(tmp_path, "one", *common, "gpus=1", "batch_gpu=4")))
    _assert_same_state(load_checkpoint(find_latest_checkpoint(str(job0))), one)
    assert load_checkpoint(find_latest_checkpoint(str(sweep / "1_stylegan2")))["progress"]["batch_idx"] == iters


# ------------------------------------------------------------------------------------------------
# Signals, requeueing, time-based snapshots
# ------------------------------------------------------------------------------------------------

def test_sigusr1_saves_a_checkpoint_and_resume_auto_continues_exactly(tmp_path):
    runs = tmp_path / "runs"
    args = [sys.executable, os.path.join(ROOT, "train.py"), *TINY, f"run_root={runs}", "kimg=100", "tick_kimg=0.008",
            "snap_kimg=100", "image_kimg=100", "threads=1"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stats = _wait_for_ticks(lambda: list(runs.glob("*/stats.jsonl")), 2, [proc], time.time() + 120)
        proc.send_signal(signal.SIGUSR1)
        out, err = proc.communicate(timeout=120)
    finally:
        _kill_all([proc])
    assert proc.returncode == 130, err[-2000:]
    assert "preempted; state saved to" in out
    job = json.load(open(stats.parent / "job.json"))
    assert job["status"] == "preempted" and job["signal"] == "SIGUSR1" and job["requeue"] is None
    stopped_at = load_checkpoint(find_latest_checkpoint(str(runs)))["progress"]["batch_idx"]
    assert stopped_at >= 2

    kimg = f"kimg={(stopped_at + 2) * ITER}"
    cfg = compose_cfg(overrides=TINY + [f"run_root={runs}", "resume=auto", kimg, "threads=1"])
    assert train_app.train(cfg) == str(stats.parent)
    full = _train(tmp_path / "full", "full", kimg, "threads=1")
    _assert_same_state(load_checkpoint(find_latest_checkpoint(str(stats.parent))), load_checkpoint(find_latest_checkpoint(full)))


def test_a_preempted_slurm_job_is_requeued_with_scontrol(tmp_path, monkeypatch, capsys):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    assert cluster.requeue_plan("auto") is None  # not a cluster job: the run just stops
    log = tmp_path / "scontrol.log"
    fake = tmp_path / "bin" / "scontrol"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "31337")
    assert cluster.requeue_plan(None) is None  # would start over: not requeued, and said so
    assert "continues only with resume=auto" in capsys.readouterr().out
    plan = cluster.requeue_plan("auto")
    assert plan == "scontrol"
    cluster.requeue(plan, signal.SIGTERM)
    assert log.read_text().split() == ["requeue", "31337"]
    assert "requeued SLURM job 31337" in capsys.readouterr().out


def test_stop_signals_tell_ctrl_c_from_preemption():
    with cluster.StopSignals() as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.preempted
        signal.raise_signal(signal.SIGUSR1)  # a second preemption signal keeps saving
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while stopping: give up at once
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # the previous handlers are back
    exc = stop.exception()
    assert isinstance(exc, cluster.Preempted) and exc.signame == "SIGUSR1" and isinstance(exc, KeyboardInterrupt)
    with cluster.StopSignals() as stop:
        signal.raise_signal(signal.SIGINT)
    assert stop.requested and not stop.preempted and type(stop.exception()) is KeyboardInterrupt


def _agree_worker(rank, world_size, init_file, out_dir):
    dist_lib.init_process_group(rank, world_size, torch.device("cpu"), init_file)
    stop = cluster.StopSignals()
    stop.requested = stop.preempted = rank == 1  # only rank 1 was signalled
    first = cluster.agree(stop, rank == 1, rank, world_size, torch.device("cpu"))  # rank 1's clock does not count
    second = cluster.agree(cluster.StopSignals(), rank == 0, rank, world_size, torch.device("cpu"))
    with open(os.path.join(out_dir, f"{rank}.json"), "w") as f:
        json.dump([stop.requested, stop.preempted, *first, *second], f)
    dist_lib.shutdown(True)


@pytest.mark.distributed
def test_every_rank_agrees_on_stopping_and_on_rank_0s_snapshot_clock(tmp_path):
    dist_lib.launch(_agree_worker, 2, str(tmp_path), args=(str(tmp_path),))
    for rank in (0, 1):
        # [stop flags after the first call, (stop, snapshot) of the first call, of the second]
        assert json.load(open(tmp_path / f"{rank}.json")) == [True, True, True, False, False, True]


def test_snap_minutes_writes_snapshots_by_wall_time(tmp_path, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(cluster, "clock", lambda: now[0])
    step = Trainer.step

    def step_40s(self, *args):  # every iteration takes 40 "seconds"
        step(self, *args)
        now[0] += 40

    saved = []
    save = ckpt_lib.save_checkpoint

    def record(path, state):
        saved.append(state["progress"]["batch_idx"])
        return save(path, state)

    monkeypatch.setattr(Trainer, "step", step_40s)
    monkeypatch.setattr(ckpt_lib, "save_checkpoint", record)
    _train(tmp_path, "timed", f"kimg={7 * ITER}", "snap_kimg=100", "snap_minutes=1")
    assert saved == [2, 4, 6, 7]  # 80 s > 1 min after the start, then after each snapshot; and the end
    saved.clear()
    _train(tmp_path, "plain", f"kimg={7 * ITER}", "snap_kimg=100")
    assert saved == [7]


def test_resume_auto_in_a_sweep_continues_only_the_jobs_own_directory(tmp_path):
    cfg = compose_cfg(overrides=TINY + [f"run_root={tmp_path}", "resume=auto"])
    other, own = tmp_path / "sweep" / "1_stylegan2", tmp_path / "sweep" / "0_stylegan2"
    other.mkdir(parents=True)
    (other / "network-snapshot-000004.pt").write_bytes(b"")
    assert train_app._run_dir_and_resume(cfg, str(own), sweep=True) == (str(own), None)  # another job's run
    assert train_app._run_dir_and_resume(cfg, str(own)) == (str(other), str(other / "network-snapshot-000004.pt"))
    own.mkdir()
    (own / "network-snapshot-000002.pt").write_bytes(b"")
    assert train_app._run_dir_and_resume(cfg, str(own), sweep=True) == (str(own), str(own / "network-snapshot-000002.pt"))
