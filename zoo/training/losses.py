"""GAN losses used by the shared training loop.

A loss object turns one *phase* of one iteration into gradients:

* ``Gmain``  generator adversarial loss           (every iteration)
* ``Greg``   generator regularizer (path length)  (every ``G_reg_interval`` iterations, lazy)
* ``Gboth``  both at once, when there is no lazy interval
* ``Dmain``  discriminator adversarial loss       (every iteration)
* ``Dreg``   discriminator regularizer (R1)        (every ``D_reg_interval`` iterations, lazy)
* ``Dboth``  both at once

``accumulate(phase, real_img, real_c, gen_z, gen_c, gain=, cur_nimg=)`` runs forward and backward for
one chunk of the batch; the trainer sums the chunks, all-reduces across processes and steps the
optimizer (:class:`LossBase` declares the whole protocol). ``gain`` already holds the
lazy-regularization interval and ``1 / number of chunks``, so the accumulated gradient is the mean
over the whole batch whatever the GPU count or ``batch_gpu``.
"""
from __future__ import annotations

import abc
import inspect
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from zoo.ops.fir import filter2d

__all__ = ["LossBase", "StyleGAN2Loss", "build_loss"]


class LossBase(abc.ABC):
    """The loss <-> loop protocol: what :class:`zoo.training.trainer.Trainer` asks of every loss.

    Once per iteration, for each phase due (``Gmain``/``Greg``/``Gboth`` on G's optimizer,
    ``Dmain``/``Dreg``/``Dboth`` on D's), the trainer calls :meth:`accumulate` once per batch chunk,
    then :meth:`end_phase` once, all-reduces the gradients and steps the optimizer. Besides that a
    loss declares its phase order (:attr:`d_first`) and where the G EMA is taken
    (:attr:`ema_before_G`), keeps logged statistics (:meth:`pop_stats`) and may keep a running state
    that checkpoints carry (:meth:`state_dict`)."""

    #: Run the D phases before the G phases of an iteration (ProGAN, StyleGAN) instead of after.
    d_first: bool = False
    #: Take the G EMA between the D and G steps (ProGAN, StyleGAN) instead of after both.
    ema_before_G: bool = False
    #: Set by the trainer (``aug=``): applied to every image D sees (reals, fakes, R1 / GP inputs),
    #: told the signs of D's real scores (the ADA heuristic, :meth:`_observe_reals`).
    augment: Optional[Any] = None

    stats: Dict[str, list]

    @abc.abstractmethod
    def accumulate(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                   gen_c: torch.Tensor, *, gain: float, cur_nimg: int) -> None:
        """Forward and backward of one batch chunk in ``phase``; gradients accumulate in the
        parameters. ``gain`` holds the lazy-regularization interval and ``1 / number of chunks``;
        ``cur_nimg`` is the number of real images shown before this iteration (for schedules inside
        the loss, such as StyleGAN3-R's discriminator blur)."""

    def end_phase(self, phase: str, all_reduce_sum: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> None:
        """Advance running statistics once per phase, from the whole batch (``all_reduce_sum`` sums a
        tensor over processes). Nothing to advance here."""

    def _augment(self, img: torch.Tensor) -> torch.Tensor:
        return img if self.augment is None else self.augment(img)

    def _observe_reals(self, real_logits: torch.Tensor) -> None:
        """``sign(D(real))``: logged, and ADA's overfitting heuristic (every real pass, R1's included)."""
        self._record("Loss/signs/real", real_logits.sign())
        if self.augment is not None:
            self.augment.observe(real_logits)

    def _record(self, name: str, value: torch.Tensor) -> None:
        # Kept as tensors: converting here would force a device sync in every phase.
        self.stats.setdefault(name, []).append(value.detach().float().mean())

    def pop_stats(self) -> Dict[str, float]:
        """The means of the statistics recorded since the last call (``Loss/...`` keys)."""
        out = {k: float(torch.stack(v).mean()) for k, v in self.stats.items() if v}
        self.stats = {}
        return out

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """Running state a checkpoint must carry (empty: none)."""
        return {}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        if state:  # a checkpoint of a loss that keeps state cannot be resumed by one that keeps none
            raise ValueError(f"{type(self).__name__} keeps no state, got {sorted(state)}")

    def to(self, device) -> "LossBase":
        return self


class StyleGAN2Loss(LossBase):
    """Non-saturating logistic loss with R1, path-length and style-mixing regularization
    (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", 2020, §3 and app. B)."""

    def __init__(self, G, D, *, r1_gamma: float = 10.0, style_mixing_prob: float = 0.9,
                 pl_weight: float = 2.0, pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 blur_init_sigma: float = 0.0, blur_fade_kimg: float = 0.0):
        self.G = G
        self.D = D
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        # StyleGAN3-R: D's inputs (real and fake) are blurred by a Gaussian whose sigma fades
        # linearly from blur_init_sigma to 0 over blur_fade_kimg. It depends only on the image count
        # (``cur_nimg``, which the trainer passes and the checkpoint stores).
        self.blur_init_sigma = float(blur_init_sigma or 0.0)
        self.blur_fade_kimg = float(blur_fade_kimg or 0.0)
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
        img = self.G.synthesis(ws, update_emas=update_emas)
        return img, ws

    def blur_sigma(self, cur_nimg: int) -> float:
        if self.blur_fade_kimg <= 0 or self.blur_init_sigma <= 0:
            return 0.0
        return max(1.0 - cur_nimg / (self.blur_fade_kimg * 1e3), 0.0) * self.blur_init_sigma

    def run_D(self, img: torch.Tensor, c: torch.Tensor, blur_sigma: float = 0.0) -> torch.Tensor:
        if blur_sigma > 0:
            img = blur(img, blur_sigma)
        return self.D(self._augment(img), c)

    # ---- phases ----------------------------------------------------------------------------------
    def accumulate(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                   gen_c: torch.Tensor, *, gain: float, cur_nimg: int) -> None:
        sigma = self.blur_sigma(cur_nimg)
        do_Gmain = phase in ("Gmain", "Gboth")
        do_Gpl = phase in ("Greg", "Gboth") and self.pl_weight != 0
        do_Dmain = phase in ("Dmain", "Dboth")
        do_Dr1 = phase in ("Dreg", "Dboth") and self.r1_gamma != 0

        if do_Gmain:
            gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c, sigma)
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
                gen_logits = self.run_D(gen_img, gen_c, sigma)
                self._record("Loss/scores/fake", gen_logits)
                loss_Dgen = F.softplus(gen_logits)  # -log(1 - sigmoid(logits))
                loss = loss + loss_Dgen.mean()
            real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real_img_tmp, real_c, sigma)
            self._observe_reals(real_logits)
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
        if all_reduce_sum is not None and phase in ("Dmain", "Dboth"):
            # Generators with running input statistics (StyleGAN3's magnitude_ema) update them in
            # every forward with update_emas=True, as NVIDIA's do; processes then agree on the mean.
            emas = [b for name, b in self.G.named_buffers() if name.endswith("magnitude_ema")]
            if emas:
                totals = all_reduce_sum(torch.stack([b.detach().float() for b in emas] + [emas[0].new_ones([])]))
                if float(totals[-1]) > 1:
                    with torch.no_grad():
                        for b, t in zip(emas, totals[:-1] / totals[-1]):
                            b.copy_(t)
        if self._w_count:
            mapping = self.G.mapping
            totals = reduce(torch.cat([self._w_sum, self._w_sum.new_tensor([self._w_count])]))
            with torch.no_grad():
                mapping.w_avg.copy_((totals[:-1] / totals[-1]).lerp(mapping.w_avg, mapping.w_avg_beta))
            self._w_sum, self._w_count = None, 0

def blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """StyleGAN3's discriminator-input blur: a separable kernel ``2 ** -(x / sigma) ** 2`` over
    ``|x| <= 3 sigma``, normalised to unit sum (the official kernel uses base 2, not e)."""
    radius = int(np.floor(sigma * 3))
    if radius < 1:
        return img
    x = torch.arange(-radius, radius + 1, device=img.device, dtype=torch.float32)
    f = torch.exp2(-(x / sigma).square())
    return filter2d(img, f / f.sum())


LOSSES = {"stylegan2": StyleGAN2Loss}


def build_loss(loss_name: str, G, D, hparams: Dict) -> LossBase:
    """Build loss ``loss_name`` taking from ``hparams`` (the resolved model config) the keys it accepts."""
    cls = LOSSES[loss_name]
    accepted = inspect.signature(cls.__init__).parameters
    return cls(G, D, **{k: v for k, v in hparams.items() if k in accepted and k not in ("self", "G", "D")})


# ------------------------------------------------------------------------------------------------
# ProGAN and StyleGAN (v1): progressive growing, no lazy regularization.
# ------------------------------------------------------------------------------------------------

def _label_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy against (one-hot) labels, per sample."""
    return -(labels.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1, keepdim=True)


class ProGANLoss(LossBase):
    """WGAN-GP with the drift term (Karras et al. 2018, §A.1; Gulrajani et al. 2017), plus the
    AC-GAN label terms for conditional training, as ProGAN's ``G_wgan_acgan`` / ``D_wgangp_acgan``:

    * G: ``-D(G(z))``  (+ ``cond_weight * CE(labels(G(z)), c)``)
    * D: ``D(G(z)) - D(x) + wgan_lambda / wgan_target^2 * (||grad D(x_hat)|| - wgan_target)^2
      + wgan_epsilon * D(x)^2`` with ``x_hat = lerp(x, G(z), u)``, ``u ~ U[0, 1]`` per sample
      (+ ``cond_weight * (CE(labels(x), c) + CE(labels(G(z)), c))``).

    The D step runs before the G step of the same iteration, as in the original loop
    (``d_first``), and the generator's EMA is taken between them (``ema_before_G``).
    """

    d_first = True
    ema_before_G = True

    def __init__(self, G, D, *, wgan_lambda: float = 10.0, wgan_target: float = 1.0, wgan_epsilon: float = 0.001,
                 cond_weight: float = 1.0):
        self.G = G
        self.D = D
        self.wgan_lambda = float(wgan_lambda)
        self.wgan_target = float(wgan_target)
        self.wgan_epsilon = float(wgan_epsilon)
        self.cond_weight = float(cond_weight)
        self.stats: Dict[str, list] = {}

    def gradient_penalty(self, real_img: torch.Tensor, fake_img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Per-sample ``(||grad D(x_hat)||_2 - target)^2`` on random interpolates of reals and fakes."""
        u = torch.rand([real_img.shape[0], 1, 1, 1], device=real_img.device, dtype=real_img.dtype)
        mixed = torch.lerp(real_img.detach(), fake_img.detach(), u).requires_grad_(True)
        mixed_scores = self.D(self._augment(mixed), c)  # the gradient of D∘augment, as R1's
        (grads,) = torch.autograd.grad(mixed_scores.sum(), mixed, create_graph=True)
        norms = grads.square().sum(dim=[1, 2, 3]).sqrt()
        return (norms - self.wgan_target).square()

    def accumulate(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                   gen_c: torch.Tensor, *, gain: float, cur_nimg: int) -> None:
        conditional = gen_c.shape[1] > 0
        if phase in ("Gmain", "Gboth"):
            fake_scores, fake_labels = self.D(self._augment(self.G(gen_z, gen_c)), gen_c, return_labels=True)
            self._record("Loss/scores/fake", fake_scores)
            loss_G = -fake_scores
            if conditional:
                loss_G = loss_G + _label_cross_entropy(fake_labels, gen_c) * self.cond_weight
            self._record("Loss/G/loss", loss_G)
            loss_G.mean().mul(gain).backward()

        do_Dmain = phase in ("Dmain", "Dboth")
        do_Dgp = phase in ("Dreg", "Dboth") and self.wgan_lambda != 0
        if do_Dmain or do_Dgp:
            with torch.no_grad():
                fake_img = self.G(gen_z, gen_c)
            loss = torch.zeros([], device=gen_z.device)
            if do_Dmain:
                fake_scores, fake_labels = self.D(self._augment(fake_img), gen_c, return_labels=True)
                real_scores, real_labels = self.D(self._augment(real_img.detach()), real_c, return_labels=True)
                self._observe_reals(real_scores)
                self._record("Loss/scores/fake", fake_scores)
                self._record("Loss/scores/real", real_scores)
                drift = real_scores.square()
                self._record("Loss/drift_penalty", drift)
                loss_D = fake_scores - real_scores + drift * self.wgan_epsilon
                if conditional:
                    loss_D = loss_D + (_label_cross_entropy(real_labels, real_c)
                                       + _label_cross_entropy(fake_labels, gen_c)) * self.cond_weight
                self._record("Loss/D/loss", loss_D)
                loss = loss + loss_D.mean()
            if do_Dgp:
                gp = self.gradient_penalty(real_img, fake_img, real_c)
                self._record("Loss/gp_penalty", gp)
                loss = loss + (gp * (self.wgan_lambda / self.wgan_target ** 2)).mean()
            loss.mul(gain).backward()


class StyleGANLoss(StyleGAN2Loss):
    """StyleGAN (v1): non-saturating logistic loss with R1 (gamma 10, every step), style mixing
    over the *currently active* layers, no path-length regularization (``G_logistic_nonsaturating``
    / ``D_logistic_simplegp``).

    Style mixing: with probability ``style_mixing_prob`` a cutoff ``~ U[1, cur_layers)`` is drawn,
    ``cur_layers = num_ws - 2 * floor(lod)`` (the layers in use, the fading-in block included), and
    the styles from the cutoff on come from a second latent. ``w_avg`` (beta 0.995) advances from
    the batch mean of w in every pass that trains G or D, as the original's ``dlatent_avg``. As in
    the original loop, the D step comes first and the EMA is taken before the G step.
    """

    d_first = True
    ema_before_G = True

    def __init__(self, G, D, *, r1_gamma: float = 10.0, style_mixing_prob: float = 0.9):
        super().__init__(G, D, r1_gamma=r1_gamma, style_mixing_prob=style_mixing_prob, pl_weight=0.0)

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = True):
        ws = self.G.mapping(z, c)
        w = ws[:, 0].detach().sum(0)  # collected here, applied once per phase in end_phase
        self._w_sum = w if self._w_sum is None else self._w_sum + w
        self._w_count += ws.shape[0]
        if self.style_mixing_prob > 0 and float(torch.rand([])) < self.style_mixing_prob:
            cur_layers = self.G.synthesis.num_active_ws()
            cutoff = int(torch.randint(1, cur_layers, []))
            ws2 = self.G.mapping(torch.randn_like(z), c)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return self.G.synthesis(ws), ws


LOSSES.update(progan=ProGANLoss, stylegan=StyleGANLoss)
