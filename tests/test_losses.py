"""The objective: GAN losses against hand-computed values, D's halving, L1."""

from __future__ import annotations

import math

import pytest
import torch

from pix2pix.losses import adversarial_loss, discriminator_loss, reconstruction_loss


def test_vanilla_is_bce_on_logits() -> None:
    logits = torch.tensor([[[[0.0, 2.0]]]])
    real = adversarial_loss(logits, True, "vanilla")
    fake = adversarial_loss(logits, False, "vanilla")
    # -log sigmoid(0) = log 2; -log sigmoid(2) = log(1 + e^-2); fakes use -log(1 - sigmoid)
    assert real.item() == pytest.approx((math.log(2) + math.log(1 + math.exp(-2))) / 2)
    assert fake.item() == pytest.approx((math.log(2) + math.log(1 + math.exp(2))) / 2)


def test_lsgan_is_squared_error_to_labels() -> None:
    logits = torch.tensor([0.5, 1.5]).view(1, 1, 1, 2)
    assert adversarial_loss(logits, True, "lsgan").item() == pytest.approx((0.25 + 0.25) / 2)
    assert adversarial_loss(logits, False, "lsgan").item() == pytest.approx((0.25 + 2.25) / 2)


def test_discriminator_loss_is_halved_sum() -> None:
    real, fake = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    total, loss_real, loss_fake = discriminator_loss(real, fake, "vanilla")
    assert loss_real.item() == pytest.approx(math.log(2))
    assert total.item() == pytest.approx(0.5 * (loss_real + loss_fake).item())


def test_generator_loss_is_non_saturating() -> None:
    # D is sure the fake is fake (logit -10): log(1 - D) would give ~0 gradient,
    # the paper's -log D form still pushes G with gradient ~ -1.
    logit = torch.tensor([-10.0], requires_grad=True)
    adversarial_loss(logit.view(1, 1, 1, 1), True, "vanilla").backward()
    assert logit.grad.item() == pytest.approx(-1.0, abs=1e-3)


def test_reconstruction_is_mean_absolute_error() -> None:
    a = torch.zeros(1, 3, 2, 2)
    b = torch.full((1, 3, 2, 2), 0.5)
    b[0, 0, 0, 0] = -1.5
    assert reconstruction_loss(a, b).item() == pytest.approx((11 * 0.5 + 1.5) / 12)


def test_unknown_loss_names_the_choices() -> None:
    with pytest.raises(ValueError, match="vanilla, lsgan, hinge"):
        adversarial_loss(torch.zeros(1), True, "wgan")


def test_hinge_loss_for_d_and_g() -> None:
    from pix2pix.losses import generator_loss

    real = torch.tensor([2.0, 0.5, -1.0]).view(1, 1, 1, 3)
    fake = torch.tensor([-2.0, 0.0, 1.0]).view(1, 1, 1, 3)
    total, loss_real, loss_fake = discriminator_loss(real, fake, "hinge")
    assert loss_real.item() == pytest.approx((0 + 0.5 + 2) / 3)  # relu(1 - D(real))
    assert loss_fake.item() == pytest.approx((0 + 1 + 2) / 3)  # relu(1 + D(fake))
    assert total.item() == pytest.approx(0.5 * (2.5 / 3 + 1.0))
    assert generator_loss(fake, "hinge").item() == pytest.approx(1 / 3)  # -mean D(fake)
    # vanilla and lsgan: G's loss is "call them real", as before
    for kind in ("vanilla", "lsgan"):
        assert torch.equal(generator_loss(fake, kind), adversarial_loss(fake, True, kind))
