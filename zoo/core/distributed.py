"""Process groups and collectives: one process per GPU (NCCL) or per CPU worker (gloo), for the
training loop and the metrics alike.

Two ways in, same code:

* ``gpus=N`` from the Hydra job: :func:`launch` spawns N workers with ``torch.multiprocessing``
  and a ``file://`` rendezvous in the run directory (NVIDIA's pattern), so concurrent jobs of a
  sweep never fight over a port.
* an external launcher started every process: ``torchrun`` (one node or several:
  ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``/``LOCAL_WORLD_SIZE``, ``env://`` rendezvous) or a submitit
  task (Hydra's submitit launcher on SLURM or locally: submitit's ``JobEnvironment``, i.e.
  ``SLURM_PROCID``/``SLURM_LOCALID``/``SLURM_NTASKS``/``SLURM_JOB_NUM_NODES``, rendezvous at the
  job's first node). :func:`launcher_env` says which; rank 0's run directory is shared.

Gradients are all-reduced by hand (one flat buffer per phase, then ``/ world_size``), like NVIDIA's
loop, rather than through DDP: R1 and path-length regularization take gradients of gradients,
which DDP's bucketed hooks do not support reliably.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch
import torch.distributed as dist

__all__ = ["launch", "is_torchrun", "LauncherEnv", "launcher_env", "init_launched_group", "init_process_group",
           "all_reduce_grads", "all_reduce_sum",
           "broadcast_object", "broadcast_float", "gather_rows", "all_ranks_agree", "is_distributed", "barrier",
           "shutdown"]


def is_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ and "RANK" in os.environ and "WORLD_SIZE" in os.environ


@dataclass(frozen=True)
class LauncherEnv:
    """Where this process sits in a job whose processes an external launcher started."""

    launcher: str  # torchrun | submitit-slurm | submitit-local
    rank: int
    local_rank: int  # on this node: which device to use
    world_size: int
    local_world_size: int  # processes on this node

    @property
    def nodes(self) -> int:
        return self.world_size // self.local_world_size


def launcher_env() -> Optional[LauncherEnv]:
    """The process's place in a job started by torchrun or submitit, or None (a plain process:
    ``gpus=N`` then spawns the workers itself)."""
    env = os.environ
    if is_torchrun():
        world = int(env["WORLD_SIZE"])
        return LauncherEnv("torchrun", int(env["RANK"]), int(env.get("LOCAL_RANK", env["RANK"])), world,
                           int(env.get("LOCAL_WORLD_SIZE", world)))
    if env.get("SUBMITIT_EXECUTOR"):  # set by submitit in every task it runs
        import submitit

        job = submitit.JobEnvironment()
        return LauncherEnv(f"submitit-{job.cluster}", job.global_rank, job.local_rank, job.num_tasks,
                           job.num_tasks // job.num_nodes)
    return None


def init_launched_group(env: LauncherEnv, device: torch.device) -> None:
    """Join the process group of a launched job (``env://``). torchrun exports ``MASTER_ADDR`` and
    ``MASTER_PORT``; in a submitit task they default to the job's first node and a port derived from
    the job id (submitit's ``TorchDistributedEnvironment``), unless the job's environment sets them."""
    if env.world_size <= 1:
        return
    if env.launcher.startswith("submitit"):
        from submitit.helpers import TorchDistributedEnvironment

        rendezvous = TorchDistributedEnvironment()
        os.environ.setdefault("MASTER_ADDR", rendezvous.master_addr)
        os.environ.setdefault("MASTER_PORT", str(rendezvous.master_port))
    init_process_group(env.rank, env.world_size, device)


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def init_process_group(rank: int, world_size: int, device: torch.device, init_file: Optional[str] = None) -> None:
    if world_size <= 1 or dist.is_initialized():
        return
    if init_file is not None:
        init_method = "file://" + os.path.abspath(init_file)
        dist.init_process_group(_backend(device), init_method=init_method, rank=rank, world_size=world_size)
    else:  # launched (torchrun, submitit): MASTER_ADDR / MASTER_PORT come from the environment
        dist.init_process_group(_backend(device), rank=rank, world_size=world_size)


def all_reduce_grads(params: List[torch.nn.Parameter], world_size: int) -> None:
    """Average gradients over processes and replace NaN/Inf, in one flat collective."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    if world_size > 1:
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= world_size
        torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n
    else:
        for p in params:
            torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t)
    return t


def is_distributed(world_size: int) -> bool:
    """Whether a computation over ``world_size`` processes needs collectives; raises if it does and no
    process group is initialised."""
    if world_size <= 1:
        return False
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(f"world_size={world_size} but torch.distributed is not initialised")
    return True


def gather_rows(x: Optional[torch.Tensor], world_size: int, device: torch.device) -> List[torch.Tensor]:
    """All-gather a (possibly missing) ``[n, D]`` float tensor from every rank, in rank order."""
    if not is_distributed(world_size):
        return [] if x is None else [x]
    shape = torch.tensor([0, 0] if x is None else list(x.shape), dtype=torch.int64, device=device)
    shapes = [torch.zeros_like(shape) for _ in range(world_size)]
    dist.all_gather(shapes, shape)
    shapes = [tuple(int(v) for v in s.cpu()) for s in shapes]
    rows, dim = max(s[0] for s in shapes), max(s[1] for s in shapes)
    if rows == 0:
        return []
    buf = torch.zeros([rows, dim], dtype=torch.float32, device=device)
    if x is not None and x.shape[0]:
        buf[:x.shape[0]] = x.to(device, torch.float32)
    bufs = [torch.empty_like(buf) for _ in range(world_size)]
    dist.all_gather(bufs, buf)
    return [b[:s[0]] for b, s in zip(bufs, shapes) if s[0]]


def all_ranks_agree(flag: bool, world_size: int, device: torch.device) -> bool:
    """True only if ``flag`` is true on every rank."""
    if not is_distributed(world_size):
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(int(t.item()))


def broadcast_float(value: float, world_size: int, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank."""
    if not is_distributed(world_size):
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def broadcast_object(obj, src: int = 0):
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
    return obj


def barrier() -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def shutdown(finished: bool) -> None:
    """Tear the process group down. After a normal finish every rank first meets at a barrier, so no
    rank closes its connections while a peer may still be completing the last collective (gloo then
    aborts the peer: "terminate called without an active exception"). After an error there is no
    barrier (the other ranks may never reach it)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished:
        barrier()
    dist.destroy_process_group()


def _worker(rank: int, fn: Callable, world_size: int, init_file: str, args: tuple) -> None:
    fn(rank, world_size, init_file, *args)


def launch(fn: Callable, world_size: int, run_dir: str, args: tuple = ()) -> None:
    """Run ``fn(rank, world_size, init_file, *args)`` in ``world_size`` processes (inline for one).

    ``fn`` must be a module-level function (it is pickled into spawned workers)."""
    if world_size <= 1:
        fn(0, 1, None, *args)
        return
    init_file = os.path.join(os.path.abspath(run_dir), ".torch_distributed_init")
    if os.path.exists(init_file):
        os.unlink(init_file)
    torch.multiprocessing.spawn(_worker, args=(fn, world_size, init_file, args), nprocs=world_size, join=True)
