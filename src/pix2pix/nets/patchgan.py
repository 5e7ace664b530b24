"""PatchGAN discriminators: classify every NxN patch as real or fake.

`layers` stride-2 4x4 convs (C64-C128-C256-C512..., no norm on the first) followed by a
stride-1 4x4 conv and a 1-channel stride-1 4x4 output conv. The receptive field of one
output logit is 16, 34, 70, 142, 286 pixels for 1..5 layers; 0 layers is the PixelGAN, a
stack of 1x1 convs that judges single pixels (receptive field 1).
"""

from __future__ import annotations

import torch
from torch import nn

from pix2pix.nets.layers import conv_bias, make_norm


class PatchDiscriminator(nn.Module):
    """(B, C, H, W) -> logits (B, 1, H', W'), one per patch (no sigmoid)."""

    def __init__(self, in_channels: int, layers: int = 3, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        bias = conv_bias(norm)
        if layers == 0:  # PixelGAN
            net: list[nn.Module] = [
                nn.Conv2d(in_channels, ndf, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(ndf, 2 * ndf, 1, bias=bias),
                make_norm(norm, 2 * ndf),
                nn.LeakyReLU(0.2),
                nn.Conv2d(2 * ndf, 1, 1, bias=bias),
            ]
        else:
            net = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = ndf
            for n in range(1, layers + 1):
                c_next = ndf * min(2**n, 8)
                stride = 2 if n < layers else 1  # the last feature conv keeps the size
                net += [
                    nn.Conv2d(c, c_next, 4, stride=stride, padding=1, bias=bias),
                    make_norm(norm, c_next),
                    nn.LeakyReLU(0.2),
                ]
                c = c_next
            net.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every activation (after each LeakyReLU), then the logits: what pix2pixHD's
        feature matching compares."""
        out = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                out.append(x)
        return [*out, x]


class MultiScaleDiscriminator(nn.Module):
    """pix2pixHD's discriminators: the same PatchGAN design on the pair at full size and
    average-pooled 2x, 4x, ...; (B, C, H, W) -> a list of logits, finest first."""

    def __init__(
        self, scales: int, in_channels: int, layers: int = 3, ndf: int = 64, norm: str = "batch"
    ) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, layers, ndf, norm) for _ in range(scales)
        )
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def _inputs(self, x: torch.Tensor):
        for i, d in enumerate(self.scales):
            if i:
                x = self.pool(x)
            yield d, x

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [d(h) for d, h in self._inputs(x)]

    def features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale, `PatchDiscriminator.features`."""
        return [d.features(h) for d, h in self._inputs(x)]


def min_input_size(layers: int) -> int:
    """The smallest square side a PatchGAN with `layers` stride-2 layers accepts: each
    halves the side, then two 4x4 stride-1 convolutions take 3 pixels down to 1."""
    return 1 if layers == 0 else 3 * 2**layers


def coarsest_side(side: int, scales: int) -> int:
    """`side` after the `scales - 1` poolings of `MultiScaleDiscriminator`."""
    for _ in range(scales - 1):
        side = (side + 1) // 2
    return side


def receptive_field(module: nn.Module) -> int:
    """Receptive field, in input pixels, of one output of a plain conv stack."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    rf = 1
    for conv in reversed(convs):
        rf = (rf - 1) * conv.stride[0] + conv.kernel_size[0]
    return rf
