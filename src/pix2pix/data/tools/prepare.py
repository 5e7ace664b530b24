"""Dataset layout tools: combine A/ + B/ into A|B files, separate them again, split.

Every tool checks its whole input (names, sizes, channels) before writing anything,
writes each file atomically, refuses a non-empty output folder (nothing already there is
touched) and decodes/encodes on all cores. Tools that run on a dataset with train/, val/
and test/ subfolders run on each of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from pix2pix.data.files.images import (
    depth_of,
    image_info,
    list_images,
    output_suffix,
    read_image,
    save_image,
    to_depth,
    widest,
)
from pix2pix.data.pairs.datasets import read_side, side_header
from pix2pix.data.pairs.folders import PairFiles, detect_layout, find_pairs, side_folders
from pix2pix.errors import UserError, setting
from pix2pix.fileio import atomic_write_bytes

T = TypeVar("T")
R = TypeVar("R")
SPLITS = ("train", "val", "test")


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> list[R]:
    """`[fn(x) for x in items]` on `workers` threads (default: every core), in order.

    Pillow, OpenCV, numpy and torch release the GIL while they decode, encode and compute.
    """
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def fresh_output(out: Path) -> Path:
    """Create `out`, refusing one that already holds files (so nothing there is lost)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"{out}: already exists and is not empty; choose a new {setting('--out')} folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def dataset_folders(src: Path) -> list[tuple[Path, Path]]:
    """(folder, relative output path) to process: src itself, or its train/val/test."""
    src = Path(src)
    if not src.is_dir():
        raise UserError(f"{src}: folder not found; check the path")
    splits = [src / s for s in SPLITS if (src / s).is_dir()]
    if splits and not list_images(src) and detect_layout(src) == "aligned":
        return [(s, Path(s.name)) for s in splits]
    return [(src, Path("."))]


def join_halves(a: np.ndarray, b: np.ndarray, source: object) -> np.ndarray:
    """A and B side by side (H, 2W, C): grayscale beside colour becomes colour, and the
    shallower depth is widened without loss (8 -> 16 bits is exact)."""
    if a.shape[:2] != b.shape[:2]:
        raise UserError(f"{source}: A and B differ in size; resize one so the pair is aligned")
    channels = max(a.shape[2], b.shape[2])
    sides = []
    for arr in (a, b):
        if arr.shape[2] != channels:
            if arr.shape[2] != 1:
                raise UserError(
                    f"{source}: A has {a.shape[2]} channels and B {b.shape[2]}; an A|B file "
                    "holds one channel count: keep the A/ and B/ folders (paired layout)"
                )
            arr = np.repeat(arr, channels, axis=2)
        sides.append(arr)
    depth = widest([depth_of(a), depth_of(b)])
    return np.concatenate([to_depth(s, depth) for s in sides], axis=1)


def _copy(src: Path, dst: Path, link: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        os.link(src, dst)
    else:
        atomic_write_bytes(dst, src.read_bytes())


# ---------------------------------------------------------------- combine / separate


def combine(src: str | Path, out: str | Path, *, workers: int | None = None) -> list[Path]:
    """A/ + B/ folders (matching names, equal sizes) -> `out/<name>.png` A|B files.

    The file type follows the content: `.png` for 1 or 3 channels of 8 or 16 bits, else
    `.tif` (see `output_suffix`). Returns the files written.
    """
    jobs = []
    for folder, rel in dataset_folders(Path(src)):
        if detect_layout(folder) != "paired":
            raise UserError(f"{folder}: no A/ and B/ folders to combine")
        if len(side_folders(folder, "A")) > 1 or len(side_folders(folder, "B")) > 1:
            raise UserError(f"{folder}: stacked A1/, A2/ folders cannot go into one A|B file")
        pairs = find_pairs(folder, "paired")
        parallel_map(_check_combinable, pairs, workers)
        jobs += [(pair, rel) for pair in pairs]
    out = fresh_output(Path(out))

    def one(job: tuple[PairFiles, Path]) -> Path:
        pair, rel = job
        both = join_halves(read_side(pair.files_a), read_side(pair.files_b), pair.a)
        path = out / rel / f"{pair.name}{output_suffix(both.shape[2], depth_of(both))}"
        save_image(both, path)
        return path

    return parallel_map(one, jobs, workers)


def _check_combinable(pair: PairFiles) -> None:
    wa, ha, side_a = side_header(pair.files_a)
    wb, hb, side_b = side_header(pair.files_b)
    if (wa, ha) != (wb, hb):
        raise UserError(
            f"{pair.b}: size {wb}x{hb} differs from its partner {pair.a} ({wa}x{ha}); "
            "resize one so the pair is aligned"
        )
    ca, cb = side_a.channels, side_b.channels
    if ca != cb and 1 not in (ca, cb):
        raise UserError(
            f"{pair.b}: {cb} channels beside {ca} in {pair.a}; an A|B file holds one channel "
            "count, so keep the A/ and B/ folders (paired layout)"
        )


def separate(src: str | Path, out: str | Path, *, workers: int | None = None) -> list[Path]:
    """A|B files -> `out/A/<name>` and `out/B/<name>` (the reverse of `combine`).

    Returns the files written (A then B for each input)."""
    jobs = []
    for folder, rel in dataset_folders(Path(src)):
        files = list_images(folder)
        if not files:
            raise UserError(f"{folder}: no images found; give a folder of A|B files")
        for path in files:
            info = image_info(path)
            if info.width % 2:
                raise UserError(
                    f"{path}: width {info.width} is odd, so it is not an A|B image; remove it"
                )
        jobs += [(path, rel) for path in files]
    out = fresh_output(Path(out))

    def one(job: tuple[Path, Path]) -> list[Path]:
        path, rel = job
        both = read_image(path)
        half = both.shape[1] // 2
        written = []
        for side, arr in (("A", both[:, :half]), ("B", both[:, half:])):
            arr = np.ascontiguousarray(arr)
            target = out / rel / side / f"{path.stem}{output_suffix(arr.shape[2], depth_of(arr))}"
            save_image(arr, target)
            written.append(target)
        return written

    return [p for written in parallel_map(one, jobs, workers) for p in written]


# ---------------------------------------------------------------- split


def split_counts(n: int, val: float, test: float) -> tuple[int, int, int]:
    """(train, val, test) sizes for n pairs: rounded shares that add up to n."""
    if val < 0 or test < 0 or val + test > 1:
        raise UserError(
            f"{setting('--val')} {val} and {setting('--test')} {test} must be >= 0 and add up to "
            "at most 1"
        )
    n_val, n_test = round(n * val), round(n * test)
    n_val = min(n_val, n)
    n_test = min(n_test, n - n_val)
    return n - n_val - n_test, n_val, n_test


def split_dataset(
    src: str | Path,
    out: str | Path,
    *,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    link: bool = False,
) -> dict[str, list[str]]:
    """Copy (or hard-link) the pairs of `src` into out/train, out/val and out/test.

    The assignment is a seeded permutation of the pair names in natural order, so the
    same files, shares and seed always give the same split. Works for aligned files and
    for A/ + B/ (or stacked A1/, A2/, ...) folders, whose layout is kept. Empty splits
    are not created. Returns {split: [pair names]}.
    """
    src = Path(src)
    if not src.is_dir():
        raise UserError(f"{src}: folder not found; check the path")
    pairs = find_pairs(src)
    counts = split_counts(len(pairs), val, test)
    order = np.random.default_rng(seed).permutation(len(pairs))
    out = fresh_output(Path(out))
    assignment: dict[str, list[str]] = {}
    jobs = []
    start = 0
    for name, count in zip(SPLITS, counts):
        chosen = sorted(order[start : start + count].tolist())
        start += count
        if not chosen:
            continue
        assignment[name] = [pairs[i].name for i in chosen]
        for i in chosen:
            for path in (*pairs[i].files_a, *pairs[i].files_b):
                rel = path.relative_to(src)
                jobs.append((path, out / name / rel))
    parallel_map(lambda job: _copy(job[0], job[1], link), jobs)
    return assignment
