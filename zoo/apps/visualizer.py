"""``python -m zoo.visualizer ckpt=PATH [ckpt2=PATH] [port=7860] [host=127.0.0.1]``: a browser
visualizer of one checkpoint, or two side by side (``conf/visualizer.yaml``, :class:`VisualizerConfig`).

A small standard-library HTTP server (``http.server.ThreadingHTTPServer``) and one static page
(``zoo/apps/static/visualizer.html``, plain JavaScript, nothing fetched from elsewhere): no
dependency beyond the zoo's own, and it works over ``ssh -L 7860:localhost:7860 HOST``. The
rendering is :class:`zoo.sampling.explore.Explorer`; this module only loads the checkpoints and
speaks HTTP:

* ``GET /``: the page;
* ``GET /api/info``: what each model offers (:meth:`zoo.sampling.explore.View.capabilities`);
* ``POST /api/render``: the controls as JSON (:class:`zoo.sampling.explore.Controls`, plus
  ``per_model``) -> ``{"models": [{"image", "features", "spectrum"  (PNG data URLs or null), "ms",
  "notes"}, ...], "ms": {...}}``; a bad control is a 400 with ``{"error": "..."}``.

Renders are serialised (one at a time; the page keeps at most one request in flight and always sends
the newest controls next, so dragging never queues up stale frames).
"""
from __future__ import annotations

import base64
import errno
import io
import json
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Dict, Optional

import numpy as np
import torch
from omegaconf import MISSING, DictConfig, OmegaConf
from PIL import Image

from zoo.apps.common import AppSpec, hydra_main
from zoo.core.errors import ConfigError
from zoo.core.runtime import resolve_device, tune_cpu_allocator
from zoo.interop.load import load_network
from zoo.sampling.explore import Explorer, Frame
from zoo.training.config import check_precision

__all__ = ["VisualizerConfig", "page_html", "png_data_url", "frame_json", "make_server", "visualizer", "main", "APP"]

MAX_BODY = 1 << 20  # a render request is a few hundred bytes


@dataclass
class VisualizerConfig:
    ckpt: str = MISSING          # any file zoo.load reads: a zoo .pt, an NVIDIA .pkl, a rosinality .pt
    ckpt2: Optional[str] = None  # a second checkpoint, rendered side by side with the same controls
    which: str = "G_ema"         # G_ema | G
    port: int = 7860             # 0: any free port
    host: str = "127.0.0.1"      # 0.0.0.0 serves every interface (then anyone who can reach it can use it)
    device: str = "cpu"          # cpu | cuda | auto
    precision: str = "fp32"      # fp32 | mixed | auto (as sample.py)
    precision_dtype: Optional[str] = None
    threads: Optional[int] = None  # torch CPU threads (null: torch's default)


def page_html() -> bytes:
    """The page, shipped as package data (``zoo/apps/static/visualizer.html``)."""
    return resources.files("zoo.apps").joinpath("static/visualizer.html").read_bytes()


def png_data_url(arr: Optional[np.ndarray]) -> Optional[str]:
    """HWC (C = 1 or 3) or HW uint8 -> ``data:image/png;base64,...`` (None stays None)."""
    if arr is None:
        return None
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr), "L" if arr.ndim == 2 else "RGB").save(buf, format="PNG",
                                                                                      compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def frame_json(frame: Frame) -> Dict[str, Any]:
    t0 = time.perf_counter()
    out = dict(image=png_data_url(frame.image), features=png_data_url(frame.features),
               spectrum=png_data_url(frame.spectrum), notes=frame.notes)
    out["ms"] = dict(frame.ms, encode=(time.perf_counter() - t0) * 1000)
    return out


class _Handler(BaseHTTPRequestHandler):
    server_version = "zoo-visualizer"
    explorer: Explorer
    lock: threading.Lock

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the page polls nothing, but renders often
        pass

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, page_html(), "text/html; charset=utf-8")
        elif path == "/api/info":
            self._json(200, self.explorer.info())
        else:
            self._json(404, dict(error=f"no such page: {path}"))

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/api/render":
            self._json(404, dict(error=f"no such endpoint: {self.path}"))
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._json(413, dict(error="request too large"))
            return
        try:
            params = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(params, dict):
                raise ValueError("the request body must be a JSON object of controls")
            t0 = time.perf_counter()
            with self.lock:
                waited = (time.perf_counter() - t0) * 1000
                frames = self.explorer.render(params)
            models = [frame_json(f) for f in frames]
        except ValueError as e:  # a bad control (json.JSONDecodeError is a ValueError too)
            self._json(400, dict(error=str(e)))
            return
        except Exception as e:  # a bug: the page shows it in one line, the terminal the traceback
            traceback.print_exc()
            self._json(500, dict(error=f"{type(e).__name__}: {e}"))
            return
        total = (time.perf_counter() - t0) * 1000
        self._json(200, dict(models=models, ms=dict(total=total, waited=waited)))


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 7860) -> ThreadingHTTPServer:
    """A bound (not yet serving) HTTP server for ``explorer``; ``port=0`` picks a free port
    (``server.server_address[1]``). A port in use or an address that cannot be bound is a
    :class:`~zoo.core.errors.ConfigError`."""
    handler = type("Handler", (_Handler,), dict(explorer=explorer, lock=threading.Lock()))
    try:
        server = ThreadingHTTPServer((host, int(port)), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ConfigError("port", f"{port}: address already in use", "pick another with port=N") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ConfigError("port", f"{port}: permission denied", "use a port above 1023, e.g. port=7860") from None
        raise ConfigError("host", f"cannot listen on {host}:{port} ({e.strerror or e})",
                          "use host=127.0.0.1 (or 0.0.0.0 for every interface)") from None
    server.daemon_threads = True
    return server


def _load(path: str, key: str, cfg, device: torch.device):
    if not os.path.isfile(path):
        raise ConfigError(key, f"{path!r} does not exist", f"pass {key}=PATH to a checkpoint or NVIDIA .pkl")
    G = load_network(path, which=cfg.which, device=device, precision=cfg.precision,
                     precision_dtype=cfg.precision_dtype)
    if not hasattr(G, "z_dim"):
        raise ConfigError("which", f"{path!r}: {cfg.which} is not a generator", "use which=G_ema or which=G")
    return G


def build_explorer(cfg) -> Explorer:
    """Load ``ckpt`` (and ``ckpt2``) as the config says; every problem is a one-line user error."""
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")] if isinstance(cfg, DictConfig) else []
    if missing:
        raise ConfigError(missing[0], "is required", f"pass {missing[0]}=PATH")
    if cfg.which not in ("G_ema", "G"):
        raise ConfigError("which", f"cannot render {cfg.which!r}", "use which=G_ema or which=G")
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, cfg.precision_dtype, str(device))
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    paths = [("ckpt", cfg.ckpt)] + ([("ckpt2", cfg.ckpt2)] if cfg.ckpt2 else [])
    nets = [_load(p, key, cfg, device) for key, p in paths]
    labels = [os.path.basename(p) for _, p in paths]
    if len(labels) == 2 and labels[0] == labels[1]:
        labels = [paths[0][1], paths[1][1]]
    return Explorer(nets, labels)


def visualizer(cfg: DictConfig) -> None:
    """Load the checkpoint(s), bind the port, print the URL and serve until Ctrl-C."""
    tune_cpu_allocator()
    explorer = build_explorer(cfg)
    server = make_server(explorer, cfg.host, cfg.port)
    port = server.server_address[1]
    shown = "localhost" if cfg.host in ("127.0.0.1", "localhost", "::1") else cfg.host
    models = ", ".join(f"{m['label']} ({m['generation']}, {m['resolution']} px)" for m in explorer.info()["models"])
    print(f"[zoo] visualizer: {models}", flush=True)
    print(f"[zoo] serving at http://{shown}:{port}/  (device {cfg.device}, {torch.get_num_threads()} threads; "
          "Ctrl-C stops)", flush=True)
    if cfg.host in ("127.0.0.1", "localhost"):
        print(f"[zoo] on a remote machine: ssh -L {port}:localhost:{port} USER@HOST, then open "
              f"http://localhost:{port}/ locally", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("[zoo] visualizer stopped", file=sys.stderr, flush=True)
    finally:
        server.server_close()


APP = AppSpec("visualizer", visualizer, schema=VisualizerConfig, positional=("ckpt",))


def main(argv=None) -> None:
    hydra_main(APP, argv)
