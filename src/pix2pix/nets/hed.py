"""HED, holistically-nested edge detection (Xie and Tu, ICCV 2015): the edge detector
behind the edges2shoes / edges2handbags datasets of the pix2pix paper.

The network is VGG-16's thirteen 3x3 convolutions (no fully connected layers); after the
last convolution of each of the five stages a 1x1 convolution gives a one-channel "side"
edge map. The five side maps are upsampled to the input size and fused by a learned 1x1
convolution; a sigmoid makes the fused map an edge probability.

No weights ship with pix2pix: `load_hed` (in `pix2pix.data.tools.edges`) reads a local file.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# VGG-16 widths and 3x3 convolutions per stage.
STAGES: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
# The per-channel mean the Caffe-trained weights subtract, in their BGR order, on 0..255.
BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)


def _stage(c_in: int, width: int, convs: int, pool: bool) -> nn.Sequential:
    # Pooling first (stages 2-5), then conv+ReLU pairs: convolutions sit at odd indices
    # after a pool and even ones in the first stage.
    layers: list[nn.Module] = [nn.MaxPool2d(2, 2)] if pool else []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


class HED(nn.Module):
    """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) edge probability in [0, 1].

    The input is converted inside to the convention of the original weights (BGR,
    0..255, mean subtracted), so callers pass ordinary images.
    """

    def __init__(self) -> None:
        super().__init__()
        stages, sides, c_in = [], [], 3
        for i, (width, convs) in enumerate(STAGES):
            stages.append(_stage(c_in, width, convs, pool=i > 0))
            sides.append(nn.Conv2d(width, 1, 1))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.sides = nn.ModuleList(sides)
        self.fuse = nn.Conv2d(len(STAGES), 1, 1)
        self.register_buffer("mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        size = rgb.shape[-2:]
        x = rgb.flip(1) * 255.0 - self.mean  # (B, 3, H, W) BGR, mean-free
        side_maps = []
        for stage, side in zip(self.stages, self.sides):
            x = stage(x)  # stage k: (B, width_k, H / 2^k, W / 2^k), k = 0..4
            side_maps.append(F.interpolate(side(x), size=size, mode="bilinear"))
        return torch.sigmoid(self.fuse(torch.cat(side_maps, dim=1)))  # (B, 1, H, W)
