"""Run logging: ``stats.jsonl`` (training statistics per tick) and ``metrics.jsonl`` (quality metric
results with their protocol) always, plus an optional external logger (wandb). These are the names
NVIDIA's loop uses for the same two streams.

Only rank 0 creates a logger; other ranks get :class:`NullLogger`.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Optional

import numpy as np

__all__ = ["RunLogger", "NullLogger", "make_logger"]


class NullLogger:
    """The logger of ranks other than 0: every call is accepted and deliberately dropped (only rank 0
    writes files), so the loop calls the logger unconditionally."""

    def log_scalars(self, scalars: Dict[str, float], kimg: float) -> None:
        """Dropped (see the class docstring)."""

    def log_image(self, name: str, image: np.ndarray, kimg: float) -> None:
        """Dropped."""

    def log_metric(self, record: Dict[str, Any], kimg: float) -> None:
        """Dropped."""

    def close(self) -> None:
        """Nothing to close."""


class RunLogger(NullLogger):
    """Writes every scalar record to ``<run_dir>/stats.jsonl``, every metric result to
    ``<run_dir>/metrics.jsonl``, and mirrors both to wandb if enabled."""

    def __init__(self, run_dir: str, logger_cfg: Dict[str, Any], config: Dict[str, Any], run_name: str):
        os.makedirs(run_dir, exist_ok=True)
        self.path = os.path.join(run_dir, "stats.jsonl")
        self.metrics_path = os.path.join(run_dir, "metrics.jsonl")
        self._file = open(self.path, "a", buffering=1)
        self._wandb = None
        if logger_cfg.get("name") == "wandb" and logger_cfg.get("mode", "offline") != "disabled":
            import wandb

            self._wandb = wandb.init(
                project=logger_cfg.get("project", "zoo"),
                entity=logger_cfg.get("entity"),
                group=logger_cfg.get("group"),
                tags=list(logger_cfg.get("tags") or []),
                job_type=config.get("model", {}).get("name"),
                name=run_name,
                mode=logger_cfg.get("mode", "offline"),
                dir=run_dir,
                config=config,
                settings=wandb.Settings(silent=True),
                reinit="finish_previous",
            )

    def log_scalars(self, scalars: Dict[str, float], kimg: float) -> None:
        record = {"kimg": float(kimg), "timestamp": time.time(), **{k: float(v) for k, v in scalars.items()}}
        self._file.write(json.dumps(record) + "\n")
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if k != "timestamp"}, step=int(round(kimg * 1000)))

    def log_metric(self, record: Dict[str, Any], kimg: float) -> None:
        """One result of ``zoo.metrics.compute_metrics`` (results + protocol), appended as a line."""
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(dict(record, kimg=float(kimg))) + "\n")
        if self._wandb is not None:
            self._wandb.log({f"Metrics/{k}": float(v) for k, v in record["results"].items()},
                            step=int(round(kimg * 1000)))

    def log_image(self, name: str, image: np.ndarray, kimg: float) -> None:
        if self._wandb is not None:
            import wandb

            self._wandb.log({name: wandb.Image(image, caption=f"{name} @ {kimg:.1f} kimg")},
                            step=int(round(kimg * 1000)))

    def close(self) -> None:
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def make_logger(rank: int, run_dir: str, logger_cfg: Dict[str, Any], config: Dict[str, Any],
                run_name: Optional[str] = None):
    if rank != 0:
        return NullLogger()
    return RunLogger(run_dir, logger_cfg, config, run_name or os.path.basename(run_dir.rstrip("/")))
