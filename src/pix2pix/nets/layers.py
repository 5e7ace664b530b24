"""Building blocks shared by the generators and discriminators."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# Factory table: norm name -> constructor taking the channel count. Instance norm has no
# affine parameters and no running statistics, as in the reference implementation.
NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": lambda c: nn.BatchNorm2d(c),
    "instance": lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False),
    "none": lambda c: nn.Identity(),
}


def make_norm(kind: str, channels: int) -> nn.Module:
    """A normalisation layer for `channels` feature maps."""
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; choose one of: {', '.join(NORMS)}")
    return NORMS[kind](channels)


def conv_bias(kind: str) -> bool:
    """Convolutions followed by batch norm need no bias (the norm's shift replaces it)."""
    return kind != "batch"


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The paper's initialisation: conv weights ~ N(0, std), BN scales ~ N(1, std), biases 0.

    Draws from the global torch RNG, so the caller's seed fixes it.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class PatchHead(nn.Module):
    """PatchNCE's projection (Park et al. 2020): per feature level, a two-layer MLP
    (1x1 convs, ReLU between) from the level's channels to `dim`, then L2-normalised:
    [(B, C_l, h_l, w_l)] -> [(B, dim, h_l, w_l)]."""

    def __init__(self, channels: list[int], dim: int = 256) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, dim, 1), nn.ReLU(), nn.Conv2d(dim, dim, 1)) for c in channels
        )

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [nn.functional.normalize(m(f), dim=1) for m, f in zip(self.mlps, features)]


class FeatureAdapter(nn.Module):
    """Distillation's map from a student's feature widths to a teacher's: one 1x1 conv
    per level, [(B, C_s, h, w)] -> [(B, C_t, h, w)]."""

    def __init__(self, student: list[int], teacher: list[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(s, t, 1) for s, t in zip(student, teacher))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(f) for conv, f in zip(self.convs, features)]
