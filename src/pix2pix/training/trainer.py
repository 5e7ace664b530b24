"""The shared half of a training step (`Trainer`): what every method's step runs inside.

A method (`pix2pix.methods`) builds its networks and takes one optimiser step per batch.
The trainer places its modules (device, memory layout, SyncBatchNorm), wraps what runs
in the step (DistributedDataParallel, torch.compile), makes one fused Adam per group, and
lends the step a `methods.Kit` (precision, grad scaler, step count, DiffAugment's
stream); it keeps what every method has: the weight average of the inference module
(--ema-decay), the learning-rate schedule and the training state that makes resume exact
(optimisers, scaler, RNG streams). The LR is constant for `epochs` then decays linearly to zero over
`decay_epochs`.

Under torchrun (a `DistContext` with several ranks) the method's modules run inside
DistributedDataParallel, which averages the gradients over ranks: the mean over the
global batch, since every rank's losses are means over equal per-rank batches.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn

from pix2pix.checkpoint import load_training_state, load_weights, module_file
from pix2pix.config import RunConfig
from pix2pix.errors import UserError
from pix2pix.methods import method_of
from pix2pix.runtime import Kit, Speed, compiled, memory_format, resolve_speed
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


class Trainer:
    """A method's modules and optimisers, and everything around its step (a `Kit`)."""

    def __init__(
        self,
        config: RunConfig,
        device: torch.device,
        speed: Speed | None = None,
        ctx: DistContext | None = None,
    ) -> None:
        t = config.train
        self.config = config
        self.device = device
        self.ctx = ctx or DistContext()
        self.speed = speed or resolve_speed(
            device, "train", t.precision, t.channels_last, t.compile
        )
        scaler = torch.amp.GradScaler(device.type, enabled=self.speed.precision == "fp16")
        # augmentation draws from its own stream, so that it leaves dropout's unchanged,
        # and from each rank's own, so that the ranks' shares are augmented unalike
        augment_rng = torch.Generator().manual_seed(augment_seed(t.seed, self.ctx.rank))
        self.kit = Kit(device, self.speed, scaler, augment_rng)
        self.method = method = method_of(config)(config)  # builds its modules
        fmt = memory_format(self.speed)
        for name, module in method.modules.items():
            module = module.to(device, memory_format=fmt)
            if t.sync_bn:
                module = sync_batch_norm(module, self.ctx, device)
            method.modules[name] = module
        # what runs: inside DDP (several ranks, where the method asks) inside torch.compile
        method.run = {
            name: compiled(wrap_ddp(m, self.ctx, device) if ddp else m, self.speed, "train")
            for name, (m, ddp) in method.runs().items()
        }
        # The fused Adam kernel does the whole update in one pass over memory: 3x faster
        # than the per-tensor loop on this U-Net's 54M parameters (CPU and CUDA).
        fused = device.type in ("cpu", "cuda")
        for name, (module, lr) in method.param_groups.items():
            params = method.modules[module].parameters()
            adam = torch.optim.Adam(params, lr=lr, betas=(t.beta1, t.beta2), fused=fused)
            method.optimizers[name] = (adam, lr)
        method.kit = self.kit
        inference = method.module_for_inference
        self.ema = WeightAverage(inference, t.ema_decay) if t.ema_decay > 0 else None

    @property
    def steps(self) -> int:
        """Optimiser steps taken (lazy R1 and the EMA warm-up count them)."""
        return self.kit.steps

    @steps.setter
    def steps(self, value: int) -> None:
        self.kit.steps = value

    @property
    def scaler(self) -> torch.amp.GradScaler:
        return self.kit.scaler

    @property
    def augment_rng(self) -> torch.Generator:
        return self.kit.augment_rng

    def autocast(self) -> contextlib.AbstractContextManager:
        return self.kit.autocast()

    # ------------------------------------------------------------------ the step
    @property
    def modules(self) -> dict[str, nn.Module]:
        """What a checkpoint holds: the method's modules by name, and the average."""
        named = dict(self.method.modules)
        if self.ema is not None:
            named[f"{self.method.inference}_ema"] = self.ema.module
        return named

    @property
    def g(self) -> nn.Module:
        """The module inference runs (pix2pix's generator), as trained."""
        return self.method.module_for_inference

    @property
    def g_infer(self) -> nn.Module:
        """The module inference uses: the weight average when --ema-decay, else `g`."""
        return self.ema.module if self.ema is not None else self.g

    @property
    def stride(self) -> int:
        """Inputs are padded to multiples of this (the inference module's)."""
        return int(getattr(self.g, "stride", 1))

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A batch (B, C, H, W) on the training device in the training memory layout."""
        return x.to(self.device, non_blocking=True, memory_format=memory_format(self.speed))

    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One iteration of the method; returns its detached losses and its output."""
        losses, fake = self.method.step(real_a, real_b)
        self.scaler.update()
        self.steps += 1
        if self.ema is not None:
            self.ema.update(self.g, self.steps)
        return losses, fake

    def set_epoch(self, epoch: int) -> None:
        """Set every learning rate for 0-based `epoch` (the schedule is a function of it)."""
        t = self.config.train
        factor = lr_factor(epoch, t.epochs, t.decay_epochs)
        for opt, base in self.method.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = base * factor

    @property
    def lr(self) -> float:
        """The first optimiser's current learning rate (G's, for pix2pix)."""
        opt, _ = next(iter(self.method.optimizers.values()))
        return opt.param_groups[0]["lr"]

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
        optimizers = {
            f"optimizer_{k}": o.state_dict() for k, (o, _) in self.method.optimizers.items()
        }
        state = {
            **optimizers,
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
        """Every module (and the average), then `load_state_dict`, from checkpoint
        folder `ckpt` written after optimiser step `step`."""
        missing = [module_file(ckpt, k).name for k in self.modules]
        missing = [name for name in missing if not (ckpt / name).is_file()]
        if missing:
            raise UserError(f"{ckpt}: checkpoint is missing {', '.join(missing)}; it is incomplete")
        for name, module in self.modules.items():
            load_weights(module, module_file(ckpt, name))
        self.load_state_dict(load_training_state(ckpt))
        self.steps = step  # also for checkpoints from before the count was saved

    def load_state_dict(self, state: dict) -> None:
        """Restore optimisers, scaler and this rank's RNGs.

        A checkpoint written by another number of ranks gives rank 0 the saved rank 0
        streams; the other ranks keep the dropout stream the caller seeded for them and
        take a DiffAugment stream of their own for the step.
        """
        for name, (opt, _) in self.method.optimizers.items():
            opt.load_state_dict(state[f"optimizer_{name}"])
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
