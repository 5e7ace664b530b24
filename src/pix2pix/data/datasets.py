"""Paired datasets: aligned A|B files or A/ and B/ folders, checked before training.

Every problem a user can fix (missing folder, lone file, unreadable image, A/B size
mismatch, image smaller than the crop) is found up front and raised as a one-line
`UserError` naming the file. Augmentation randomness comes from a generator seeded by
(seed, epoch, index), so a pair's crop and flip do not depend on worker count, on the
order of loading, or on whether the run was resumed.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from pix2pix.config import DataConfig
from pix2pix.data.images import (
    channels_of_mode,
    image_header,
    list_images,
    read_image,
    to_tensor,
)
from pix2pix.data.transforms import JointParams, apply_params, output_size, sample_params
from pix2pix.errors import UserError

_SAMPLE_STREAM = 1  # distinguishes augmentation seeds from the sampler's permutation seeds


@dataclass(frozen=True)
class PairFiles:
    """Where one pair lives: `a` holds A|B side by side when `b` is None."""

    name: str
    a: Path
    b: Path | None = None


def resolve_root(cfg: DataConfig, split: str | None = None) -> Path:
    """The folder holding the pairs: `root/split` when it exists, else `root`."""
    if not cfg.root:
        raise UserError("no dataset given; pass --data DIR")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found; check --data")
    sub = root / (split or cfg.split)
    return sub if sub.is_dir() else root


def detect_layout(root: Path) -> str:
    """'paired' when `root` has A/ and B/ subfolders, else 'aligned'."""
    return "paired" if (root / "A").is_dir() and (root / "B").is_dir() else "aligned"


def _by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in files:
            raise UserError(
                f"{path}: same name as {files[path.stem].name}; keep one file per name in {folder}"
            )
        files[path.stem] = path
    return files


def find_pairs(root: Path, layout: str = "auto") -> list[PairFiles]:
    """All pairs under `root`; a file without its partner is an error naming it."""
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "aligned":
        pairs = [PairFiles(p.stem, p) for p in list_images(root)]
    else:
        a_dir, b_dir = root / "A", root / "B"
        for folder in (a_dir, b_dir):
            if not folder.is_dir():
                raise UserError(f"{folder}: folder not found; paired data needs A/ and B/")
        a_files, b_files = _by_stem(a_dir), _by_stem(b_dir)
        for stem, path in a_files.items():
            if stem not in b_files:
                raise UserError(f"{path}: no partner named {stem}.* in {b_dir}; add or remove it")
        for stem, path in b_files.items():
            if stem not in a_files:
                raise UserError(f"{path}: no partner named {stem}.* in {a_dir}; add or remove it")
        pairs = [PairFiles(stem, a_files[stem], b_files[stem]) for stem in a_files]
    if not pairs:
        raise UserError(f"{root}: no images found; put A|B images (or A/ and B/ folders) there")
    return pairs


def _pair_header(pair: PairFiles) -> tuple[int, int, str, str]:
    """(width, height, mode A, mode B) of one side, checking that the sides agree."""
    w, h, mode = image_header(pair.a)
    if pair.b is None:
        if w % 2:
            raise UserError(
                f"{pair.a}: width {w} is odd; an aligned image holds A and B side by side "
                "in two halves of equal width"
            )
        return w // 2, h, mode, mode
    wb, hb, mode_b = image_header(pair.b)
    if (w, h) != (wb, hb):
        raise UserError(
            f"{pair.b}: size {wb}x{hb} differs from its partner {pair.a} ({w}x{h}); "
            "resize one so the pair is aligned"
        )
    return w, h, mode, mode_b


def detect_channels(pairs: list[PairFiles], direction: str) -> tuple[int, int]:
    """(input, output) channels, 1 or 3, from the first pair's image modes."""
    _, _, mode_a, mode_b = _pair_header(pairs[0])
    ca, cb = channels_of_mode(mode_a), channels_of_mode(mode_b)
    return (ca, cb) if direction == "AtoB" else (cb, ca)


def _with_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    if arr.shape[2] == channels:
        return arr
    gray = np.asarray(Image.fromarray(arr).convert("L"))  # 3 -> 1 channel (ITU-R 601 luma)
    return gray[:, :, None]


def split_aligned(
    both: np.ndarray, channels_a: int, channels_b: int
) -> tuple[np.ndarray, np.ndarray]:
    """An A|B image (H, 2W, C) -> A (H, W, channels_a) and B (H, W, channels_b)."""
    half = both.shape[1] // 2
    return _with_channels(both[:, :half], channels_a), _with_channels(both[:, half:], channels_b)


def load_pair(pair: PairFiles, channels_a: int, channels_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pair to (A, B) uint8 arrays (H, W, C) with the requested channels."""
    if pair.b is not None:
        return read_image(pair.a, channels_a), read_image(pair.b, channels_b)
    return split_aligned(read_image(pair.a, max(channels_a, channels_b)), channels_a, channels_b)


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 8 << 30


class PairedDataset(Dataset):
    """(input, target) pairs as (C, H, W) float tensors in [-1, 1], in `direction` order.

    Indexed by `(epoch, index)` keys (see `EpochBatchSampler`) so that augmentation is a
    pure function of (seed, epoch, index), or by a plain index for epoch 0.
    """

    def __init__(
        self,
        cfg: DataConfig,
        in_channels: int,
        out_channels: int,
        seed: int = 0,
        augment: bool = True,
        split: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.seed = seed
        self.augment = augment
        self.root = resolve_root(cfg, split)
        self.pairs = find_pairs(self.root, cfg.layout)
        # channels of the A and B sides
        if cfg.direction == "AtoB":
            self.channels_a, self.channels_b = in_channels, out_channels
        else:
            self.channels_a, self.channels_b = out_channels, in_channels
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            headers = list(pool.map(_pair_header, self.pairs))
        self.sizes = [(w, h) for w, h, _, _ in headers]
        if augment:
            self._check_crop()
        self.cache: list[tuple[np.ndarray, np.ndarray]] | None = None
        if self._should_cache():
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                self.cache = list(pool.map(self._decode, range(len(self.pairs))))

    def _check_crop(self) -> None:
        if self.cfg.preprocess != "crop":
            return
        for pair, (w, h) in zip(self.pairs, self.sizes):
            if min(w, h) < self.cfg.crop_size:
                raise UserError(
                    f"{pair.a}: image {w}x{h} is smaller than --crop-size {self.cfg.crop_size}; "
                    "use a smaller crop or --preprocess resize_and_crop"
                )

    def _should_cache(self) -> bool:
        if self.cfg.cache != "auto":
            return self.cfg.cache == "on"
        per_pixel = self.channels_a + self.channels_b
        need = sum(w * h * per_pixel for w, h in self.sizes)
        return need <= _physical_memory() // 4

    def _decode(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return load_pair(self.pairs[i], self.channels_a, self.channels_b)

    def output_sizes(self) -> set[tuple[int, int]]:
        """The distinct (w, h) sizes this dataset yields."""
        if not self.augment:
            return set(self.sizes)
        return {output_size(w, h, self.cfg) for w, h in self.sizes}

    def __len__(self) -> int:
        return len(self.pairs)

    def params(self, epoch: int, index: int) -> JointParams | None:
        """The augmentation of pair `index` in `epoch` (None without augmentation)."""
        if not self.augment:
            return None
        rng = np.random.default_rng([self.seed, epoch, _SAMPLE_STREAM, index])
        w, h = self.sizes[index]
        return sample_params(w, h, self.cfg, rng)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | int]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        a, b = self.cache[index] if self.cache is not None else self._decode(index)
        params = self.params(epoch, index)
        if params is not None:
            a, b = apply_params(a, params), apply_params(b, params)
        if self.cfg.direction == "BtoA":
            a, b = b, a
        return {"input": to_tensor(a), "target": to_tensor(b), "index": index}
