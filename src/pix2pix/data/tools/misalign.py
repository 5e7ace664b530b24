"""`pix2pix data misalign`: a copy of an aligned dataset with one side moved a little.

Real pairs are rarely pixel-aligned (scans and photos, stains, maps and aerial images);
this makes such data from aligned data, to benchmark misalignment-tolerant objectives or
to test a model's own robustness. Each pair's `side` (default B) gets a random similarity
transform about the image centre: a shift of up to `max_shift` pixels along each axis, a
rotation of up to `max_rotate` degrees and a scale change of up to `max_scale` (0.02:
+-2%), drawn from (seed, file name), so the same seed gives the same copy. The image is
padded by edge replication before the bicubic warp, so no black border appears for a
model to learn. The other side is copied unchanged; the layout (A|B files or A/ + B/
folders) and the train/val/test subfolders are kept.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from pix2pix.data.files.images import depth_of, output_suffix, read_image, save_image
from pix2pix.data.pairs.datasets import read_side, split_aligned
from pix2pix.data.pairs.folders import PairFiles, detect_layout, find_pairs
from pix2pix.data.tools.prepare import dataset_folders, fresh_output, join_halves, parallel_map
from pix2pix.errors import UserError, setting

Side = Literal["A", "B"]


def draw_motion(
    name: str, seed: int, max_shift: float, max_rotate: float, max_scale: float
) -> tuple[float, float, float, float]:
    """(dx, dy, degrees, scale) of one file, uniform within the bounds, from (seed, name)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    dx, dy = rng.uniform(-max_shift, max_shift, size=2)
    degrees = rng.uniform(-max_rotate, max_rotate)
    scale = 1.0 + rng.uniform(-max_scale, max_scale)
    return float(dx), float(dy), float(degrees), float(scale)


def warp(arr: np.ndarray, dx: float, dy: float, degrees: float, scale: float) -> np.ndarray:
    """(H, W, C) of any depth moved by the similarity transform: scaled and rotated about
    the centre, then shifted by (dx, dy) pixels; bicubic, borders edge-replicated."""
    h, w = arr.shape[:2]
    theta = math.radians(degrees)
    reach = max(abs(dx), abs(dy)) + 0.5 * max(h, w) * (abs(theta) + abs(scale - 1))
    pad = math.ceil(reach) + 2  # every source pixel the warp reads lies in the padding
    big = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    cx, cy = big.shape[1] / 2, big.shape[0] / 2
    # output pixel p_out = s R (p_in - c) + c + t, so p_in = R^-1 (p_out - c - t) / s + c
    cos, sin = math.cos(theta) / scale, math.sin(theta) / scale
    a, b, d, e = cos, sin, -sin, cos
    c = cx - a * (cx + dx) - b * (cy + dy)
    f = cy - d * (cx + dx) - e * (cy + dy)
    size = (big.shape[1], big.shape[0])
    planes = []
    for ch in range(arr.shape[2]):
        plane = big[:, :, ch].astype(np.float32)
        moved = Image.fromarray(plane, mode="F").transform(
            size, Image.AFFINE, (a, b, c, d, e, f), resample=Image.BICUBIC
        )
        planes.append(np.asarray(moved))
    out = np.stack(planes, axis=2)[pad : pad + h, pad : pad + w]
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return np.round(out).clip(info.min, info.max).astype(arr.dtype)
    return out.astype(arr.dtype)


def misalign(
    src: str | Path,
    out: str | Path,
    *,
    side: Side = "B",
    max_shift: float = 8.0,
    max_rotate: float = 3.0,
    max_scale: float = 0.0,
    seed: int = 0,
    workers: int | None = None,
) -> list[Path]:
    """Write the misaligned copy of dataset `src` to the new folder `out` (see the module
    doc); returns the files written. `out` may not be `src` or inside it."""
    src, out = Path(src), Path(out)
    if side not in ("A", "B"):
        raise UserError(f"{setting('--side')} {side!r} is not valid; choose A or B")
    bounds = {"--max-shift": max_shift, "--max-rotate": max_rotate, "--max-scale": max_scale}
    for name, value in bounds.items():
        if value < 0:
            raise UserError(f"{setting(name)} {value} is out of range; use a value >= 0")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise UserError(f"{out}: inside the input {src}; the copy goes to a folder of its own")
    jobs = [
        (pair, rel, detect_layout(folder))
        for folder, rel in dataset_folders(src)
        for pair in find_pairs(folder, "auto")
    ]
    if not jobs:
        raise UserError(f"{src}: no pairs found; check the path")
    out = fresh_output(out)
    motion = (max_shift, max_rotate, max_scale)

    def one(job: tuple[PairFiles, Path, str]) -> list[Path]:
        pair, rel, layout = job
        move = draw_motion(pair.name, seed, *motion)
        if layout == "aligned":
            a, b = split_aligned(read_image(pair.a), None, None)
            a, b = (warp(a, *move), b) if side == "A" else (a, warp(b, *move))
            both = join_halves(a, b, pair.a)
            path = out / rel / f"{pair.name}{output_suffix(both.shape[2], depth_of(both))}"
            save_image(both, path)
            return [path]
        written = []
        for s, files in (("A", pair.files_a), ("B", pair.files_b)):
            arr = read_side(files)
            arr = warp(arr, *move) if s == side else arr
            path = out / rel / s / f"{pair.name}{output_suffix(arr.shape[2], depth_of(arr))}"
            save_image(arr, path)
            written.append(path)
        return written

    return [p for paths in parallel_map(one, jobs, workers) for p in paths]
