"""The pix2pix objective: a conditional GAN loss plus lambda * L1 (paper eq. 4).

Discriminators output logits; `adversarial_loss` compares every patch logit with the
all-real or all-fake label. The generator uses the non-saturating form (maximise
log D(x, G(x)) rather than minimise log(1 - D)), as the paper does (`generator_loss`).

`hinge` (an option, not the paper's): D minimises relu(1 - D(real)) + relu(1 + D(fake)),
G minimises -D(fake) (Lim & Ye 2017; Miyato et al. 2018).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def _vanilla(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target)


def _lsgan(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(logits, target)


def _hinge(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """D's hinge loss: relu(1 - logit) on real patches, relu(1 + logit) on fake ones."""
    sign = 2.0 * target - 1.0  # +1 real, -1 fake
    return F.relu(1.0 - sign * logits).mean()


GAN_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "vanilla": _vanilla,
    "lsgan": _lsgan,
    "hinge": _hinge,
}


def adversarial_loss(logits: torch.Tensor, real: bool, kind: str = "vanilla") -> torch.Tensor:
    """Mean loss of patch logits (B, 1, H', W') against the label real (1) or fake (0)."""
    if kind not in GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {kind!r}; choose one of: {', '.join(GAN_LOSSES)}")
    logits = logits.float()  # losses in fp32 even under autocast
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return GAN_LOSSES[kind](logits, target)


def generator_loss(fake_logits: torch.Tensor, kind: str = "vanilla") -> torch.Tensor:
    """G's adversarial loss on D's logits for its outputs: the non-saturating "call them
    real" for vanilla and lsgan; -mean(logits) for hinge."""
    if kind == "hinge":
        return -fake_logits.float().mean()
    return adversarial_loss(fake_logits, True, kind)


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "vanilla"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, real, fake): D's loss halved, which slows D relative to G (paper sec. 3.3)."""
    loss_real = adversarial_loss(real_logits, True, kind)
    loss_fake = adversarial_loss(fake_logits, False, kind)
    return 0.5 * (loss_real + loss_fake), loss_real, loss_fake


def reconstruction_loss(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between output and target, (B, C, H, W) in [-1, 1]."""
    return F.l1_loss(fake.float(), target.float())
