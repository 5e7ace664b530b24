"""Tiles of one job, chosen and shown: the tile each batch takes (fixed, or the one its
memory budget allows) and a progress bar in tiles for an image that is cut."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from pix2pix.translate.tiling import default_overlap, needs_tiles

if TYPE_CHECKING:
    from pix2pix.translate.model import Pix2Pix

log = logging.getLogger(__name__)


def tiling_for(
    model: Pix2Pix, shape: tuple[int, int, int], name: str, tiling: dict[str, Any]
) -> dict[str, Any]:
    """The tiling arguments for a batch (B, H, W): a fixed tile, or the one its memory
    needs; None where the images are no larger than the tile."""
    tile, overlap = tiling["tile"], tiling["overlap"]
    b, h, w = shape
    if isinstance(tile, int) and not needs_tiles(h, w, tile):
        tile = None
    if tile == "auto":
        budget = tiling["budget"] // b if tiling["budget"] else None
        tile = model.tile_for(h, w, budget)
        if tile is not None:
            if overlap is None:  # blend by default
                overlap = default_overlap(tile, model.stride)
            overlap = min(overlap, tile - model.stride)
            log.info(
                "%s: %dx%d is over the memory budget; translating in %dx%d tiles (overlap %d)",
                name,
                w,
                h,
                tile,
                tile,
                overlap,
            )
    overlap = 0 if overlap is None else overlap
    return {"tile": tile, "overlap": overlap, "tile_stats": tiling["tile_stats"]}


@contextlib.contextmanager
def tile_bar(show: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar in tiles, with an ETA, for one tiled image (on a terminal)."""
    if not show:
        yield None
        return
    bar = tqdm(unit="tile", leave=False, disable=None)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()
