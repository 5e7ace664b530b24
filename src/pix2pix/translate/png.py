"""PNG a band of rows at a time, both ways, for images larger than memory.

Reading (`PngRows`): a non-interlaced PNG's IDAT stream is inflated only as far as the
rows asked for, and only the last band read is kept. Each piece of scanlines is
unfiltered by a decoder (Pillow, or OpenCV for 16-bit colour) given a small PNG of just
those rows, led by the previous row unfiltered, in a layout with the same bytes per pixel
(so the bytes come back as stored); the rows are then decoded with the file's own header,
palette and transparency through the same conversions as a whole-image read
(`images.pil_to_array`): the rows equal those of `read_image`. An interlaced (Adam7) PNG
cannot be read in rows: `png_streamable` says so and the caller decodes it whole.

Writing (`write_png`): 1 or 3 channels of 8 or 16 bits, zlib, the Up filter, as rows
arrive.
"""

from __future__ import annotations

import importlib.util
import io
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from pix2pix.data.files.images import pil_to_array, with_channels

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# bytes per pixel -> a layout (bit depth, colour type) a decoder returns byte for byte
SAME_BYTES = {1: (8, 0), 2: (8, 4), 3: (8, 2), 4: (8, 6), 6: (16, 2), 8: (16, 6)}
PIECE_BYTES = 4 << 20  # scanlines unfiltered per decoder call


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _ihdr(width: int, height: int, bits: int, colour: int, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, interlace))


def _header(path: Path) -> tuple[tuple[int, ...], bytes, int]:
    """((width, height, bits, colour, interlace), PLTE + tRNS chunks, offset of IDAT)."""
    with open(path, "rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            raise ValueError("not a PNG file")
        ihdr, extra = None, b""
        while True:
            offset = f.tell()
            length, kind = struct.unpack(">I4s", f.read(8))
            data = f.read(length)
            f.read(4)
            if kind == b"IHDR":
                w, h, bits, colour, _, _, interlace = struct.unpack(">IIBBBBB", data)
                ihdr = (w, h, bits, colour, interlace)
            elif kind in (b"PLTE", b"tRNS"):
                extra += chunk(kind, data)
            elif kind == b"IDAT" and ihdr is not None:
                return ihdr, extra, offset
            elif kind == b"IEND" or len(data) < length:
                raise ValueError("no image data")


def png_streamable(path: Path) -> bool:
    """Whether `PngRows` reads this file: a non-interlaced PNG (16-bit colour: with
    OpenCV, which the whole-image read needs too)."""
    try:
        (_, _, bits, colour, interlace), _, _ = _header(path)
    except (OSError, ValueError, struct.error):
        return False  # not a PNG we read in rows: the whole-image reader says why
    deep = bits == 16 and colour in (2, 6)
    return (
        interlace == 0
        and colour in SAMPLES
        and (not deep or importlib.util.find_spec("cv2") is not None)
    )


class PngRows:
    """The rows of a non-interlaced PNG, inflated and decoded on demand (module doc):
    `read(y0, y1)` gives (rows, W, C) as `read_image(path, channels)` has them; reads go
    top to bottom (a read above the kept band starts again from the top)."""

    def __init__(self, path: Path, channels: int | None = None) -> None:
        self.path, self.want = Path(path), channels
        (self.width, self.height, bits, colour, _), self._extra, self._idat = _header(path)
        self._bits, self._colour = bits, colour
        samples = SAMPLES[colour]
        self.bpp = max(1, bits * samples // 8)
        self.rowbytes = (self.width * samples * bits + 7) // 8
        self.deep = bits == 16 and colour in (2, 6)
        probe = self._convert(np.zeros((1, self.rowbytes), np.uint8))
        self.channels, self.dtype = probe.shape[2], probe.dtype
        self.tags: list = []
        self._file = open(path, "rb")  # noqa: SIM115 (held until close())
        self._restart()

    def _restart(self) -> None:
        self._file.seek(self._idat)
        self._z, self._tail = zlib.decompressobj(), b""
        self._previous = np.zeros(self.rowbytes, np.uint8)  # the row above the first
        self._lo = 0
        self._rows = np.zeros((0, self.width, self.channels), self.dtype)

    def _inflate(self, n: int) -> bytes:
        """The next `n` bytes of the image data stream (filter bytes and scanlines)."""
        out = bytearray()
        while len(out) < n:
            if not self._tail:
                length, kind = struct.unpack(">I4s", self._file.read(8))
                if kind != b"IDAT":
                    raise ValueError(f"{self.path}: image data ends early (truncated file)")
                self._tail = self._file.read(length)
                self._file.read(4)
            out += self._z.decompress(self._tail, n - len(out))
            self._tail = self._z.unconsumed_tail
        return bytes(out)

    def _unfilter(self, rows: int) -> np.ndarray:
        """The next `rows` scanlines unfiltered: (rows, rowbytes) uint8, bytes as stored."""
        data = self._inflate(rows * (self.rowbytes + 1))
        lead = b"\x00" + self._previous.tobytes()  # filter None: the decoder's row above
        bits, colour = SAME_BYTES[self.bpp]
        width = self.rowbytes // self.bpp
        png = (
            PNG_SIGNATURE
            + _ihdr(width, rows + 1, bits, colour)
            + chunk(b"IDAT", zlib.compress(lead + data, 0))
            + chunk(b"IEND", b"")
        )
        if bits == 16:
            import cv2

            arr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
            order = [2, 1, 0] if colour == 2 else [2, 1, 0, 3]  # BGR(A) -> RGB(A)
            raw = np.ascontiguousarray(arr[1:, :, order]).astype(">u2").view(np.uint8)
        else:
            with Image.open(io.BytesIO(png)) as im:
                raw = np.asarray(im)[1:]
        raw = raw.reshape(rows, self.rowbytes)
        self._previous = raw[-1].copy()
        return raw

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        """Unfiltered scanlines -> (rows, W, C) as a whole-image read converts them."""
        rows = len(raw)
        if self.deep:  # as formats.read_deep_colour: RGB of the 16-bit samples, alpha dropped
            arr = raw.view(">u2").reshape(rows, self.width, -1)[:, :, :3].astype(np.uint16)
            return with_channels(arr, self.want, self.path)
        filtered = np.concatenate([np.zeros((rows, 1), np.uint8), raw], axis=1)
        idat = chunk(b"IDAT", zlib.compress(filtered.tobytes(), 0))
        header = _ihdr(self.width, rows, self._bits, self._colour) + self._extra
        png = PNG_SIGNATURE + header + idat + chunk(b"IEND", b"")
        with Image.open(io.BytesIO(png)) as im:
            im.load()
            return pil_to_array(im, self.want)

    def read(self, y0: int, y1: int) -> np.ndarray:
        """Rows [y0, y1) as (rows, W, C)."""
        if y0 < self._lo:
            self._restart()
        have = self._lo + len(self._rows)
        per_piece = max(1, PIECE_BYTES // (self.rowbytes + 1))
        end = have
        while end < y1:
            end = min(end + per_piece, self.height)
        # one band filled in place: no concatenation, nor the band before it kept alongside
        kept = self._rows[y0 - self._lo :]
        if end > have:
            kept = kept.copy()  # the rows shared with the band before, let go (a view keeps it)
            self._rows = np.zeros((0, self.width, self.channels), self.dtype)
            rows = np.empty((end - y0, self.width, self.channels), self.dtype)
            rows[: len(kept)] = kept
            del kept
            while have < end:
                n = min(per_piece, self.height - have)
                part = self._convert(self._unfilter(n))[max(0, y0 - have) :]
                rows[max(0, have - y0) : max(0, have + n - y0)] = part
                have += n
            self._rows = rows
        else:
            self._rows = kept
        self._lo = have - len(self._rows)
        return self._rows[y0 - self._lo : y1 - self._lo]

    def close(self) -> None:
        self._file.close()


def write_png(
    path: Path, rows: Iterable[np.ndarray], size: tuple[int, int], channels: int, dtype: np.dtype
) -> None:
    """(rows, W, C) bands arriving top to bottom, written to a PNG of `size` (W, H)."""
    if channels not in (1, 3) or dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG holds 1 or 3 channels of 8 or 16 bits, not {channels} x {dtype}")
    width, height = size
    squeeze = zlib.compressobj(6)
    previous = np.zeros(width * channels * dtype.itemsize, np.uint8)
    written = 0
    with open(path, "wb") as f:
        f.write(PNG_SIGNATURE + _ihdr(width, height, 8 * dtype.itemsize, 0 if channels == 1 else 2))
        for band in rows:
            previous = _write_band(f, squeeze, band, previous, dtype)
            written += len(band)
            del band  # not held while the next band is made
        if written != height:
            raise ValueError(f"{path}: got {written} rows for an image {height} high")
        f.write(chunk(b"IDAT", squeeze.flush()) + chunk(b"IEND", b""))


def _write_band(
    f: BinaryIO, squeeze: Any, band: np.ndarray, previous: np.ndarray, dtype: np.dtype
) -> np.ndarray:
    """One band's rows filtered (Up) and compressed into IDAT chunks, 64 rows at a time
    (small temporaries, none of them kept: a row's bytes may be a view of the band);
    returns the last row's bytes, the row above the next band's first."""
    for top in range(0, len(band), 64):
        raw = np.ascontiguousarray(band[top : top + 64], dtype.newbyteorder(">"))
        raw = raw.reshape(len(raw), -1).view(np.uint8)
        above = np.concatenate([previous[None], raw[:-1]])
        filtered = np.empty((len(raw), raw.shape[1] + 1), np.uint8)
        filtered[:, 0] = 2  # Up: each byte minus the byte above it, mod 256
        np.subtract(raw, above, out=filtered[:, 1:])
        previous = raw[-1].copy()
        data = squeeze.compress(filtered.tobytes())
        if data:
            f.write(chunk(b"IDAT", data))
    return previous
