"""Training on clusters: the signals that stop a run with a checkpoint, requeueing a preempted job,
and time-based snapshots.

Signals (:class:`StopSignals`, installed around the training loop; every rank stops at the same
iteration boundary, rank 0 writes the checkpoint atomically, then the previous handlers return):

* ``SIGINT`` (Ctrl-C): stop. A second Ctrl-C gives up at once. Never requeued.
* ``SIGTERM``, ``SIGUSR1`` and, in a submitit task, submitit's preemption signal (``SIGUSR2`` unless
  ``SUBMITIT_PREEMPT_SIGNAL`` names another; SLURM sends it ``signal_delay_s`` before the time limit):
  the job is preempted. After the checkpoint :func:`requeue` puts it back in the queue, if it can
  continue where it stopped (``resume=auto``):

  - in a task of Hydra's submitit launcher (``hydra/launcher=submitit_slurm`` or ``submitit_local``):
    through submitit's own mechanism. Its handler for the preemption signal (restored when the loop
    ends) asks the launcher to ``checkpoint()``, which re-submits the same Hydra job (same overrides,
    same job directory), requeues the job (``scontrol requeue`` on SLURM; exit status 144 for the
    local executor, whose controller then restarts the tasks) and exits. A time-out counts against
    ``hydra.launcher.max_num_timeout``;
  - in any other SLURM job (an ``sbatch`` script running ``srun torchrun ... train.py``): rank 0 runs
    ``scontrol requeue $SLURM_JOB_ID``, which restarts the batch script;
  - anywhere else the run stops; ``resume=auto`` continues it.

Time-based snapshots (``snap_minutes``, :class:`SnapshotTimer`): rank 0's clock decides and the
decision travels with the stop flags in one collective per iteration (:func:`agree`), so every rank
takes the snapshot iteration together.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Optional, Tuple

import torch

from zoo.core import distributed as dist_lib

__all__ = ["StopSignals", "Preempted", "SnapshotTimer", "agree", "stop_signals", "requeue_plan", "requeue", "clock"]


def _submitit_signal() -> Optional[int]:
    """submitit's preemption/time-out signal, in a submitit task (None elsewhere)."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)


def stop_signals() -> Tuple[int, ...]:
    """The signals that stop training with a checkpoint: SIGINT, SIGTERM, SIGUSR1 (+ submitit's)."""
    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1]
    extra = _submitit_signal()
    if extra is not None and extra not in sigs:
        sigs.append(extra)
    return tuple(sigs)


class Preempted(KeyboardInterrupt):
    """Training stopped on a preemption signal; its state is saved. A ``KeyboardInterrupt``, so
    everything that handles Ctrl-C (job records, exit status 130) handles it too."""

    def __init__(self, signame: str, signum: Optional[int] = None):
        super().__init__(signame)
        self.signame, self.signum = signame, signum


class StopSignals:
    """Within ``with``: a stop signal asks the loop to stop at the next iteration boundary (after a
    checkpoint). ``requested``: any stop; ``preempted``: by a preemption signal (not Ctrl-C)."""

    def __init__(self):
        self.requested = False
        self.preempted = False
        self.signum: Optional[int] = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live there
            for sig in stop_signals():
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and self.requested:  # second Ctrl-C: give up immediately
            raise KeyboardInterrupt
        self.requested = True
        if signum != signal.SIGINT:
            self.preempted, self.signum = True, signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def exception(self) -> KeyboardInterrupt:
        """What the loop raises once it has stopped and saved."""
        if not self.preempted:
            return KeyboardInterrupt()
        name = signal.Signals(self.signum).name if self.signum is not None else "a signal on another rank"
        return Preempted(name, self.signum)


def clock() -> float:
    """Wall-clock seconds (monotonic): what ``snap_minutes`` measures."""
    return time.monotonic()


class SnapshotTimer:
    """``due()`` once ``minutes`` of wall time have passed since the last :meth:`reset` (never when
    ``minutes`` is None)."""

    def __init__(self, minutes: Optional[float]):
        self.seconds = None if minutes is None else float(minutes) * 60
        self.reset()

    def reset(self) -> None:
        self.start = clock()

    def due(self) -> bool:
        return self.seconds is not None and clock() - self.start >= self.seconds


def agree(stop: StopSignals, snapshot_due: bool, rank: int, world_size: int,
          device: torch.device) -> Tuple[bool, bool]:
    """One collective per iteration: (stop now, snapshot now), the same on every rank. A stop signal
    any rank received counts, and rank 0's snapshot clock (the other ranks' ``snapshot_due`` is
    ignored). A signal that arrives after the collective counts at the next call."""
    if world_size <= 1:
        return stop.requested, snapshot_due
    flags = torch.tensor([stop.requested, stop.preempted, snapshot_due and rank == 0], dtype=torch.float32,
                         device=device)
    requested, preempted, snapshot = (bool(v > 0) for v in dist_lib.all_reduce_sum(flags).tolist())
    stop.requested, stop.preempted = stop.requested or requested, stop.preempted or preempted
    return requested, snapshot


# --------------------------------------------------------------------------------------------------
# Requeueing
# --------------------------------------------------------------------------------------------------

def _submitit_handler():
    """submitit's handler of its preemption signal, when this process is a submitit task."""
    sig = _submitit_signal()
    if sig is None:
        return None
    handler = signal.getsignal(sig)
    owner = getattr(handler, "__self__", None)
    return handler if type(owner).__module__.startswith("submitit") else None


def requeue_plan(resume: Optional[str]) -> Optional[str]:
    """How a preempted job goes back in the queue: ``submitit``, ``scontrol`` or None (not a cluster
    job, or ``resume`` is not ``auto``: the requeued job would start over)."""
    plan = "submitit" if _submitit_handler() is not None else "scontrol" if os.environ.get("SLURM_JOB_ID") else None
    if plan is not None and resume != "auto":
        print("[zoo] preempted job not requeued: a requeued job continues only with resume=auto", flush=True)
        return None
    return plan


def requeue(plan: Optional[str], signum: Optional[int]) -> None:
    """Requeue the job (rank 0, after the checkpoint). Through submitit this does not return: its
    handler re-submits the Hydra job and exits the process."""
    if plan == "submitit":
        print("[zoo] requeueing the job through submitit", flush=True)
        _submitit_handler()(signum if signum is not None else _submitit_signal(), None)
    elif plan == "scontrol":
        job = os.environ["SLURM_JOB_ID"]
        try:
            subprocess.run(["scontrol", "requeue", job], check=True, timeout=60, capture_output=True, text=True)
            print(f"[zoo] requeued SLURM job {job}; it continues with resume=auto", flush=True)
        except (OSError, subprocess.SubprocessError) as e:
            err = getattr(e, "stderr", None) or e
            print(f"[zoo] could not requeue SLURM job {job} ({str(err).strip()}); continue it with resume=auto",
                  flush=True)
