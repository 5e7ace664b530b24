"""The latent encoder of BicycleGAN (Zhu et al. 2017): an image to the mean and log
variance of a Gaussian over its code.

A 4x4 stride-2 conv, then residual blocks, each (norm, LeakyReLU(0.2), 3x3 conv, norm,
LeakyReLU, 3x3 conv to the wider width, 2x2 average pool) plus a shortcut (2x2 average
pool, 1x1 conv), each halving the side; widths nef * min(4, n) for block n. LeakyReLU,
an average over the remaining map, and two linear heads: mu and log variance (B, nz).
At 256x256 with 4 blocks (128x128: 3) the map averaged is 8x8, as in the official code,
which pools a fixed 8x8 window; the average over the whole map takes any size.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2pix.nets.layers import make_norm


class _Residual(nn.Module):
    def __init__(self, c_in: int, c_out: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            make_norm(norm, c_in),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c_in, c_in, 3, padding=1),
            make_norm(norm, c_in),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.AvgPool2d(2),
        )
        self.skip = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)  # (B, c_out, H/2, W/2)


class LatentEncoder(nn.Module):
    """(B, C, H, W) in [-1, 1] -> (mu, logvar), each (B, nz) (H, W multiples of `stride`)."""

    def __init__(
        self, in_channels: int, nz: int, nef: int = 64, blocks: int = 4, norm: str = "instance"
    ) -> None:
        super().__init__()
        self.stride = 2 ** (blocks + 1)
        self.stem = nn.Conv2d(in_channels, nef, 4, stride=2, padding=1)
        widths = [nef * min(4, n) for n in range(1, blocks + 2)]
        self.blocks = nn.ModuleList(
            _Residual(widths[n], widths[n + 1], norm) for n in range(blocks)
        )
        self.mu = nn.Linear(widths[-1], nz)
        self.logvar = nn.Linear(widths[-1], nz)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        h = nn.functional.leaky_relu(h, 0.2).mean(dim=(2, 3))  # (B, widths[-1])
        return self.mu(h), self.logvar(h)


def encoder_blocks(size: int) -> int:
    """Residual blocks for images of `size` (the official resnet_256: 4, resnet_128: 3)."""
    return max(1, size.bit_length() - 5)
