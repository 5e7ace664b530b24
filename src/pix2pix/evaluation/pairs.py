"""Held-out pairs as a model sees them at test time: direction applied, resized, no jitter.

The size follows the official pix2pix test protocol (load size = crop size, no random
crop, no flip): `auto` resizes like training minus the crop, so a model trained on
random 256x256 crops of 286x286 resizes is tested on 256x256 resizes. `native` keeps
each file's size; an integer N resizes to N x N.

Any data the training reads is evaluated the same way: 1, 3 or N channels (stacked
A1/, A2/ folders too) at 8 or 16 bits or float, resized per channel without losing
precision (`transforms.resize_array`), and turned into model tensors by
`pix2pix.data.files.encoding`. In ``lab`` mode the model input is the L* of the target photo
(as in training) and outputs are compared, as RGB images of (input L*, predicted a*b*),
with the RGB target photo.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pix2pix.config import DataConfig, RunConfig, SizeRule
from pix2pix.data.files.encoding import decode_output, encode_input, image_channels
from pix2pix.data.files.images import from_tensor, output_suffix, to_tensor, with_channels
from pix2pix.data.pairs.datasets import load_pair, oriented, side_header
from pix2pix.data.pairs.folders import PairFiles, pairs_folder
from pix2pix.data.pairs.labels import check_label_map, label_rule, resample_of
from pix2pix.data.pairs.transforms import resize_array
from pix2pix.errors import UserError, setting
from pix2pix.evaluation.metrics import quantize


def eval_size(
    data: DataConfig, width: int, height: int, rule: SizeRule = "auto"
) -> tuple[int, int]:
    """(w, h) a `width` x `height` pair is evaluated at, for a model trained with `data`."""
    if isinstance(rule, int):
        return rule, rule
    if rule == "native" or data.resize is None:  # crop, none: the images as they are
        return width, height
    if data.resize == "square":
        return data.crop_size, data.crop_size
    return data.crop_size, max(1, round(data.crop_size * height / width))  # scale_width*


def _resize(arr: np.ndarray, size: tuple[int, int], labels: bool = False) -> np.ndarray:
    """(H, W, C) of any channels and depth -> (h, w, C) bicubic (label maps: nearest),
    same depth (`size` is (w, h))."""
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    return resize_array(arr, size, resample_of(labels))


@dataclass(frozen=True)
class EvalPair:
    """One test pair at the evaluation size, as (H, W, C) arrays at their files' depth.

    input: what the model input is made from (`model_input`; lab: the colour target
    photo, whose L* the model sees). target: what outputs are compared with (lab: the
    RGB photo). raw_input: the input side at its file's size (label maps for FCN-scores
    are read from it).
    """

    name: str
    input: np.ndarray
    target: np.ndarray
    raw_input: np.ndarray


def _read_sides(pair: PairFiles, config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """(input side, target side) of a pair in the model's direction, as training reads them."""
    m, d = config.model, config.data
    if d.color_space == "lab":  # the colour target photo; channels as stored
        a, b = load_pair(pair, None, None)
        x, y = oriented(d.direction, a, b)
        return x, with_channels(y, 3, pair.a)
    c_in, c_out = int(m.in_channels or 3), int(m.out_channels or 3)
    ch_a, ch_b = oriented(d.direction, c_in, c_out)
    return oriented(d.direction, *load_pair(pair, ch_a, ch_b))


def eval_shapes(
    pairs: list[PairFiles], data: DataConfig, rule: SizeRule = "auto"
) -> Counter[tuple[int, int, int]]:
    """Pairs per forward-pass shape (1, H, W) at their evaluation size, from the file
    headers alone (for `Pix2Pix.plan_compile`: only sizes many pairs share compile)."""
    shapes: Counter[tuple[int, int, int]] = Counter()
    for pair in pairs:
        width, height, _ = side_header((pair.a,) if pair.b is None else (pair.b,))
        if pair.b is None:  # A|B side by side: each side is half the file
            width //= 2
        w, h = eval_size(data, width, height, rule)
        shapes[(1, h, w)] += 1
    return shapes


def load_eval_pair(pair: PairFiles, config: RunConfig, rule: SizeRule = "auto") -> EvalPair:
    """Decode one pair in the model's direction, resized by `rule` (see `eval_size`)."""
    x, y = _read_sides(pair, config)
    if x.shape[:2] != y.shape[:2]:
        raise UserError(f"{pair.a}: the two sides of this pair differ in size; align them")
    size = eval_size(config.data, y.shape[1], y.shape[0], rule)
    target = _resize(y, size)
    rule = label_rule(config)
    if rule is not None:
        check_label_map(x, pair.b if config.data.direction == "BtoA" and pair.b else pair.a, rule)
    model_input = target if config.data.color_space == "lab" else _resize(x, size, bool(rule))
    return EvalPair(pair.name, model_input, target, x)


def model_input(pair: EvalPair, config: RunConfig) -> torch.Tensor:
    """The model input (1, C_in, H, W) in [-1, 1] (lab: L* of the target photo)."""
    return encode_input(pair.input, config.data.color_space)[None]


def target_tensor(pair: EvalPair) -> torch.Tensor:
    """The target (1, C, H, W) in [-1, 1], normalised from its depth (lab: RGB)."""
    return to_tensor(pair.target)[None]


def output_depth(config: RunConfig) -> str:
    """The depth outputs are written at (checkpoints from before the setting: uint8)."""
    return config.data.written_depth


def output_channels(config: RunConfig) -> int:
    """Channels of an output image as written (lab: 3, RGB)."""
    return image_channels(int(config.model.out_channels or 3), config.data.color_space)


def output_file_suffix(config: RunConfig) -> str:
    """.png for 1 or 3 channels of 8 or 16 bits, else .tif (as `pix2pix translate` writes)."""
    return output_suffix(output_channels(config), output_depth(config))


def output_image(y: torch.Tensor, x: torch.Tensor, config: RunConfig) -> torch.Tensor:
    """Model outputs (B, C_out, H, W) for inputs x -> the images they stand for, (B, C, H, W)
    in [-1, 1], rounded to the levels of the output depth: what a written file holds.

    lab: RGB of (input L*, predicted a*b*). Metrics are computed on these.
    """
    return quantize(decode_output(y, x, config.data.color_space), output_depth(config))


def input_preview(pair: EvalPair, config: RunConfig) -> np.ndarray:
    """The input as a picture (H, W, C): as read, or in lab mode the L* the model sees."""
    if config.data.color_space == "lab":
        return from_tensor(model_input(pair, config)[0], "uint8")
    return pair.input


def load_eval_pairs(
    pairs: list[PairFiles], config: RunConfig, rule: SizeRule = "auto"
) -> list[EvalPair]:
    return [load_eval_pair(p, config, rule) for p in pairs]


SPLITS = ("train", "val", "test")  # the subfolders `pix2pix data split` writes


def split_folder(path: str | Path, split: str) -> tuple[Path, str | None]:
    """(folder of pairs, the split it is) for `evaluate --data path --split split`.

    `path/split` when it exists. Otherwise `path` itself holds the pairs to score and
    they are not labelled as any split (None), unless `path` holds other splits (then
    scoring it would mix them: a UserError names them).
    """
    root = pairs_folder(path, split)
    if root != Path(path).expanduser():
        return root, split
    others = [name for name in SPLITS if (root / name).is_dir()]
    if others:
        listed = ", ".join(f"{name}/" for name in others)
        raise UserError(
            f"{root}: has no {split}/ subfolder (it has {listed}); pass {setting('--split')} "
            f"{others[-1]} or point {setting('--data')} at the folder of pairs to score"
        )
    return root, None
