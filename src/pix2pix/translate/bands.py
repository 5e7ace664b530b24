"""Images read and written a band of rows at a time, for images larger than memory.

Reading (`open_bands`): a plain TIFF (one page of gray, N-band or RGB samples; stripped
or tiled, BigTIFF, any compression tifffile can decode) is read lazily: a band decodes
only the strips or tiles it touches, and only the last band's are kept. A non-interlaced
PNG is inflated row by row (`png.PngRows`). JPEG, WebP and interlaced PNG go through
pyvips (the `vips` extra: libvips, made for images larger than memory) where it is
installed. Anything else is decoded whole by `read_image` and served in bands.

Writing (`write_bands`): rows arrive top to bottom and are written as they come: PNG
row by row (`png.write_png`: 1 or 3 channels, 8 or 16 bits), TIFF one row of 256 x 256
tiles at a time (tifffile, deflate, BigTIFF past 4 GB; any number of channels in one
page, min-is-black beyond RGB), with the input's GeoTIFF georeferencing tags copied.
The file is written under a temporary name and renamed only when complete: an
interrupted run leaves no half-written output.

TIFF needs the `tiff` extra (tifffile: the reference Python TIFF library, pure Python over
NumPy, BigTIFF and tiled/stripped segments, no compiled dependency for deflate).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from pix2pix.data.files.formats import plain_tiff, require_module
from pix2pix.data.files.images import read_image, with_channels
from pix2pix.fileio import staged_file
from pix2pix.translate.png import PngRows, png_streamable, write_png

TIFF_SUFFIXES = (".tif", ".tiff")
# GeoTIFF (OGC 19-008) and GDAL's georeferencing tags: copied from input to output.
GEO_TAGS = {
    33550: "ModelPixelScale",
    33922: "ModelTiepoint",
    34264: "ModelTransformation",
    34735: "GeoKeyDirectory",
    34736: "GeoDoubleParams",
    34737: "GeoAsciiParams",
    42112: "GDAL_METADATA",
    42113: "GDAL_NODATA",
}
TIFF_TILE = 256
VIPS_SUFFIXES = (".jpg", ".jpeg", ".webp", ".png")  # read by pyvips where installed

Tag = tuple[int, int, int, Any, bool]  # tifffile's extratags: (code, type, count, value, once)


def tifffile() -> ModuleType:
    return require_module("tifffile", "reading and writing TIFF images in bands", "tiff")


class Bands(Protocol):
    height: int
    width: int
    channels: int
    dtype: np.dtype
    tags: list[Tag]

    def read(self, y0: int, y1: int) -> np.ndarray:
        """Rows [y0, y1) as (rows, W, C)."""
        ...

    def close(self) -> None: ...


class ArrayBands:
    """An image already in memory, served in bands."""

    def __init__(self, arr: np.ndarray, tags: list[Tag] | None = None) -> None:
        self.arr = arr[:, :, None] if arr.ndim == 2 else arr
        self.height, self.width, self.channels = self.arr.shape
        self.dtype = self.arr.dtype
        self.tags = tags or []

    def read(self, y0: int, y1: int) -> np.ndarray:
        return self.arr[y0:y1]

    def close(self) -> None:
        pass


class TiffBands:
    """The first page of a TIFF, decoded segment row by segment row on demand."""

    def __init__(self, path: Path) -> None:
        self._file = tifffile().TiffFile(path)
        page = self._file.pages[0]
        self.page = page
        self.height, self.width = int(page.imagelength), int(page.imagewidth)
        self.channels = int(page.samplesperpixel)
        self.dtype = np.dtype(page.dtype)
        self.tags = geo_tags(page)
        tiled = bool(page.is_tiled)
        self.seg_h = int(page.tilelength if tiled else (page.rowsperstrip or self.height))
        self.seg_h = min(self.seg_h, self.height)
        self.seg_w = int(page.tilewidth) if tiled else self.width
        self.across = -(-self.width // self.seg_w)
        self._cache: dict[int, np.ndarray] = {}

    def _segment_row(self, r: int, out: np.ndarray, skip: int = 0) -> None:
        """Segment row r decoded into `out`: its rows from `skip` on, as many as fit."""
        top = r * self.seg_h
        take = min(min(self.seg_h, self.height - top) - skip, len(out))
        fh, page = self._file.filehandle, self.page
        for j in range(self.across):
            i = r * self.across + j
            x0 = j * self.seg_w
            cols = min(self.seg_w, self.width - x0)
            if not page.databytecounts[i]:
                out[:take, x0 : x0 + cols] = 0  # a sparse segment: zeros
                continue
            fh.seek(page.dataoffsets[i])
            data = fh.read(page.databytecounts[i])
            seg, _, _ = page.decode(data, i, jpegtables=page.jpegtables)
            seg = np.asarray(seg).reshape(-1, seg.shape[-3], seg.shape[-2], seg.shape[-1])[0]
            out[:take, x0 : x0 + cols] = seg[skip : skip + take, :cols]

    def read(self, y0: int, y1: int) -> np.ndarray:
        """Rows [y0, y1) decoded into one new band. Only a segment row the band ends
        inside is kept (the next band starts in it); no copy of the band is."""
        out = np.empty((y1 - y0, self.width, self.channels), self.dtype)
        first, last = y0 // self.seg_h, (y1 - 1) // self.seg_h
        cache, self._cache = self._cache, {}
        for r in range(first, last + 1):
            top = r * self.seg_h
            n = min(self.seg_h, self.height - top)
            lo, end = max(y0, top), min(y1, top + n)
            keep = r == last and y1 < top + n
            if r in cache or keep:
                whole = cache.get(r)
                if whole is None:
                    whole = np.empty((n, self.width, self.channels), self.dtype)
                    self._segment_row(r, whole)
                out[lo - y0 : end - y0] = whole[lo - top : end - top]
                if keep:
                    self._cache[r] = whole
            else:
                self._segment_row(r, out[lo - y0 : end - y0], lo - top)
        return out

    def close(self) -> None:
        self._file.close()


def tiff_is_lazy(path: Path) -> bool:
    """Whether `path` is a TIFF whose image `TiffBands` reads segment by segment: one page
    of interleaved gray, N-band or RGB samples of 8 or 16 bits or float32 (`formats.
    plain_tiff`; palette, CMYK, alpha, bilevel, planar or multi-page TIFFs are read whole,
    with Pillow's conversions)."""
    return plain_tiff(path) is not None


def geo_tags(page: Any) -> list[Tag]:
    """The georeferencing tags of a tifffile page, as `extratags` for the writer."""
    found = []
    for tag in page.tags.values():
        if tag.code in GEO_TAGS:
            found.append((int(tag.code), int(tag.dtype), int(tag.count), tag.value, True))
    return found


def reads_in_bands(path: Path) -> bool:
    """Whether `open_bands` reads `path` a band at a time (else it decodes it whole)."""
    suffix = Path(path).suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return tiff_is_lazy(path)
    if suffix == ".png" and png_streamable(path):
        return True
    return suffix in VIPS_SUFFIXES and vips_reads(path)


def open_bands(path: Path, channels: int | None = None) -> Bands:
    """The image at `path` in bands, as `read_image(path, channels)` would give it (TIFF:
    samples as stored; the caller converts channels): a plain TIFF lazily (with its
    georeferencing tags), a non-interlaced PNG row by row, JPEG/WebP/interlaced PNG
    through pyvips where installed; anything else decoded whole."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES and tiff_is_lazy(path):
        return TiffBands(path)
    if suffix == ".png" and png_streamable(path):
        return PngRows(path, channels)
    if suffix in VIPS_SUFFIXES and vips_reads(path):
        return VipsBands(path, channels)
    return ArrayBands(read_image(path, channels))


def vips_reads(path: Path) -> bool:
    """Whether pyvips (the `vips` extra) is installed and reads `path` as 1-4 bands of 8
    or 16 bits, gray or sRGB (not CMYK): as Pillow would, alpha aside."""
    if importlib.util.find_spec("pyvips") is None:
        return False
    import pyvips

    try:
        image = pyvips.Image.new_from_file(str(path), access="sequential")
    except pyvips.Error:
        return False
    kinds = {1: "b-w", 2: "b-w", 3: "srgb", 4: "srgb"}
    return image.format in ("uchar", "ushort") and kinds.get(image.bands) in (
        image.interpretation,
        "b-w" if image.interpretation == "grey16" else None,
        "srgb" if image.interpretation == "rgb16" else None,
    )


class VipsBands:
    """An image pyvips decodes top to bottom (sequential access: libvips holds a few
    lines, not the image), kept as the last band read; alpha dropped, as Pillow's RGB
    and L conversions do."""

    def __init__(self, path: Path, channels: int | None = None) -> None:
        self.path, self.want = Path(path), channels
        self._restart()
        self.height, self.width = self._image.height, self._image.width
        self.channels = self._convert(np.zeros((1, 1, self._image.bands), self.dtype)).shape[2]
        self.tags: list[Tag] = []

    def _restart(self) -> None:
        import pyvips

        self._image = pyvips.Image.new_from_file(str(self.path), access="sequential")
        self._region = pyvips.Region.new(self._image)
        self.dtype = np.dtype(np.uint8 if self._image.format == "uchar" else np.uint16)
        self._lo, self._rows = 0, np.zeros((0, self._image.width, 0), self.dtype)

    def _convert(self, arr: np.ndarray) -> np.ndarray:
        arr = arr[:, :, :1] if arr.shape[2] <= 2 else arr[:, :, :3]  # alpha dropped
        return with_channels(arr, self.want, self.path)

    def read(self, y0: int, y1: int) -> np.ndarray:
        if y0 < self._lo:
            self._restart()
        have = self._lo + len(self._rows)
        pieces = [self._rows[max(0, y0 - self._lo) :]] if len(self._rows) else []
        while have < y1:
            n = min(64, self.height - have)
            data = self._region.fetch(0, have, self.width, n)
            part = np.frombuffer(data, self.dtype).reshape(n, self.width, -1)
            pieces.append(self._convert(part)[max(0, y0 - have) :])
            have += n
        self._rows = np.concatenate(pieces)
        self._lo = have - len(self._rows)
        return self._rows[y0 - self._lo : y1 - self._lo]

    def close(self) -> None:
        self._image = self._region = None


# --- writing --------------------------------------------------------------------------


def write_bands(
    path: Path,
    rows: Iterable[np.ndarray],
    size: tuple[int, int],
    channels: int,
    dtype: np.dtype,
    tags: list[Tag] | None = None,
) -> None:
    """Write (rows, W, C) bands arriving top to bottom to `path` (.png or .tif), whole
    size (W, H); renamed into place only when complete."""
    suffix = Path(path).suffix.lower()
    with staged_file(Path(path)) as tmp:
        if suffix == ".png":
            write_png(tmp, rows, size, channels, np.dtype(dtype))
        elif suffix in TIFF_SUFFIXES:
            _write_tiff(tmp, rows, size, channels, np.dtype(dtype), tags or [])
        else:
            raise ValueError(f"{path}: bands are written as .png or .tif, not {suffix}")


def _tiles(
    rows: Iterable[np.ndarray], size: tuple[int, int], channels: int
) -> Iterator[np.ndarray]:
    """TIFF tiles in file order (tile rows top to bottom, each left to right), padded.
    Cut from each band where it holds whole tile rows; only the rows left over at its
    end are copied (to join the next band's), and no band is held past its tiles."""
    width, height = size
    pending: np.ndarray | None = None  # rows short of a tile row, copied from the last band
    total = 0

    def cut(block: np.ndarray) -> Iterator[np.ndarray]:
        for x0 in range(0, width, TIFF_TILE):
            tile = np.zeros((TIFF_TILE, TIFF_TILE, channels), block.dtype)
            part = block[:, x0 : x0 + TIFF_TILE]
            tile[: part.shape[0], : part.shape[1]] = part
            yield tile

    for band in rows:
        total += len(band)
        at = 0
        if pending is not None:  # fill the pending tile row from the top of this band
            at = min(TIFF_TILE - len(pending), len(band))
            pending = np.concatenate([pending, band[:at]])
            if len(pending) == TIFF_TILE:
                yield from cut(pending)
                pending = None
        for top in range(at, len(band) - TIFF_TILE + 1, TIFF_TILE):
            yield from cut(band[top : top + TIFF_TILE])
            at = top + TIFF_TILE
        if at < len(band) and pending is None:
            pending = band[at:].copy()
        del band
    if total != height:
        raise ValueError(f"got {total} rows for an image {height} high")
    if pending is not None:
        yield from cut(pending)


def _write_tiff(
    path: Path,
    rows: Iterable[np.ndarray],
    size: tuple[int, int],
    channels: int,
    dtype: np.dtype,
    tags: list[Tag],
) -> None:
    width, height = size
    shape = (height, width, channels) if channels > 1 else (height, width)
    tiles: Iterable[np.ndarray] = _tiles(rows, size, channels)
    if channels == 1:
        tiles = (t[:, :, 0] for t in tiles)
    big = height * width * channels * dtype.itemsize > 2**32 - 2**25
    tifffile().imwrite(
        path,
        tiles,
        shape=shape,
        dtype=dtype,
        tile=(TIFF_TILE, TIFF_TILE),
        photometric="rgb" if channels == 3 else "minisblack",
        planarconfig="contig",
        compression="zlib",
        bigtiff=big,
        extratags=tags,
    )
