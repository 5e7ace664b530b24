"""A spatially-adaptive generator (SPADE, Park et al. CVPR 2019), from the paper.

A normalisation layer washes a label map out: a region of one class is constant, so its
normalised activations are zero. SPADE puts the labels back after every normalisation:

    SPADE(x, m) = norm(x) * (1 + gamma(m)) + beta(m)

with `norm` parameter-free (batch or instance statistics) and gamma, beta two 3x3 convs
on a shared 3x3 conv + ReLU of the label map m resized (nearest) to x. The generator has
no encoder: it starts from the label map downsampled to 4x4 (for an SxS crop; H/stride
in general), turned into features by a 3x3 conv, and alternates SPADE residual blocks
(SPADE, LeakyReLU(0.2), 3x3 conv, twice, plus a learned 1x1 shortcut where the width
changes) with nearest 2x upsampling, up to the full size; then LeakyReLU, 3x3 conv, tanh.

Widths: `ngf * min(2**level, 8)` at `level` (0: the output size, `levels`: 4x4), the
paper's 16 * nf trunk capped at 8 * ngf to fit CPU budgets; each SPADE's hidden conv has
min(128, width of what it modulates) channels (the paper: 128).

An optional latent code z (B, nz) (OASIS, Schonfeld et al. ICLR 2021: "3D noise", one
vector per image repeated over the pixels) is concatenated onto the label map wherever
the map enters, so that one label map gives diverse outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# parameter-free normalisations (SPADE supplies the scale and shift)
_PLAIN_NORMS = {
    "batch": lambda c: nn.BatchNorm2d(c, affine=False),
    "instance": lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False),
    "none": lambda c: nn.Identity(),
}


class SPADE(nn.Module):
    """norm(x) * (1 + gamma(m)) + beta(m) for x (B, C, H, W) and a map m (B, K, h, w)."""

    def __init__(self, channels: int, label_channels: int, norm: str, hidden: int = 128) -> None:
        super().__init__()
        if norm not in _PLAIN_NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of: {', '.join(_PLAIN_NORMS)}")
        self.norm = _PLAIN_NORMS[norm](channels)
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        if m.shape[2:] != x.shape[2:]:
            m = F.interpolate(m, size=x.shape[2:], mode="nearest")
        h = self.shared(m)
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)


class SPADEResBlock(nn.Module):
    """(SPADE, LeakyReLU(0.2), 3x3 conv) twice, plus the shortcut: the identity, or
    SPADE + 1x1 conv where the width changes from `c_in` to `c_out`."""

    def __init__(self, c_in: int, c_out: int, label_channels: int, norm: str) -> None:
        super().__init__()
        c_mid = min(c_in, c_out)
        self.norm_0 = SPADE(c_in, label_channels, norm, min(128, c_in))
        self.conv_0 = nn.Conv2d(c_in, c_mid, 3, padding=1)
        self.norm_1 = SPADE(c_mid, label_channels, norm, min(128, c_mid))
        self.conv_1 = nn.Conv2d(c_mid, c_out, 3, padding=1)
        self.shortcut: nn.Module | None = None
        self.norm_s: nn.Module | None = None
        if c_in != c_out:
            self.norm_s = SPADE(c_in, label_channels, norm, min(128, c_in))
            self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        skip = x
        if self.shortcut is not None and self.norm_s is not None:
            skip = self.shortcut(self.norm_s(x, m))
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, m), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, m), 0.2))
        return skip + dx


class SPADEGenerator(nn.Module):
    """(B, K, H, W) one-hot label map [, z (B, nz)] -> (B, out_channels, H, W) in [-1, 1];
    H and W multiples of `stride` = 2**levels."""

    def __init__(
        self,
        label_channels: int,
        out_channels: int,
        levels: int,
        ngf: int = 64,
        norm: str = "batch",
        nz: int = 0,
    ) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels {levels} must be at least 1")
        self.levels, self.nz, self.stride = levels, nz, 2**levels
        width = [ngf * min(2**level, 8) for level in range(levels + 1)]
        k = label_channels + nz
        self.head = nn.Conv2d(k, width[levels], 3, padding=1)  # (B, width[L], H/2^L, W/2^L)
        # block at level l: width[l + 1] -> width[l] (the coarsest keeps its width)
        self.blocks = nn.ModuleList(
            SPADEResBlock(width[min(level + 1, levels)], width[level], k, norm)
            for level in range(levels, -1, -1)
        )
        self.out = nn.Conv2d(width[0], out_channels, 3, padding=1)

    def forward(self, m: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if self.nz:
            if z is None:
                raise ValueError(f"this generator takes a latent code z of shape (B, {self.nz})")
            tiled = z[:, :, None, None].to(m.dtype).expand(-1, -1, *m.shape[2:])
            m = torch.cat([m, tiled], dim=1)  # (B, K + nz, H, W)
        h, w = m.shape[2] // self.stride, m.shape[3] // self.stride
        x = self.head(F.interpolate(m, size=(h, w), mode="nearest"))
        for i, block in enumerate(self.blocks):
            if i:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            # the map at this level's size, once for the block's three SPADE layers
            x = block(x, F.interpolate(m, size=x.shape[2:], mode="nearest"))
        return torch.tanh(self.out(F.leaky_relu(x, 0.2)))
