"""ResNet generator (Johnson et al. 2016), the alternative the pix2pix code base offers.

c7s1-ngf, two stride-2 downsamplings, N residual blocks at 4*ngf, two stride-2
upsamplings, c7s1-out with Tanh. Reflection padding avoids border artefacts.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2pix.nets.layers import conv_bias, make_norm


class ResidualBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x), with reflection padding; keeps (B, C, H, W)."""

    def __init__(self, channels: int, norm: str, dropout: float) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels),
            nn.ReLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """(B, in, H, W) in [-1, 1] -> (B, out, H, W) in [-1, 1]; H, W multiples of 4."""

    stride = 4

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        blocks: int,
        ngf: int = 64,
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            make_norm(norm, ngf),
            nn.ReLU(),
        ]
        for k in range(2):  # (B, ngf, H, W) -> (B, 4 ngf, H/4, W/4)
            c = ngf * 2**k
            layers += [
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias),
                make_norm(norm, 2 * c),
                nn.ReLU(),
            ]
        layers += [ResidualBlock(4 * ngf, norm, dropout) for _ in range(blocks)]
        for k in (2, 1):  # back to (B, ngf, H, W)
            c = ngf * 2**k
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(norm, c // 2),
                nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
