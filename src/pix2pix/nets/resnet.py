"""ResNet generator (Johnson et al. 2016), the alternative the pix2pix code base offers.

c7s1-ngf, two stride-2 downsamplings, N residual blocks at 4*ngf, two stride-2
upsamplings, c7s1-out with Tanh. Reflection padding avoids border artefacts.

The layers sit at the official code's indices (its `ResnetBlock.conv_block` is our
`ResidualBlock.body`): pad, conv, norm, ReLU, [Dropout], pad, conv, norm, so a block's
second conv is at 6 with dropout and at 5 without; `blocks_have_dropout` reads which from
a state dict's keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from pix2pix.nets.layers import conv_bias, make_norm

_BLOCK_CONV = re.compile(r"\.(?:conv_block|body)\.(\d+)\.weight$")
SECOND_CONV = {True: 6, False: 5}  # a block's second conv index, by whether it has dropout


def blocks_have_dropout(shapes: Mapping[str, Sequence[int]]) -> bool | None:
    """Whether the residual blocks of a state dict (key -> tensor shape; ours, `body`, or
    the official code's, `conv_block`) have dropout: their convolutions are at 1 and 6
    (True) or 1 and 5 (False). None: no residual block, or another layout."""
    convs = {
        int(m.group(1))
        for k, shape in shapes.items()
        if (m := _BLOCK_CONV.search(k)) and len(shape) == 4
    }
    for dropout, second in SECOND_CONV.items():
        if convs == {1, second}:
            return dropout
    return None


class ResidualBlock(nn.Module):
    """x + conv-norm-relu-[dropout]-conv-norm(x), with reflection padding; keeps
    (B, C, H, W). Dropout, when on, sits between the convolutions (the official layout)."""

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
