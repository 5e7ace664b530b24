"""A built-in paired dataset: label maps of simple scenes -> textured renderings of them.

Each scene is sky, ground, and a few buildings (rectangles), suns (discs) and trees
(triangles). A is the flat colour-coded label map, B a rendering of the same scene with
textures, shading and outlines that follow from the labels, so a pix2pix model can learn
A -> B the way it learns facades labels -> photos. Everything is a pure function of
(seed, index): the same call always draws the same pairs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pix2pix.data.files.images import save_image

SKY, GROUND, BUILDING, SUN, TREE = range(5)
# label colour of each class (A side)
LABEL_COLOURS = np.array(
    [(30, 40, 160), (40, 160, 40), (200, 30, 30), (250, 220, 0), (0, 200, 200)], dtype=np.uint8
)
LABEL_NAMES = ("sky", "ground", "building", "sun", "tree")


def label_palette() -> str:
    """The label colours and class names as a palette value (`--palette`, inline JSON)."""
    return json.dumps(
        {"colors": LABEL_COLOURS.tolist(), "names": list(LABEL_NAMES)}, separators=(",", ":")
    )


def draw_labels(size: int, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple]]:
    """(size, size) class map and the shapes drawn on it (kind, parameters)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    labels = np.full((size, size), SKY, dtype=np.uint8)
    horizon = int(size * rng.uniform(0.6, 0.8))
    labels[horizon:] = GROUND
    shapes: list[tuple] = []
    for _ in range(int(rng.integers(2, 5))):
        kind = int(rng.choice([BUILDING, BUILDING, SUN, TREE]))
        if kind == BUILDING:
            w, h = rng.uniform(0.15, 0.35) * size, rng.uniform(0.25, 0.55) * size
            x0 = rng.uniform(0, size - w)
            y1 = horizon + rng.uniform(0, 0.1) * size
            mask = (xx >= x0) & (xx < x0 + w) & (yy >= y1 - h) & (yy < y1)
            shapes.append((kind, x0, y1 - h))
        elif kind == SUN:
            r = rng.uniform(0.07, 0.14) * size
            cx, cy = rng.uniform(r, size - r), rng.uniform(r, horizon * 0.6)
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            shapes.append((kind, cx, cy, r))
        else:
            half, h = rng.uniform(0.08, 0.16) * size, rng.uniform(0.2, 0.4) * size
            cx, base = rng.uniform(half, size - half), horizon + rng.uniform(0, 0.15) * size
            top = base - h
            mask = (yy >= top) & (yy < base) & (np.abs(xx - cx) <= (yy - top) / h * half)
            shapes.append((kind, cx, top))
        labels[mask] = kind
    return labels, shapes


def render(labels: np.ndarray, shapes: list[tuple]) -> np.ndarray:
    """The textured (H, W, 3) uint8 rendering of a class map."""
    size = labels.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    t = yy / size
    img = np.zeros((size, size, 3), dtype=np.float32)
    # sky: a vertical gradient from deep blue to pale
    sky = np.stack([90 + 140 * t, 150 + 90 * t, np.full_like(t, 235)], axis=2)
    # ground: green with darker furrows
    furrow = (np.sin(yy * 1.3) > 0.6)[..., None]
    ground = np.where(furrow, (40, 110, 30), (70, 150, 50)).astype(np.float32)
    # buildings: brick courses every 4 px, vertical joints staggered per course
    course = (yy // 4).astype(int)
    joint = ((xx + 4 * (course % 2)) % 8) < 1
    mortar = ((yy % 4) < 1) | joint
    building = np.where(mortar[..., None], (215, 205, 190), (165, 70, 45)).astype(np.float32)
    # trees: dark green with diagonal stripes
    stripe = (((xx + yy) // 3) % 2 == 0)[..., None]
    tree = np.where(stripe, (20, 90, 40), (30, 120, 55)).astype(np.float32)
    for cls, texture in ((SKY, sky), (GROUND, ground), (BUILDING, building), (TREE, tree)):
        img[labels == cls] = texture[labels == cls]
    # suns: radially shaded discs, bright in the middle
    for shape in shapes:
        if shape[0] == SUN:
            _, cx, cy, r = shape
            d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / r
            inside = (labels == SUN) & (d <= 1.0)
            shade = (1.0 - 0.3 * d)[..., None] * np.array([255, 205, 40], dtype=np.float32)
            img[inside] = shade[inside]
    # dark outlines where the class changes
    edge = np.zeros_like(labels, dtype=bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    img[edge] *= 0.35
    return img.clip(0, 255).astype(np.uint8)


def make_pair(size: int, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(label map, rendering), both (size, size, 3) uint8, for scene `index` of `seed`."""
    rng = np.random.default_rng([seed, index])
    labels, shapes = draw_labels(size, rng)
    return LABEL_COLOURS[labels], render(labels, shapes)


def write_dataset(
    root: Path, size: int = 64, train: int = 200, test: int = 16, seed: int = 0
) -> Path:
    """Write aligned A|B pairs to root/train and root/test (A = labels); returns root."""
    root = Path(root)
    for split, count, offset in (("train", train, 0), ("test", test, train)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            path = folder / f"{i + 1:04d}.png"
            if path.exists():
                continue
            a, b = make_pair(size, seed, offset + i)
            save_image(np.concatenate([a, b], axis=1), path)
    return root
