"""Images read and written a band of rows at a time, for images larger than memory.

Reading (`open_bands`): a TIFF (stripped or tiled, BigTIFF, any compression tifffile can
decode) is read lazily: a band decodes only the strips or tiles it touches, and only the
last band's are kept. Other files (PNG, JPEG, ...) are decoded whole, as Pillow has no
partial decode for them, and served in bands: for bounded memory, give TIFF.

Writing (`write_bands`): rows arrive top to bottom and are written as they come: PNG
row by row (our own encoder: 1 or 3 channels, 8 or 16 bits, zlib, the Up filter), TIFF
one row of 256 x 256 tiles at a time (tifffile, deflate, BigTIFF past 4 GB), with the
input's GeoTIFF georeferencing tags copied. The file is written under a temporary name
and renamed only when complete: an interrupted run leaves no half-written output.

TIFF needs the `tiff` extra (tifffile: the reference Python TIFF library, pure Python over
NumPy, BigTIFF and tiled/stripped segments, no compiled dependency for deflate).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from pix2pix.data.formats import require_module
from pix2pix.fileio import staged_file

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
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

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

    def _segment_row(self, r: int) -> np.ndarray:
        if r not in self._cache:
            top = r * self.seg_h
            rows = min(self.seg_h, self.height - top)
            out = np.zeros((rows, self.width, self.channels), self.dtype)
            fh, page = self._file.filehandle, self.page
            for j in range(self.across):
                i = r * self.across + j
                if not page.databytecounts[i]:
                    continue  # a sparse segment: zeros
                fh.seek(page.dataoffsets[i])
                data = fh.read(page.databytecounts[i])
                seg, _, _ = page.decode(data, i, jpegtables=page.jpegtables)
                seg = np.asarray(seg).reshape(-1, seg.shape[-3], seg.shape[-2], seg.shape[-1])[0]
                x0 = j * self.seg_w
                cols = min(self.seg_w, self.width - x0)
                out[:, x0 : x0 + cols] = seg[:rows, :cols]
            self._cache[r] = out
        return self._cache[r]

    def read(self, y0: int, y1: int) -> np.ndarray:
        first, last = y0 // self.seg_h, (y1 - 1) // self.seg_h
        for r in [r for r in self._cache if not first <= r <= last]:
            del self._cache[r]
        rows = np.concatenate([self._segment_row(r) for r in range(first, last + 1)])
        top = first * self.seg_h
        return rows[y0 - top : y1 - top]

    def close(self) -> None:
        self._file.close()


def tiff_is_lazy(path: Path) -> bool:
    """Whether `path` is a TIFF whose first page `TiffBands` reads segment by segment: one
    plane of interleaved gray or RGB samples of 8 or 16 bits or float32 (palette, CMYK,
    alpha, bilevel or planar TIFFs are read whole, with Pillow's conversions)."""
    with tifffile().TiffFile(path) as tf:
        page = tf.pages[0]
        return (
            int(page.planarconfig) == 1
            and int(page.imagedepth) == 1
            and (int(page.photometric), int(page.samplesperpixel)) in ((1, 1), (2, 3))
            and np.dtype(page.dtype) in (np.uint8, np.uint16, np.float32)
        )


def geo_tags(page: Any) -> list[Tag]:
    """The georeferencing tags of a tifffile page, as `extratags` for the writer."""
    found = []
    for tag in page.tags.values():
        if tag.code in GEO_TAGS:
            found.append((int(tag.code), int(tag.dtype), int(tag.count), tag.value, True))
    return found


def open_bands(path: Path, read_whole: Any) -> Bands:
    """The image at `path` in bands: a TIFF lazily (with its georeferencing tags), any
    other file as `read_whole(path)` gives it."""
    if Path(path).suffix.lower() in TIFF_SUFFIXES and tiff_is_lazy(path):
        return TiffBands(Path(path))
    return ArrayBands(read_whole(path))


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
            _write_png(tmp, rows, size, channels, np.dtype(dtype))
        elif suffix in TIFF_SUFFIXES:
            _write_tiff(tmp, rows, size, channels, np.dtype(dtype), tags or [])
        else:
            raise ValueError(f"{path}: bands are written as .png or .tif, not {suffix}")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png(
    path: Path, rows: Iterable[np.ndarray], size: tuple[int, int], channels: int, dtype: np.dtype
) -> None:
    if channels not in (1, 3) or dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG holds 1 or 3 channels of 8 or 16 bits, not {channels} x {dtype}")
    width, height = size
    bits = 8 * dtype.itemsize
    header = struct.pack(">IIBBBBB", width, height, bits, 0 if channels == 1 else 2, 0, 0, 0)
    squeeze = zlib.compressobj(6)
    previous = np.zeros(width * channels * dtype.itemsize, np.uint8)
    written = 0
    with open(path, "wb") as f:
        f.write(PNG_SIGNATURE + _chunk(b"IHDR", header))
        for band in rows:
            raw = np.ascontiguousarray(band, dtype.newbyteorder(">")).reshape(len(band), -1)
            raw = raw.view(np.uint8)
            above = np.concatenate([previous[None], raw[:-1]])
            filtered = np.empty((len(raw), raw.shape[1] + 1), np.uint8)
            filtered[:, 0] = 2  # Up: each byte minus the byte above it, mod 256
            np.subtract(raw, above, out=filtered[:, 1:])
            previous = raw[-1].copy()
            written += len(raw)
            data = squeeze.compress(filtered.tobytes())
            if data:
                f.write(_chunk(b"IDAT", data))
        if written != height:
            raise ValueError(f"{path}: got {written} rows for an image {height} high")
        f.write(_chunk(b"IDAT", squeeze.flush()) + _chunk(b"IEND", b""))


def _tiles(
    rows: Iterable[np.ndarray], size: tuple[int, int], channels: int
) -> Iterator[np.ndarray]:
    """TIFF tiles in file order (tile rows top to bottom, each left to right), padded."""
    width, height = size
    pending: list[np.ndarray] = []
    held = total = 0

    def cut(block: np.ndarray) -> Iterator[np.ndarray]:
        for x0 in range(0, width, TIFF_TILE):
            tile = np.zeros((TIFF_TILE, TIFF_TILE, channels), block.dtype)
            part = block[:, x0 : x0 + TIFF_TILE]
            tile[: part.shape[0], : part.shape[1]] = part
            yield tile

    for band in rows:
        pending.append(band)
        held += len(band)
        total += len(band)
        while held >= TIFF_TILE:
            block = np.concatenate(pending)
            yield from cut(block[:TIFF_TILE])
            pending, held = [block[TIFF_TILE:]], held - TIFF_TILE
    if total != height:
        raise ValueError(f"got {total} rows for an image {height} high")
    if held:
        yield from cut(np.concatenate(pending))


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
