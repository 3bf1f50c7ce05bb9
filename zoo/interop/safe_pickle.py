"""A restricted unpickler for NVIDIA's PyTorch network pickles (stylegan2-ada-pytorch, stylegan3).

A plain ``pickle.load`` of those files executes the Python source they carry: every network is
stored through ``torch_utils.persistence``, whose reconstructor ``exec``s the embedded module text.
:class:`SafeUnpickler` resolves only an explicit allow-list of globals and never runs file code:

==========================================================  =============================================
global in the stream                                        what it becomes here
==========================================================  =============================================
``torch_utils.persistence._reconstruct_persistent_obj``     :class:`PersistentObject`, a data stub that
                                                            keeps ``class_name``, ``version``, the module
                                                            source *as text* (with its sha256) and the
                                                            object's ``state``; the source is never run
``torch.storage._load_from_bytes``                          ``torch.load(BytesIO(b), weights_only=True,
                                                            map_location='cpu')``
``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter``,  torch's own tensor rebuilders
``_rebuild_parameter_with_state``
``collections.OrderedDict``                                 ``OrderedDict``
``dnnlib.util.EasyDict``, ``dnnlib.EasyDict``               :class:`EasyDict`, a plain ``dict`` subclass
``numpy.core.multiarray._reconstruct`` / ``scalar``          NumPy's array / scalar reconstructors (NumPy 1
``numpy._core.multiarray._reconstruct`` / ``scalar``         and NumPy 2 spellings), ``numpy.ndarray``,
``numpy.ndarray``, ``numpy.dtype``                          ``numpy.dtype``
``builtins.set``, ``builtins.frozenset``                    themselves (how pickle protocols < 4 write the
(and ``__builtin__.*`` of protocol 2)                       modules' ``_non_persistent_buffers_set``)
``dnnlib.tflib.network.Network`` (StyleGAN, StyleGAN2-TF),  :class:`TFNetwork`, a dict holding the TF
``tfutil.Network`` (ProGAN-TF), ``network.Network``         ``Network.__getstate__`` dict (``version``,
(Theano ProGAN)                                             ``name``, ``static_kwargs``, ``components``,
                                                            ``build_module_src`` as text -- never run --,
                                                            ``build_func_name``, ``variables``)
==========================================================  =============================================

Anything else (``os.system``, ``builtins.eval``, ``subprocess.Popen``, any class) raises
:class:`UnsafePickleError` naming the global, before anything from it is called.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import io
import pickle
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch

from zoo.core.errors import InteropError, UnsafePickleError

__all__ = ["SafeUnpickler", "PersistentObject", "EasyDict", "TFNetwork", "UnsafePickleError", "InteropError",
           "safe_load", "ALLOWED_GLOBALS", "jsonable", "read_torch_file"]


class EasyDict(dict):
    """Stand-in for ``dnnlib.EasyDict``: a plain dict (attribute access for convenience only)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class PersistentObject:
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` would have rebuilt, kept as
    data: the class name, persistence version, the defining module's source text (never executed;
    ``module_src_sha256`` fingerprints the code release) and the instance ``state`` (an
    ``nn.Module.__dict__`` for networks)."""

    def __init__(self, meta: Any):
        if not isinstance(meta, dict):
            raise InteropError(f"persistent object metadata is a {type(meta).__name__}, expected a dict")
        self.type = meta.get("type")
        self.version = meta.get("version")
        self.class_name = str(meta.get("class_name"))
        src = meta.get("module_src")
        self.module_src: str = src if isinstance(src, str) else ""
        self.module_src_sha256 = hashlib.sha256(self.module_src.encode("utf-8")).hexdigest()
        state = meta.get("state")
        self.state: Dict[str, Any] = state if isinstance(state, dict) else {}

    def __repr__(self) -> str:
        return f"<PersistentObject {self.class_name} v{self.version} src {self.module_src_sha256[:12]}>"

    @property
    def init_kwargs(self) -> Dict[str, Any]:
        return plain(self.state.get("_init_kwargs") or {})

    @property
    def init_args(self) -> Tuple[Any, ...]:
        return tuple(self.state.get("_init_args") or ())

    @property
    def is_module(self) -> bool:
        return "_parameters" in self.state and "_modules" in self.state

    def named_children(self):
        for name, child in (self.state.get("_modules") or {}).items():
            if child is not None:
                yield name, child

    def state_dict(self, prefix: str = "") -> "collections.OrderedDict[str, torch.Tensor]":
        """The ``nn.Module.state_dict()`` the object would have: ``_parameters`` and persistent
        ``_buffers`` (``None`` entries skipped), then ``_modules`` recursively, keys ``a.b.name``."""
        out: "collections.OrderedDict[str, torch.Tensor]" = collections.OrderedDict()
        if not self.is_module:
            raise InteropError(f"{prefix or '<root>'}: a {self.class_name} is not an nn.Module state")
        for name, p in (self.state.get("_parameters") or {}).items():
            if p is not None:
                out[prefix + name] = _tensor(p, prefix + name)
        skip = set(self.state.get("_non_persistent_buffers_set") or ())
        for name, b in (self.state.get("_buffers") or {}).items():
            if b is not None and name not in skip:
                out[prefix + name] = _tensor(b, prefix + name)
        for name, child in self.named_children():
            if not isinstance(child, PersistentObject):
                raise InteropError(f"{prefix + name}: submodule of unsupported type {type(child).__name__}")
            out.update(child.state_dict(prefix + name + "."))
        return out


class TFNetwork(dict):
    """What a TensorFlow-era ``Network`` (``dnnlib.tflib.network.Network``, ``tfutil.Network``,
    ``network.Network``) pickles as, kept as data: the dict its ``__getstate__`` returned --
    ``version``, ``name``, ``static_kwargs``, ``components`` (nested networks), ``build_module_src``
    (the network-building source, kept as text and never run: the real ``__setstate__`` execs it),
    ``build_func_name`` and ``variables`` (a list of ``(name, numpy array)``)."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise InteropError(f"TF Network state is a {type(state).__name__}, expected a dict")
        self.update(state)

    def __repr__(self) -> str:
        return f"<TFNetwork {self.get('name')!r} {self.get('build_func_name')!r} v{self.get('version')}>"

    @property
    def static_kwargs(self) -> Dict[str, Any]:
        return plain(self.get("static_kwargs") or {})

    @property
    def components(self) -> Dict[str, "TFNetwork"]:
        return dict(self.get("components") or {})

    @property
    def module_src_sha256(self) -> str:
        src = self.get("build_module_src")
        return hashlib.sha256((src if isinstance(src, str) else "").encode("utf-8")).hexdigest()


def _tensor(t: Any, key: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise InteropError(f"{key}: expected a tensor, found {type(t).__name__}")
    return t.detach()


def plain(obj: Any) -> Any:
    """EasyDicts, OrderedDicts, tuples and NumPy scalars -> plain dicts, lists and Python numbers."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def _load_storage_from_bytes(b: bytes):
    return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # NumPy 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core import multiarray
    return multiarray


_ma = _numpy_multiarray()

ALLOWED_GLOBALS: Dict[Tuple[str, str], Callable[..., Any]] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentObject,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("numpy.core.multiarray", "_reconstruct"): _ma._reconstruct,
    ("numpy.core.multiarray", "scalar"): _ma.scalar,
    ("numpy._core.multiarray", "_reconstruct"): _ma._reconstruct,
    ("numpy._core.multiarray", "scalar"): _ma.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("tfutil", "Network"): TFNetwork,
    ("network", "Network"): TFNetwork,
}


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` resolving only :data:`ALLOWED_GLOBALS`; see the module docstring."""

    def __init__(self, file, *, source: str = "<pickle>"):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refusing to load global '{module}.{name}': it is not one of the "
                "globals NVIDIA's network pickles need, and loading it could run code from the file"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: persistent ids are not part of this format ({pid!r:.60})")


def safe_load(path_or_file: Any, source: Optional[str] = None) -> Any:
    """Unpickle a file (path or binary file object) through :class:`SafeUnpickler`."""
    if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
        with open(path_or_file, "rb") as f:
            return safe_load(f, source or str(path_or_file))
    try:
        return SafeUnpickler(path_or_file, source=source or "<pickle>").load()
    except InteropError:
        raise
    except Exception as e:  # truncated / corrupt stream, inner torch.load refusal...
        raise InteropError(f"{source or '<pickle>'}: not a readable NVIDIA pickle "
                           f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def jsonable(obj: Any) -> Any:
    """Plain containers of str/int/float/bool/None only (so ``weights_only`` loads the result)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


def read_torch_file(path: str) -> Any:
    """``torch.load(path, weights_only=True)``, with ``argparse.Namespace`` (the ``args`` entry
    rosinality's train.py saves) allow-listed: rebuilding one sets attributes on an empty
    namespace and runs no code."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InteropError(f"{path!r}: not readable with torch.load(weights_only=True) "
                           f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
