"""Pictures for people: side-by-side grids of input | output | target."""

from __future__ import annotations

import numpy as np
import torch

from pix2pix.data.images import to_uint8


def displayable(arr: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> (H, W, 3): grayscale repeated, extra channels dropped."""
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    return arr[:, :, :3]


def image_grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile rows of (H, W, C) uint8 images (any sizes) into one (H', W', 3) uint8 image."""
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
