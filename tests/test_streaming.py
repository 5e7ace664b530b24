"""Images larger than memory: band readers and writers, GeoTIFF tags (streamed
translation: test_streamed_translate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from pix2pix.data.files.images import read_image
from pix2pix.translate import png as png_rows
from pix2pix.translate.bands import ArrayBands, TiffBands, open_bands, write_bands
from pix2pix.translate.png import PngRows, png_streamable

GEO = [(33550, 12, 3, (0.5, 0.5, 0.0), True), (34737, 2, 7, "WGS 84", True)]


def _bands(arr: np.ndarray, step: int):
    for y in range(0, len(arr), step):
        yield arr[y : y + step]


@pytest.mark.parametrize(
    "layout", [{"rowsperstrip": 7}, {"tile": (32, 48)}, {"tile": (16, 16), "bigtiff": True}]
)
@pytest.mark.parametrize(("channels", "dtype"), [(3, np.uint8), (1, np.uint16), (3, np.float32)])
def test_tiff_bands_read_any_rows_as_the_whole_image_has_them(
    tmp_path: Path, layout: dict, channels: int, dtype: type
) -> None:
    rng = np.random.default_rng(0)
    arr = (rng.random((101, 75, channels)) * (255 if dtype == np.uint8 else 60000)).astype(dtype)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, arr if channels > 1 else arr[:, :, 0], compression="zlib",
                     photometric="rgb" if channels == 3 else "minisblack", **layout)  # fmt: skip
    bands = open_bands(path)
    assert isinstance(bands, TiffBands)
    assert (bands.height, bands.width, bands.channels) == (101, 75, channels)
    for y0, y1 in [(0, 101), (0, 1), (5, 40), (33, 34), (90, 101), (17, 83)]:
        assert np.array_equal(bands.read(y0, y1), arr[y0:y1])
    assert len(bands._cache) <= -(-66 // bands.seg_h) + 1  # only the last band's segments
    bands.close()


def test_palette_tiffs_are_read_whole(tmp_path: Path) -> None:
    arr = np.arange(40 * 30 * 3, dtype=np.uint8).reshape(40, 30, 3)
    Image.fromarray(arr).convert("P").save(tmp_path / "p.tif")
    palette = open_bands(tmp_path / "p.tif", 3)
    assert isinstance(palette, ArrayBands) and palette.channels == 3  # Pillow's conversion


def _png_of_every_kind(tmp_path: Path) -> dict[str, Path]:
    import cv2

    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (53, 41, 3), dtype=np.uint8)
    rgb[:, :20] = rgb[:1, :20]  # flat parts too, so the encoder picks several filters
    kinds = {
        "L": Image.fromarray(rgb[:, :, 0]),
        "LA": Image.fromarray(rgb[:, :, 0]).convert("LA"),
        "RGB": Image.fromarray(rgb),
        "RGBA": Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])),
        "P": Image.fromarray(rgb).convert("P"),
        "P4": Image.fromarray(rgb).quantize(16),  # 4-bit indices
        "1": Image.fromarray(rgb[:, :, 0]).convert("1"),
        "I;16": Image.fromarray(rng.integers(0, 65535, (53, 41), dtype=np.uint16)),
    }
    paths = {}
    for name, image in kinds.items():
        paths[name] = tmp_path / f"{name.replace(';', '')}.png"
        image.save(paths[name])
    paths["RGB16"] = tmp_path / "rgb16.png"  # 16-bit colour (what OpenCV reads)
    cv2.imwrite(str(paths["RGB16"]), rng.integers(0, 65535, (53, 41, 3), dtype=np.uint16))
    return paths


def _filters(path: Path) -> set[int]:
    """The filter types of a PNG's scanlines."""
    r = PngRows(path)
    data = __import__("zlib").decompress(b"".join(_idat(path)))
    return {data[i * (r.rowbytes + 1)] for i in range(r.height)}


def _idat(path: Path) -> list[bytes]:
    import struct

    raw, found, at = path.read_bytes(), [], 8
    while at < len(raw):
        (length,) = struct.unpack(">I", raw[at : at + 4])
        if raw[at + 4 : at + 8] == b"IDAT":
            found.append(raw[at + 8 : at + 8 + length])
        at += length + 12
    return found


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_png_rows_equal_pillows_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: int | None
) -> None:
    monkeypatch.setattr(png_rows, "PIECE_BYTES", 300)  # many pieces, each led by its row above
    paths = _png_of_every_kind(tmp_path)
    assert len(set().union(*map(_filters, paths.values()))) >= 4  # Sub, Up, Average, Paeth
    for name, path in paths.items():
        whole = read_image(path, channels)
        bands = open_bands(path, channels)
        assert isinstance(bands, PngRows), name
        assert (bands.height, bands.width, bands.channels) == whole.shape, name
        for y0, y1 in [(0, 7), (3, 20), (20, 21), (18, 53)]:  # overlapping, top to bottom
            assert np.array_equal(bands.read(y0, y1), whole[y0:y1]), name
        assert np.array_equal(bands.read(2, 9), whole[2:9]), name  # above the band: again
        bands.close()


def _interlaced_png(arr: np.ndarray, path: Path) -> None:
    """An Adam7-interlaced 8-bit RGB PNG (Pillow writes none), filter None."""
    import struct
    import zlib

    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2)]  # fmt: skip
    data = b""
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.size:
            data += b"".join(b"\x00" + row.tobytes() for row in sub)
    h, w = arr.shape[:2]
    png = png_rows.PNG_SIGNATURE + png_rows.chunk(
        b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    )
    path.write_bytes(
        png + png_rows.chunk(b"IDAT", zlib.compress(data)) + png_rows.chunk(b"IEND", b"")
    )


def test_an_interlaced_png_falls_back_to_a_reader_that_can(tmp_path: Path) -> None:
    arr = np.random.default_rng(8).integers(0, 256, (29, 23, 3), dtype=np.uint8)
    _interlaced_png(arr, tmp_path / "i.png")
    assert np.array_equal(read_image(tmp_path / "i.png"), arr)  # Pillow decodes it whole
    assert not png_streamable(tmp_path / "i.png")
    bands = open_bands(tmp_path / "i.png", 3)
    assert not isinstance(bands, PngRows)  # pyvips where installed, else decoded whole
    assert np.array_equal(np.concatenate([bands.read(0, 10), bands.read(10, 29)]), arr)


@pytest.mark.parametrize(("channels", "dtype"), [(3, np.uint8), (1, np.uint8), (1, np.uint16)])
def test_png_written_row_by_row_reads_back_exactly(
    tmp_path: Path, channels: int, dtype: type
) -> None:
    rng = np.random.default_rng(1)
    arr = (rng.random((77, 61, channels)) * np.iinfo(dtype).max).astype(dtype)
    write_bands(tmp_path / "o.png", _bands(arr, 13), (61, 77), channels, np.dtype(dtype))
    assert np.array_equal(read_image(tmp_path / "o.png"), arr)


def test_16_bit_colour_png_reads_back_exactly(tmp_path: Path) -> None:
    import cv2

    arr = (np.random.default_rng(2).random((20, 30, 3)) * 65535).astype(np.uint16)
    write_bands(tmp_path / "o.png", _bands(arr, 6), (30, 20), 3, np.dtype(np.uint16))
    back = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    assert np.array_equal(back, arr)


def test_tiff_written_in_tile_rows_keeps_the_georeferencing(tmp_path: Path) -> None:
    src = tmp_path / "geo.tif"
    arr = np.random.default_rng(3).integers(0, 255, (300, 270, 3), dtype=np.uint8)
    tifffile.imwrite(src, arr, photometric="rgb", extratags=GEO)
    tags = TiffBands(src).tags
    assert sorted(t[0] for t in tags) == [33550, 34737]
    write_bands(tmp_path / "o.tif", _bands(arr, 100), (270, 300), 3, arr.dtype, tags)
    with tifffile.TiffFile(tmp_path / "o.tif") as tf:
        page = tf.pages[0]
        assert page.is_tiled and np.array_equal(page.asarray(), arr)
        assert page.tags[33550].value == (0.5, 0.5, 0.0) and page.tags[34737].value == "WGS 84"


def test_an_interrupted_write_leaves_nothing_under_the_final_name(tmp_path: Path) -> None:
    def rows():
        yield np.zeros((8, 16, 3), np.uint8)
        raise KeyboardInterrupt  # Ctrl-C half-way

    for name in ("o.png", "o.tif"):
        with pytest.raises(KeyboardInterrupt):
            write_bands(tmp_path / name, rows(), (16, 32), 3, np.dtype(np.uint8))
    assert list(tmp_path.iterdir()) == []
    for name in ("short.png", "short.tif"):
        with pytest.raises(ValueError, match="got 8 rows for an image 32 high"):
            write_bands(tmp_path / name, [np.zeros((8, 16, 3), np.uint8)], (16, 32), 3,
                        np.dtype(np.uint8))  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_jpeg_and_webp_are_read_in_bands_by_pyvips(tmp_path: Path, suffix: str) -> None:
    pytest.importorskip("pyvips")
    from pix2pix.translate.bands import VipsBands

    arr = np.random.default_rng(13).integers(0, 256, (203, 157, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / f"q{suffix}", quality=90)
    for channels in (3, 1):
        whole = read_image(tmp_path / f"q{suffix}", channels)
        bands = open_bands(tmp_path / f"q{suffix}", channels)
        assert isinstance(bands, VipsBands)
        for y0, y1 in [(0, 100), (90, 150), (150, 203)]:  # overlapping, top to bottom
            assert np.array_equal(bands.read(y0, y1), whole[y0:y1])
