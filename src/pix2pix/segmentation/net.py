"""A small fully convolutional segmentation network (a compact U-Net) for FCN-scores.

The FCN-score needs only a reasonable segmenter of real photos, trained once per
dataset; this one is small enough to train on a CPU. Encoder: `depth` stages of two
3x3 conv-BN-ReLU then 2x2 max-pooling; decoder: bilinear upsampling, concatenation with
the encoder stage of the same size, two 3x3 conv-BN-ReLU; a 1x1 conv gives the class
logits. Input height and width must be multiples of `stride` (2^depth).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SegNet(nn.Module):
    """(B, in_channels, H, W) in [-1, 1] -> class logits (B, num_classes, H, W)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, depth: int = 4):
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]  # e.g. 32, 64, 128, 256, 512
        self.stride = 2**depth
        self.down = nn.ModuleList(
            [_block(c_in, c_out) for c_in, c_out in zip([in_channels, *widths], widths)]
        )
        self.up = nn.ModuleList(
            [_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))]
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)  # (B, w_i, H / 2^i, W / 2^i)
                x = F.max_pool2d(x, 2)
        for block, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)
