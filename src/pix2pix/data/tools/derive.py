"""Pairs made from plain photos: the target is the photo, the input is made from it.

`derive_pairs` runs a per-photo function on all cores and writes either the paired
layout (`out/A/<name>` made input, `out/B/<name>` a byte-for-byte copy of the photo) or
A|B files (`out/<name>`). The tools built on it: `colorize` (grayscale input, also the
dataset of the Lab mode), `downscale` (super-resolution), `inpaint` (holes), and
`edges.canny`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from pix2pix.data.files.colour import luminance_gray
from pix2pix.data.files.images import (
    PEAK,
    depth_of,
    expand_inputs,
    image_info,
    output_suffix,
    read_image,
    save_image,
    to_depth,
)
from pix2pix.data.pairs.transforms import resize_array
from pix2pix.data.tools.masks import hole_mask
from pix2pix.data.tools.prepare import fresh_output, join_halves, parallel_map
from pix2pix.errors import UserError, setting
from pix2pix.fileio import atomic_write_bytes

OutLayout = Literal["paired", "aligned"]
MakeInput = Callable[[np.ndarray, str], np.ndarray | tuple[np.ndarray, ...]]


def find_photos(src: str | Path, colour: bool = False) -> list[Path]:
    """The photos in a folder (or a file, or a glob), checked: unique names, readable
    headers and, with `colour`, 3 channels."""
    photos = expand_inputs([str(src)])
    seen: dict[str, Path] = {}
    for path in photos:
        if path.stem in seen:
            raise UserError(f"{path}: same name as {seen[path.stem]}; keep one file per name")
        seen[path.stem] = path
        if colour and image_info(path).channels != 3:
            raise UserError(f"{path}: not a colour image; colorize needs colour photos")
    return photos


def derive_pairs(
    src: str | Path,
    out: str | Path,
    make_input: MakeInput,
    *,
    layout: OutLayout = "paired",
    colour: bool = False,
    workers: int | None = None,
) -> list[Path]:
    """Write (make_input(photo, name), photo) pairs for every photo in `src`.

    `make_input` returns the input (H, W, C), or a tuple of inputs written to A1/, A2/,
    ... (stacked as channels when training; paired layout only). Returns the A files.
    """
    if layout not in get_args(OutLayout):
        raise UserError(
            f"{setting('--layout')} {layout!r} is not valid; choose one of: "
            f"{', '.join(get_args(OutLayout))}"
        )
    photos = find_photos(src, colour)
    out = fresh_output(Path(out))

    def one(path: Path) -> Path:
        photo = read_image(path)
        made = make_input(photo, path.stem)
        inputs = made if isinstance(made, tuple) else (made,)
        if layout == "aligned":
            if len(inputs) > 1:
                raise UserError(f"several inputs per photo need {setting('--layout')} paired")
            both = join_halves(inputs[0], photo, path)
            target = out / f"{path.stem}{output_suffix(both.shape[2], depth_of(both))}"
            save_image(both, target)
            return target
        folders = ["A"] if len(inputs) == 1 else [f"A{i + 1}" for i in range(len(inputs))]
        written = []
        for folder, arr in zip(folders, inputs):
            target = out / folder / f"{path.stem}{output_suffix(arr.shape[2], depth_of(arr))}"
            save_image(arr, target)
            written.append(target)
        atomic_write_bytes(out / "B" / path.name, path.read_bytes())
        return written[0]

    return parallel_map(one, photos, workers)


# ---------------------------------------------------------------- the tools


def gray_of(photo: np.ndarray) -> np.ndarray:
    """(H, W, 3) colour -> (H, W, 1) gray of equal luminance (equal L*), same depth."""
    unit = torch.from_numpy(to_depth(photo, "float32")).permute(2, 0, 1).double()
    gray = luminance_gray(unit).permute(1, 2, 0).float().numpy()
    return to_depth(gray, depth_of(photo))


def colorize(
    src: str | Path, out: str | Path, *, layout: OutLayout = "paired", workers: int | None = None
) -> list[Path]:
    """Colour photos -> (grayscale, photo) pairs. The gray has the photo's luminance, so
    its L* equals the photo's: the same dataset trains `--color-space rgb` (gray -> RGB)
    and `--color-space lab` (L* -> a*b*)."""
    return derive_pairs(
        src, out, lambda photo, _: gray_of(photo), layout=layout, colour=True, workers=workers
    )


def downscaled(photo: np.ndarray, factor: float) -> np.ndarray:
    """The photo shrunk by `factor` (bicubic, antialiased) and enlarged back to its size."""
    if factor <= 1:
        raise UserError(f"{setting('--factor')} {factor} is out of range; use a value > 1")
    h, w = photo.shape[:2]
    small = resize_array(photo, (max(1, round(w / factor)), max(1, round(h / factor))))
    return resize_array(small, (w, h))


def downscale(
    src: str | Path,
    out: str | Path,
    *,
    factor: float = 4.0,
    layout: OutLayout = "paired",
    workers: int | None = None,
) -> list[Path]:
    """Photos -> (low-resolution, photo) pairs for super-resolution. The input is
    enlarged back to the photo's size, so each pair stays aligned pixel for pixel."""
    downscaled(np.zeros((2, 2, 1), np.uint8), factor)  # check the factor before writing
    return derive_pairs(
        src, out, lambda photo, _: downscaled(photo, factor), layout=layout, workers=workers
    )


def with_holes(photo: np.ndarray, mask: np.ndarray, fill: float = 1.0) -> np.ndarray:
    """The photo with `fill` (a fraction of full scale: 1.0 white) inside the mask."""
    holed = photo.copy()
    holed[mask] = np.asarray(fill * PEAK[depth_of(photo)]).astype(photo.dtype)
    return holed


def inpaint(
    src: str | Path,
    out: str | Path,
    *,
    boxes: int = 1,
    strokes: int = 0,
    seed: int = 0,
    fill: float = 1.0,
    mask_channel: bool = False,
    layout: OutLayout = "paired",
    workers: int | None = None,
) -> list[Path]:
    """Photos -> (photo with holes, photo) pairs. Holes are `boxes` rectangles and
    `strokes` free-form strokes, seeded per image name (`masks.hole_mask`).

    `mask_channel`: also write the mask (255 in the holes) to A2/ beside the holed photo
    in A1/, so that the model is told where the holes are (stacked as one more channel).
    """
    if boxes < 0 or strokes < 0 or boxes + strokes == 0:
        raise UserError(
            f"give at least one hole: {setting('--boxes')} N and/or {setting('--strokes')} N (N >= "
            "0)"
        )
    if not 0.0 <= fill <= 1.0:
        raise UserError(f"{setting('--fill')} {fill} is out of range; use 0 (black) to 1 (white)")
    if mask_channel and layout != "paired":
        raise UserError(
            f"{setting('--mask-channel')} writes A1/ and A2/ folders; use {setting('--layout')} "
            "paired"
        )

    def make(photo: np.ndarray, name: str) -> np.ndarray | tuple[np.ndarray, ...]:
        mask = hole_mask(photo.shape[0], photo.shape[1], seed, name, boxes, strokes)
        holed = with_holes(photo, mask, fill)
        if mask_channel:
            return holed, (mask * np.uint8(255))[:, :, None]
        return holed

    return derive_pairs(src, out, make, layout=layout, workers=workers)
