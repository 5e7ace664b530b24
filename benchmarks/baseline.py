"""The speed baseline: the paper's model trained and run the plain way.

fp32, eager, NCHW, `torch.optim.Adam` with its default (per-tensor) update, the step
written as in the reference implementation. The networks are the same modules as ours
(same parameter counts), so any speed difference comes from how they are run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pix2pix.config import ModelConfig
from pix2pix.nets import build_discriminator, build_generator


class PlainPix2Pix:
    """fp32 eager pix2pix: `train_step(a, b)` and `infer(a)` on (B, C, H, W) in [-1, 1]."""

    def __init__(self, model: ModelConfig, device: torch.device) -> None:
        self.g = build_generator(model).to(device)
        self.d = build_discriminator(model).to(device)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def train_step(self, a: torch.Tensor, b: torch.Tensor) -> None:
        fake = self.g(a)
        # D: real pairs -> 1, fake pairs -> 0, loss halved
        self.d.requires_grad_(True)
        self.opt_d.zero_grad()
        pred_fake = self.d(torch.cat([a, fake.detach()], 1))
        pred_real = self.d(torch.cat([a, b], 1))
        loss_d = 0.5 * (
            F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
            + F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
        )
        loss_d.backward()
        self.opt_d.step()
        # G: fool D, plus 100 * L1
        self.d.requires_grad_(False)
        self.opt_g.zero_grad()
        pred_fake = self.d(torch.cat([a, fake], 1))
        loss_g = F.binary_cross_entropy_with_logits(
            pred_fake, torch.ones_like(pred_fake)
        ) + 100.0 * F.l1_loss(fake, b)
        loss_g.backward()
        self.opt_g.step()

    @torch.no_grad()
    def infer(self, a: torch.Tensor, eval_mode: bool = False) -> torch.Tensor:
        """The reference code's test-time behaviour: train mode unless --eval."""
        self.g.train(not eval_mode)
        return self.g(a)
