"""One large image end to end in bounded memory: read in bands (`data.bands`), translated
in tiles (`Pix2Pix.translate_rows`), written row by row as the tiles finish.

Memory is the model, one band of tile rows of input and one of output at their own
depths (uint8: 3 bytes a pixel for RGB), and the float64 overlaps the blending carries
(`nets.tiling.tiled_blocks`): bounded by the image's width and the tile, not its area.
The output is written under a temporary name and renamed when complete (Ctrl-C leaves
nothing under the final name).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from pix2pix.data.files.encoding import encode_input, image_channels, output_array
from pix2pix.data.files.images import with_channels
from pix2pix.translate.bands import TIFF_SUFFIXES, Bands, TiffBands, open_bands, write_bands
from pix2pix.translate.model import Pix2Pix
from pix2pix.translate.tiling import TileStats


def has_tifffile() -> bool:
    return importlib.util.find_spec("tifffile") is not None


def streamable(target: Path, channels: int, depth: str) -> bool:
    """Whether `write_bands` can write this output: PNG of 1 or 3 channels of 8 or 16
    bits, or TIFF of any channels and depth (with tifffile; without it TIFF outputs are
    written whole, one page per channel)."""
    suffix = target.suffix.lower()
    if suffix == ".png":
        return channels in (1, 3) and depth in ("uint8", "uint16")
    return suffix in TIFF_SUFFIXES and has_tifffile()


def open_input(model: Pix2Pix, path: Path) -> Bands:
    """`path` in bands (`data.bands.open_bands`), read with the model's channels."""
    return open_bands(path, model.read_channels)


def translate_streamed(
    model: Pix2Pix,
    path: Path,
    target: Path,
    *,
    tile: int,
    overlap: int = 0,
    tile_stats: TileStats = "tile",
    eval_mode: bool = False,
    seed: int = 0,
    on_tile: Callable[[int, int], None] | None = None,
) -> Path:
    """Translate the image file `path` into `target` (.png or .tif) a band at a time,
    in `tile` x `tile` tiles; a TIFF input's georeferencing tags go to a TIFF output."""
    bands = open_input(model, path)
    try:
        cfg = model.config.data
        held: dict[tuple[int, int], np.ndarray] = {}  # the last band of input rows read

        def read(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
            if (y0, y1) not in held:
                held.clear()
                held[(y0, y1)] = bands.read(y0, y1)
            arr = held[(y0, y1)][:, x0:x1]
            if model.read_channels is not None:
                arr = with_channels(arr, model.read_channels, path)
            return encode_input(arr, model.color_space)[None]

        blocks = model.translate_rows(
            read,
            (1, bands.height, bands.width),
            tile=tile,
            overlap=overlap,
            eval_mode=eval_mode,
            seed=seed,
            tile_stats=tile_stats,
            on_tile=on_tile,
            blocks=True,
        )
        channels = image_channels(model.out_channels, model.color_space)
        depth = np.dtype(cfg.written_depth)

        def outputs() -> Iterator[np.ndarray]:
            """Bands of output rows at the written depth, assembled from the blocks."""
            band = np.zeros((0, 0, 0), depth)
            for y0, y1, x0, x1, y in blocks:
                if x0 == 0:
                    band = np.empty((y1 - y0, bands.width, channels), depth)
                x = read(y0, y1, x0, x1)[0] if model.color_space == "lab" else y[0]
                band[:, x0:x1] = output_array(y[0], x, cfg)
                if x1 == bands.width:
                    yield band
                    band = np.zeros((0, 0, 0), depth)  # let go before the next is made

        size = (bands.width, bands.height)
        write_bands(target, outputs(), size, channels, depth, bands.tags)
    finally:
        bands.close()
    return target


def write_whole(arr: np.ndarray, target: Path, source: Path) -> None:
    """An output assembled in memory, written as `write_bands` writes it (so a TIFF
    input's georeferencing tags are kept)."""
    tags = []
    if source.suffix.lower() in TIFF_SUFFIXES:
        reader = TiffBands(source)
        tags = reader.tags
        reader.close()
    write_bands(target, [arr], (arr.shape[1], arr.shape[0]), arr.shape[2], arr.dtype, tags)
