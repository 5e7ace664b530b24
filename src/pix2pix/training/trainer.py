"""The paper's training step: G forward, one D step, one G step (`Pix2PixTrainer`).

Per batch, in the paper's order (sec. 3.3): G translates the input; D takes one step on
(input, target) as real and (input, G(input)) as fake, its loss halved; then G takes one
step on the non-saturating GAN loss plus lambda * L1, with D frozen. Adam(2e-4, 0.5,
0.999); the LR is constant for `epochs` then decays linearly to zero over `decay_epochs`.

Under torchrun (a `DistContext` with several ranks) G and D's step run inside
DistributedDataParallel, which averages the gradients over ranks: the mean over the
global batch, since every rank's losses are means over equal per-rank batches.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pix2pix.checkpoint import (
    DISCRIMINATOR_FILE,
    EMA_FILE,
    GENERATOR_FILE,
    load_training_state,
    load_weights,
)
from pix2pix.config import RunConfig
from pix2pix.losses import (
    d_accuracy,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    r1_penalty,
    reconstruction_loss,
)
from pix2pix.nets import build_discriminator, build_generator
from pix2pix.nets.inference import run_any_size
from pix2pix.runtime import Speed, autocast, compiled, memory_format, resolve_speed
from pix2pix.training.augment import augment_pairs
from pix2pix.training.distributed import (
    DistContext,
    augment_seed,
    gather_rows,
    sync_batch_norm,
    wrap_ddp,
)
from pix2pix.training.ema import WeightAverage


def lr_factor(epoch: int, epochs: int, decay_epochs: int) -> float:
    """LR multiplier in 0-based `epoch`: 1 for `epochs` epochs, then linearly towards 0.

    The last epoch runs at 1 / (decay_epochs + 1); the rate would reach 0 the epoch after.
    """
    return 1.0 - max(0, epoch + 1 - epochs) / (decay_epochs + 1)


class DiscriminatorPair(nn.Module):
    """D on the fake pairs, then on the real pairs, in one call.

    Two forward passes, so that batch norm sees each batch on its own as in the paper;
    one call, so that DistributedDataParallel sees one forward per backward.
    """

    def __init__(self, d: nn.Module) -> None:
        super().__init__()
        self.d = d

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.d(fake), self.d(real)


class Pix2PixTrainer:
    """Both networks, their optimisers and learning rates, and one training step."""

    def __init__(
        self,
        config: RunConfig,
        device: torch.device,
        speed: Speed | None = None,
        ctx: DistContext | None = None,
    ) -> None:
        m, t = config.model, config.train
        self.config = config
        self.device = device
        self.ctx = ctx or DistContext()
        self.speed = speed or resolve_speed(
            device, "train", t.precision, t.channels_last, t.compile
        )
        fmt = memory_format(self.speed)
        # g and d are the plain modules (saved, optimised). What runs: g_run, G inside
        # DDP (several ranks) inside torch.compile (if on), the order DDP's compiled
        # bucketing wants; d_pair, D's own step likewise; d_frozen, D in G's step, outside
        # DDP: frozen there, it has no gradients to average, and a DDP forward with no
        # matching gradients would leave DDP waiting for them.
        self.g = build_generator(m).to(device, memory_format=fmt)
        self.d = build_discriminator(m).to(device, memory_format=fmt)
        if t.sync_bn:
            self.g = sync_batch_norm(self.g, self.ctx, device)
            self.d = sync_batch_norm(self.d, self.ctx, device)
        self.g_run = compiled(wrap_ddp(self.g, self.ctx, device), self.speed, "train")
        pair = wrap_ddp(DiscriminatorPair(self.d), self.ctx, device)
        self.d_pair = compiled(pair, self.speed, "train")
        self.d_frozen = compiled(self.d, self.speed, "train")
        self.stride: int = self.g.stride
        # The fused Adam kernel does the whole update in one pass over memory: 3x faster
        # than the per-tensor loop on this U-Net's 54M parameters (CPU and CUDA).
        adam = {"lr": t.lr, "betas": (t.beta1, t.beta2), "fused": device.type in ("cpu", "cuda")}
        self.opt_g = torch.optim.Adam(self.g.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.d.parameters(), **{**adam, "lr": self.lr_d})
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.speed.precision == "fp16")
        self.steps = 0  # optimiser steps taken (lazy R1 and the EMA warm-up count them)
        self.ema = WeightAverage(self.g, t.ema_decay) if t.ema_decay > 0 else None
        # augmentation draws from its own stream, so that it leaves dropout's unchanged,
        # and from each rank's own, so that the ranks' shares are augmented unalike
        self.augment_rng = torch.Generator().manual_seed(augment_seed(t.seed, self.ctx.rank))

    @property
    def g_infer(self) -> nn.Module:
        """The generator inference uses: the weight average when --ema-decay, else G."""
        return self.ema.module if self.ema is not None else self.g

    def augment(self, *pairs: torch.Tensor) -> list[torch.Tensor]:
        """D's inputs with --augment's transform (one draw for all of them)."""
        policy = self.config.train.augment_policy
        if not policy:
            return list(pairs)
        split = self.config.model.in_channels if self.config.model.conditional else 0
        return augment_pairs(pairs, policy, self.augment_rng, int(split or 0))

    def autocast(self):
        return autocast(self.speed.precision, self.device)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A batch (B, C, H, W) on the training device in the training memory layout."""
        return x.to(self.device, non_blocking=True, memory_format=memory_format(self.speed))

    def generate(self, real_a: torch.Tensor) -> torch.Tensor:
        """G(input) for (B, C_in, H, W) of any H, W -> (B, C_out, H, W)."""
        return run_any_size(self.g_run, real_a, self.stride)

    def d_input(self, real_a: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """What D judges: an output `image` (B, C_out, H, W), beside its input if conditional."""
        return torch.cat([real_a, image], dim=1) if self.config.model.conditional else image

    def d_step(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One D update: (input, target) is real, (input, fake) is fake; plus the lazy R1
        penalty on the real pairs every --r1-every steps."""
        t = self.config.train
        self.d.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        r1_now = t.r1_gamma > 0 and self.steps % t.r1_every == 0
        real_in = self.d_input(real_a, real_b)
        if r1_now:
            real_in = real_in.detach().requires_grad_(True)
        with self.autocast():
            fake_in, real_seen = self.augment(self.d_input(real_a, fake.detach()), real_in)
            fake_logits, real_logits = self.d_pair(fake_in, real_seen)
        loss, loss_real, loss_fake = discriminator_loss(real_logits, fake_logits, t.gan_loss)
        out = {"loss_d": loss, "loss_d_real": loss_real, "loss_d_fake": loss_fake,
               "d_acc": d_accuracy(real_logits, fake_logits).detach()}  # fmt: skip
        if r1_now:
            scale = self.scaler.get_scale() if self.scaler.is_enabled() else 1.0  # fp16
            r1 = r1_penalty(real_logits, real_in, scale)
            loss = loss + 0.5 * t.r1_gamma * t.r1_every * r1
            out["r1"] = r1.detach()
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_d)
        return out

    def g_step(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One G update on GAN + lambda * reconstruction (+ feature matching); D is frozen
        (no gradient reaches its weights)."""
        t = self.config.train
        self.d.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        out = {}
        loss_gan = torch.zeros((), device=fake.device)  # "L1 only": D plays no part
        if t.lambda_gan > 0 and t.feature_matching > 0:
            with self.autocast():
                fake_in, real_in = self.augment(
                    self.d_input(real_a, fake), self.d_input(real_a, real_b)
                )
                fake_feats = self._features(fake_in)
                with torch.no_grad():
                    real_feats = self._features(real_in)
            loss_gan = generator_loss([f[-1] for f in fake_feats], t.gan_loss)
            out["loss_g_fm"] = feature_matching_loss(fake_feats, real_feats)
        elif t.lambda_gan > 0:
            with self.autocast():
                (fake_in,) = self.augment(self.d_input(real_a, fake))
                fake_logits = self.d_frozen(fake_in)
            loss_gan = generator_loss(fake_logits, t.gan_loss)
        loss_l1 = reconstruction_loss(fake, real_b, t.reconstruction, t.reconstruction_scale)
        loss = t.lambda_gan * loss_gan + t.lambda_l1 * loss_l1
        if "loss_g_fm" in out:
            loss = loss + t.feature_matching * out["loss_g_fm"]
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_g)
        self.d.requires_grad_(True)
        return {"loss_g": loss, "loss_g_gan": loss_gan, "loss_g_l1": loss_l1, **out}

    def _features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """D's activations per scale (a single PatchGAN is one scale)."""
        feats = self.d.features(x)
        return feats if isinstance(feats[0], list) else [feats]

    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One iteration: G forward, D step, G step. Returns detached losses and G(input)."""
        with self.autocast():
            fake = self.generate(real_a)
        losses = {}
        if self.config.train.lambda_gan > 0:
            losses = self.d_step(real_a, real_b, fake)
        losses |= self.g_step(real_a, real_b, fake)
        self.scaler.update()
        self.steps += 1
        if self.ema is not None:
            self.ema.update(self.g, self.steps)
        return {k: v.detach() for k, v in losses.items()}, fake.detach()

    def set_epoch(self, epoch: int) -> None:
        """Set both learning rates for 0-based `epoch` (the schedule is a function of it)."""
        t = self.config.train
        factor = lr_factor(epoch, t.epochs, t.decay_epochs)
        for opt, base in ((self.opt_g, t.lr), (self.opt_d, self.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * factor

    @property
    def lr_d(self) -> float:
        """D's base learning rate: --lr-d, else --lr (the paper's: both the same)."""
        t = self.config.train
        return t.lr if t.lr_d is None else t.lr_d

    @property
    def lr(self) -> float:
        return self.opt_g.param_groups[0]["lr"]

    def _rng_states(self) -> dict[str, torch.Tensor]:
        states = {"rng_cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return states

    def state_dict(self) -> dict:
        """Optimisers, grad scaler and the RNG: what the weights do not hold.

        The optimisers are equal on every rank; the RNGs (dropout, DiffAugment) are not:
        with several ranks `<rng>_ranks` (world_size, n) hold every rank's, `<rng>` rank
        0's. That makes this a collective: call it on every rank.

        The LR schedule needs no state of its own: it is a function of the epoch, which
        the checkpoint's progress records.
        """
        rng = {**self._rng_states(), "augment_rng": self.augment_rng.get_state()}
        state = {
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "steps": self.steps,
            **rng,
        }
        if self.ctx.enabled:
            # NCCL gathers device tensors, gloo CPU ones; both are (n,) uint8
            for key, value in rng.items():
                gathered = gather_rows(value.to(self.device), self.ctx).cpu()
                state[f"{key}_ranks"] = gathered
                state[key] = gathered[0].clone()  # not a view that pickles all rows
        return state

    def load_checkpoint(self, ckpt: Path, step: int) -> None:
        """Both networks (and the EMA average), then `load_state_dict`, from checkpoint
        folder `ckpt` written after optimiser step `step`."""
        load_weights(self.g, ckpt / GENERATOR_FILE)
        load_weights(self.d, ckpt / DISCRIMINATOR_FILE)
        if self.ema is not None:
            load_weights(self.ema.module, ckpt / EMA_FILE)
        self.load_state_dict(load_training_state(ckpt))
        self.steps = step  # also for checkpoints from before the count was saved

    def load_state_dict(self, state: dict) -> None:
        """Restore optimisers, scaler and this rank's RNGs.

        A checkpoint written by another number of ranks gives rank 0 the saved rank 0
        streams; the other ranks keep the dropout stream the caller seeded for them and
        take a DiffAugment stream of their own for the step.
        """
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.steps = int(state.get("steps", 0))
        rank, world = self.ctx.rank, self.ctx.world_size
        if rank > 0 and len(state.get("augment_rng_ranks", ())) != world:
            self.augment_rng.manual_seed(augment_seed(self.config.train.seed, rank, self.steps))
        for key in ("rng_cpu", "rng_cuda", "augment_rng"):
            ranks = state.get(f"{key}_ranks")
            if ranks is not None and len(ranks) == world:
                # a copy: set_rng_state reads a row view of (world, n) from the wrong
                # offset (torch 2.13 segfaults on it)
                value = ranks[rank].clone()
            elif rank == 0 and key in state:
                value = state[key]
            else:
                continue
            if key == "augment_rng":
                self.augment_rng.set_state(value)
            elif key == "rng_cpu":
                torch.set_rng_state(value)
            elif self.device.type == "cuda":
                torch.cuda.set_rng_state(value, self.device)
