"""Label maps -> class indices: colour-coded images by nearest palette colour, or index PNGs.

A palette is a config value, never code: a preset name (`facades`), a JSON list of
[R, G, B] triples, or a JSON file holding such a list (or {"colors": [...], "names":
[...]}). Class i is the i-th colour (0-based). Colour-coded maps saved as JPEG carry
noise and blurred edges, so each pixel takes the class of the nearest palette colour
(squared RGB distance). Index maps hold the class number in each pixel; 255 means
"ignore" (not scored, not trained on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2pix.errors import ConfigError, setting

IGNORE = 255

# The CMP facades label colours (classes 1-12 of the dataset, here 0-11), as the mean
# RGB inside class regions of the pix2pix distribution (shared/data/facades/README.md).
FACADES = (
    ("background", (0, 0, 221)),
    ("facade", (2, 48, 251)),
    ("window", (3, 127, 252)),
    ("door", (4, 206, 254)),
    ("cornice", (37, 252, 227)),
    ("sill", (114, 251, 151)),
    ("balcony", (192, 254, 68)),
    ("blind", (248, 239, 19)),
    ("deco", (251, 159, 9)),
    ("molding", (249, 81, 7)),
    ("pillar", (241, 4, 13)),
    ("shop", (171, 1, 5)),
)
PRESETS: dict[str, tuple[tuple[str, tuple[int, int, int]], ...]] = {"facades": FACADES}


@dataclass(frozen=True)
class Palette:
    """Class colours (K, 3) as RGB triples and their names."""

    colors: tuple[tuple[int, int, int], ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.colors) != len(self.names):
            raise ConfigError(f"palette has {len(self.colors)} colours but {len(self.names)} names")
        if not 2 <= len(self.colors) < IGNORE:
            raise ConfigError(f"palette has {len(self.colors)} colours; use 2 to {IGNORE - 1}")

    @property
    def num_classes(self) -> int:
        return len(self.colors)

    def to_dict(self) -> dict[str, list]:
        return {"colors": [list(c) for c in self.colors], "names": list(self.names)}


def _from_json(raw: object, source: str) -> Palette:
    names = None
    if isinstance(raw, dict):
        names = raw.get("names")
        raw = raw.get("colors")
    if not isinstance(raw, list) or not all(
        isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
        for c in raw
    ):
        raise ConfigError(
            f"{setting('--palette')} {source}: expected a JSON list of [R, G, B] triples with "
            "values 0-255"
        )
    colors = tuple((c[0], c[1], c[2]) for c in raw)
    if names is None:
        names = [f"class_{i}" for i in range(len(colors))]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{setting('--palette')} {source}: 'names' must be a list of strings")
    return Palette(colors, tuple(names))


def parse_palette(value: str) -> Palette:
    """A preset name, inline JSON, or the path of a JSON file -> Palette."""
    text = value.strip()
    if text in PRESETS:
        entries = PRESETS[text]
        return Palette(tuple(c for _, c in entries), tuple(n for n, _ in entries))
    if text.startswith(("[", "{")):
        try:
            return _from_json(json.loads(text), "(inline JSON)")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{setting('--palette')}: not valid JSON ({exc})") from None
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{setting('--palette')} {value!r} is not a preset ({', '.join(PRESETS)}), JSON, or a "
            "file"
        )
    try:
        return _from_json(json.loads(path.read_text()), str(path))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable JSON palette ({exc})") from None


def colors_to_classes(rgb: np.ndarray, palette: Palette) -> np.ndarray:
    """(H, W, 3) uint8 colour-coded map -> (H, W) uint8 class indices (nearest colour)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {rgb.shape}")
    colors = np.asarray(palette.colors, dtype=np.int32)  # (K, 3)
    pixels = rgb.reshape(-1, 1, 3).astype(np.int32)  # (HW, 1, 3)
    distance = ((pixels - colors[None]) ** 2).sum(-1)  # (HW, K)
    return distance.argmin(1).astype(np.uint8).reshape(rgb.shape[:2])


def palette_setting(value: str) -> str:
    """A checked --palette value: a preset name or inline JSON as given, a file's palette
    as inline JSON. A bad value is a ConfigError naming it."""

    palette = parse_palette(value)
    text = value.strip()
    if text in PRESETS or text.startswith(("[", "{")):
        return text
    return json.dumps(palette.to_dict(), separators=(",", ":"))
