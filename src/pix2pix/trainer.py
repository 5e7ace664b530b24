"""The paper's training step: G forward, one D step, one G step (`Pix2PixTrainer`).

Per batch, in the paper's order (sec. 3.3): G translates the input; D takes one step on
(input, target) as real and (input, G(input)) as fake, its loss halved; then G takes one
step on the non-saturating GAN loss plus lambda * L1, with D frozen. Adam(2e-4, 0.5,
0.999); the LR is constant for `epochs` then decays linearly to zero over `decay_epochs`.
"""

from __future__ import annotations

import torch

from pix2pix.config import RunConfig
from pix2pix.losses import adversarial_loss, discriminator_loss, reconstruction_loss
from pix2pix.nets import build_discriminator, build_generator
from pix2pix.nets.padding import run_any_size
from pix2pix.runtime import Speed, autocast, compiled, memory_format, resolve_speed


def lr_factor(epoch: int, epochs: int, decay_epochs: int) -> float:
    """LR multiplier in 0-based `epoch`: 1 for `epochs` epochs, then linearly towards 0.

    The last epoch runs at 1 / (decay_epochs + 1); the rate would reach 0 the epoch after.
    """
    return 1.0 - max(0, epoch + 1 - epochs) / (decay_epochs + 1)


class Pix2PixTrainer:
    """Both networks, their optimisers and learning rates, and one training step."""

    def __init__(self, config: RunConfig, device: torch.device, speed: Speed | None = None):
        m, t = config.model, config.train
        self.config = config
        self.device = device
        self.speed = speed or resolve_speed(
            device, "train", t.precision, t.channels_last, t.compile
        )
        fmt = memory_format(self.speed)
        # g and d are the plain modules (saved, optimised); g_run and d_run what runs,
        # the same modules or their torch.compile wrappers sharing the parameters.
        self.g = build_generator(m).to(device, memory_format=fmt)
        self.d = build_discriminator(m).to(device, memory_format=fmt)
        self.g_run = compiled(self.g, self.speed, "train")
        self.d_run = compiled(self.d, self.speed, "train")
        self.stride: int = self.g.stride
        # The fused Adam kernel does the whole update in one pass over memory: 3x faster
        # than the per-tensor loop on this U-Net's 54M parameters (CPU and CUDA).
        adam = {"lr": t.lr, "betas": (t.beta1, t.beta2), "fused": device.type in ("cpu", "cuda")}
        self.opt_g = torch.optim.Adam(self.g.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.d.parameters(), **adam)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.speed.precision == "fp16")

    def autocast(self):
        return autocast(self.speed.precision, self.device)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A batch (B, C, H, W) on the training device in the training memory layout."""
        return x.to(self.device, non_blocking=True, memory_format=memory_format(self.speed))

    def generate(self, real_a: torch.Tensor) -> torch.Tensor:
        """G(input) for (B, C_in, H, W) of any H, W -> (B, C_out, H, W)."""
        return run_any_size(self.g_run, real_a, self.stride)

    def discriminate(self, real_a: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Patch logits for an output `image`, seen beside its input if conditional."""
        x = torch.cat([real_a, image], dim=1) if self.config.model.conditional else image
        return self.d_run(x)

    def d_step(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One D update: (input, target) is real, (input, fake) is fake."""
        self.d.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            fake_logits = self.discriminate(real_a, fake.detach())
            real_logits = self.discriminate(real_a, real_b)
        loss, loss_real, loss_fake = discriminator_loss(
            real_logits, fake_logits, self.config.train.gan_loss
        )
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_d)
        return {"loss_d": loss, "loss_d_real": loss_real, "loss_d_fake": loss_fake}

    def g_step(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One G update on GAN + lambda * L1; D is frozen (no gradient reaches its weights)."""
        t = self.config.train
        self.d.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            fake_logits = self.discriminate(real_a, fake)
        loss_gan = adversarial_loss(fake_logits, True, t.gan_loss)
        loss_l1 = reconstruction_loss(fake, real_b)
        loss = loss_gan + t.lambda_l1 * loss_l1
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_g)
        self.d.requires_grad_(True)
        return {"loss_g": loss, "loss_g_gan": loss_gan, "loss_g_l1": loss_l1}

    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One iteration: G forward, D step, G step. Returns detached losses and G(input)."""
        with self.autocast():
            fake = self.generate(real_a)
        losses = self.d_step(real_a, real_b, fake)
        losses |= self.g_step(real_a, real_b, fake)
        self.scaler.update()
        return {k: v.detach() for k, v in losses.items()}, fake.detach()

    def set_epoch(self, epoch: int) -> None:
        """Set both learning rates for 0-based `epoch` (the schedule is a function of it)."""
        t = self.config.train
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = t.lr * lr_factor(epoch, t.epochs, t.decay_epochs)

    @property
    def lr(self) -> float:
        return self.opt_g.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        """Optimisers, grad scaler and the RNG: what the weights do not hold.

        The LR schedule needs no state of its own: it is a function of the epoch, which
        the checkpoint's progress records.
        """
        state = {
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if self.device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
