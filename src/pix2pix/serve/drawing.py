"""What the demo page lets a user draw with, decided by the model.

- palette mode, for label -> photo models: one swatch per label colour, as RGB triples.
  The palette comes from serve's `--palette` or from the checkpoint's config
  (`data.palette`, set by `pix2pix train --palette`: a preset such as facades, JSON or a
  JSON file, read by `pix2pix.palette`); its first colour is the background
  that "clear" fills the canvas with, so it doubles as the eraser.
- pen mode, for edge-like models (a 1-channel input, or no palette known): a black pen
  and a white eraser on a white canvas, as in the edges2shoes/edges2handbags data.

Brushes are stamped as pixel-aligned discs, never anti-aliased, so a label map drawn on
the page holds only palette colours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pix2pix.config import RunConfig
from pix2pix.errors import UserError, setting
from pix2pix.palette import PRESETS, Palette
from pix2pix.palette import parse_palette as parse_label_palette

RGB = tuple[int, int, int]
Mode = Literal["pen", "palette"]
PEN: RGB = (0, 0, 0)
PAPER: RGB = (255, 255, 255)
# Preprocessing that trains on --crop-size squares; with the others the crop is unused.


@dataclass(frozen=True)
class Drawing:
    """The page's tools: mode, colours (index 0 is the background), canvas size."""

    mode: Mode
    colours: list[RGB]
    width: int
    height: int
    names: list[str] = field(default_factory=list)


def check_palette(raw: Any, source: str) -> list[RGB]:
    """A list of [R, G, B] triples (ints 0..255, at least two) as tuples, or a UserError."""
    if not isinstance(raw, (list, tuple)) or len(raw) < 2:
        raise UserError(f"{source}: a palette is a list of at least two [R, G, B] colours")
    colours = []
    for i, entry in enumerate(raw):
        ok = isinstance(entry, (list, tuple)) and len(entry) == 3
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in entry)
        if not ok or not all(0 <= v <= 255 for v in entry):
            raise UserError(f"{source}: palette entry {i} is {entry!r}; use three integers 0..255")
        colours.append((int(entry[0]), int(entry[1]), int(entry[2])))
    return colours


def parse_palette(text: str) -> list[RGB]:
    """'R,G,B R,G,B ...' (the --palette flag) -> RGB triples."""
    entries = []
    for item in text.split():
        try:
            entries.append([int(v) for v in item.split(",")])
        except ValueError:
            raise UserError(
                f"{setting('--palette')} {item!r} is not R,G,B; give colours like '30,40,160 "
                "40,160,40'"
            ) from None
    return check_palette(entries, f"{setting('--palette')} {text!r}")


def palette_option(text: str) -> Palette:
    """serve's --palette: 'R,G,B R,G,B ...', or a value as `train --palette` takes it
    (a preset such as facades, a JSON list of [R, G, B], a JSON file)."""
    value = text.strip()
    if value in PRESETS or value.startswith(("[", "{")) or Path(value).expanduser().is_file():
        return parse_label_palette(value)
    colours = parse_palette(value)
    return Palette(tuple(colours), tuple(f"label {i}" for i in range(len(colours))))


def palette_from_config(config: RunConfig) -> Palette | None:
    """The label palette the checkpoint's config records (`data.palette`), if any."""
    value = getattr(config.data, "palette", "")  # configs from before the field: none
    return parse_label_palette(value) if value else None


def canvas_size(config: RunConfig, stride: int) -> int:
    """The side of the blank canvas: the size the model was trained at, as far as known.

    The training crop where preprocessing crops; the load size for scale_width; otherwise
    (no resizing: images were used as they are) a U-Net's design size, its stride, or 256.
    """
    data = config.data
    if data.crops:
        return int(data.crop_size)
    if data.resize == "width":
        return int(data.load_size)
    return stride if stride >= 32 else 256


def drawing_for(
    config: RunConfig,
    in_channels: int,
    stride: int,
    palette: Palette | list[RGB] | None = None,
) -> Drawing:
    """Palette mode when a palette is given or configured and the input is colour; else pen.

    `palette` (from --palette) overrides the checkpoint's; plain colours are named
    'label 0', 'label 1', ...
    """
    side = canvas_size(config, stride)
    chosen = palette if palette is not None else palette_from_config(config)
    if chosen is None or in_channels != 3:
        return Drawing("pen", [PAPER, PEN], side, side, ["eraser", "pen"])
    if isinstance(chosen, Palette):
        return Drawing("palette", list(chosen.colors), side, side, list(chosen.names))
    names = [f"label {i}" for i in range(len(chosen))]
    return Drawing("palette", list(chosen), side, side, names)
