"""The paper's U-Net generator and its encoder-decoder ablation (no skips).

Encoder C64-C128-C256-C512-C512-... : 4x4 stride-2 convs with LeakyReLU(0.2) in front,
batch norm after, except no norm on the first and innermost layers. The decoder mirrors it
with 4x4 stride-2 transposed convs and ReLU; the U-Net concatenates encoder level i onto
the decoder input at level i. Dropout (the only noise) follows the norm in the decoder's
intermediate 512-channel blocks: depth - 5 of them, three at 256x256 (depth 8).

`upsample` (an option, not the paper's): "resize-conv" replaces every transposed conv by
a nearest-neighbour 2x upsample and a 3x3 conv (Odena et al. 2016: each output pixel
then sees the same number of kernel taps, so no checkerboard); "resize-conv-head" only
the outermost one. A 3x3 kernel keeps the block symmetric (an even kernel after the
upsample shifts the map by half a pixel per level) and has 9/16 of the 4x4 kernel's
weights; the conv runs at the output resolution, 2.25x the transposed conv's FLOPs.

A latent code z (B, nz) (BicycleGAN, Zhu et al. 2017) is tiled over the image and
concatenated onto the encoder's input (`z_at="input"`) or onto the input of every encoder
level (`z_at="all"`); `nz=0` is the paper's U-Net, which takes the image alone.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2pix.nets.layers import conv_bias, make_norm

UPSAMPLES = ("transpose", "resize-conv", "resize-conv-head")


def _up(c_in: int, c_out: int, bias: bool, resize: bool) -> list[nn.Module]:
    """2x upsampling layers: a 4x4 stride-2 transposed conv, or nearest 2x + 3x3 conv."""
    if resize:
        return [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias),
        ]
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)]


class UNet(nn.Module):
    """U-Net generator: (B, in, H, W) in [-1, 1] -> (B, out, H, W) in [-1, 1].

    H and W must be multiples of `stride` = 2**depth (translation pads to it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int,
        ngf: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
        skips: bool = True,
        upsample: str = "transpose",
        nz: int = 0,
        z_at: str = "input",
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"U-Net depth {depth} is too small; use depth >= 2")
        if upsample not in UPSAMPLES:
            raise ValueError(f"unknown upsample {upsample!r}; use one of {', '.join(UPSAMPLES)}")
        if z_at not in ("input", "all"):
            raise ValueError(f"unknown z_at {z_at!r}; use input or all")
        self.depth = depth
        self.stride = 2**depth
        self.nz = nz
        self.z_levels = set() if not nz else {0} if z_at == "input" else set(range(depth))
        self.skips = skips
        bias = conv_bias(norm)
        width = [ngf * min(2**i, 8) for i in range(depth)]  # channels of encoder level i

        self.encoder = nn.ModuleList()
        for i in range(depth):
            c_in = in_channels if i == 0 else width[i - 1]
            c_in += nz if i in self.z_levels else 0
            conv = nn.Conv2d(c_in, width[i], 4, stride=2, padding=1, bias=bias)
            if i == 0:  # outermost: no activation in front, no norm
                block = nn.Sequential(conv)
            elif i == depth - 1:  # innermost: no norm (a 1x1 map at the paper's size)
                block = nn.Sequential(nn.LeakyReLU(0.2), conv)
            else:
                block = nn.Sequential(nn.LeakyReLU(0.2), conv, make_norm(norm, width[i]))
            self.encoder.append(block)

        # decoder[i] undoes encoder[i]; it runs from the innermost level outwards.
        self.decoder = nn.ModuleList()
        for i in range(depth):
            innermost = i == depth - 1
            c_in = width[i] if innermost or not skips else 2 * width[i]
            resize = upsample == "resize-conv" or (upsample == "resize-conv-head" and i == 0)
            if i == 0:  # outermost: back to image channels, with a bias, then Tanh
                block = nn.Sequential(nn.ReLU(), *_up(c_in, out_channels, True, resize), nn.Tanh())
            else:
                up = _up(c_in, width[i - 1], bias, resize)
                layers = [nn.ReLU(), *up, make_norm(norm, width[i - 1])]
                if 4 <= i < depth - 1 and dropout > 0:  # the intermediate 512-channel blocks
                    layers.append(nn.Dropout(dropout))
                block = nn.Sequential(*layers)
            self.decoder.append(block)

    def encode(self, x: torch.Tensor, levels: list[int]) -> list[torch.Tensor]:
        """The encoder's outputs at `levels` (0: (B, ngf, H/2, W/2), ...) for an image x
        of the input's channels (a model without a code); the encoder runs only as deep as
        the deepest level asked for."""
        out, h = {}, x
        for i, block in enumerate(self.encoder[: max(levels) + 1]):
            h = block(h)
            out[i] = h
        return [out[i] for i in levels]

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, in, H, W) in [-1, 1]; z (B, nz), given exactly when `nz` > 0."""
        if (z is not None) != (self.nz > 0):
            raise ValueError(f"this U-Net takes a code of {self.nz} values; got {z is not None}")
        features = []  # encoder outputs, level 0 (B, ngf, H/2, W/2) to the innermost
        h = x
        for i, block in enumerate(self.encoder):
            if z is not None and i in self.z_levels:  # (B, C + nz, h, w)
                h = torch.cat([h, z[:, :, None, None].expand(-1, -1, *h.shape[-2:])], dim=1)
            h = block(h)
            features.append(h)
        for i in reversed(range(self.depth)):
            if self.skips and i < self.depth - 1:
                h = torch.cat([features[i], h], dim=1)  # (B, 2 * width[i], H/2^(i+1), ...)
            h = self.decoder[i](h)
        return h
