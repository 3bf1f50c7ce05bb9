"""Importing NVIDIA's PyTorch network pickles (stylegan2-ada-pytorch / stylegan3) safely.

The fixtures are synthetic: the pickle streams are written here with the official module and class
names and ``nn.Module.__dict__`` state layout of ``torch_utils.persistence`` objects, holding the
tensors of *our* tiny models (so every tensor is in place and images can be compared). No NVIDIA
code is used or embedded (``module_src`` is a placeholder line)."""
from __future__ import annotations

import collections
import io
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import PicklePayload, RenamingPickler
import torch

import zoo
import zoo.apps.sample as sample_app
from zoo import registry
from zoo.interop import load_any
from zoo.interop.nvidia import import_nvidia_pickle
from zoo.interop.safe_pickle import InteropError, UnsafePickleError, safe_load
from zoo.models import stylegan3 as s3
from zoo.core.checkpoint import CheckpointError, save_checkpoint

from conftest import ROOT, compose_cfg

# ------------------------------------------------------------------------------------------------
# Writing NVIDIA-format pickles without NVIDIA's code
# ------------------------------------------------------------------------------------------------


def _reconstruct_stand_in(meta):  # pragma: no cover - only ever pickled by reference
    raise AssertionError("never called")


class _EasyDictStandIn(dict):
    """Written to the stream under the global name ``dnnlib.util.EasyDict`` (see the pickler below)."""


class _Persistent:
    """Pickles as ``torch_utils.persistence._reconstruct_persistent_obj(meta)``."""

    def __init__(self, meta):
        self.meta = meta


class NvidiaStylePickler(RenamingPickler):
    """Pure-Python pickler that writes chosen objects as the official global names."""

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[types.FunctionType] = lambda self, obj: self.save_global(obj)

    def __init__(self, f, numpy_module="numpy.core.multiarray"):
        super().__init__(f, protocol=4)
        rec, scal = np.ndarray((0,)).__reduce__()[0], np.float32(0).__reduce__()[0]
        self.names = {
            id(_reconstruct_stand_in): ("torch_utils.persistence", "_reconstruct_persistent_obj"),
            id(_EasyDictStandIn): ("dnnlib.util", "EasyDict"),
            id(rec): (numpy_module, "_reconstruct"),
            id(scal): (numpy_module, "scalar"),
        }

    def reducer_override(self, obj):
        if isinstance(obj, _Persistent):
            return (_reconstruct_stand_in, (obj.meta,))
        return NotImplemented


def _edict(d):
    out = _EasyDictStandIn()
    for k, v in d.items():
        out[k] = _edict(v) if isinstance(v, dict) else v
    return out


def _persistent(module: torch.nn.Module, init_kwargs=None, rename=None, reshape=None, prefix=""):
    """The persistence meta of ``module``: its ``nn.Module.__dict__`` layout with child modules
    nested as persistent objects (``rename``/``reshape`` corrupt one key for the strictness tests)."""
    params = collections.OrderedDict()
    for n, p in module._parameters.items():
        if p is None:
            params[n] = None
            continue
        t = p.detach().clone()
        if reshape == prefix + n:
            t = torch.cat([t.flatten(), t.flatten()[:1]])
        params[(rename[1] if rename and rename[0] == prefix + n else n)] = torch.nn.Parameter(t, requires_grad=False)
    buffers = collections.OrderedDict((n, None if b is None else b.detach().clone()) for n, b in module._buffers.items())
    state = {
        "training": False,
        "_parameters": params,
        "_buffers": buffers,
        "_non_persistent_buffers_set": set(module._non_persistent_buffers_set),
        "_backward_hooks": collections.OrderedDict(),
        "_forward_hooks": collections.OrderedDict(),
        "_forward_pre_hooks": collections.OrderedDict(),
        "_state_dict_hooks": collections.OrderedDict(),
        "_load_state_dict_pre_hooks": collections.OrderedDict(),
        "_modules": collections.OrderedDict(
            (n, _persistent(c, rename=rename, reshape=reshape, prefix=f"{prefix}{n}.")) for n, c in module._modules.items()),
        "_init_args": (),
        "_init_kwargs": _edict(init_kwargs or {}),
        # plain attributes as the official modules carry them (NumPy scalars and arrays)
        "weight_gain": np.float32(0.125),
        "in_size": np.array([36, 36], dtype=np.int64),
    }
    src = f"# stand-in module text for {type(module).__name__} (zoo test fixture, not NVIDIA's source)\n"
    return _Persistent(dict(type="class", version=6, module_src=src, class_name=type(module).__name__, state=state))


def _dumps(obj, numpy_module="numpy.core.multiarray") -> bytes:
    f = io.BytesIO()
    NvidiaStylePickler(f, numpy_module).dump(obj)
    return f.getvalue()


# Tiny networks, and the official init kwargs each flavour records for them.
Z, W, MAP, CB, CM, RES = 32, 32, 2, 256, 32, 16

CASES = {
    # name: (generation, flavour, config, c_dim)
    "sg2-ada": ("stylegan2", "ada", None, 0),
    "sg2-ada-cond": ("stylegan2", "ada", None, 3),
    "sg2-sg3repo": ("stylegan2", "sg3", None, 0),
    "sg2-sg3repo-cond": ("stylegan2", "sg3", None, 4),
    "sg3-t": ("stylegan3", "sg3", "t", 0),
    "sg3-r": ("stylegan3", "sg3", "r", 0),
    "sg3-t-cond": ("stylegan3", "sg3", "t", 2),
}


def _build(case, seed=0):
    generation, flavour, config, c_dim = CASES[case]
    spec = registry.get(generation)
    ada = flavour == "ada"
    common = dict(c_dim=c_dim, img_resolution=RES, img_channels=3)
    if generation == "stylegan2":
        G_kwargs = dict(common, z_dim=Z, w_dim=W, mapping_layers=MAP, channel_base=CB, channel_max=CM,
                        w_avg_beta=0.995 if ada else 0.998, conv_clamp=None if ada else 256)
        if ada:
            off_G = dict(common, z_dim=Z, w_dim=W, mapping_kwargs=dict(num_layers=MAP),
                         synthesis_kwargs=dict(channel_base=CB, channel_max=CM, num_fp16_res=0, conv_clamp=None))
        else:
            off_G = dict(z_dim=Z, w_dim=W, mapping_kwargs=dict(num_layers=MAP), channel_base=CB, channel_max=CM,
                         fused_modconv_default="inference_only", num_fp16_res=4, conv_clamp=256, **common)
    else:
        G_kwargs = dict(common, z_dim=Z, w_dim=W, mapping_layers=MAP, magnitude_ema_beta=0.99,
                        **s3.config_kwargs(config, CB, CM))
        off_G = dict(z_dim=Z, w_dim=W, mapping_kwargs=dict(num_layers=MAP), magnitude_ema_beta=0.99,
                     num_fp16_res=4, conv_clamp=256, **s3.config_kwargs(config, CB, CM), **common)
        if config == "t":
            off_G.pop("conv_kernel"), off_G.pop("use_radial_filters")  # train.py sets them for R only
    D_kwargs = dict(common, channel_base=CB, channel_max=CM, conv_clamp=None if ada else 256)
    off_D = dict(common, channel_base=CB, channel_max=CM, num_fp16_res=0 if ada else 4,
                 conv_clamp=None if ada else 256, block_kwargs={}, mapping_kwargs={},
                 epilogue_kwargs=dict(mbstd_group_size=4))
    torch.manual_seed(seed)
    nets = {}
    for k in ("G", "G_ema"):
        nets[k] = spec.build_generator(**G_kwargs).eval().requires_grad_(False)
    nets["D"] = spec.build_discriminator(**D_kwargs).eval().requires_grad_(False)
    with torch.no_grad():  # every tensor distinct from its initial value
        for net in nets.values():
            for p in net.parameters():
                p.add_(0.3 * torch.randn_like(p))
            for n, b in net.named_buffers():
                if n.endswith("w_avg") or n.endswith("noise_const"):
                    b.copy_(torch.randn_like(b))
    return nets, off_G, off_D


def _augment_pipe():
    m = torch.nn.Module()
    m.register_buffer("p", torch.tensor(0.25))
    m.register_buffer("Hz_geom", torch.randn(12))
    m.register_buffer("Hz_fbank", torch.randn(4, 7))
    m.__class__ = type("AugmentPipe", (torch.nn.Module,), {})
    return m


def write_nvidia_pickle(path, case, numpy_module="numpy.core.multiarray", rename=None, reshape=None, seed=0):
    nets, off_G, off_D = _build(case, seed)
    flavour = CASES[case][1]
    data = {
        "G": _persistent(nets["G"], off_G),
        "D": _persistent(nets["D"], off_D),
        "G_ema": _persistent(nets["G_ema"], off_G, rename=rename, reshape=reshape),
        "augment_pipe": _persistent(_augment_pipe(), dict(xflip=1, rotate90=1)),
        "training_set_kwargs": _edict(dict(class_name="training.dataset.ImageFolderDataset", path="~/ffhq.zip",
                                           use_labels=False, max_size=70000, xflip=True, resolution=RES,
                                           random_seed=0)),
    }
    if flavour == "ada":  # ada-pytorch's insertion order
        data = {k: data[k] for k in ("training_set_kwargs", "G", "D", "G_ema", "augment_pipe")}
    blob = _dumps(data, numpy_module)
    with open(path, "wb") as f:
        f.write(blob)
    return nets, blob


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_import_identifies_and_keeps_every_tensor(case, tmp_path):
    generation, flavour, config, c_dim = CASES[case]
    path = tmp_path / f"{case}.pkl"
    nets, blob = write_nvidia_pickle(path, case)
    assert b"torch_utils.persistence" in blob and b"_reconstruct_persistent_obj" in blob
    state = import_nvidia_pickle(str(path))

    assert state["generation"] == generation
    gk = state["G_kwargs"]
    assert (gk["img_resolution"], gk["img_channels"], gk["c_dim"], gk["mapping_layers"]) == (RES, 3, c_dim, MAP)
    assert (gk["z_dim"], gk["w_dim"]) == (Z, W)
    src = state["source"]
    assert src["file"] == f"{case}.pkl" and len(src["sha256"]) == 64 and src["format"] == "nvidia-pytorch-pickle"
    assert src["flavour"] == ("stylegan2-ada-pytorch" if flavour == "ada" else "stylegan3")
    assert src["training_set_kwargs"]["resolution"] == RES
    if generation == "stylegan2":
        assert (gk["channel_base"], gk["channel_max"]) == (CB, CM)
        assert gk["w_avg_beta"] == (0.995 if flavour == "ada" else 0.998)
    else:
        assert src["config"] == config
        assert gk["conv_kernel"] == (1 if config == "r" else 3)
        assert gk["use_radial_filters"] == (config == "r")
        assert (gk["channel_base"], gk["channel_max"]) == ((2 * CB, 2 * CM) if config == "r" else (CB, CM))

    for k in ("G", "G_ema", "D"):
        ours = nets[k].state_dict()
        assert list(state[k]) == list(ours), k       # same names, same order
        for name, t in ours.items():
            assert state[k][name].dtype == t.dtype and torch.equal(state[k][name], t), f"{k}.{name}"
    assert torch.equal(state["augment_pipe"]["p"], torch.tensor(0.25))

    # the networks render what ours render with the same weights
    z = torch.randn(2, Z, generator=torch.Generator().manual_seed(1))
    c = torch.eye(max(c_dim, 1))[:2, :c_dim] if c_dim else None
    for which in ("G_ema", "G"):
        G = zoo.load(str(path), which=which)
        assert G.generation == generation
        assert torch.equal(G(z, c, noise_mode="const"), nets[which](z, c, noise_mode="const"))
    D = zoo.load(str(path), which="D")
    img = torch.randn(2, 3, RES, RES, generator=torch.Generator().manual_seed(2))
    assert torch.equal(D(img, c), nets["D"](img, c))


@pytest.mark.parametrize("numpy_module", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_numpy_1_and_2_names_accepted(numpy_module, tmp_path):
    path = tmp_path / "x.pkl"
    nets, blob = write_nvidia_pickle(path, "sg2-ada", numpy_module=numpy_module)
    assert numpy_module.encode() in blob
    other = {"numpy.core.multiarray": b"numpy._core.multiarray", "numpy._core.multiarray": b"numpy.core.multiarray"}
    assert other[numpy_module] not in blob
    data = safe_load(str(path))
    assert data["G"].state["weight_gain"] == np.float32(0.125)
    assert data["G"].state["in_size"].tolist() == [36, 36]
    assert data["G"].class_name == "Generator" and data["G"].version == 6
    assert len(data["G"].module_src_sha256) == 64
    state = import_nvidia_pickle(str(path))
    assert torch.equal(state["G_ema"]["synthesis.b4.const"], nets["G_ema"].synthesis.b4.const)


@pytest.mark.parametrize("case", ["sg2-sg3repo", "sg3-t"])
def test_renamed_or_reshaped_key_fails_naming_it(case, tmp_path):
    key = "synthesis.b8.conv0.weight" if case.startswith("sg2") else "synthesis.input.weight"
    leaf = key.rsplit(".", 1)[1]
    path = tmp_path / "renamed.pkl"
    write_nvidia_pickle(path, case, rename=(key, leaf + "_renamed"))
    with pytest.raises(InteropError, match=r"G_ema:.*" + key.replace(".", r"\.")) as e:
        import_nvidia_pickle(str(path))
    assert key + "_renamed" in str(e.value)
    path = tmp_path / "reshaped.pkl"
    write_nvidia_pickle(path, case, reshape=key)
    with pytest.raises(InteropError, match=f"key '{key}' has shape"):
        zoo.load(str(path))


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "nested"])
def test_malicious_pickle_refused_and_nothing_runs(payload, tmp_path):
    marker = tmp_path / "pwned"
    cmd = f"touch {marker}"
    if payload == "os.system":
        blob = pickle.dumps(PicklePayload(os.system, cmd), protocol=2)
        glob = r"'(posix|nt|os)\.system'"
    elif payload == "builtins.eval":
        blob = pickle.dumps(PicklePayload(eval, f"open({str(marker)!r}, 'w').write('x')"))
        glob = r"'builtins\.eval'"
    else:  # a valid-looking NVIDIA pickle with the payload hidden in training_set_kwargs
        nets, off_G, off_D = _build("sg2-ada")
        data = {"G": _persistent(nets["G"], off_G), "D": _persistent(nets["D"], off_D),
                "G_ema": _persistent(nets["G_ema"], off_G), "augment_pipe": None,
                "training_set_kwargs": {"path": PicklePayload(os.system, cmd)}}
        blob = _dumps(data)
        glob = r"'(posix|nt|os)\.system'"
    path = tmp_path / "evil.pkl"
    path.write_bytes(blob)
    for load in (lambda: safe_load(str(path)), lambda: import_nvidia_pickle(str(path)), lambda: zoo.load(str(path))):
        with pytest.raises(UnsafePickleError, match="refusing to load global " + glob):
            load()
    with pytest.raises(CheckpointError):  # sample.py reports it as a user error
        sample_app.sample(compose_cfg("sample", [f"ckpt={path}", "device=cpu"]), outdir=str(tmp_path / "out"))
    assert not marker.exists()


def test_tf_pickle_and_non_network_files_fail_clearly(tmp_path):
    path = tmp_path / "tf.pkl"
    path.write_bytes(pickle.dumps((1, 2, 3)))
    with pytest.raises(InteropError, match=r"tuple of 3 \(int, int, int\) is not a TensorFlow-era"):
        import_nvidia_pickle(str(path))
    path.write_bytes(pickle.dumps({"foo": 1}))
    with pytest.raises(InteropError, match="expected a dict with G"):
        import_nvidia_pickle(str(path))
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(InteropError, match="not a readable NVIDIA pickle"):
        import_nvidia_pickle(str(path))


def test_convert_cli_and_sampling_like_a_native_checkpoint(tmp_path):
    pkl = tmp_path / "sg3-r.pkl"
    nets, _ = write_nvidia_pickle(pkl, "sg3-r")
    dst = tmp_path / "converted.pt"
    r = subprocess.run([sys.executable, "-m", "zoo.interop.convert", str(pkl), str(dst)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "stylegan3 config R" in r.stdout
    state = torch.load(dst, weights_only=True, map_location="cpu")  # plain tensors and containers only
    assert state["format"] == "zoo-checkpoint" and state["source"]["file"] == "sg3-r.pkl"
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]

    # the same weights written as a native zoo checkpoint
    native = tmp_path / "native.pt"
    save_checkpoint(str(native), {"generation": "stylegan3", "G_kwargs": state["G_kwargs"],
                                  "D_kwargs": state["D_kwargs"], **{k: nets[k].state_dict() for k in ("G", "D", "G_ema")}})
    outs = {}
    for name, ck in (("native", native), ("converted", dst), ("pkl", pkl)):
        outs[name] = tmp_path / f"out-{name}"
        sample_app.sample(compose_cfg("sample", [f"ckpt={ck}", "device=cpu", "seeds=[0,1]", "translate=[0.1,0]"]),
                   outdir=str(outs[name]))
    for f in ("seed0000.png", "seed0001.png", "grid.png"):
        ref = (outs["native"] / f).read_bytes()
        assert (outs["converted"] / f).read_bytes() == ref and (outs["pkl"] / f).read_bytes() == ref, f
    assert load_any(str(dst))["generation"] == "stylegan3"

    r = subprocess.run([sys.executable, "-m", "zoo.interop.convert", str(tmp_path / "missing.pkl"), str(dst)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "not found" in r.stderr
