"""Pictures for people: side-by-side grids of input | output | target.

Any image array can be shown: 16-bit and float images are scaled to 8 bits, grayscale
is repeated into RGB, and images with other than 1 or 3 channels (N-band data, a*b*)
are shown as one grayscale tile per channel, side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pix2pix.data.images import save_image, to_depth, to_uint8

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
