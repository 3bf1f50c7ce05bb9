"""Fine-tuning (init=) from zoo checkpoints, NVIDIA-format files and pickles; architecture
mismatches; Freeze-D (freeze_d=); bad init= input failing before anything is written."""
import json
import os
import pickle

import pytest
import torch

from conftest import TINY, PicklePayload, compose_cfg
import zoo.apps.train as train_app
from zoo.core.checkpoint import find_latest_checkpoint, load_checkpoint
from zoo.core.errors import CheckpointError, ConfigError
from zoo.core.files import file_sha256
from zoo.interop.export import export
from zoo.training.finetune import frozen_layers
from zoo import registry

ITER = 8 / 1000


def _train(tmp_path, name, *extra):
    cfg = compose_cfg(overrides=TINY + [f"run_root={tmp_path}/runs", *extra])
    return train_app.train(cfg, run_dir=str(tmp_path / "runs" / name))


def _state(run_dir):
    return load_checkpoint(find_latest_checkpoint(run_dir))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A trained tiny run (fixed augmentation, so its checkpoint carries an augment_pipe p of 0.3)."""
    tmp = tmp_path_factory.mktemp("source")
    run_dir = _train(tmp, "src", f"kimg={2 * ITER}", "aug=fixed", "aug.p=0.3")
    return find_latest_checkpoint(run_dir)


def test_init_copies_the_networks_and_starts_a_new_run(source, tmp_path):
    src = load_checkpoint(source)
    assert src["augment"]["p"] > 0
    run_dir = _train(tmp_path, "ft", f"kimg={ITER}", f"init={source}", "model.glr=0", "model.dlr=0")
    state = _state(run_dir)
    assert state["progress"] == {"cur_nimg": 8, "batch_idx": 1}  # kimg from 0, not the source's
    steps = [int(s["step"]) for s in state["G_opt"]["state"].values()]
    assert steps and max(steps) <= 2  # fresh Adam: Gmain + Greg of the one iteration (the source ran 2)
    # with zero learning rates the weights are the source's (w_avg moves with the batch, as always)
    for which in ("G", "D"):
        for k, v in src[which].items():
            if not k.endswith("w_avg"):
                assert torch.equal(state[which][k], v), (which, k)
    record = state["init"]
    assert record["path"] == os.path.abspath(source) and record["sha256"] == file_sha256(source)
    assert record["strict"] is True and record["not_copied"] == {} and record["augment_p"] == pytest.approx(src["augment"]["p"])
    assert state["augment"]["p"] == pytest.approx(src["augment"]["p"], abs=0.01)  # ADA goes on from the source's p
    assert state["hparams"]["ema_rampup"] is None  # NVIDIA's resume settings
    job = json.load(open(os.path.join(run_dir, "job.json")))
    assert job["init"]["sha256"] == record["sha256"] and job["resumed_from"] is None


def test_init_from_an_nvidia_pickle_and_an_exported_file_fine_tunes(tmp_path):
    """A pickle in NVIDIA's layout (written by the test, with our tiny networks' tensors) and the file
    the project's exporter writes (`export format=nvidia`) both start a run that trains."""
    from test_interop import write_nvidia_pickle

    pkl = str(tmp_path / "network-snapshot.pkl")
    write_nvidia_pickle(pkl, "sg2-ada")  # 16 px, channel_base 256 / max 32, 2 mapping layers, z = w = 32: TINY
    run_dir = _train(tmp_path, "from-pkl", f"kimg={3 * ITER}", f"init={pkl}", "~quickstart")  # config F: noise inputs
    state = _state(run_dir)
    assert state["init"]["format"] == "nvidia-pytorch-pickle" and state["init"]["augment_p"] == 0.25  # augment_pipe.p
    from zoo.interop import load_any
    src = load_any(pkl)
    moved = [k for k, v in src["D"].items() if v.is_floating_point() and not torch.equal(state["D"][k], v)]
    assert moved  # it trained from there
    exported = str(tmp_path / "nvidia.pt")
    export(find_latest_checkpoint(run_dir), "nvidia", exported)
    state2 = _state(_train(tmp_path, "from-export", f"kimg={ITER}", f"init={exported}", "aug=noaug", "~quickstart"))
    assert state2["init"]["format"] == "zoo-nvidia-state-dicts" and "augment" not in state2


def test_architecture_mismatch_names_the_tensors_unless_not_strict(source, tmp_path):
    with pytest.raises(CheckpointError) as e:
        _train(tmp_path, "wide", f"kimg={ITER}", f"init={source}", "model.channel_max=64")
    msg = str(e.value)
    assert msg.startswith("init:") and "G_ema: same as G" in msg
    assert "synthesis.b4.const [32, 4, 4] in the file vs [64, 4, 4]" in msg and "b4.fc.weight [32, 512] in the file vs [64, 1024]" in msg
    assert "init_strict=false" in msg
    with pytest.raises(CheckpointError, match="mapping.fc1.weight"):
        _train(tmp_path, "cond", f"kimg={ITER}", f"init={source}", "data.use_labels=true")  # c_dim 5 vs 0
    state = _state(_train(tmp_path, "loose", f"kimg={ITER}", f"init={source}", "model.channel_max=64",
                          "init_strict=false", "model.glr=0", "model.dlr=0"))
    record = state["init"]
    assert record["tensors_copied"] > 0 and any("synthesis.b4.const" in s for s in record["not_copied"]["G"])
    src = load_checkpoint(source)
    assert torch.equal(state["G"]["mapping.fc0.weight"], src["G"]["mapping.fc0.weight"])  # same shape: copied
    assert torch.equal(state["D"]["b16.conv0.weight"], src["D"]["b16.conv0.weight"])


@pytest.mark.parametrize("n, frozen", [(4, ["b16.fromrgb", "b16.conv0", "b16.conv1", "b16.skip"]),
                                       (5, ["b16.fromrgb", "b16.conv0", "b16.conv1", "b16.skip", "b8.conv0"])])
def test_freeze_d_counts_nvidias_layers(n, frozen):
    D = registry.get("stylegan2").build_discriminator(img_resolution=16, channel_base=256, channel_max=32)
    assert [name for name, _ in frozen_layers(D, n)] == frozen
    with pytest.raises(ConfigError, match="freeze_d"):
        frozen_layers(D, 100)


def test_freeze_d_keeps_the_first_layers_bitwise(source, tmp_path):
    src = load_checkpoint(source)
    state = _state(_train(tmp_path, "frozen", f"kimg={4 * ITER}", f"init={source}", "freeze_d=5",
                          "model.D_reg_interval=2"))
    frozen = ("b16.fromrgb.", "b16.conv0.", "b16.conv1.", "b16.skip.", "b8.conv0.")
    for k, v in src["D"].items():
        if k.startswith(frozen):
            assert torch.equal(state["D"][k], v), k
    changed = [k for k, v in src["D"].items() if not k.startswith(frozen) and v.is_floating_point()
               and k.endswith("weight") and not torch.equal(state["D"][k], v)]
    assert "b8.conv1.weight" in changed and "b4.fc.weight" in changed
    D = registry.get("stylegan2").build_discriminator(**state["D_kwargs"])
    frozen_idx = {i for i, (name, _) in enumerate(D.named_parameters()) if name.startswith(frozen)}
    assert len(frozen_idx) == 9 and not frozen_idx & set(state["D_opt"]["state"])  # Adam never saw a gradient for them


@pytest.mark.parametrize("make, words", [
    (lambda tmp: str(tmp / "missing.pkl"), "does not exist"),
    (lambda tmp: _evil(tmp, ".pkl"), "refusing to load global"),
    (lambda tmp: _evil(tmp, ".pt"), "cannot start from"),
])
def test_bad_init_files_fail_before_anything_is_written(make, words, tmp_path):
    path = make(tmp_path)
    cfg = compose_cfg(overrides=TINY + [f"run_root={tmp_path}/runs", f"init={path}"])
    with pytest.raises(ConfigError) as e:
        train_app.train(cfg, run_dir=str(tmp_path / "runs" / "bad"))
    assert e.value.key == "init" and words in str(e.value) and "Fix:" in str(e.value)
    assert not os.path.exists(tmp_path / "runs") and not (tmp_path / "pwned").exists()


def _evil(tmp, suffix):
    path = tmp / f"evil{suffix}"
    with open(path, "wb") as f:
        pickle.dump({"G_ema": PicklePayload(os.system, f"touch {tmp / 'pwned'}")}, f, protocol=2)
    return str(path)


def test_init_and_resume_together_is_refused(source, tmp_path):
    cfg = compose_cfg(overrides=TINY + [f"run_root={tmp_path}/runs", f"init={source}", f"resume={source}"])
    with pytest.raises(ConfigError, match="init= and resume= cannot be used together") as e:
        train_app.train(cfg, run_dir=str(tmp_path / "runs" / "bad"))
    assert e.value.key == "init" and not os.path.exists(tmp_path / "runs")
    with pytest.raises(ConfigError, match="freeze_d"):
        train_app.train(compose_cfg(overrides=TINY + ["freeze_d=-1"]), run_dir=str(tmp_path / "runs" / "bad"))
