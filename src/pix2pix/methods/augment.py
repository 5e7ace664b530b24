"""Differentiable augmentation of what D sees (DiffAugment, Zhao et al. 2020), for pairs.

D judges (input, output) pairs stacked on the channel axis. Each transform draws its
random parameters once per sample and applies them to every tensor it is given (the
fake pairs and the real pairs of one D step) and to all channels of each, so the input
half and the output half of a pair move together and the conditioning stays aligned.
Every operation is differentiable in its input, so G learns through it.

- translation: shift by up to 1/8 of the height and width, zeros shifted in;
- cutout: zero a random square of half the height and width (clipped at the border);
- color: brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), each half of
  the pair on its own channels (`split`: the input's channel count), with one draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def _translation(xs: list[torch.Tensor], g: torch.Generator, split: int) -> list[torch.Tensor]:
    b, _, h, w = xs[0].shape
    dy = torch.randint(-(h // 8), h // 8 + 1, (b, 1, 1), generator=g)
    dx = torch.randint(-(w // 8), w // 8 + 1, (b, 1, 1), generator=g)
    rows = torch.arange(h).view(1, h, 1) - dy  # output (y, x) reads input (y - dy, x - dx)
    cols = torch.arange(w).view(1, 1, w) - dx
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)
    index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).view(b, 1, h * w)
    out = []
    for x in xs:
        idx = index.to(x.device).expand(b, x.shape[1], h * w)
        moved = x.flatten(2).gather(2, idx).view_as(x)
        out.append(moved * inside.to(x.device, x.dtype))
    return out


def _cutout(xs: list[torch.Tensor], g: torch.Generator, split: int) -> list[torch.Tensor]:
    b, _, h, w = xs[0].shape
    ch, cw = h // 2, w // 2
    cy = torch.randint(0, h + 1 - ch % 2, (b, 1, 1), generator=g)  # square centres
    cx = torch.randint(0, w + 1 - cw % 2, (b, 1, 1), generator=g)
    ys = torch.arange(h).view(1, h, 1)
    xs_ = torch.arange(w).view(1, 1, w)
    hole = ((ys - cy).abs() < (ch + 1) // 2) & ((xs_ - cx).abs() < (cw + 1) // 2)
    keep = (~hole).unsqueeze(1)
    return [x * keep.to(x.device, x.dtype) for x in xs]


def _color(xs: list[torch.Tensor], g: torch.Generator, split: int) -> list[torch.Tensor]:
    b = xs[0].shape[0]
    brightness = torch.rand(b, 1, 1, 1, generator=g) - 0.5
    saturation = torch.rand(b, 1, 1, 1, generator=g) * 2
    contrast = torch.rand(b, 1, 1, 1, generator=g) + 0.5

    def jitter(x: torch.Tensor) -> torch.Tensor:
        p = [t.to(x.device, x.dtype) for t in (brightness, saturation, contrast)]
        x = x + p[0]
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * p[1] + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * p[2] + mean

    out = []
    for x in xs:
        halves = (x[:, :split], x[:, split:]) if 0 < split < x.shape[1] else (x,)
        out.append(torch.cat([jitter(half) for half in halves], dim=1))
    return out


Augmentation = Callable[[list[torch.Tensor], torch.Generator, int], list[torch.Tensor]]
AUGMENTS: dict[str, Augmentation] = {
    "translation": _translation,
    "cutout": _cutout,
    "color": _color,
}


def augment_pairs(
    xs: Sequence[torch.Tensor],
    policy: Sequence[str],
    generator: torch.Generator,
    split: int = 0,
) -> list[torch.Tensor]:
    """The tensors (B, C, H, W) of equal shape, each transformed by `policy` in order with
    the same random draw; `split`: channels of the first half of each pair (0: none)."""
    out = list(xs)
    for name in policy:
        out = AUGMENTS[name](out, generator, split)
    return out
