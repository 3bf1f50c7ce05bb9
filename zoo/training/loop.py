"""The one training loop of the zoo.

:class:`Trainer` owns the networks, optimizers, EMA and loss, and runs one iteration at a time with
NVIDIA's phase structure (``Gmain``, lazy ``Greg``, ``Dmain``, lazy ``Dreg``; each phase its own
optimizer step).  :func:`training_loop` feeds it data, logs, draws sample grids and writes
checkpoints; :func:`run` is the per-process entry point used by ``train.py`` (one process, spawned
workers or torchrun).  Generations differ only by their registry spec, model config and loss.

Randomness is keyed, not streamed: every (iteration, phase, batch chunk) seeds the RNG from
``(seed, iteration, phase, chunk)``.  The same chunk therefore sees the same latents, noise and
style-mixing draws whichever process or accumulation round computes it, which makes ``gpus=N``
equal to one process over the same total batch, and resuming exact without replaying RNG streams.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import resource
import signal
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch

import zoo
from zoo import registry
from zoo.config import resolve_hparams
from zoo.training import checkpoint as ckpt_lib
from zoo.training import distributed as dist_lib
from zoo.training import growing as growing_lib
from zoo.training.job import update_job
from zoo.training.losses import build_loss
from zoo.training.loggers import make_logger
from zoo.utils import make_grid, resolve_device, save_image, to_uint8

__all__ = ["Trainer", "training_loop", "run"]


@dataclasses.dataclass
class Phase:
    name: str
    module: str  # 'G' or 'D'
    interval: int


def _chunk_seed(seed: int, *keys: int) -> int:
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, *keys]).generate_state(1, np.uint64)[0] >> 1)


class Trainer:
    """Networks + optimizers + loss for one generation; :meth:`step` runs one training iteration.

    ``cfg`` is the resolved training config as a plain dict (``train.yaml`` after Hydra).
    ``labels`` (``[N, c_dim]`` float tensor) are the dataset's labels, from which conditional
    latents draw their classes, as in NVIDIA's loop; ``None`` for unconditional training.
    """

    def __init__(self, cfg: Dict[str, Any], *, img_channels: int, device: torch.device,
                 rank: int = 0, world_size: int = 1, labels: Optional[torch.Tensor] = None):
        self.cfg = cfg
        self.device = device
        self.rank, self.world_size = rank, world_size
        self.resolution = int(cfg["resolution"])
        self.batch = int(cfg["batch"])
        self.batch_gpu = int(cfg.get("batch_gpu") or self.batch // world_size)
        self.rounds = self.batch // (self.batch_gpu * world_size)
        self.seed = int(cfg.get("seed", 0))
        self.labels = labels.to(device) if labels is not None and labels.shape[1] > 0 else None
        self.c_dim = 0 if self.labels is None else int(self.labels.shape[1])

        self.hp = resolve_hparams(cfg["model"], self.resolution, self.batch)
        self.spec = registry.get(self.hp["name"])
        G_kwargs, D_kwargs = self.spec.network_kwargs(self.hp, self.resolution, img_channels, self.c_dim)
        torch.manual_seed(self.seed)  # identical initial weights on every rank
        self.G = self.spec.build_generator(**G_kwargs).train().requires_grad_(False).to(device)
        self.D = self.spec.build_discriminator(**D_kwargs).train().requires_grad_(False).to(device)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.G_kwargs = dict(getattr(self.G, "init_kwargs", G_kwargs))
        self.D_kwargs = dict(getattr(self.D, "init_kwargs", D_kwargs))

        self.loss = build_loss(self.spec.loss, self.G, self.D, self.hp).to(device)

        # Lazy regularization (StyleGAN2 app. B): a regularizer run every k minibatches has its loss
        # multiplied by k, and the optimizer compensates with lr * k/(k+1), betas ** (k/(k+1)).
        self.phases: List[Phase] = []
        self.opts: Dict[str, torch.optim.Optimizer] = {}
        self._lr_ratio: Dict[str, float] = {}
        order = (("G", self.hp["glr"], self.hp.get("G_reg_interval")),
                 ("D", self.hp["dlr"], self.hp.get("D_reg_interval")))
        if getattr(self.loss, "d_first", False):  # ProGAN / StyleGAN: the D step, then the G step
            order = order[::-1]
        for mod, lr, reg in order:
            betas = tuple(float(b) for b in self.hp["adam_betas"])
            params = list(getattr(self, mod).parameters())
            ratio = 1.0 if reg is None else reg / (reg + 1)
            self._lr_ratio[mod] = ratio
            # fused=True: one kernel per parameter (same update, ~4x faster than the loop on CPU).
            self.opts[mod] = torch.optim.Adam(params, lr=lr * ratio, betas=tuple(b ** ratio for b in betas),
                                              eps=self.hp["adam_eps"], fused=True)
            if reg is None:
                self.phases.append(Phase(f"{mod}both", mod, 1))
            else:
                self.phases += [Phase(f"{mod}main", mod, 1), Phase(f"{mod}reg", mod, int(reg))]

        self.cur_nimg = 0
        self.batch_idx = 0

        # Progressive growing (ProGAN / StyleGAN): lod, batch and learning rates follow cur_nimg.
        self.growing: Optional[growing_lib.GrowingSchedule] = None
        self.lod: Optional[float] = None
        self.prev_lod: Optional[float] = None  # lod of the last trained iteration (optimizer resets)
        if self.hp.get("growing") is not None:
            self.growing = growing_lib.GrowingSchedule.from_hparams(self.hp, self.resolution, self.batch,
                                                                    float(cfg.get("kimg") or 0))
            self.prepare()

    # ---- progressive growing -----------------------------------------------------------------------
    def prepare(self) -> None:
        """Set this iteration's lod (into G, D and G_ema), learning rates and batch from the growing
        schedule at ``cur_nimg``; a no-op without growing. The loop calls it before fetching data,
        since the batch may change with the resolution."""
        if self.growing is None:
            return
        st = self.growing.at(self.cur_nimg)
        self.lod = st.lod
        growing_lib.set_lod((self.G, self.D, self.G_ema), st.lod)
        for mod, lr in (("G", st.glr), ("D", st.dlr)):
            for group in self.opts[mod].param_groups:
                group["lr"] = lr * self._lr_ratio[mod]
        if st.batch % self.world_size != 0:
            raise ValueError(f"batch {st.batch} at {st.resolution} px is not divisible by {self.world_size} processes")
        per_rank = st.batch // self.world_size
        batch_gpu = min(int(self.cfg.get("batch_gpu") or per_rank), per_rank)
        if per_rank % batch_gpu != 0:
            raise ValueError(f"batch {st.batch} at {st.resolution} px is not divisible by batch_gpu={batch_gpu}")
        self.batch, self.batch_gpu, self.rounds = st.batch, batch_gpu, per_rank // batch_gpu

    # ---- one iteration -----------------------------------------------------------------------------
    def _gen_c(self, n: int) -> torch.Tensor:
        if self.labels is None:
            return torch.zeros([n, 0], device=self.device)
        idx = torch.randint(self.labels.shape[0], [n]).to(self.device)
        return self.labels[idx]

    def step(self, reals: List[torch.Tensor], real_cs: List[torch.Tensor]) -> None:
        """One iteration over the global batch. ``reals[r]`` is this process's chunk for accumulation
        round ``r`` (``[batch_gpu, C, H, W]`` float in [-1, 1] on the device)."""
        self.prepare()
        assert len(reals) == self.rounds, (len(reals), self.rounds)
        self.loss.cur_nimg = self.cur_nimg  # schedules inside the loss (StyleGAN3-R's D blur)
        if self.growing is not None:
            if self.growing.reset_optimizer and growing_lib.stage_changed(self.prev_lod, self.lod):
                for opt in self.opts.values():  # reset_opt_for_new_lod: a fade starts or ends
                    opt.state.clear()
            reals = [growing_lib.process_reals(r, self.lod) for r in reals]
        ema_before_G = getattr(self.loss, "ema_before_G", False)  # ProGAN/StyleGAN take it after the D step
        ema_done = False
        for p_idx, phase in enumerate(self.phases):
            if self.batch_idx % phase.interval != 0:
                continue
            if ema_before_G and phase.module == "G" and not ema_done:
                self._update_ema()
                ema_done = True
            module = getattr(self, phase.module)
            opt = self.opts[phase.module]
            module.requires_grad_(True)
            opt.zero_grad(set_to_none=True)
            for r in range(self.rounds):
                chunk = r * self.world_size + self.rank  # global chunk index within the batch
                torch.manual_seed(_chunk_seed(self.seed, self.batch_idx, p_idx, chunk))
                gen_z = torch.randn([self.batch_gpu, self.G.z_dim], device=self.device)
                gen_c = self._gen_c(self.batch_gpu)
                self.loss.accumulate(phase.name, reals[r], real_cs[r], gen_z, gen_c,
                                     gain=phase.interval / self.rounds)
            self.loss.end_phase(phase.name, dist_lib.all_reduce_sum)
            module.requires_grad_(False)
            dist_lib.all_reduce_grads(list(module.parameters()), self.world_size)
            opt.step()
        if not ema_done:
            self._update_ema()
        self.prev_lod = self.lod
        self.cur_nimg += self.batch
        self.batch_idx += 1

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.hp.get("ema_beta") is not None:  # ProGAN: a constant beta per iteration
            beta = float(self.hp["ema_beta"])
        else:
            ema_nimg = self.hp["ema_kimg"] * 1000
            if self.hp.get("ema_rampup") is not None:
                ema_nimg = min(ema_nimg, self.cur_nimg * self.hp["ema_rampup"])
            beta = 0.5 ** (self.batch / max(ema_nimg, 1e-8))
        ema_params = list(self.G_ema.parameters())
        torch._foreach_lerp_(ema_params, list(self.G.parameters()), 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)  # w_avg, noise_const, ...: copied, not averaged (NVIDIA)

    # ---- state -------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        cpu = lambda sd: {k: v.detach().cpu() for k, v in sd.items()}
        state = {
            "zoo_version": zoo.__version__,
            "generation": self.spec.name,
            "G_kwargs": self.G_kwargs,
            "D_kwargs": self.D_kwargs,
            "hparams": dict(self.hp),
            "G": cpu(self.G.state_dict()),
            "D": cpu(self.D.state_dict()),
            "G_ema": cpu(self.G_ema.state_dict()),
            "G_opt": self.opts["G"].state_dict(),
            "D_opt": self.opts["D"].state_dict(),
            "loss": self.loss.state_dict(),
            "progress": {"cur_nimg": self.cur_nimg, "batch_idx": self.batch_idx},
            "rng": {"torch": torch.get_rng_state()},
        }
        if self.growing is not None:
            # lod / resolution / alpha of the saved networks (their `lod` buffers): the last trained
            # iteration's; `next_lod` is where training continues (a function of cur_nimg).
            lod = self.prev_lod if self.prev_lod is not None else self.growing.at(self.cur_nimg).lod
            k = math.floor(lod)
            state["growing"] = {"lod": lod, "resolution": self.resolution >> k, "alpha": 1.0 - (lod - k),
                                "prev_lod": self.prev_lod, "next_lod": self.growing.at(self.cur_nimg).lod,
                                "schedule": self.growing.as_dict()}
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if state["generation"] != self.spec.name:
            raise ckpt_lib.CheckpointError(
                f"checkpoint holds a {state['generation']!r} model but the config trains {self.spec.name!r}; "
                f"use model={state['generation']} (or start a new run without resume)")
        for which, mine in (("G_kwargs", self.G_kwargs), ("D_kwargs", self.D_kwargs)):
            diff = {k for k in set(mine) | set(state[which]) if mine.get(k) != state[which].get(k)}
            if diff:
                detail = ", ".join(f"{k}: checkpoint {state[which].get(k)!r} vs config {mine.get(k)!r}" for k in sorted(diff))
                raise ckpt_lib.CheckpointError(
                    f"checkpoint architecture differs from the config ({detail}); "
                    "drop the conflicting overrides to resume, or start a new run")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opts["G"].load_state_dict(state["G_opt"])
        self.opts["D"].load_state_dict(state["D_opt"])
        self.loss.load_state_dict(state["loss"])
        self.loss.to(self.device)
        self.cur_nimg = int(state["progress"]["cur_nimg"])
        self.batch_idx = int(state["progress"]["batch_idx"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.growing is not None and state.get("growing") is not None:
            saved = growing_lib.GrowingSchedule.from_dict(state["growing"]["schedule"])
            if saved != self.growing and self.rank == 0:
                print("[zoo] resume: continuing the checkpoint's growing schedule "
                      f"(stable {saved.stable_kimg:g} / fade {saved.fade_kimg:g} kimg per resolution)", flush=True)
            self.growing = saved
            self.prev_lod = state["growing"]["prev_lod"]
            self.prepare()


# --------------------------------------------------------------------------------------------------
# Data feeding
# --------------------------------------------------------------------------------------------------

class _ChunkStream(torch.utils.data.Sampler):
    """This process's share of one global index stream: the stream is cut into chunks of
    ``batch_gpu`` and chunk ``j`` of every batch belongs to rank ``j % world_size``."""

    def __init__(self, base, rank: int, world_size: int, batch_gpu: int):
        self.base, self.rank, self.world_size, self.batch_gpu = base, rank, world_size, batch_gpu

    def __iter__(self) -> Iterator[int]:
        for pos, idx in enumerate(self.base):
            if (pos // self.batch_gpu) % self.world_size == self.rank:
                yield idx


def _make_loader(dataset, trainer: Trainer, workers: int) -> Iterator:
    from zoo.data import InfiniteSampler

    base = InfiniteSampler(len(dataset), rank=0, num_replicas=1, seed=trainer.seed,
                           start=trainer.cur_nimg)  # the batch may change with the resolution (growing)
    sampler = _ChunkStream(base, trainer.rank, trainer.world_size, trainer.batch_gpu)
    loader = torch.utils.data.DataLoader(
        dataset, sampler=sampler, batch_size=trainer.batch_gpu, num_workers=workers,
        pin_memory=trainer.device.type == "cuda", persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None)
    return iter(loader)


def open_dataset_from_config(dcfg: Dict[str, Any], resolution: Optional[int]):
    """Open the dataset a ``data`` config node describes (options a kind does not take are left out)."""
    from zoo.data import open_dataset

    extra = {k: dcfg[k] for k in ("name", "num_images", "prepare_hint") if dcfg.get(k) is not None}
    if dcfg.get("download"):
        extra["download"] = True
    return open_dataset(dcfg["kind"], dcfg.get("path"), resolution=resolution, mirror=dcfg.get("mirror", False),
                        use_labels=dcfg.get("use_labels", False), max_size=dcfg.get("max_size"),
                        seed=int(dcfg.get("seed") or 0), **extra)


def _dataset_labels(dataset) -> Optional[torch.Tensor]:
    if not getattr(dataset, "has_labels", False) or getattr(dataset, "label_dim", 0) == 0:
        return None
    return torch.as_tensor(np.asarray(dataset.get_all_labels()), dtype=torch.float32)


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------

class _StopFlag:
    """SIGINT/SIGTERM ask the loop to stop at the next iteration boundary (after a checkpoint)."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live there
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # second Ctrl-C: give up immediately
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _vm_hwm_gb() -> Optional[float]:
    """The process's peak resident set since the last reset (Linux ``VmHWM``); None elsewhere."""
    if not os.path.exists("/proc/self/status"):
        return None
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2 ** 20
    return None


def _peak_memory_gb(device: torch.device) -> float:
    """Peak memory since the last :func:`_reset_peak_memory`: CUDA max allocated, or on CPU the
    process's peak resident set (VmHWM; without /proc, the lifetime peak ru_maxrss)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    hwm = _vm_hwm_gb()
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def _reset_peak_memory(device: torch.device) -> bool:
    """Start a new peak-memory window, so a job of a sweep (one process) or the training after a
    metric evaluation is measured on its own. Returns False where the platform cannot reset the
    CPU peak (no writable /proc/self/clear_refs): peaks then cover the whole process lifetime."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as f:  # Linux: "5" resets VmHWM to the current RSS
            f.write("5")
        return _vm_hwm_gb() is not None
    except OSError:
        return False


_POSTFIX = {"Loss/G/loss": "G", "Loss/D/loss": "D", "Loss/r1_penalty": "r1", "Loss/pl_mean": "pl",
            "Loss/gp_penalty": "gp", "Progress/lod": "lod", "Timing/sec_per_kimg": "s/kimg"}


def _grid_latents(trainer: Trainer, num: int):
    gen = torch.Generator().manual_seed(123)
    z = torch.randn([num, trainer.G.z_dim], generator=gen)
    if trainer.labels is None:
        c = torch.zeros([num, 0])
    else:
        c = trainer.labels.cpu()[torch.randint(trainer.labels.shape[0], [num], generator=gen)]
    return z, c


@torch.no_grad()
def _render_grid(G, z, c, device, batch: int, cols: int, rows: int) -> np.ndarray:
    imgs = [G(zb.to(device), cb.to(device), noise_mode="const") for zb, cb in zip(z.split(batch), c.split(batch))]
    return make_grid(to_uint8(torch.cat(imgs)), cols, rows)


def _applicable_metrics(names: List[str], trainer: Trainer, run_dir: Optional[str]) -> List[str]:
    """The metrics that exist for this generation. One list can serve a sweep over generations: EQ
    (StyleGAN3 only) and W-space PPL (not ProGAN) are skipped elsewhere, with a note in job.json."""
    if not names:
        return []
    from zoo.metrics import check_applicable
    from zoo.sampling import NotApplicable

    keep, skipped = [], {}
    for name in names:
        try:
            check_applicable([name], trainer.G, trainer.spec.name)
            keep.append(name)
        except NotApplicable as e:
            skipped[name] = str(e)
    if skipped and run_dir is not None:
        for reason in skipped.values():
            print(f"[zoo] metric skipped: {reason}", flush=True)
        update_job(run_dir, metrics_skipped=skipped)
    return keep


def training_loop(cfg: Dict[str, Any], run_dir: str, *, rank: int = 0, world_size: int = 1,
                  device: Optional[torch.device] = None, resume_path: Optional[str] = None,
                  dataset=None) -> Trainer:
    """Train until ``cfg['kimg']`` thousand real images have been shown to D. Returns the trainer."""
    from zoo.data import to_float

    device = device or resolve_device(cfg.get("device", "auto"))
    dcfg = cfg["data"]
    if dataset is None:
        dataset = open_dataset_from_config(dcfg, resolution=cfg.get("resolution"))
    cfg = dict(cfg, resolution=int(cfg.get("resolution") or dataset.resolution))
    trainer = Trainer(cfg, img_channels=dataset.num_channels, device=device, rank=rank,
                      world_size=world_size, labels=_dataset_labels(dataset) if dcfg.get("use_labels") else None)
    if resume_path:
        trainer.load_state_dict(ckpt_lib.load_checkpoint(resume_path))

    logger = make_logger(rank, run_dir, cfg.get("logger", {}), cfg)
    if rank == 0:
        update_job(run_dir, params_G=sum(p.numel() for p in trainer.G.parameters()),
                   params_D=sum(p.numel() for p in trainer.D.parameters()),
                   G_kwargs=trainer.G_kwargs, generation=trainer.spec.name, resolution=cfg["resolution"])
    total_nimg = int(round(float(cfg["kimg"]) * 1000))
    gw, gh = cfg.get("grid_size", [8, 4])
    grid_z, grid_c = _grid_latents(trainer, gw * gh)

    def snapshot_grid(tag: str) -> None:
        grid = _render_grid(trainer.G_ema, grid_z, grid_c, device, trainer.batch_gpu, gw, gh)
        path = os.path.join(run_dir, f"fakes{tag}.png")
        save_image(grid, path, size=256)
        logger.log_image("samples", grid, trainer.cur_nimg / 1000)

    data_hash = dataset.content_hash() if rank == 0 else None  # recorded in every checkpoint
    mcfg = dict(cfg.get("metrics") or {})
    metric_names = _applicable_metrics(list(mcfg.get("names") or []), trainer, run_dir if rank == 0 else None)
    metric_records: List[Dict[str, Any]] = []
    metric_data = []  # the dataset the metrics compare with, opened on first use

    def run_metrics(kimg: float) -> float:
        """Compute the configured metrics on G_ema (every rank takes part); returns the seconds spent."""
        from zoo.metrics import compute_metrics

        t0 = time.time()
        if not metric_data:  # NVIDIA's *_full protocol: the whole dataset, no x-flips
            full = not dcfg.get("mirror") and not dcfg.get("max_size")
            metric_data.append(dataset if full else open_dataset_from_config(
                dict(dcfg, mirror=False, max_size=None), resolution=cfg["resolution"]))
        records = compute_metrics(metric_names, trainer.G_ema, metric_data[0], mcfg, device=device, kimg=kimg,
                                  generation=trainer.spec.name, rank=rank, world_size=world_size)
        metric_records[:] = records
        for record in records:
            logger.log_metric(record, kimg)
            if rank == 0:
                text = ", ".join(f"{k} {v:.4g}" for k, v in record["results"].items())
                print(f"[zoo] {kimg:.1f} kimg: {text}", flush=True)
        return time.time() - t0

    def save_snapshot() -> str:
        state = trainer.state_dict()
        state["config"] = cfg
        if metric_records:
            state["metrics"] = copy.deepcopy(metric_records)
        state["dataset"] = {"name": dcfg.get("name"), "resolution": cfg["resolution"], "num_images": len(dataset),
                            "label_dim": trainer.c_dim, "content_hash": data_hash}
        path = os.path.join(run_dir, ckpt_lib.SNAPSHOT_PATTERN.format(kimg=trainer.cur_nimg // 1000))
        return ckpt_lib.save_checkpoint(path, state)

    if rank == 0:
        os.makedirs(run_dir, exist_ok=True)
        if trainer.cur_nimg == 0:
            reals = torch.stack([dataset[i][0] for i in range(min(len(dataset), gw * gh))])
            save_image(make_grid(reals.permute(0, 2, 3, 1).numpy(), gw, gh), os.path.join(run_dir, "reals.png"), size=256)
            snapshot_grid("_init")

    loader = _make_loader(dataset, trainer, int(dcfg.get("workers", 0)))
    loader_batch = trainer.batch_gpu
    progress = None
    if rank == 0 and cfg.get("progress", True):
        from tqdm import tqdm

        progress = tqdm(total=total_nimg / 1000, initial=trainer.cur_nimg / 1000, unit="kimg",
                        bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]",
                        file=sys.stdout, dynamic_ncols=True)

    tick_nimg = max(int(float(cfg["tick_kimg"]) * 1000), 1)
    image_nimg = max(int(float(cfg["image_kimg"]) * 1000), 1)
    snap_nimg = max(int(float(cfg["snap_kimg"]) * 1000), 1)
    metric_nimg = max(int(float(mcfg.get("every_kimg") or cfg["snap_kimg"]) * 1000), 1)
    tick_start_nimg, tick_start_time = trainer.cur_nimg, time.time()
    start_time, start_nimg, metrics_time = tick_start_time, trainer.cur_nimg, 0.0
    train_peak = metrics_peak = 0.0
    peak_kind = ("cuda_max_allocated" if device.type == "cuda" else
                 "process_peak_rss" if _reset_peak_memory(device) else "process_lifetime_peak_rss")
    last_snap_path = None
    stopped = False
    with _StopFlag() as stop:
        while trainer.cur_nimg < total_nimg:
            trainer.prepare()  # progressive growing: this iteration's lod and batch
            if trainer.batch_gpu != loader_batch:  # the stream is re-cut at cur_nimg: exact on resume too
                loader = _make_loader(dataset, trainer, int(dcfg.get("workers", 0)))
                loader_batch = trainer.batch_gpu
            reals, real_cs = [], []
            for _ in range(trainer.rounds):
                img, c = next(loader)
                reals.append(to_float(img.to(device, non_blocking=True)))
                real_cs.append(c.to(device, non_blocking=True) if trainer.c_dim else torch.zeros([img.shape[0], 0], device=device))
            prev = trainer.cur_nimg
            trainer.step(reals, real_cs)
            cur = trainer.cur_nimg
            done = cur >= total_nimg
            if world_size > 1:  # every rank must agree to stop at the same iteration
                flag = dist_lib.all_reduce_sum(torch.tensor([float(stop.requested)], device=device))
                stop.requested = bool(flag.item() > 0)
            crossed = lambda every: cur // every != prev // every
            if progress is not None:
                progress.update((cur - prev) / 1000)
            if crossed(tick_nimg) or done or stop.requested:
                now = time.time()
                stats = trainer.loss.pop_stats()
                if trainer.growing is not None:
                    st = trainer.growing.at(prev)  # the schedule of the iteration just trained
                    stats.update({"Progress/lod": st.lod, "Progress/resolution": st.resolution,
                                  "Progress/alpha": st.alpha, "Progress/batch": st.batch})
                stats["Timing/sec_per_kimg"] = (now - tick_start_time) / max(cur - tick_start_nimg, 1) * 1000
                stats["Timing/total_sec"] = now - start_time
                stats["Resources/peak_mem_gb"] = _peak_memory_gb(device)
                logger.log_scalars(stats, cur / 1000)
                if progress is not None:
                    progress.set_postfix_str(", ".join(f"{short}={stats[key]:.3g}" for key, short in _POSTFIX.items() if key in stats))
                tick_start_nimg, tick_start_time = cur, now
            if rank == 0 and (crossed(image_nimg) or done):
                snapshot_grid(f"{cur // 1000:06d}")
            if metric_names and (crossed(metric_nimg) or done) and not stop.requested:
                train_peak = max(train_peak, _peak_memory_gb(device))
                _reset_peak_memory(device)
                spent = run_metrics(cur / 1000)
                metrics_peak = max(metrics_peak, _peak_memory_gb(device))
                _reset_peak_memory(device)
                metrics_time += spent
                tick_start_time += spent  # s/kimg measures training, not evaluation
            if rank == 0 and (crossed(snap_nimg) or done or stop.requested):
                last_snap_path = save_snapshot()
            if stop.requested:
                stopped = True
                break
    if progress is not None:
        progress.close()
    logger.close()
    if rank == 0:
        wall = time.time() - start_time
        trained = max(trainer.cur_nimg - start_nimg, 1)
        update_job(run_dir, kimg=trainer.cur_nimg / 1000, wall_time=wall, metrics_time=metrics_time,
                   sec_per_kimg=(wall - metrics_time) / trained * 1000,
                   peak_mem_gb=max(train_peak, _peak_memory_gb(device)), metrics_peak_mem_gb=metrics_peak or None,
                   peak_mem_kind=peak_kind,
                   last_checkpoint=last_snap_path)
        msg = "interrupted; state saved to" if stopped else "done; last checkpoint:"
        print(f"[zoo] {msg} {last_snap_path}", flush=True)
    if stopped:
        raise KeyboardInterrupt
    return trainer


def run(rank: int, world_size: int, init_file: Optional[str], cfg: Dict[str, Any], run_dir: str,
        resume_path: Optional[str] = None) -> None:
    """Per-process entry point (module level so spawned workers can pickle it)."""
    device = resolve_device(cfg.get("device", "auto"))
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    threads = cfg.get("threads")
    if threads is None and device.type == "cpu" and world_size > 1:
        threads = max(1, (os.cpu_count() or 1) // world_size)
    if threads:
        torch.set_num_threads(int(threads))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    dist_lib.init_process_group(rank, world_size, device, init_file)
    finished = False
    try:
        training_loop(cfg, run_dir, rank=rank, world_size=world_size, device=device, resume_path=resume_path)
        finished = True
    finally:
        dist_lib.shutdown(finished)
