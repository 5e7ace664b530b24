"""The pix2pix objective: a conditional GAN loss plus lambda * L1 (paper eq. 4).

Discriminators output logits; `adversarial_loss` compares every patch logit with the
all-real or all-fake label. The generator uses the non-saturating form (maximise
log D(x, G(x)) rather than minimise log(1 - D)), as the paper does (`generator_loss`).

`hinge` (an option, not the paper's): D minimises relu(1 - D(real)) + relu(1 + D(fake)),
G minimises -D(fake) (Lim & Ye 2017; Miyato et al. 2018).

A multi-scale discriminator gives a list of logits, one per scale; every adversarial
loss here is then the mean over the scales. Options beside the paper's: an L2
reconstruction, a reconstruction on downsampled images, pix2pixHD's feature matching
and the R1 penalty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


Logits = torch.Tensor | Sequence[torch.Tensor]  # one PatchGAN's, or one per scale


def _scales(logits: Logits) -> list[torch.Tensor]:
    return [logits] if isinstance(logits, torch.Tensor) else list(logits)


def adversarial_loss(logits: Logits, real: bool, kind: str = "vanilla") -> torch.Tensor:
    """Mean loss of patch logits (B, 1, H', W') against the label real (1) or fake (0)."""
    if kind not in GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {kind!r}; choose one of: {', '.join(GAN_LOSSES)}")
    losses = []
    for scale in _scales(logits):
        scale = scale.float()  # losses in fp32 even under autocast
        target = torch.ones_like(scale) if real else torch.zeros_like(scale)
        losses.append(GAN_LOSSES[kind](scale, target))
    return torch.stack(losses).mean()


def generator_loss(fake_logits: Logits, kind: str = "vanilla") -> torch.Tensor:
    """G's adversarial loss on D's logits for its outputs: the non-saturating "call them
    real" for vanilla and lsgan; -mean(logits) for hinge."""
    if kind == "hinge":
        return torch.stack([-s.float().mean() for s in _scales(fake_logits)]).mean()
    return adversarial_loss(fake_logits, True, kind)


def d_accuracy(real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
    """The fraction of patches D classifies right (real > 0, fake < 0), over all scales."""
    right = [(r > 0).float().mean() for r in _scales(real_logits)]
    right += [(f < 0).float().mean() for f in _scales(fake_logits)]
    return torch.stack(right).mean()


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "vanilla"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, real, fake): D's loss halved, which slows D relative to G (paper sec. 3.3)."""
    loss_real = adversarial_loss(real_logits, True, kind)
    loss_fake = adversarial_loss(fake_logits, False, kind)
    return 0.5 * (loss_real + loss_fake), loss_real, loss_fake


def reconstruction_loss(
    fake: torch.Tensor,
    target: torch.Tensor,
    kind: str = "l1",
    scale: int = 1,
    levels: int = 4,
    weights: Sequence[float] = (),
    shift: int = 8,
    tiles: int = 1,
    guide: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean absolute (l1, the paper's) or squared (l2) error between output and target,
    (B, C, H, W) in [-1, 1]; with `scale` > 1 both are first average-pooled scale x scale
    (a few pixels of misregistration then cost little). pyramid: the L1 of each of
    `levels` Gaussian pyramid levels (`gaussian_pyramid`), times `weights` (finest first;
    empty: 1 each), summed. aligned: L1 against the target re-registered
    (`register_target`: each of tiles x tiles tiles moved by the shift within +-`shift`
    pixels that fits best: the input `guide`'s edges, or without one the output)."""
    fake, target = fake.float(), target.float()
    if scale > 1:
        fake = F.avg_pool2d(fake, scale, ceil_mode=True)
        target = F.avg_pool2d(target, scale, ceil_mode=True)
    if kind == "l2":
        return F.mse_loss(fake, target)
    if kind == "pyramid":
        pairs = zip(gaussian_pyramid(fake, levels), gaussian_pyramid(target, levels))
        w = list(weights) or [1.0] * levels
        return sum((wl * F.l1_loss(f, t) for wl, (f, t) in zip(w, pairs)), fake.new_zeros(()))
    if kind == "aligned":
        return F.l1_loss(fake, register_target(fake, target, shift, tiles, guide))
    if kind != "l1":
        raise ValueError(f"unknown reconstruction loss {kind!r}; use l1, l2, pyramid or aligned")
    return F.l1_loss(fake, target)


@torch.no_grad()
def register_target(
    fake: torch.Tensor | None,
    target: torch.Tensor,
    shift: int,
    tiles: int,
    guide: torch.Tensor | None = None,
) -> torch.Tensor:
    """The target (B, C, H, W) re-registered: the image cut into tiles x tiles tiles, each
    replaced by the target's content moved by the integer shift (dy, dx), |dy|, |dx| <=
    `shift` (edges replicated), that fits best (the first such shift in (dy, dx) order).
    Without a `guide`, best is the least mean absolute luminance difference (channels
    averaged) from the output `fake`; with one (the input, (B, C', H, W)), the most
    correlated edges: the normalised cross-correlation of the two images' gradient
    magnitudes (`edge_strength`), for inputs whose edges are the target's (label maps,
    sketches, gray images). A pair a few pixels out of register then meets its L1 where
    the two line up; a tile per region follows small rotations too. No gradient."""
    h, w = target.shape[-2:]
    s = max(0, min(int(shift), h - 1, w - 1))
    if s == 0:
        return target
    padded = F.pad(target.float(), (s, s, s, s), mode="replicate")
    if guide is None:
        moved, fixed = padded.mean(1), fake.float().mean(1)  # luminance
    else:
        moved, fixed = edge_strength(padded), edge_strength(guide.float())
        pool = lambda x: F.adaptive_avg_pool2d(x, tiles)  # noqa: E731
        mean_f = pool(fixed[:, None])
        std_f = (pool(fixed[:, None] ** 2) - mean_f**2).clamp_min(0).sqrt()
    costs = []
    for dy in range(2 * s + 1):  # the dx shifts of one row of the window at once
        rows = moved[:, dy : dy + h].unfold(2, w, 1).transpose(1, 2)  # (B, 2s+1, H, W)
        if guide is None:
            costs.append(F.adaptive_avg_pool2d((rows - fixed[:, None]).abs(), tiles))
            continue
        mean_m = pool(rows)
        std_m = (pool(rows**2) - mean_m**2).clamp_min(0).sqrt()
        ncc = (pool(rows * fixed[:, None]) - mean_m * mean_f) / (std_m * std_f + 1e-8)
        costs.append(-ncc)  # (B, 2s+1, T, T)
    best = torch.stack(costs, 1).flatten(1, 2).argmin(1)  # (B, T, T): dy * (2s+1) + dx
    return _moved_tiles(padded, best, s, (h, w))


def edge_strength(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W): |horizontal| + |vertical| forward differences summed over
    channels (a one-hot label map's boundaries count as a photo's edges do)."""
    dx = F.pad((x[..., :, 1:] - x[..., :, :-1]).abs(), (0, 1, 0, 0))
    dy = F.pad((x[..., 1:, :] - x[..., :-1, :]).abs(), (0, 0, 0, 1))
    return (dx + dy).sum(1)


def _moved_tiles(padded: torch.Tensor, best: torch.Tensor, s: int, size: tuple[int, int]):
    """The (H, W) image whose tile (i, j) of sample n is `padded` (the target padded by s)
    read at the offset best[n, i, j] = dy * (2s + 1) + dx."""
    (h, w), tiles = size, best.shape[-1]
    out = torch.empty_like(padded[:, :, :h, :w])
    edges_y = [i * h // tiles for i in range(tiles + 1)]
    edges_x = [j * w // tiles for j in range(tiles + 1)]
    for n in range(len(best)):
        for i in range(tiles):
            for j in range(tiles):
                dy, dx = divmod(int(best[n, i, j]), 2 * s + 1)
                y0, y1, x0, x1 = edges_y[i], edges_y[i + 1], edges_x[j], edges_x[j + 1]
                out[n, :, y0:y1, x0:x1] = padded[n, :, y0 + dy : y1 + dy, x0 + dx : x1 + dx]
    return out


_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # the 5-tap Gaussian of Burt and Adelson's pyramid


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[x, G(x), G(G(x)), ...] (`levels` images) for x (B, C, H, W): each level the one
    before blurred by the separable 5-tap binomial kernel [1, 4, 6, 4, 1] / 16 (edges
    reflected) and subsampled 2x. Stops early when a side would fall below 2 pixels."""
    out = [x]
    k1 = x.new_tensor(_BINOMIAL) / 16.0
    kernel = (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, 5, 5)  # (C, 1, 5, 5)
    for _ in range(levels - 1):
        if min(x.shape[-2:]) < 4:
            break
        x = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])
        x = x[:, :, ::2, ::2]
        out.append(x)
    return out


def focal_frequency_loss(fake: torch.Tensor, target: torch.Tensor, alpha: float = 1.0):
    """Focal frequency loss (Jiang et al., ICCV 2021) of (B, C, H, W) images: with F the
    orthonormal 2-D FFT per channel, d = |F(fake) - F(target)|^2 at each frequency, the
    mean of w * d where the weight w = d^alpha scaled to [0, 1] per image and channel
    (by its maximum) and not differentiated: the frequencies G gets most wrong count most."""
    diff = torch.fft.fft2(fake.float(), norm="ortho") - torch.fft.fft2(target.float(), norm="ortho")
    d = diff.real**2 + diff.imag**2  # (B, C, H, W)
    with torch.no_grad():
        w = d.pow(alpha)
        w = w / w.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
    return (w * d).mean()


Features = Sequence[Sequence[torch.Tensor]]  # per scale: activations, then the logits


def feature_matching_loss(fake: Features, real: Features) -> torch.Tensor:
    """pix2pixHD's: per scale, the sum over D's intermediate activations (the logits
    excluded) of mean |real - fake| times 4 / (layers + 1), averaged over the scales.
    `real` is detached: only G learns from it."""
    per_scale = []
    for fake_s, real_s in zip(fake, real, strict=True):
        pairs = list(zip(fake_s[:-1], real_s[:-1], strict=True))
        weight = 4.0 / len(pairs)  # layers + 1 activations for `layers` stride-2 convs
        terms = [F.l1_loss(f.float(), r.detach().float()) for f, r in pairs]
        per_scale.append(weight * torch.stack(terms).sum())
    return torch.stack(per_scale).mean()


def r1_penalty(real_logits: Logits, real_input: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """mean over the batch of |d sum(D(real)) / d real|^2 (Mescheder et al. 2018), with
    the graph kept so that D's step can differentiate it; multiply by gamma / 2.

    `scale`: the GradScaler's loss scale under fp16. The gradient is taken of the sum
    times scale / (number of logits), the size of the gradient D's own (mean) loss sends
    back through the scaler, which keeps fp16 gradients from underflowing to 0 (and from
    overflowing), then divided back: the penalty is that of the unscaled gradient."""
    scales = _scales(real_logits)
    weight = scale / sum(s.numel() for s in scales)
    total = sum(s.float().sum() for s in scales) * weight
    (grad,) = torch.autograd.grad(total, real_input, create_graph=True)
    return (grad.float() / weight).pow(2).flatten(1).sum(1).mean()


# OASIS (Schonfeld et al. 2021): D segments every pixel into N classes + "fake" (index 0).


def class_balance(onehot: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W) one-hot labels -> (N,) weights: the paper's inverse pixel frequency
    alpha_c = HW / n_c of the batch, divided by the number K of classes present (so
    balanced classes weigh 1, as in plain cross-entropy); 0 for absent classes."""
    counts = onehot.float().sum((0, 2, 3))
    present = counts > 0
    k = present.sum().clamp(min=1)
    return torch.where(present, counts.sum() / (k * counts.clamp(min=1)), 0.0)


def oasis_class_loss(logits: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """Class-balanced (N + 1)-way cross-entropy of logits (B, N + 1, H, W) against the
    true classes (label c is index c + 1): D's loss on real images, G's on its outputs."""
    target = onehot.argmax(1) + 1  # (B, H, W)
    weight = (onehot.float() * class_balance(onehot)[None, :, None, None]).sum(1)
    ce = F.cross_entropy(logits.float(), target, reduction="none")
    return (ce * weight).mean()


def oasis_fake_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every pixel of logits (B, N + 1, H, W) against "fake" (index 0):
    D's loss on generated images (the paper weighs this term by pixels alone)."""
    target = torch.zeros(
        logits.shape[:1] + logits.shape[2:], dtype=torch.long, device=logits.device
    )
    return F.cross_entropy(logits.float(), target)


def labelmix_mask(onehot: torch.Tensor, coins: torch.Tensor) -> torch.Tensor:
    """LabelMix's mask (B, 1, H, W): each class of each image is all real (1) or all
    fake (0) by its coin; onehot (B, N, H, W), coins (B, N) of 0/1."""
    return (onehot.float() * coins.float()[:, :, None, None]).sum(1, keepdim=True)


def labelmix_loss(
    d_mixed: torch.Tensor, d_real: torch.Tensor, d_fake: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """OASIS's consistency term: D's logits on the mixed image should be the same mix of
    its logits on the real and the fake image, mean squared over logits and pixels."""
    target = mask * d_real.float() + (1 - mask) * d_fake.float()
    return (d_mixed.float() - target).pow(2).mean()


def patch_nce_loss(
    query: torch.Tensor, key: torch.Tensor, tau: float = 0.07, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Supervised PatchNCE (after Park et al., ECCV 2020): query (B, N, D) features of N
    patches of G's output and key (B, N, D) of the same N places in the target, both
    L2-normalised. Each query's positive is the key at its own place, its negatives the
    other N - 1 keys of its image: the cross-entropy of the similarities / tau, averaged
    over the patches, or weighted by `weights` (B, N) (the adaptive variant)."""
    logits = torch.bmm(query.float(), key.float().transpose(1, 2)) / tau  # (B, N, N)
    target = torch.arange(query.shape[1], device=query.device).expand(query.shape[0], -1)
    per_patch = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
    if weights is None:
        return per_patch.mean()
    return (per_patch * weights.flatten().float()).sum() / weights.float().sum().clamp(min=1e-12)


def adaptive_nce_weights(
    query: torch.Tensor, key: torch.Tensor, progress: float, sigma: float = 0.5
) -> torch.Tensor:
    """Patch weights (B, N) of the adaptive supervised PatchNCE (after Li et al., MICCAI
    2023, for pairs that do not line up): a patch whose output and target features
    disagree (cosine similarity s of its positive pair far from 1) is likely a place where
    the pair is inconsistent, so it counts less as training goes on:
    w = (1 - p) + p * exp(-(1 - s)^2 / (2 sigma^2)), p the progress in [0, 1] (0: every
    patch 1, plain supervised PatchNCE). Not differentiated."""
    with torch.no_grad():
        s = (query.float() * key.float()).sum(-1)  # (B, N), both L2-normalised
        p = min(max(progress, 0.0), 1.0)
        return (1 - p) + p * torch.exp(-((1 - s) ** 2) / (2 * sigma**2))
