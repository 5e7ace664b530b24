"""A segmentation discriminator (OASIS, Schonfeld et al. ICLR 2021), from the paper.

Instead of real/fake per patch, D labels every pixel of an image with one of N + 1
classes: the N semantic classes for a real image, class 0 ("fake") for a generated one.
Its feedback to G is then per pixel and per class, which is why OASIS needs no
perceptual loss.

Layout: a U-Net of residual blocks. The encoder has `levels` blocks, each (LeakyReLU(0.2),
3x3 conv) twice + a 1x1 shortcut, then 2x average pooling; the decoder mirrors it with
nearest 2x upsampling, the encoder's map of the same size concatenated on, and the same
block without pooling; a 1x1 conv gives (B, N + 1, H, W) logits. Every conv is spectrally
normalised, as in the paper. Widths: ndf * (1, 2, 4, 4, 8, 8, ...) by level (capped at
8 * ndf).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _conv(c_in: int, c_out: int, k: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, k, padding=k // 2))


class _Block(nn.Module):
    """Residual block: (LeakyReLU, 3x3 conv) x 2 + 1x1 shortcut; 2x pooling if `down`."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv_0 = _conv(c_in, c_out, 3)
        self.conv_1 = _conv(c_out, c_out, 3)
        self.shortcut = _conv(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.leaky_relu(x, 0.2)  # the image itself is not activated
        h = self.conv_1(F.leaky_relu(self.conv_0(h), 0.2))
        out = h + self.shortcut(x)
        return F.avg_pool2d(out, 2) if self.down else out


class OASISDiscriminator(nn.Module):
    """(B, C, H, W) image in [-1, 1] -> (B, num_classes + 1, H, W) logits; channel 0 is
    "fake". H and W must be multiples of 2**levels."""

    def __init__(self, in_channels: int, num_classes: int, ndf: int = 64, levels: int = 5):
        super().__init__()
        self.levels = levels
        width = [ndf * (1, 2, 4, 4, 8, 8, 8, 8, 8, 8)[i] for i in range(levels)]
        ins = [in_channels, *width[:-1]]
        self.down = nn.ModuleList(
            _Block(c_in, c_out, down=True, first=i == 0)
            for i, (c_in, c_out) in enumerate(zip(ins, width))
        )
        # up level i (coarse to fine) takes the deeper map and the encoder map of its size
        self.up = nn.ModuleList(
            _Block(width[i] + (width[i - 1] if i else 0), width[max(i - 1, 0)], down=False)
            for i in range(levels - 1, -1, -1)
        )
        self.head = _conv(width[0], num_classes + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)  # sizes H/2, H/4, ..., H/2^levels
        skips.pop()  # the deepest map is x itself
        for block in self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if skips:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x)
        return self.head(x)  # (B, N + 1, H, W)
