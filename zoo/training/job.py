"""``job.json``: what a run is and how it ended, for ``python -m zoo.report`` and for people.

The file is created when ``train.py`` starts (status ``running``) and rewritten atomically as the run
learns more (parameter counts, final timing) and when it ends: ``done``, ``interrupted`` (Ctrl-C,
state saved), ``preempted`` (SIGTERM / SIGUSR1 / submitit's signal, state saved; with ``signal`` and
how the job was requeued, ``requeue``) or ``failed`` (with the error). A job killed outright stays
``running`` with a stale ``updated`` time, which the report shows as unfinished.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict

from zoo.core.files import atomic_write

__all__ = ["JOB_FILE", "read_job", "update_job"]

JOB_FILE = "job.json"


def read_job(run_dir: str) -> Dict[str, Any]:
    path = os.path.join(run_dir, JOB_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def update_job(run_dir: str, **fields: Any) -> Dict[str, Any]:
    """Merge ``fields`` into ``<run_dir>/job.json`` (written to a temporary file, then renamed)."""
    os.makedirs(run_dir, exist_ok=True)
    info = read_job(run_dir)
    info.update(fields, updated=time.time())
    atomic_write(os.path.join(run_dir, JOB_FILE), lambda f: json.dump(info, f, indent=1, default=str), binary=False)
    return info
