"""pix2pix (Isola et al. 2017): a U-Net G, a PatchGAN D, cGAN + lambda * L1, in the
paper's order.

Per batch (sec. 3.3): G translates the input; D takes one step on (input, target) as real
and (input, G(input)) as fake, its loss halved; then G takes one step on the GAN loss
plus lambda * L1, with D frozen. Adam(2e-4, 0.5, 0.999) for both (the schedule is the
loop's). The improved recipe's options (hinge/lsgan, R1, feature matching, several D
scales, DiffAugment) change only this step.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2pix.config import RunConfig, ref
from pix2pix.errors import ConfigError
from pix2pix.losses import (
    adaptive_nce_weights,
    d_accuracy,
    discriminator_loss,
    feature_matching_loss,
    focal_frequency_loss,
    generator_loss,
    patch_nce_loss,
    r1_penalty,
    reconstruction_loss,
    register_target,
)
from pix2pix.methods.augment import augment_pairs
from pix2pix.methods.base import Method, generator_of
from pix2pix.nets import build_discriminator
from pix2pix.nets.inference import run_any_size
from pix2pix.nets.layers import PatchHead


def nce_head(config: RunConfig, g: nn.Module) -> nn.Module:
    """PatchNCE's head for the levels --nce-layers names of U-Net `g` (which must read
    output-side images: no code, as many input as output channels)."""
    m, levels = config.model, config.train.nce_levels
    encode = getattr(g, "encode", None)
    if encode is None or m.nz or m.in_channels != m.out_channels:
        raise ConfigError(
            f"{ref('nce_weight')} needs a U-Net without a code whose input and output have the "
            f"same channels (its encoder reads the output); this is {m.generator} "
            f"{m.in_channels} -> {m.out_channels} channels"
        )
    if max(levels) >= g.depth:
        raise ConfigError(
            f"{ref('nce_layers')} {config.train.nce_layers!r}: {m.generator} has encoder "
            f"levels 0..{g.depth - 1}"
        )
    return PatchHead(encoder_widths(g, levels))


def encoder_widths(g: nn.Module, levels: list[int]) -> list[int]:
    """The channels of U-Net `g`'s encoder outputs at `levels`."""
    return [g.encoder[i][-1 if i == 0 else 1].out_channels for i in levels]


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


class Pix2PixMethod(Method):
    """G and D, their optimisers, and the paper's step."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        m, t = config.model, config.train
        # built in this order: the seed's weights
        self.modules = {"generator": generator_of(config), "discriminator": build_discriminator(m)}
        lr_d = t.lr if t.lr_d is None else t.lr_d  # --lr-d: two time-scale update rule
        self.param_groups = {"g": ("generator", t.lr), "d": ("discriminator", lr_d)}
        if t.nce_weight > 0:  # PatchNCE's projection head, trained with G
            self.modules["nce_head"] = nce_head(config, self.modules["generator"])
            self.param_groups["h"] = ("nce_head", t.lr)

    @property
    def g(self) -> nn.Module:
        return self.modules["generator"]

    @property
    def d(self) -> nn.Module:
        return self.modules["discriminator"]

    def runs(self) -> dict[str, tuple[nn.Module, bool]]:
        """G in DDP; D's own step (fake and real pairs in one call) in DDP; D in G's
        step outside it: frozen there, it has no gradients to average."""
        pair = DiscriminatorPair(self.d)
        runs = {"g": (self.g, True), "d_pair": (pair, True), "d_frozen": (self.d, False)}
        if "nce_head" in self.modules:  # PatchNCE's head: trained in G's step
            runs["nce_head"] = (self.modules["nce_head"], True)
        return runs

    @classmethod
    def inference_module(cls, config: RunConfig, init: bool = True) -> nn.Module:
        return generator_of(config, init=init)

    def generate(self, real_a: torch.Tensor) -> torch.Tensor:
        """G(input) for (B, C_in, H, W) of any H, W -> (B, C_out, H, W)."""
        return run_any_size(self.run["g"], real_a, self.g.stride)

    def augment(self, *pairs: torch.Tensor) -> list[torch.Tensor]:
        """D's inputs with --augment's transform (one draw for all of them)."""
        policy = self.config.train.augment_policy
        if not policy:
            return list(pairs)
        split = self.config.model.in_channels if self.config.model.conditional else 0
        return augment_pairs(pairs, policy, self.kit.augment_rng, int(split or 0))

    def d_input(self, real_a: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """What D judges: an output `image` (B, C_out, H, W), beside its input if conditional."""
        return torch.cat([real_a, image], dim=1) if self.config.model.conditional else image

    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """G forward, D step, G step. Returns detached losses and G(input)."""
        with self.kit.autocast():
            fake = self.generate(real_a)
        t = self.config.train
        if t.reconstruction == "aligned":  # every term, D's real pairs too, sees it re-registered
            guide = real_a if t.align_guide == "input" else None
            real_b = register_target(fake.detach(), real_b, t.align_shift, t.align_tiles, guide)
        losses = {}
        if t.lambda_gan > 0:
            losses = self.d_step(real_a, real_b, fake)
        losses |= self.g_step(real_a, real_b, fake)
        return {k: v.detach() for k, v in losses.items()}, fake.detach()

    def d_step(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One D update: (input, target) is real, (input, fake) is fake; plus the lazy R1
        penalty on the real pairs every --r1-every steps."""
        t, kit = self.config.train, self.kit
        opt, _ = self.optimizers["d"]
        self.d.requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        r1_now = t.r1_gamma > 0 and kit.steps % t.r1_every == 0
        real_in = self.d_input(real_a, real_b)
        if r1_now:
            real_in = real_in.detach().requires_grad_(True)
        with kit.autocast():
            fake_in, real_seen = self.augment(self.d_input(real_a, fake.detach()), real_in)
            fake_logits, real_logits = self.run["d_pair"](fake_in, real_seen)
        loss, loss_real, loss_fake = discriminator_loss(real_logits, fake_logits, t.gan_loss)
        out = {"loss_d": loss, "loss_d_real": loss_real, "loss_d_fake": loss_fake}
        out["d_acc"] = d_accuracy(real_logits, fake_logits).detach()
        if r1_now:
            scale = kit.scaler.get_scale() if kit.scaler.is_enabled() else 1.0  # fp16
            r1 = r1_penalty(real_logits, real_in, scale)
            loss = loss + 0.5 * t.r1_gamma * t.r1_every * r1
            out["r1"] = r1.detach()
        kit.scaler.scale(loss).backward()
        kit.scaler.step(opt)
        return out

    def g_step(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One G update on GAN + lambda * reconstruction (+ feature matching); D is frozen
        (no gradient reaches its weights)."""
        t, kit = self.config.train, self.kit
        opt, _ = self.optimizers["g"]
        self.d.requires_grad_(False)
        opt.zero_grad(set_to_none=True)
        out = {}
        loss_gan = torch.zeros((), device=fake.device)  # "L1 only": D plays no part
        if t.lambda_gan > 0 and t.feature_matching > 0:
            with kit.autocast():
                fake_in, real_in = self.augment(
                    self.d_input(real_a, fake), self.d_input(real_a, real_b)
                )
                fake_feats = self._features(fake_in)
                with torch.no_grad():
                    real_feats = self._features(real_in)
            loss_gan = generator_loss([f[-1] for f in fake_feats], t.gan_loss)
            out["loss_g_fm"] = feature_matching_loss(fake_feats, real_feats)
        elif t.lambda_gan > 0:
            with kit.autocast():
                (fake_in,) = self.augment(self.d_input(real_a, fake))
                fake_logits = self.run["d_frozen"](fake_in)
            loss_gan = generator_loss(fake_logits, t.gan_loss)
        spec = t.reconstruction_spec  # an aligned target is registered already (`step`)
        loss_l1 = reconstruction_loss(fake, real_b, **(spec | {"shift": 0}))
        loss = t.lambda_gan * loss_gan + t.lambda_l1 * loss_l1
        if t.ffl_weight > 0:
            out["loss_g_ffl"] = focal_frequency_loss(fake, real_b)
            loss = loss + t.ffl_weight * out["loss_g_ffl"]
        if t.nce_weight > 0:
            out["loss_g_nce"] = self._patch_nce(fake, real_b)
            loss = loss + t.nce_weight * out["loss_g_nce"]
        if "loss_g_fm" in out:
            loss = loss + t.feature_matching * out["loss_g_fm"]
        for name, (weight, term) in self.extra_g_terms(real_a).items():
            out[name] = term
            loss = loss + weight * term
        kit.scaler.scale(loss).backward()
        kit.scaler.step(opt)
        self.d.requires_grad_(True)
        return {"loss_g": loss, "loss_g_gan": loss_gan, "loss_g_l1": loss_l1, **out}

    def extra_g_terms(self, real_a: torch.Tensor) -> dict[str, tuple[float, torch.Tensor]]:
        """Further terms of G's loss a subclass adds: name -> (weight, loss)."""
        return {}

    def _patch_nce(self, fake: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
        """PatchNCE between G's encoder features of its output (queries) and of the
        target (keys, the encoder not taught by them), at --nce-patches random places per
        level (the same places for both)."""
        t, g, n = self.config.train, self.g, len(fake)
        with self.kit.autocast():
            queries = g.encode(fake, t.nce_levels)
            with torch.no_grad():
                keys = g.encode(real_b, t.nce_levels)
            # one pass of the head over both (one forward per backward under DDP)
            both = self.run["nce_head"]([torch.cat([q, k]) for q, k in zip(queries, keys)])
        losses = []
        for feats in both:  # (2B, D, h, w)
            flat = feats.flatten(2)  # (2B, D, hw)
            where = torch.randperm(flat.shape[2], device=flat.device)[: t.nce_patches]
            picked = flat[:, :, where].transpose(1, 2)  # (2B, N, D)
            weights = None
            if t.nce_adaptive_steps:
                progress = self.kit.steps / t.nce_adaptive_steps
                weights = adaptive_nce_weights(picked[:n], picked[n:], progress)
            losses.append(patch_nce_loss(picked[:n], picked[n:], weights=weights))
        return torch.stack(losses).mean()

    def _features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """D's activations per scale (a single PatchGAN is one scale)."""
        feats = self.d.features(x)
        return feats if isinstance(feats[0], list) else [feats]
