"""BicycleGAN (Zhu et al., NeurIPS 2017): many outputs for one input, one per latent code.

The generator takes a code z (B, nz) beside the image (`--nz`, `--where-add`); an encoder
E maps a photo to the mean and log variance of its code. Each batch is split in two
(`batch_size` >= 2; with one image, both paths take it):

- cVAE-GAN, on the first half: z = mu + sigma * eps from E(target); G(input, z) must
  rebuild the target (lambda_L1 * L1), E's codes stay near N(0, I) (lambda_kl * KL), and
  D judges G(input, z) against the targets;
- cLR-GAN, on the second half: z ~ N(0, I); a second discriminator D2 judges
  G(input, z), and E must read z back from it (lambda_z * |E(G(input, z)) - z|, which
  updates G alone, as in the official code).

D and D2 step first (least squares by default), then G and E together. Optionally the
mode-seeking term of Mao et al. (CVPR 2019) on the random path: a second code z2 for the
same inputs and lambda_ms / (mean |G(a, z) - G(a, z2)| / mean |z - z2| + eps).

Every forward of G in a step is one pass over the halves stacked (instance norm, the
method's default, treats samples alone, so this equals the official separate passes);
one backward per network, so DistributedDataParallel sees one forward per backward.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2pix.config import RunConfig, ref
from pix2pix.errors import ConfigError
from pix2pix.losses import discriminator_loss, generator_loss
from pix2pix.methods.augment import augment_pairs
from pix2pix.methods.base import ExtraInput, Method, generator_of, seeded_code
from pix2pix.methods.pix2pix import DiscriminatorPair
from pix2pix.nets import build_discriminator
from pix2pix.nets.encoder import LatentEncoder, encoder_blocks
from pix2pix.nets.inference import run_any_size

MS_EPS = 1e-5  # keeps the mode-seeking ratio's inverse finite


def build_encoder(config: RunConfig) -> LatentEncoder:
    """E for the run's targets: out_channels in, nz out, depth from the crop size."""
    m = config.model
    blocks = encoder_blocks(config.data.crop_size)
    return LatentEncoder(int(m.out_channels or 3), m.nz, m.nef, blocks, m.norm)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the code and the batch (the official
    code's scale, which its lambda_kl 0.01 is tuned for)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def mode_seeking(fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor):
    """1 / (mean |G(a, z1) - G(a, z2)| / mean |z1 - z2| + eps): large when two codes give
    near-identical outputs."""
    ratio = (fake1 - fake2).abs().mean() / (z1 - z2).abs().mean()
    return 1.0 / (ratio + MS_EPS)


class BicycleGANMethod(Method):
    """G with a code, E, D (cVAE-GAN path) and D2 (cLR-GAN path)."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        m, t = config.model, config.train
        if m.nz < 1:
            raise ConfigError(
                f"{ref('nz')} {m.nz} with {ref('method')} bicyclegan: the generator needs a "
                "code; use 8 (the official default)"
            )
        unsupported = [
            ref(n)
            for n in ("r1_gamma", "feature_matching", "ffl_weight", "nce_weight")
            if getattr(t, n) > 0
        ]
        unsupported += [ref("reconstruction")] if t.reconstruction != "l1" else []
        unsupported += [ref("reconstruction_scale")] if t.reconstruction_scale != 1 else []
        if unsupported:
            raise ConfigError(
                f"{', '.join(unsupported)} with {ref('method')} bicyclegan: not part of its "
                "step; drop them (the recipe's other options apply)"
            )
        # built in this order: the seed's weights
        self.modules = {
            "generator": generator_of(config),
            "encoder": build_encoder(config),
            "discriminator": build_discriminator(m),
            "discriminator2": build_discriminator(m),
        }
        lr_d = t.lr if t.lr_d is None else t.lr_d
        self.param_groups = {
            "g": ("generator", t.lr),
            "e": ("encoder", t.lr),
            "d": ("discriminator", lr_d),
            "d2": ("discriminator2", lr_d),
        }

    @classmethod
    def inference_module(cls, config: RunConfig, init: bool = True) -> nn.Module:
        return generator_of(config, init=init)

    @classmethod
    def encoder_module(cls, config: RunConfig) -> nn.Module:
        return build_encoder(config)

    @classmethod
    def extra_inputs(cls, config: RunConfig) -> tuple[ExtraInput, ...]:
        return (ExtraInput("z", config.model.nz),)

    @classmethod
    def default_extras(
        cls, config: RunConfig, x: torch.Tensor, given: dict[str, torch.Tensor] | None
    ) -> tuple[torch.Tensor, ...]:
        """A code not given is the one `--z-seed 0` draws (`Pix2Pix.sample_z(1, 0)`), so
        validation, the Python API, translate, evaluate and serve agree without a seed."""
        given = dict(given or {})
        if "z" not in given:
            given["z"] = seeded_code(config.model.nz, x)
        return super().default_extras(config, x, given)

    def runs(self) -> dict[str, tuple[nn.Module, bool]]:
        d, d2, e = (self.modules[k] for k in ("discriminator", "discriminator2", "encoder"))
        return {
            "g": (self.modules["generator"], True),
            "e": (e, True),
            "d_pair": (DiscriminatorPair(d), True),
            "d2_pair": (DiscriminatorPair(d2), True),
            "d": (d, False),
            "d2": (d2, False),
            "e_frozen": (e, False),
        }

    def augment(self, *images: torch.Tensor) -> list[torch.Tensor]:
        """D's and D2's inputs under --augment (one draw for all of them)."""
        policy = self.config.train.augment_policy
        if not policy:
            return list(images)
        split = self.config.model.in_channels if self.config.model.conditional else 0
        return augment_pairs(images, policy, self.kit.augment_rng, int(split or 0))

    def d_input(self, real_a: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """What D and D2 judge: the image, beside its input if conditional (the official
        default is unconditional)."""
        return torch.cat([real_a, image], dim=1) if self.config.model.conditional else image

    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        t, kit, nz = self.config.train, self.kit, self.config.model.nz
        half = max(1, len(real_a) // 2)
        a_enc, b_enc = real_a[:half], real_b[:half]
        a_rand, b_rand = (real_a[half:], real_b[half:]) if len(real_a) > 1 else (a_enc, b_enc)
        n = len(a_rand)
        ms = t.mode_seeking > 0
        stride = self.modules["generator"].stride
        with kit.autocast():
            mu, logvar = self.run["e"](b_enc)
            z_enc = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            z_rand = torch.randn(n * (2 if ms else 1), nz, device=real_a.device)
            a_all = torch.cat([a_enc, a_rand, a_rand] if ms else [a_enc, a_rand])
            fakes = run_any_size(self.run["g"], a_all, stride, [torch.cat([z_enc, z_rand])])
        fake_enc, fake_rand = fakes[:half], fakes[half : half + n]
        losses = self._d_step(a_enc, b_enc, fake_enc, a_rand, b_rand, fake_rand)
        losses |= self._g_step(a_enc, b_enc, fake_enc, a_rand, fake_rand, mu, logvar, z_rand)
        if ms:
            loss_ms = mode_seeking(fake_rand, fakes[half + n :], z_rand[:n], z_rand[n:])
            losses["loss_ms"] = loss_ms
        total = losses.pop("_total") + (t.mode_seeking * losses["loss_ms"] if ms else 0.0)
        opt_g, opt_e = self.optimizers["g"][0], self.optimizers["e"][0]
        kit.scaler.scale(total).backward()
        kit.scaler.step(opt_g)
        kit.scaler.step(opt_e)
        # the batch's outputs in its order: encoded half, then random half (one image: both)
        return {k: v.detach() for k, v in losses.items()}, fakes[: len(real_a)].detach()

    def _d_step(self, a_enc, b_enc, fake_enc, a_rand, b_rand, fake_rand) -> dict[str, torch.Tensor]:
        """One update of D (encoded path) and D2 (random path)."""
        t, kit = self.config.train, self.kit
        for k in ("discriminator", "discriminator2"):
            self.modules[k].requires_grad_(True)
        opt_d, opt_d2 = self.optimizers["d"][0], self.optimizers["d2"][0]
        opt_d.zero_grad(set_to_none=True)
        opt_d2.zero_grad(set_to_none=True)
        with kit.autocast():
            fake1, real1 = self.run["d_pair"](
                *self.augment(self.d_input(a_enc, fake_enc.detach()), self.d_input(a_enc, b_enc))
            )
            fake2, real2 = self.run["d2_pair"](
                *self.augment(
                    self.d_input(a_rand, fake_rand.detach()), self.d_input(a_rand, b_rand)
                )
            )
        loss_d, _, _ = discriminator_loss(real1, fake1, t.gan_loss)
        loss_d2, _, _ = discriminator_loss(real2, fake2, t.gan_loss)
        kit.scaler.scale(loss_d + loss_d2).backward()
        kit.scaler.step(opt_d)
        kit.scaler.step(opt_d2)
        return {"loss_d": loss_d, "loss_d2": loss_d2}

    def _g_step(self, a_enc, b_enc, fake_enc, a_rand, fake_rand, mu, logvar, z_rand):
        """G's and E's losses (D and D2 frozen); the latent regression reaches G alone."""
        t, kit = self.config.train, self.kit
        for k in ("discriminator", "discriminator2"):
            self.modules[k].requires_grad_(False)
        self.optimizers["g"][0].zero_grad(set_to_none=True)
        self.optimizers["e"][0].zero_grad(set_to_none=True)
        encoder = self.modules["encoder"]
        with kit.autocast():
            (seen,) = self.augment(self.d_input(a_enc, fake_enc))
            loss_gan = generator_loss(self.run["d"](seen), t.gan_loss)
            (seen2,) = self.augment(self.d_input(a_rand, fake_rand))
            loss_gan2 = generator_loss(self.run["d2"](seen2), t.gan_loss)
            encoder.requires_grad_(False)  # E reads the code back, but is not taught by it
            mu2, _ = self.run["e_frozen"](fake_rand)
            encoder.requires_grad_(True)
        loss_kl = kl_divergence(mu.float(), logvar.float())
        loss_l1 = (fake_enc.float() - b_enc).abs().mean()
        loss_z = (mu2.float() - z_rand[: len(mu2)]).abs().mean()
        total = (
            t.lambda_gan * (loss_gan + loss_gan2)
            + t.lambda_kl * loss_kl
            + t.lambda_l1 * loss_l1
            + t.lambda_z * loss_z
        )
        for k in ("discriminator", "discriminator2"):
            self.modules[k].requires_grad_(True)
        return {
            "_total": total,
            "loss_g": total,
            "loss_g_gan": loss_gan,
            "loss_g_gan2": loss_gan2,
            "loss_g_l1": loss_l1,
            "loss_kl": loss_kl,
            "loss_z": loss_z,
        }
