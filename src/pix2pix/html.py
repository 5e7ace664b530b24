"""Pictures and pages for people: image grids, and HTML pages that show images side by
side (demo results, evaluation and run reports).

Any image array can be shown: 16-bit and float images are scaled to 8 bits, grayscale
is repeated into RGB, and images with other than 1 or 3 channels (N-band data, a*b*)
are shown as one grayscale tile per channel, side by side.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import torch

from pix2pix.data.files.images import save_image, to_depth, to_uint8
from pix2pix.fileio import atomic_write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 4px 8px; text-align: center; }
td img { image-rendering: pixelated; width: 192px; }
.note { color: #555; max-width: 50em; }
"""


# ---------------------------------------------------------------- generic page parts


def page_html(title: str, parts: list[str]) -> str:
    """A whole page: the title, then `parts` (HTML fragments) in order."""
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}{_TABLE_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


_TABLE_STYLE = """
table.metrics td, table.metrics th { border-bottom: 1px solid #ddd; text-align: right; }
table.metrics td:first-child, table.metrics th:first-child { text-align: left; }
img.plot { max-width: 100%; }
"""


def format_value(value: object) -> str:
    """Numbers with 4 significant digits, None as a dash, anything else as text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table_html(headers: list[str], rows: list[list[object]]) -> str:
    """A metric table: one header row, then one row per list of values."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row) + "</tr>\n"
        for row in rows
    )
    return f'<table class="metrics"><tr>{head}</tr>\n{body}</table>'


def heading_html(text: str, level: int = 2) -> str:
    return f"<h{level}>{html.escape(text)}</h{level}>"


def paragraph_html(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def image_html(src: str, alt: str, css_class: str = "plot") -> str:
    return f'<img class="{css_class}" src="{html.escape(src)}" alt="{html.escape(alt)}">'


def image_rows_html(columns: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """A table of images: one row per (label, [image paths relative to the page])."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
    body = []
    for label, images in rows:
        cells = "".join(
            f'<td><img src="{html.escape(src)}" alt="{html.escape(col)}"></td>'
            for col, src in zip(columns, images)
        )
        body.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + "\n</table>"


def write_page(path: Path, title: str, parts: list[str]) -> Path:
    """Write `page_html(title, parts)` atomically to `path`."""
    atomic_write_text(Path(path), page_html(title, parts))
    return Path(path)


def write_image_table(
    path: Path,
    title: str,
    columns: list[str],
    rows: list[tuple[str, list[Path]]],
    notes: list[str] = (),  # type: ignore[assignment]
) -> Path:
    """A page at `path`: `notes`, then one row of images per (label, [image files]) in
    `rows`, linked relative to the page."""
    path = Path(path)
    rel = [
        (label, [Path(p).relative_to(path.parent).as_posix() for p in imgs]) for label, imgs in rows
    ]
    parts = [paragraph_html(n) for n in notes] + [image_rows_html(columns, rel)]
    return write_page(path, title, parts)


# ---------------------------------------------------------------- image grids

TILE_GAP = 1  # pixels between the channel tiles of one N-channel image


def displayable(arr: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8/uint16/float32 -> (H, W', 3) uint8: RGB as is, grayscale repeated,
    other channel counts as C grayscale tiles (W' = C * W + gaps)."""
    arr = to_depth(arr, "uint8")
    channels = arr.shape[2]
    if channels == 3:
        return arr
    if channels == 1:
        return np.repeat(arr, 3, axis=2)
    height, width = arr.shape[:2]
    canvas = np.full((height, channels * (width + TILE_GAP) - TILE_GAP, 3), 255, np.uint8)
    for c in range(channels):
        x = c * (width + TILE_GAP)
        canvas[:, x : x + width] = arr[:, :, c : c + 1]
    return canvas


def save_preview(arr: np.ndarray, path: Path) -> Path:
    """Write `displayable(arr)` as an 8-bit RGB image a browser shows (for HTML pages)."""
    save_image(displayable(arr), path)
    return Path(path)


def image_grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile rows of (H, W, C) images (any sizes, channels, depths) into one (H', W', 3) uint8."""
    rows = [[displayable(img) for img in row] for row in rows]
    height = sum(max(img.shape[0] for img in row) for row in rows) + gap * (len(rows) - 1)
    width = max(sum(img.shape[1] for img in row) + gap * (len(row) - 1) for row in rows)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    y = 0
    for row in rows:
        x = 0
        for img in row:
            canvas[y : y + img.shape[0], x : x + img.shape[1]] = img
            x += img.shape[1] + gap
        y += max(img.shape[0] for img in row) + gap
    return canvas


def batch_grid(*columns: torch.Tensor, max_rows: int = 4) -> np.ndarray:
    """A grid whose row i shows image i of each (B, C, H, W) tensor in [-1, 1]."""
    count = min(max_rows, columns[0].shape[0])
    return image_grid([[to_uint8(col[i]) for col in columns] for i in range(count)])
