"""The training algorithm, apart from the bookkeeping loop: :class:`Trainer` owns the networks,
optimizers, EMA, growing schedule and loss, and runs one iteration at a time with NVIDIA's phase
structure (``Gmain``, lazy ``Greg``, ``Dmain``, lazy ``Dreg``; each phase its own optimizer step).
Generations differ only by their registry spec, model config and loss (:mod:`zoo.training.losses`,
whose base class declares what the trainer asks of a loss).

Randomness is keyed, not streamed: every (iteration, phase, batch chunk) seeds the RNG from
``(seed, iteration, phase, chunk)``.  The same chunk therefore sees the same latents, noise and
style-mixing draws whichever process or accumulation round computes it, which makes ``gpus=N``
equal to one process over the same total batch, and resuming exact without replaying RNG streams.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from zoo import generations
from zoo.core import __version__
from zoo.core import distributed as dist_lib
from zoo.core.errors import CheckpointError
from zoo.ops.precision import FP32, Precision, resolve_mode
from zoo.training import finetune
from zoo.training import growing as growing_lib
from zoo.training.augment import build_augmentation
from zoo.training.losses import build_loss

__all__ = ["Trainer", "Phase"]


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

        # Precision (NVIDIA's mixed-precision policy, zoo.ops.precision): a run-time setting of the
        # networks; weights, optimizer state, EMA, losses and regularizers stay float32.
        mode = resolve_mode(cfg.get("precision", "fp32"), device, cfg.get("precision_dtype"))
        self.precision = Precision(mode, cfg.get("precision_dtype"), int(cfg.get("num_fp16_res", 4)))

        self.spec = generations.get(cfg["model"]["name"])
        self.hp = self.spec.resolve_hparams(cfg["model"], self.resolution, self.batch, precision=mode)
        if cfg.get("init"):  # fine-tuning (init=): NVIDIA's --resume settings
            self.hp = finetune.finetune_hparams(self.hp, cfg["model"])
        G_kwargs, D_kwargs = self.spec.network_kwargs(self.hp, self.resolution, img_channels, self.c_dim)
        torch.manual_seed(self.seed)  # identical initial weights on every rank
        self.G = self.spec.build_generator(**G_kwargs).train().requires_grad_(False).to(device)
        self.D = self.spec.build_discriminator(**D_kwargs).train().requires_grad_(False).to(device)
        if not hasattr(self.G, "set_precision"):  # ProGAN / StyleGAN (v1): float32 networks only
            if self.precision.mixed and rank == 0 and cfg.get("precision") == "mixed":
                print(f"[zoo] {self.spec.name} has no mixed-precision blocks; it trains in float32", flush=True)
            self.precision = FP32
        for net in (self.G, self.D):
            if hasattr(net, "set_precision"):
                net.set_precision(self.precision.mode, self.precision.dtype, self.precision.num_fp16_res)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.G_kwargs = dict(getattr(self.G, "init_kwargs", G_kwargs))
        self.D_kwargs = dict(getattr(self.D, "init_kwargs", D_kwargs))

        self.loss = build_loss(self.spec.loss, self.G, self.D, self.hp).to(device)
        # aug=: every D input is augmented (ADA adapts p in end-of-iteration steps); Freeze-D.
        self.augment = build_augmentation(cfg.get("aug"), self.spec.augment, device, finetuning=bool(cfg.get("init")))
        self.loss.augment = self.augment
        self.frozen = {"D": [p for _, layer in finetune.frozen_layers(self.D, int(cfg.get("freeze_d") or 0))
                             for p in layer.parameters()]}
        self.init_source: Optional[Dict[str, Any]] = None  # init=: where the weights came from

        # Lazy regularization (StyleGAN2 app. B): a regularizer run every k minibatches has its loss
        # multiplied by k, and the optimizer compensates with lr * k/(k+1), betas ** (k/(k+1)).
        self.phases: List[Phase] = []
        self.opts: Dict[str, torch.optim.Optimizer] = {}
        self._lr_ratio: Dict[str, float] = {}
        order = (("G", self.hp["glr"], self.hp.get("G_reg_interval")),
                 ("D", self.hp["dlr"], self.hp.get("D_reg_interval")))
        if self.loss.d_first:  # ProGAN / StyleGAN: the D step, then the G step
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
        if self.growing is not None:
            if self.growing.reset_optimizer and growing_lib.stage_changed(self.prev_lod, self.lod):
                for opt in self.opts.values():  # reset_opt_for_new_lod: a fade starts or ends
                    opt.state.clear()
            reals = [growing_lib.process_reals(r, self.lod) for r in reals]
        ema_before_G = self.loss.ema_before_G  # ProGAN/StyleGAN take it after the D step
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
            for p in self.frozen.get(phase.module, ()):  # Freeze-D: no gradient, so Adam skips them
                p.requires_grad_(False)
            opt.zero_grad(set_to_none=True)
            for r in range(self.rounds):
                chunk = r * self.world_size + self.rank  # global chunk index within the batch
                torch.manual_seed(_chunk_seed(self.seed, self.batch_idx, p_idx, chunk))
                gen_z = torch.randn([self.batch_gpu, self.G.z_dim], device=self.device)
                gen_c = self._gen_c(self.batch_gpu)
                self.loss.accumulate(phase.name, reals[r], real_cs[r], gen_z, gen_c,
                                     gain=phase.interval / self.rounds, cur_nimg=self.cur_nimg)
            self.loss.end_phase(phase.name, dist_lib.all_reduce_sum)
            module.requires_grad_(False)
            dist_lib.all_reduce_grads(list(module.parameters()), self.world_size)
            opt.step()
        if not ema_done:
            self._update_ema()
        self.prev_lod = self.lod
        self.cur_nimg += self.batch
        self.batch_idx += 1
        if self.augment is not None:
            self.augment.end_iteration(self.batch_idx, self.batch, dist_lib.all_reduce_sum)

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
            "zoo_version": __version__,
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
            "precision": {"mode": self.precision.mode, "dtype": self.precision.dtype,
                          "num_fp16_res": self.precision.num_fp16_res},
            "rng": {"torch": torch.get_rng_state()},
        }
        if self.augment is not None:
            state["augment"] = self.augment.state_dict()
            pipe = self.augment.pipe_state()  # NVIDIA's buffers (p, Hz_geom, Hz_fbank); None for DiffAugment
            if pipe is not None:
                state["augment_pipe"] = pipe
        if self.init_source is not None:
            state["init"] = self.init_source
        if self.growing is not None:
            # lod / resolution / alpha of the saved networks (their `lod` buffers): the last trained
            # iteration's; `next_lod` is where training continues (a function of cur_nimg).
            lod = self.prev_lod if self.prev_lod is not None else self.growing.at(self.cur_nimg).lod
            k = math.floor(lod)
            state["growing"] = {"lod": lod, "resolution": self.resolution >> k, "alpha": 1.0 - (lod - k),
                                "prev_lod": self.prev_lod, "next_lod": self.growing.at(self.cur_nimg).lod,
                                "schedule": self.growing.as_dict()}
        return state

    @staticmethod
    def resume_config(cfg: Dict[str, Any], state: Dict[str, Any]) -> Dict[str, Any]:
        """``cfg`` for continuing the run in ``state``: ``precision=auto`` continues in the precision the
        run was trained in (float32 for checkpoints that record none), so the machine a run resumes
        on cannot change it, nor the rules that depend on it (StyleGAN2's ``conv_clamp``)."""
        if cfg.get("precision", "fp32") != "auto":
            return cfg
        return dict(cfg, precision=(state.get("precision") or {}).get("mode", "fp32"))

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if state["generation"] != self.spec.name:
            raise CheckpointError(
                f"checkpoint holds a {state['generation']!r} model but the config trains {self.spec.name!r}; "
                f"use model={state['generation']} (or start a new run without resume)")
        for which, mine in (("G_kwargs", self.G_kwargs), ("D_kwargs", self.D_kwargs)):
            diff = {k for k in set(mine) | set(state[which]) if mine.get(k) != state[which].get(k)}
            if diff:
                detail = ", ".join(f"{k}: checkpoint {state[which].get(k)!r} vs config {mine.get(k)!r}" for k in sorted(diff))
                saved = (state.get("precision") or {}).get("mode", "fp32")
                hint = (f" (StyleGAN2 clamps at 256 only with mixed precision and the checkpoint was trained in "
                        f"{saved}: resume with precision={saved})" if "conv_clamp" in diff and saved != self.precision.mode else "")
                raise CheckpointError(
                    f"checkpoint architecture differs from the config ({detail}){hint}; "
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
        if self.augment is not None:
            self.augment.load_state_dict(state.get("augment"))
        self.init_source = state.get("init")
        if self.growing is not None and state.get("growing") is not None:
            saved = growing_lib.GrowingSchedule.from_dict(state["growing"]["schedule"])
            if saved != self.growing and self.rank == 0:
                print("[zoo] resume: continuing the checkpoint's growing schedule "
                      f"(stable {saved.stable_kimg:g} / fade {saved.fade_kimg:g} kimg per resolution)", flush=True)
            self.growing = saved
            self.prev_lod = state["growing"]["prev_lod"]
            self.prepare()
