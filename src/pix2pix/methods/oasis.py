"""OASIS (Schonfeld et al. ICLR 2021): label maps to photos with a segmentation D.

G is the SPADE generator (`nets.spade`) with a 64-d code z repeated over the pixels, so a
label map gives diverse outputs. D (`nets.oasis`) labels every pixel of an image with
one of the N classes or "fake" (index 0). Per batch:

- D: class-balanced (N + 1)-way cross-entropy on the real image against its label map,
  plain cross-entropy against "fake" on G's output, plus lambda_labelmix times LabelMix:
  a mix of real and fake cut along the labels (each class of each image all real or all
  fake by a coin) must get the same mix of logits;
- G: the class-balanced cross-entropy of D's logits on G's output against the label map
  (G wants each pixel seen as its true class), plus lambda_l1 * L1 if set (not in the
  paper, which has no reconstruction term: 0 by default here too).

D sees images alone (the labels are its targets, not its input) and has no batch norm, so
the fake, real and mixed images go through it in one call.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2pix.config import RunConfig, ref
from pix2pix.errors import ConfigError
from pix2pix.losses import (
    labelmix_loss,
    labelmix_mask,
    oasis_class_loss,
    oasis_fake_loss,
    reconstruction_loss,
)
from pix2pix.methods.base import ExtraInput, Method, generator_of, seeded_code
from pix2pix.nets import build_discriminator
from pix2pix.nets.inference import run_any_size


class OASISMethod(Method):
    """The SPADE G (label input, optional code) and the segmentation D."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        m, t = config.model, config.train
        unsupported = [
            ref(n)
            for n in ("r1_gamma", "feature_matching", "ffl_weight", "nce_weight")
            if getattr(t, n) > 0
        ]
        unsupported += [ref("augment")] if t.augment_policy else []
        unsupported += [ref("d_scales")] if m.d_scales > 1 else []
        unsupported += [ref("reconstruction")] if t.reconstruction == "aligned" else []
        if unsupported:
            raise ConfigError(
                f"{', '.join(unsupported)} with {ref('method')} oasis: not part of its step "
                "(D's targets are per-pixel labels); drop them"
            )
        # built in this order: the seed's weights
        self.modules = {"generator": generator_of(config), "discriminator": build_discriminator(m)}
        lr_d = t.lr if t.lr_d is None else t.lr_d
        self.param_groups = {"g": ("generator", t.lr), "d": ("discriminator", lr_d)}

    @classmethod
    def inference_module(cls, config: RunConfig, init: bool = True) -> nn.Module:
        return generator_of(config, init=init)

    @classmethod
    def extra_inputs(cls, config: RunConfig) -> tuple[ExtraInput, ...]:
        return (ExtraInput("z", config.model.nz),) if config.model.nz else ()

    @classmethod
    def default_extras(
        cls, config: RunConfig, x: torch.Tensor, given: dict[str, torch.Tensor] | None
    ) -> tuple[torch.Tensor, ...]:
        """A code not given is the one `--z-seed 0` draws, as for bicyclegan."""
        given = dict(given or {})
        if config.model.nz and "z" not in given:
            given["z"] = seeded_code(config.model.nz, x)
        return super().default_extras(config, x, given)

    def runs(self) -> dict[str, tuple[nn.Module, bool]]:
        d = self.modules["discriminator"]
        return {"g": (self.modules["generator"], True), "d": (d, True), "d_frozen": (d, False)}

    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """G forward, D step (with LabelMix), G step. Returns detached losses and G(input)."""
        kit, nz = self.kit, self.config.model.nz
        g = self.modules["generator"]
        with torch.no_grad():
            onehot = g.labels(real_a)  # (B, N, H, W)
        extra = [torch.randn(len(real_a), nz, device=real_a.device)] if nz else []
        with kit.autocast():
            fake = run_any_size(self.run["g"], real_a, g.stride, extra)
        losses = self._d_step(real_b, fake, onehot)
        losses |= self._g_step(real_b, fake, onehot)
        return {k: v.detach() for k, v in losses.items()}, fake.detach()

    def _d_step(
        self, real_b: torch.Tensor, fake: torch.Tensor, onehot: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        t, kit = self.config.train, self.kit
        opt, _ = self.optimizers["d"]
        self.modules["discriminator"].requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        coins = torch.randint(0, 2, onehot.shape[:2], device=onehot.device)  # (B, N)
        mask = labelmix_mask(onehot, coins).to(real_b.dtype)  # (B, 1, H, W)
        fake = fake.detach()
        mixed = mask * real_b + (1 - mask) * fake
        with kit.autocast():
            logits = self.run["d"](torch.cat([fake, real_b, mixed]))
        d_fake, d_real, d_mixed = logits.split(len(real_b))
        loss_real = oasis_class_loss(d_real, onehot)
        loss_fake = oasis_fake_loss(d_fake)
        loss_lm = labelmix_loss(d_mixed, d_real, d_fake, mask)
        loss = loss_real + loss_fake + t.lambda_labelmix * loss_lm
        kit.scaler.scale(loss).backward()
        kit.scaler.step(opt)
        return {
            "loss_d": loss,
            "loss_d_real": loss_real,
            "loss_d_fake": loss_fake,
            "loss_labelmix": loss_lm,
        }

    def _g_step(
        self, real_b: torch.Tensor, fake: torch.Tensor, onehot: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        t, kit = self.config.train, self.kit
        opt, _ = self.optimizers["g"]
        d = self.modules["discriminator"]
        d.requires_grad_(False)
        opt.zero_grad(set_to_none=True)
        with kit.autocast():
            logits = self.run["d_frozen"](fake)
        loss_gan = oasis_class_loss(logits, onehot)
        loss_l1 = reconstruction_loss(fake, real_b, **t.reconstruction_spec)
        loss = t.lambda_gan * loss_gan + t.lambda_l1 * loss_l1
        kit.scaler.scale(loss).backward()
        kit.scaler.step(opt)
        d.requires_grad_(True)
        return {"loss_g": loss, "loss_g_gan": loss_gan, "loss_g_l1": loss_l1}
