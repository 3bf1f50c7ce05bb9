"""Every entry point is a Hydra app: ``--help`` works, a misspelled key fails at composition naming
it, and the commands that always took positional arguments still do."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from zoo.apps import APPS, app
from zoo.apps.common import listify_argv, positional_argv

COMMANDS = {
    "train": ["train.py"], "sample": ["sample.py"], "metrics": ["-m", "zoo.metrics"],
    "prepare": ["-m", "zoo.data.prepare"], "convert": ["-m", "zoo.interop.convert"],
    "export": ["-m", "zoo.interop.export"], "bench": ["-m", "zoo.bench"], "report": ["-m", "zoo.report"],
    "visualizer": ["-m", "zoo.visualizer"],
}


def _run(name, *args):
    cmd = COMMANDS[name]
    cmd = [os.path.join(ROOT, cmd[0])] if cmd[0].endswith(".py") else cmd
    env = dict(os.environ, WANDB_MODE="disabled", HYDRA_FULL_ERROR="0")
    return subprocess.run([sys.executable, *cmd, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_every_app_has_a_command_and_a_config():
    assert set(COMMANDS) == set(APPS)
    for name in APPS:
        spec = app(name)
        assert spec.config_name == name and os.path.isfile(os.path.join(ROOT, "conf", f"{name}.yaml"))


@pytest.mark.parametrize("name", ["train", "bench", "report", "convert", "visualizer"])
def test_help_and_a_misspelled_key(name):
    r = _run(name, "--help")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Override anything" in r.stdout or "Keys" in r.stdout or "== Config ==" in r.stdout
    r = _run(name, "no_such_key=1")
    assert r.returncode != 0 and "no_such_key" in r.stderr


def test_positional_arguments_become_overrides():
    assert positional_argv(["a.pkl", "b.pt"], ["src", "dst"]) == ["src='a.pkl'", "dst='b.pt'"]
    assert positional_argv(["sweep/dir", "--out", "it's"], ["sweep"], {"--out": "out"}) == \
        ["sweep='sweep/dir'", "out='it\\'s'"]
    # key=value arguments and Hydra's own flags pass through; extra positionals are left for Hydra to refuse
    assert positional_argv(["--cfg", "job", "src=x", "y"], ["src", "dst"]) == ["--cfg", "job", "src=x", "dst='y'"]
    assert listify_argv(["seeds=1,5", "metrics.names=fid2k"], ["seeds"], ["metrics.names"]) == \
        ["seeds=[1,5]", "metrics.names=[fid2k]"]
    assert listify_argv(["-m", "seeds=1,5"], ["seeds"]) == ["-m", "seeds=1,5"]  # a sweep under -m


def test_report_takes_the_sweep_directory_positionally(tmp_path):
    r = _run("report", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and r.stderr.strip().startswith("error: sweep:") and "not a directory" in r.stderr


def test_bench_takes_a_model_name_as_in_the_readme():
    r = _run("bench", "model=stylegan2", "mode=inference", "resolution=16", "channel_base=256", "batch=2",
             "min_seconds=0", "min_iters=1", "warmup=0")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "stylegan2  inference" in r.stdout and "progan" not in r.stdout
