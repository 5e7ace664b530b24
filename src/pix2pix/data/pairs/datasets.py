"""Paired datasets: aligned A|B files or A/ and B/ folders, checked before training.

A side of a paired dataset may be several aligned folders stacked as channels: A1/, A2/,
... (numbered from 1, in number order) instead of A/, and likewise B1/, B2/, ... Every
problem a user can fix (missing folder, lone file, unreadable image, A/B size
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
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from pix2pix.config import DataConfig, RunConfig
from pix2pix.data.files.encoding import LAB_CHANNELS, encode_pair
from pix2pix.data.files.images import (
    Depth,
    ImageInfo,
    image_info,
    read_image,
    stack_channels,
    widest,
    with_channels,
)
from pix2pix.data.pairs.folders import PairFiles, find_pairs, resolve_root
from pix2pix.data.pairs.labels import check_label_map, resample_of
from pix2pix.data.pairs.transforms import JointParams, apply_params, output_size, sample_params
from pix2pix.errors import ConfigError, UserError, setting

_SAMPLE_STREAM = 1  # distinguishes augmentation seeds from the sampler's permutation seeds
_BYTES = {"uint8": 1, "uint16": 2, "float32": 4}


@dataclass(frozen=True)
class SideFormat:
    """What one side of the pairs holds: channels (stacked files summed) and depth."""

    channels: int
    depth: Depth


def side_header(files: tuple[Path, ...]) -> tuple[int, int, SideFormat]:
    """(width, height, format) of one side: a file, or stacked files of one size."""
    infos: list[ImageInfo] = [image_info(f) for f in files]
    w, h = infos[0].width, infos[0].height
    for path, info in zip(files[1:], infos[1:]):
        if (info.width, info.height) != (w, h):
            raise UserError(
                f"{path}: size {info.width}x{info.height} differs from its partner {files[0]} "
                f"({w}x{h}); resize one so the pair is aligned"
            )
    side = SideFormat(sum(i.channels for i in infos), widest([i.depth for i in infos]))
    return w, h, side


def _pair_header(pair: PairFiles) -> tuple[int, int, SideFormat, SideFormat]:
    """(width, height, A format, B format) of one pair, checking that the files agree."""
    w, h, side_a = side_header(pair.files_a)
    if pair.b is None:
        if w % 2:
            raise UserError(
                f"{pair.a}: width {w} is odd; an aligned image holds A and B side by side "
                "in two halves of equal width"
            )
        return w // 2, h, side_a, side_a
    wb, hb, side_b = side_header(pair.files_b)
    if (w, h) != (wb, hb):
        raise UserError(
            f"{pair.b}: size {wb}x{hb} differs from its partner {pair.a} ({w}x{h}); "
            "resize one so the pair is aligned"
        )
    return w, h, side_a, side_b


T = TypeVar("T")


def oriented(direction: str, a: T, b: T) -> tuple[T, T]:
    """The one place the direction is read: (a, b) for AtoB, (b, a) for BtoA.

    It maps the (A, B) sides to (input, target), and (input, output) back to (A, B).
    """
    return (a, b) if direction == "AtoB" else (b, a)


def detect_format(pairs: list[PairFiles], direction: str) -> tuple[SideFormat, SideFormat]:
    """(input, output) formats from the first pair's headers."""
    _, _, side_a, side_b = _pair_header(pairs[0])
    return oriented(direction, side_a, side_b)


def resolve_format(config: RunConfig) -> RunConfig:
    """Fill in unset channel counts and the output depth from the dataset's first pair.

    In ``lab`` mode the channels are (1, 2) and the targets must be colour.
    """
    m, d = config.model, config.data
    lab = d.color_space == "lab"
    if lab and (m.in_channels or 1, m.out_channels or 2) != LAB_CHANNELS:
        raise ConfigError(
            f"{setting('--color-space')} lab takes L* in and gives a*b* out: "
            f"{setting('--in-channels')} 1 "
            f"{setting('--out-channels')} 2, not {m.in_channels} and {m.out_channels}; leave them "
            "unset"
        )
    if m.in_channels is not None and m.out_channels is not None and d.output_depth != "auto":
        return config
    pairs = find_pairs(resolve_root(d), d.layout)
    inp, out = detect_format(pairs, d.direction)
    if lab:
        if out.channels != 3:
            raise UserError(
                f"{resolve_root(d)}: {setting('--color-space')} lab needs colour (3-channel) "
                "targets, but "
                f"those of pair {pairs[0].name} have {out.channels}; use "
                f"{setting('--color-space')} rgb"
            )
        channels = LAB_CHANNELS
    else:
        channels = (m.in_channels or inp.channels, m.out_channels or out.channels)
    depth = out.depth if d.output_depth == "auto" else d.output_depth
    return config.replace(
        model={"in_channels": channels[0], "out_channels": channels[1]},
        data={"output_depth": depth},
    )


def split_aligned(
    both: np.ndarray, channels_a: int | None, channels_b: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """An A|B image (H, 2W, C) -> A (H, W, channels_a) and B (H, W, channels_b)."""
    half = both.shape[1] // 2
    return with_channels(both[:, :half], channels_a), with_channels(both[:, half:], channels_b)


def read_side(files: tuple[Path, ...], channels: int | None = None) -> np.ndarray:
    """One side of a pair: a file, or several stacked along channels, with `channels`."""
    if len(files) == 1:
        return read_image(files[0], channels)
    return with_channels(stack_channels([read_image(f) for f in files]), channels, files[0])


def load_pair(
    pair: PairFiles, channels_a: int | None, channels_b: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pair to (A, B) arrays (H, W, C) with the requested channels (None: as
    stored), each at its own depth."""
    if pair.b is not None:
        return read_side(pair.files_a, channels_a), read_side(pair.files_b, channels_b)
    both = None if channels_a is None or channels_b is None else max(channels_a, channels_b)
    return split_aligned(read_image(pair.a, both), channels_a, channels_b)


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 8 << 30


class PairedDataset(Dataset):
    """(input, target) pairs as (C, H, W) float tensors in [-1, 1], in `direction` order.

    Arrays keep their depth (8/16-bit, float) through augmentation, and
    `encoding.encode_pair` makes the tensors (in ``lab`` mode: L* and a*b* of the target).
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
        labels: tuple[np.ndarray | None, int] | None = None,
    ) -> None:
        """labels: the input is a label map of these classes (`labels.label_rule`):
        checked when decoded, resized by nearest neighbour."""
        self.cfg = cfg
        self.labels = labels
        self.seed = seed
        self.augment = augment
        self.root = resolve_root(cfg, split)
        self.pairs = find_pairs(self.root, cfg.layout)
        # channels of the A and B sides as read (lab: the colour target; the input unread)
        if cfg.color_space == "lab":
            in_channels, out_channels = 0, 3
        self.channels_a, self.channels_b = oriented(cfg.direction, in_channels, out_channels)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            headers = list(pool.map(_pair_header, self.pairs))
        self.sizes = [(w, h) for w, h, _, _ in headers]
        self.bytes_per_sample = max(
            _BYTES[a.depth] * self.channels_a + _BYTES[b.depth] * self.channels_b
            for _, _, a, b in headers
        )
        if augment:
            self._check_crop()
        self.cache: list[tuple[np.ndarray, np.ndarray]] | None = None
        if self._should_cache():
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                self.cache = list(pool.map(self._decode, range(len(self.pairs))))

    def _check_crop(self) -> None:
        if self.cfg.resize or not self.cfg.crops:  # a resize to --load-size keeps the crop possible
            return
        for pair, (w, h) in zip(self.pairs, self.sizes):
            if min(w, h) < self.cfg.crop_size:
                raise UserError(
                    f"{pair.a}: image {w}x{h} is smaller than {setting('--crop-size')} "
                    f"{self.cfg.crop_size}; "
                    f"use a smaller crop or {setting('--preprocess')} resize_and_crop"
                )

    def _should_cache(self) -> bool:
        if self.cfg.cache != "auto":
            return self.cfg.cache == "on"
        need = sum(w * h * self.bytes_per_sample for w, h in self.sizes)
        return need <= _physical_memory() // 4

    def _decode(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        pair = self.pairs[i]
        if self.cfg.color_space != "lab":
            a, b = load_pair(pair, self.channels_a, self.channels_b)
            if self.labels is not None:
                files, _ = oriented(self.cfg.direction, pair.files_a, pair.files_b or (pair.a,))
                check_label_map(oriented(self.cfg.direction, a, b)[0], files[0], self.labels)
            return a, b
        # lab: only the colour target is read; the one array stands for both sides
        if pair.b is None:
            _, target = oriented(self.cfg.direction, *load_pair(pair, None, None))
            target = with_channels(target, 3, pair.a)
        else:
            _, files = oriented(self.cfg.direction, pair.files_a, pair.files_b)
            target = read_side(files, 3)
        return target, target

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
        if self.cfg.color_space == "lab":  # a is b: the colour target
            photo = b if params is None else apply_params(b, params)
            x, y = encode_pair(None, photo, "lab")
            return {"input": x, "target": y, "index": index}
        if params is not None:
            x, y = oriented(self.cfg.direction, a, b)
            x = apply_params(x, params, resample_of(self.labels is not None))
            a, b = oriented(self.cfg.direction, x, apply_params(y, params))
        x, y = encode_pair(*oriented(self.cfg.direction, a, b), "rgb")
        return {"input": x, "target": y, "index": index}
