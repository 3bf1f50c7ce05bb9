"""GAN losses used by the shared training loop.

A loss object turns one *phase* of one iteration into gradients:

* ``Gmain``  generator adversarial loss           (every iteration)
* ``Greg``   generator regularizer (path length)  (every ``G_reg_interval`` iterations, lazy)
* ``Gboth``  both at once, when there is no lazy interval
* ``Dmain``  discriminator adversarial loss       (every iteration)
* ``Dreg``   discriminator regularizer (R1)        (every ``D_reg_interval`` iterations, lazy)
* ``Dboth``  both at once

``accumulate(phase, real_img, real_c, gen_z, gen_c, gain)`` runs forward and backward for one
chunk of the batch; the loop sums the chunks, all-reduces across processes and steps the optimizer.
``gain`` already holds the lazy-regularization interval and ``1 / number of chunks``, so the
accumulated gradient is the mean over the whole batch whatever the GPU count or ``batch_gpu``.
"""
from __future__ import annotations

import inspect
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["StyleGAN2Loss", "build_loss"]


class StyleGAN2Loss:
    """Non-saturating logistic loss with R1, path-length and style-mixing regularization
    (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", 2020, §3 and app. B)."""

    def __init__(self, G, D, *, r1_gamma: float = 10.0, style_mixing_prob: float = 0.9,
                 pl_weight: float = 2.0, pl_batch_shrink: int = 2, pl_decay: float = 0.01):
        self.G = G
        self.D = D
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        # Running mean of path lengths ("a" in the paper). ``pl_mean_start`` is its value at the
        # start of the iteration: every chunk regularizes towards the same target, and the mean is
        # advanced once per iteration from the lengths of the whole batch (see ``end_phase``).
        self.pl_mean = torch.zeros([])
        self._pl_lengths_sum = 0.0
        self._pl_lengths_count = 0
        # Sum of the mapping outputs seen by D's fake pass: w_avg advances once per iteration from
        # the mean over the whole batch, identically on every process (see ``end_phase``).
        self._w_sum: Optional[torch.Tensor] = None
        self._w_count = 0
        self.stats: Dict[str, list] = {}

    # ---- bookkeeping ---------------------------------------------------------------------------
    def _record(self, name: str, value: torch.Tensor) -> None:
        # Kept as tensors: converting here would force a device sync in every phase.
        self.stats.setdefault(name, []).append(value.detach().float().mean())

    def pop_stats(self) -> Dict[str, float]:
        out = {k: float(torch.stack(v).mean()) for k, v in self.stats.items() if v}
        self.stats = {}
        return out

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {"pl_mean": self.pl_mean.detach().cpu().clone()}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        self.pl_mean = state["pl_mean"].clone().to(self.pl_mean.device)

    def to(self, device) -> "StyleGAN2Loss":
        self.pl_mean = self.pl_mean.to(device)
        return self

    # ---- networks --------------------------------------------------------------------------------
    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        ws = self.G.mapping(z, c)
        if update_emas:  # collected here, applied in end_phase
            w = ws[:, 0].detach().sum(0)
            self._w_sum = w if self._w_sum is None else self._w_sum + w
            self._w_count += ws.shape[0]
        if self.style_mixing_prob > 0 and float(torch.rand([])) < self.style_mixing_prob:
            # Style mixing: from a random layer on, the styles come from a second latent.
            cutoff = int(torch.randint(1, ws.shape[1], []))
            ws2 = self.G.mapping(torch.randn_like(z), c, update_emas=False)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        img = self.G.synthesis(ws)
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.D(img, c)

    # ---- phases ----------------------------------------------------------------------------------
    def accumulate(self, phase: str, real_img: Optional[torch.Tensor], real_c: Optional[torch.Tensor],
                   gen_z: torch.Tensor, gen_c: torch.Tensor, gain: float) -> None:
        do_Gmain = phase in ("Gmain", "Gboth")
        do_Gpl = phase in ("Greg", "Gboth") and self.pl_weight != 0
        do_Dmain = phase in ("Dmain", "Dboth")
        do_Dr1 = phase in ("Dreg", "Dboth") and self.r1_gamma != 0

        if do_Gmain:
            gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            self._record("Loss/scores/fake", gen_logits)
            loss_G = F.softplus(-gen_logits)  # -log(sigmoid(logits))
            self._record("Loss/G/loss", loss_G)
            loss_G.mean().mul(gain).backward()

        if do_Gpl:
            n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            (pl_grads,) = torch.autograd.grad((gen_img * pl_noise).sum(), gen_ws, create_graph=True)
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
            target = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
            self._pl_lengths_sum += float(pl_lengths.detach().sum())
            self._pl_lengths_count += pl_lengths.shape[0]
            pl_penalty = (pl_lengths - target).square()
            self._record("Loss/pl_penalty", pl_penalty)
            (pl_penalty * self.pl_weight).mean().mul(gain).backward()

        if do_Dmain or do_Dr1:
            # One backward per chunk for the fake and real terms together: the same gradient as
            # two passes, and the chunk sums then associate identically on 1 or N processes.
            loss = torch.zeros([], device=gen_z.device)
            if do_Dmain:
                with torch.no_grad():
                    gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
                gen_logits = self.run_D(gen_img, gen_c)
                self._record("Loss/scores/fake", gen_logits)
                loss_Dgen = F.softplus(gen_logits)  # -log(1 - sigmoid(logits))
                loss = loss + loss_Dgen.mean()
            real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real_img_tmp, real_c)
            if do_Dmain:
                self._record("Loss/scores/real", real_logits)
                loss_Dreal = F.softplus(-real_logits)
                self._record("Loss/D/loss", loss_Dgen + loss_Dreal)
                loss = loss + loss_Dreal.mean()
            if do_Dr1:
                (r1_grads,) = torch.autograd.grad(real_logits.sum(), real_img_tmp, create_graph=True)
                r1_penalty = r1_grads.square().sum([1, 2, 3])
                self._record("Loss/r1_penalty", r1_penalty)
                # "+ 0 * logits" keeps every D parameter in the graph (the last bias gets no R1 grad).
                loss = loss + (r1_penalty * (self.r1_gamma / 2)).mean() + real_logits.mean() * 0
            loss.mul(gain).backward()

    def end_phase(self, phase: str, all_reduce_sum=None) -> None:
        """Advance the running statistics once per iteration from the whole batch (all chunks of
        all processes): the path-length mean and the generator's ``w_avg``."""
        reduce = all_reduce_sum or (lambda t: t)
        if self._pl_lengths_count:
            totals = reduce(torch.tensor([self._pl_lengths_sum, float(self._pl_lengths_count)], dtype=torch.float64,
                                         device=self.pl_mean.device))  # on the device: NCCL reduces no CPU tensors
            batch_mean = (totals[0] / totals[1]).to(self.pl_mean)
            self.pl_mean = self.pl_mean.lerp(batch_mean, self.pl_decay).detach()
            self._record("Loss/pl_mean", self.pl_mean)
            self._pl_lengths_sum, self._pl_lengths_count = 0.0, 0
        if self._w_count:
            mapping = self.G.mapping
            totals = reduce(torch.cat([self._w_sum, self._w_sum.new_tensor([self._w_count])]))
            with torch.no_grad():
                mapping.w_avg.copy_((totals[:-1] / totals[-1]).lerp(mapping.w_avg, mapping.w_avg_beta))
            self._w_sum, self._w_count = None, 0

LOSSES = {"stylegan2": StyleGAN2Loss}


def build_loss(loss_name: str, G, D, hparams: Dict) -> "StyleGAN2Loss":
    """Build loss ``loss_name`` taking from ``hparams`` (the resolved model config) the keys it accepts."""
    cls = LOSSES[loss_name]
    accepted = inspect.signature(cls.__init__).parameters
    return cls(G, D, **{k: v for k, v in hparams.items() if k in accepted and k not in ("self", "G", "D")})
