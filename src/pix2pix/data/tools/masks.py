"""Seeded hole masks for inpainting pairs: rectangles and free-form brush strokes.

A mask is an (H, W) bool array, True inside the holes. Each image's mask comes from a
generator seeded by (seed, CRC-32 of the image's name), so it does not depend on which
other images are processed, in what order, or on how many threads.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from PIL import Image, ImageDraw


def mask_rng(seed: int, name: str) -> np.random.Generator:
    """The random stream of image `name`'s mask."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def box_mask(
    height: int, width: int, rng: np.random.Generator, count: int = 1, max_fraction: float = 0.5
) -> np.ndarray:
    """`count` axis-aligned rectangles, each side between 1/8 and `max_fraction` of the image."""
    mask = np.zeros((height, width), dtype=bool)
    for _ in range(count):
        bw = int(rng.integers(max(1, width // 8), max(2, int(width * max_fraction)) + 1))
        bh = int(rng.integers(max(1, height // 8), max(2, int(height * max_fraction)) + 1))
        bw, bh = min(bw, width), min(bh, height)
        x = int(rng.integers(0, width - bw + 1))
        y = int(rng.integers(0, height - bh + 1))
        mask[y : y + bh, x : x + bw] = True
    return mask


def stroke_mask(height: int, width: int, rng: np.random.Generator, count: int = 4) -> np.ndarray:
    """`count` free-form brush strokes: random walks of 4-9 segments with round joints."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    size = min(height, width)
    for _ in range(count):
        brush = int(rng.integers(max(1, size // 32), max(2, size // 10) + 1))
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        angle = float(rng.uniform(0, 2 * math.pi))
        points = [(x, y)]
        for _ in range(int(rng.integers(4, 10))):
            angle += float(rng.uniform(-math.pi / 2, math.pi / 2))
            step = float(rng.uniform(size / 16, size / 5))
            x = min(max(x + step * math.cos(angle), 0.0), width - 1.0)
            y = min(max(y + step * math.sin(angle), 0.0), height - 1.0)
            points.append((x, y))
        draw.line(points, fill=255, width=brush, joint="curve")
        r = brush / 2
        for px, py in (points[0], points[-1]):  # round caps
            draw.ellipse((px - r, py - r, px + r, py + r), fill=255)
    return np.asarray(canvas) > 0


def hole_mask(
    height: int, width: int, seed: int, name: str, boxes: int = 1, strokes: int = 0
) -> np.ndarray:
    """The (H, W) bool mask of image `name`: `boxes` rectangles and `strokes` strokes."""
    rng = mask_rng(seed, name)
    mask = box_mask(height, width, rng, boxes)
    return mask | stroke_mask(height, width, rng, strokes) if strokes else mask
