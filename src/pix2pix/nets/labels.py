"""Label maps inside the model: the input image -> a one-hot class map, then the generator.

A label model takes its input as the data holds it, so translate, tiling, serve and the
exported files feed it like any other model:

- `palette`: an RGB label map in [-1, 1]; each pixel takes the class of the nearest
  palette colour (squared RGB distance), so JPEG noise and blurred edges still map
  (the data pipeline refuses images that are mostly far from every colour);
- `index`: a one-channel map whose 8-bit value v (stored as v / 127.5 - 1) is the class.

The one-hot map is built from comparisons with `arange`, which every exporter supports.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class LabelMap(nn.Module):
    """(B, 3, H, W) palette image or (B, 1, H, W) index image in [-1, 1] -> (B, K, H, W)
    one-hot float map of K classes."""

    def __init__(self, num_classes: int, colors: Sequence[Sequence[int]] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.palette = colors is not None
        if colors is not None:
            if len(colors) != num_classes:
                raise ValueError(f"{len(colors)} palette colours for {num_classes} classes")
            levels = torch.tensor([list(c) for c in colors], dtype=torch.float32)
            self.register_buffer("colors", levels / 127.5 - 1.0, persistent=False)  # (K, 3)
        self.register_buffer("ids", torch.arange(num_classes), persistent=False)

    def classes(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) input -> (B, H, W) int64 class indices."""
        if self.palette:
            colors = self.colors.to(torch.float32)[None, :, :, None, None]  # (1, K, 3, 1, 1)
            distance = ((x.float()[:, None] - colors) ** 2).sum(2)  # (B, K, H, W)
            return distance.argmin(1)
        levels = torch.round((x[:, 0].float() + 1.0) * 127.5).long()  # (B, H, W)
        return levels.clamp(0, self.num_classes - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = self.classes(x)[:, None]  # (B, 1, H, W)
        return (ids == self.ids[None, :, None, None]).to(x.dtype)  # (B, K, H, W)


class LabelGenerator(nn.Module):
    """A generator that reads label maps: `labels` (a `LabelMap`) then `net`, which takes
    the (B, K, H, W) one-hot map (and a latent code, if it has one)."""

    def __init__(self, labels: LabelMap, net: nn.Module) -> None:
        super().__init__()
        self.labels = labels
        self.net = net
        self.stride = int(getattr(net, "stride", 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """x: the input image (B, C, H, W) in [-1, 1]; z: a latent code (B, nz), if the
        generator takes one."""
        m = self.labels(x)  # (B, K, H, W)
        return self.net(m) if z is None else self.net(m, z)
