"""Translating image files and folders: every input checked before the first output,
outputs written at the checkpoint's depth, never over an input."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from pix2pix.config import check_seed
from pix2pix.data.files import formats
from pix2pix.data.files.encoding import encode_input, image_channels, output_array
from pix2pix.data.files.images import (
    expand_inputs,
    image_info,
    output_suffix,
    read_image,
    save_image,
)
from pix2pix.data.files.limits import check_pixels
from pix2pix.data.pairs.datasets import oriented, read_side, side_header, split_aligned
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.data.pairs.labels import check_label_map, label_rule
from pix2pix.errors import UserError, setting
from pix2pix.fileio import check_outputs, first_missing, remove_if_empty
from pix2pix.translate.bands import TIFF_SUFFIXES, reads_in_bands
from pix2pix.translate.model import Pix2Pix
from pix2pix.translate.samples import job_codes, per_sample, sample_path
from pix2pix.translate.stream import streamable, translate_streamed, write_whole
from pix2pix.translate.tilebar import tile_bar, tiling_for
from pix2pix.translate.tiling import TileStats, check_tiling, default_overlap, needs_tiles

log = logging.getLogger(__name__)


def read_input(model: Pix2Pix, path: Path, aligned: bool) -> np.ndarray:
    """The model input from an image file; from an A|B file, the half its direction reads."""
    if not aligned:
        return read_image(path, model.read_channels)
    direction = model.config.data.direction
    ch_a, ch_b = oriented(direction, model.in_channels, model.out_channels)
    if model.read_channels is None:  # lab: the input half as stored
        halves = split_aligned(read_image(path), None, None)
    else:
        halves = split_aligned(read_image(path, max(ch_a, ch_b)), ch_a, ch_b)
    return oriented(direction, *halves)[0]


def _items(model: Pix2Pix, inputs: list[str], paired: bool) -> list[tuple[str, tuple[Path, ...]]]:
    """(output name, input files) per image; with `paired`, the input side of datasets."""
    if not paired:
        return [(p.stem, (p,)) for p in expand_inputs(inputs)]
    items = []
    for folder in inputs:
        if not Path(folder).is_dir():
            raise UserError(
                f"{folder}: not a folder; {setting('--paired')} takes folders with A/ and B/"
            )
        for pair in find_pairs(Path(folder), "paired"):
            files, _ = oriented(model.config.data.direction, pair.files_a, pair.files_b)
            items.append((pair.name, files))
    return items


def _accepts(want: int | None, channels: int) -> bool:
    """Whether an image of `channels` can be read as `want` (None: gray or colour, for lab)."""
    if want is None:
        return channels in (1, 3)
    return channels == want or {channels, want} <= {1, 3}


def _header(
    model: Pix2Pix, files: tuple[Path, ...], aligned: bool, suffix: str, tiling: dict[str, Any]
) -> tuple[int, int, int]:
    """(width, height, channels) of one input. One that will be translated a band at a time
    (tiled, read and written in bands) is held only to the guard against absurd sizes, not
    to the decompression-bomb limit meant for decoding an image whole."""
    target = Path(f"out{_suffix(files, suffix)}")
    channels = image_channels(model.out_channels, model.color_space)
    if (
        len(files) > 1
        or aligned
        or not streamable(target, channels, model.output_depth)
        or not reads_in_bands(files[0])
    ):
        width, height, side = side_header(files)
        return width, height, side.channels
    info = image_info(files[0], streamed=True)
    tile = tiling["tile"]
    if tile == "auto":
        tile = model.tile_for(info.height, info.width, tiling["budget"])
    if not needs_tiles(info.height, info.width, tile):  # decoded in one piece
        check_pixels(files[0], info.width, info.height)
    return info.width, info.height, info.channels


def _check_inputs(
    model: Pix2Pix,
    items: list[tuple[str, tuple[Path, ...]]],
    aligned: bool,
    suffix: str,
    tiling: dict[str, Any],
) -> list[tuple[int, int]]:
    """Read every header (sizes of the translated parts); name the first bad file."""
    seen: dict[str, Path] = {}
    sizes = []
    want = model.read_channels
    for name, files in items:
        path = files[0]
        if name in seen:
            raise UserError(
                f"{path} and {seen[name]} would both be written as {name}{suffix}; "
                f"translate them into different {setting('--out')} folders"
            )
        seen[name] = path
        width, height, channels = _header(model, files, aligned, suffix, tiling)
        if aligned and width % 2:
            raise UserError(
                f"{path}: width {width} is odd, so it is not an aligned A|B image; drop "
                f"{setting('--aligned')}"
            )
        if not aligned and not _accepts(want, channels):
            takes = "grayscale or colour images" if want is None else f"{want} channel(s)"
            raise UserError(
                f"{path}: has {channels} channel(s), but the model takes {takes}; "
                "give images with the channels it was trained on"
            )
        sizes.append((width // 2 if aligned else width, height))
    return sizes


def translate_files(
    model: Pix2Pix,
    inputs: list[str],
    out_dir: str | Path,
    *,
    batch_size: int = 1,
    eval_mode: bool = False,
    aligned: bool = False,
    paired: bool = False,
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
    tile: int | Literal["auto"] | None = "auto",
    overlap: int | None = None,
    tile_stats: TileStats = "tile",
    max_memory: int | None = None,
    samples: int = 1,
    z_seed: int = 0,
    style: str | Path | None = None,
) -> list[Path]:
    """Translate image files/folders/globs into `out_dir/<stem>.png` (or `.tif`, see the
    module doc); returns the outputs.

    An output never replaces an input; it replaces another existing file only with
    `overwrite`. A run that fails before its first output leaves no `out_dir` behind.

    `aligned`: inputs are A|B files; `paired`: inputs are dataset folders with A/ and B/
    (or A1/, A2/, ... stacked as channels), of which the input side is read.
    Consecutive images of the same size share a batch (up to `batch_size`). Every input's
    header is read before anything is written, so a missing or non-image file stops the
    run before its first output.

    `tile`: translate in tiles of that size (`Pix2Pix.translate_tensor`); "auto" (the
    default) tiles just the images whose forward pass would not fit `max_memory` bytes
    (default: half the memory available), at the largest tile that fits; None never.
    `overlap`: the pixels tiles share and blend (None: an eighth of the tile).

    A model with a latent code (bicyclegan) translates each input with `samples` codes
    drawn from `z_seed` (`<stem>_00.png` ... when more than one), or with the code of the
    `style` image (`translate.samples`).
    """
    if overlap is None and isinstance(tile, int):
        overlap = default_overlap(tile, model.stride)
    _check_settings(model, batch_size, aligned, paired, seed, tile, overlap or 0, max_memory)
    codes = job_codes(model, samples, z_seed, Path(style) if style is not None else None)
    tiling = {"tile": tile, "overlap": overlap, "tile_stats": tile_stats, "budget": max_memory}
    channels = image_channels(model.out_channels, model.color_space)
    if channels == 3 and model.output_depth == "uint16":
        formats.require_opencv("writing 16-bit colour outputs")
    suffix = output_suffix(channels, model.output_depth)
    items = _items(model, inputs, paired)
    sizes = _check_inputs(model, items, aligned, suffix, tiling)
    model.plan_compile(_batch_shapes(sizes, batch_size))  # compile only sizes many images share
    out_dir = Path(out_dir)
    targets = [(out_dir / f"{name}{_suffix(files, suffix)}", files) for name, files in items]
    k = 1 if codes is None else len(codes)
    check_outputs(
        out_dir, [(sample_path(t, i, k), f) for t, f in targets for i in range(k)], overwrite
    )
    made = first_missing(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _translate_items(
            model,
            items,
            sizes,
            targets,
            batch_size=batch_size,
            eval_mode=eval_mode,
            aligned=aligned,
            seed=seed,
            progress=progress,
            tiling=tiling,
            codes=codes,
        )
    finally:
        if made is not None:
            remove_if_empty(out_dir, made)  # a translation that failed before its first output


def _check_settings(
    model: Pix2Pix,
    batch_size: int,
    aligned: bool,
    paired: bool,
    seed: int,
    tile: int | str | None,
    overlap: int,
    max_memory: int | None,
) -> None:
    """translate_files' settings, checked before any file is read."""
    if batch_size < 1:
        raise UserError(f"{setting('--batch-size')} {batch_size} is out of range; use a value >= 1")
    if aligned and paired:
        raise UserError(
            f"{setting('--aligned')} and {setting('--paired')} exclude each other; pass one"
        )
    check_seed(seed)
    if isinstance(tile, int):
        try:
            check_tiling(tile, overlap, model.stride)
        except ValueError as exc:
            raise UserError(
                f"{setting('--tile')} {tile} {setting('--tile-overlap')} {overlap}: {exc}"
            ) from None
    if max_memory is not None and max_memory < 1:
        raise UserError(
            f"{setting('--max-memory')} {max_memory} is out of range; give a size such as 4G"
        )


def _batch_shapes(sizes: list[tuple[int, int]], batch_size: int) -> Counter[tuple[int, int, int]]:
    """Images per forward-pass shape (B, H, W), batched as `_translate_items` batches
    them: consecutive images of one size, up to `batch_size` at a time."""
    shapes: Counter[tuple[int, int, int]] = Counter()
    for (w, h), run in itertools.groupby(sizes):
        full, rest = divmod(len(list(run)), batch_size)
        for b, images in ((batch_size, full * batch_size), (rest, rest)):  # and what is left
            if images:
                shapes[(b, h, w)] += images
    return shapes


def _suffix(files: tuple[Path, ...], suffix: str) -> str:
    """A TIFF input gives a TIFF output (its georeferencing kept); others `suffix`."""
    return ".tif" if files[0].suffix.lower() in TIFF_SUFFIXES else suffix


def _translate_items(
    model: Pix2Pix,
    items: list[tuple[str, tuple[Path, ...]]],
    sizes: list[tuple[int, int]],
    targets: list[tuple[Path, tuple[Path, ...]]],
    *,
    batch_size: int,
    eval_mode: bool,
    aligned: bool,
    seed: int,
    progress: bool,
    tiling: dict[str, Any],
    codes: torch.Tensor | None = None,
) -> list[Path]:
    outputs: list[Path] = []
    bar = tqdm(total=len(items), unit="img", disable=not progress or None)

    labels = label_rule(model.config)

    def load(files: tuple[Path, ...]) -> torch.Tensor:
        if len(files) > 1:
            arr = read_side(files, model.read_channels)
        else:
            arr = read_input(model, files[0], aligned)
        if labels is not None:  # a label model: refuse what is not a map of its classes
            check_label_map(arr, files[0], labels)
        return encode_input(arr, model.color_space)

    channels = image_channels(model.out_channels, model.color_space)
    start = 0
    while start < len(items):
        (w, h), (target, files) = sizes[start], targets[start]
        tiles = tiling_for(model, (1, h, w), items[start][0], tiling)
        if (
            tiles["tile"] is not None
            and codes is None  # streamed bands take the image alone
            and len(files) == 1
            and not aligned
            and streamable(target, channels, model.output_depth)
        ):
            with tile_bar(progress) as on_tile:  # one band of the image in memory at a time
                translate_streamed(
                    model,
                    files[0],
                    target,
                    eval_mode=eval_mode,
                    seed=seed + start,
                    on_tile=on_tile,
                    **tiles,
                )
            outputs.append(target)
            bar.update(1)
            start += 1
            continue
        end = start + 1
        while end < len(items) and end - start < batch_size and sizes[end] == sizes[start]:
            end += 1
        x = torch.stack([load(files) for _, files in items[start:end]])
        if end - start > 1:
            tiles = tiling_for(model, (end - start, h, w), items[start][0], tiling)
        for k, extra in enumerate(per_sample(codes, end - start)):
            with tile_bar(progress and tiles["tile"] is not None) as on_tile:
                y = model.translate_tensor(
                    x, eval_mode=eval_mode, seed=seed + start, on_tile=on_tile, extra=extra, **tiles
                )
            for (target, files), out, inp in zip(targets[start:end], y, x):
                target = sample_path(target, k, 1 if codes is None else len(codes))
                arr = output_array(out, inp, model.config.data)
                if target.suffix == ".tif" and streamable(target, channels, model.output_depth):
                    write_whole(arr, target, files[0])  # as streamed: georeferencing kept
                else:
                    save_image(arr, target)
                outputs.append(target)
        bar.update(end - start)
        start = end
    bar.close()
    return outputs
