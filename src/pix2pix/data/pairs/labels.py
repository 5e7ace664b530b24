"""Label-map inputs as the data pipeline sees them: checked, and resized without blending.

A label model (`--labels palette|index`) one-hot encodes its input itself; the pipeline
makes sure the input is a label map of the model's classes, and resizes it by nearest
neighbour so that no new colour or class id is invented between two regions.

- palette: colour-coded maps are often JPEGs (most public pix2pix sets), whose colours
  are only near the palette's and blend at region edges (in the facades set up to 20% of
  a map's pixels lie more than 100 RGB levels from every palette colour). A map is
  refused only when most of it is far from every colour: a photo, or another palette.
- index: the pixel value is the class id; an id >= --num-classes is refused at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pix2pix.config import RunConfig
from pix2pix.errors import UserError, setting
from pix2pix.palette import parse_palette

FAR = 100.0  # RGB distance beyond which a pixel matches no palette colour
MOSTLY = 0.5  # the share of far pixels that makes an image not a label map


def label_rule(config: RunConfig) -> tuple[np.ndarray | None, int] | None:
    """What a run's input label maps are checked against: (palette colours (K, 3) int32
    or None for index maps, number of classes); None for a model that reads images."""
    m = config.model
    if m.labels == "none":
        return None
    colors = None
    if m.labels == "palette":
        colors = np.asarray(parse_palette(config.data.palette).colors, dtype=np.int32)
    return colors, int(m.num_classes or 0)


def check_label_map(arr: np.ndarray, source: Path, rule: tuple[np.ndarray | None, int]) -> None:
    """Refuse `arr` (H, W, C) uint8, read from `source`, if it is not a label map of `rule`."""
    colors, classes = rule
    if colors is None:
        bad = np.argwhere(arr[:, :, 0] >= classes)
        if len(bad):
            y, x = bad[0]
            raise UserError(
                f"{source}: class id {int(arr[y, x, 0])} at pixel ({x}, {y}), but "
                f"{setting('--num-classes')} is {classes}; use ids 0..{classes - 1} "
                f"or a larger {setting('--num-classes')}"
            )
        return
    pixels = arr[:, :, :3].reshape(-1, 1, 3).astype(np.int32)
    distance = np.sqrt(((pixels - colors[None]) ** 2).sum(-1).min(1))  # (HW,)
    far = distance > FAR
    if far.mean() > MOSTLY:
        r, g, b = (int(v) for v in pixels[int(np.argmax(far)), 0])
        raise UserError(
            f"{source}: {far.mean():.0%} of its pixels are far from every {setting('--palette')} "
            f"colour (e.g. RGB ({r}, {g}, {b})): not a label map of this palette; "
            f"check {setting('--palette')} and {setting('--direction')}"
        )


def resample_of(labels: bool) -> int:
    """The resize filter for an input: nearest for label maps, bicubic for images."""
    return Image.NEAREST if labels else Image.BICUBIC
