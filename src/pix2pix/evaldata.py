"""Held-out pairs as a model sees them at test time: direction applied, resized, no jitter.

The size follows the official pix2pix test protocol (load size = crop size, no random
crop, no flip): `auto` resizes like training minus the crop, so a model trained on
random 256x256 crops of 286x286 resizes is tested on 256x256 resizes. `native` keeps
each file's size; an integer N resizes to N x N.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pix2pix.config import DataConfig, RunConfig
from pix2pix.data.datasets import PairFiles, load_pair
from pix2pix.errors import UserError

SizeRule = str | int  # "auto", "native" or N


def parse_size(value: str) -> SizeRule:
    """'auto', 'native' or a positive integer (from the command line)."""
    if value in ("auto", "native"):
        return value
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise UserError(f"--size {value!r} is not valid; use auto, native or a size in pixels")
    return size


def eval_size(
    data: DataConfig, width: int, height: int, rule: SizeRule = "auto"
) -> tuple[int, int]:
    """(w, h) a `width` x `height` pair is evaluated at, for a model trained with `data`."""
    if isinstance(rule, int):
        return rule, rule
    if rule == "native" or data.preprocess in ("crop", "none"):
        return width, height
    if data.preprocess == "resize_and_crop":
        return data.crop_size, data.crop_size
    return data.crop_size, max(1, round(data.crop_size * height / width))  # scale_width*


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    image = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    return np.asarray(image.resize(size, Image.BICUBIC)).reshape(size[1], size[0], arr.shape[2])


@dataclass(frozen=True)
class EvalPair:
    """One test pair: model input and target (H, W, C) uint8 at the evaluation size, and
    the input at its file's size (label maps for FCN-scores are read from it)."""

    name: str
    input: np.ndarray
    target: np.ndarray
    raw_input: np.ndarray


def load_eval_pair(pair: PairFiles, config: RunConfig, rule: SizeRule = "auto") -> EvalPair:
    """Decode one pair in the model's direction, resized by `rule` (see `eval_size`)."""
    m, d = config.model, config.data
    c_in, c_out = int(m.in_channels or 3), int(m.out_channels or 3)
    ch_a, ch_b = (c_in, c_out) if d.direction == "AtoB" else (c_out, c_in)
    a, b = load_pair(pair, ch_a, ch_b)
    if a.shape[:2] != b.shape[:2]:
        raise UserError(f"{pair.a}: the two sides of this pair differ in size; align them")
    x, y = (a, b) if d.direction == "AtoB" else (b, a)
    size = eval_size(d, x.shape[1], x.shape[0], rule)
    return EvalPair(pair.name, _resize(x, size), _resize(y, size), x)


def load_eval_pairs(
    pairs: list[PairFiles], config: RunConfig, rule: SizeRule = "auto"
) -> list[EvalPair]:
    return [load_eval_pair(p, config, rule) for p in pairs]


def pairs_folder(path: str | Path, split: str, flag: str = "--data") -> Path:
    """`path/split` when it exists, else `path`; a missing folder is a UserError."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found; check {flag}")
    return root / split if (root / split).is_dir() else root
