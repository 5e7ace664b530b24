"""A small fully convolutional segmentation network (a compact U-Net) for FCN-scores.

The FCN-score needs only a reasonable segmenter of real photos, trained once per
dataset; this one is small enough to train on a CPU. A stride-2 3x3 conv stem halves the
resolution (most of the work then runs at H/2, 3-4x cheaper than a full-resolution
U-Net); the body is a U-Net: `depth` stages of two 3x3 conv-BN-ReLU then 2x2
max-pooling, and a decoder of bilinear upsampling, concatenation with the encoder stage
of the same size, two 3x3 conv-BN-ReLU; a 1x1 conv gives class logits at H/2, upsampled
bilinearly to H. Any input size works (each upsampling matches its skip's size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SegNet(nn.Module):
    """(B, in_channels, H, W) in [-1, 1] -> class logits (B, num_classes, H, W)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, depth: int = 4):
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]  # e.g. 16, 32, 64, 128, 256
        self.stride = 2 ** (depth + 1)
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.down = nn.ModuleList(
            [_block(c_in, c_out) for c_in, c_out in zip([width, *widths], widths)]
        )
        self.up = nn.ModuleList(
            [_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))]
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.stem(x)  # (B, w, H/2, W/2)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)  # (B, w_i, H / 2^(i+1), W / 2^(i+1))
                x = F.max_pool2d(x, 2)
        for block, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        logits = self.head(x)  # (B, K, H/2, W/2)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
