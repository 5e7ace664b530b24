"""Images larger than memory: band readers and writers, streamed translation, GeoTIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from conftest import error_line, run_cli, tiny_config
from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.data.files.images import read_image
from pix2pix.nets import build_generator
from pix2pix.translate import Pix2Pix, translate_files
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


# --- streamed translation ---------------------------------------------------------------


def _model(tmp_path: Path, **model: object) -> Pix2Pix:
    spec = {"generator": "unet_32", "in_channels": 3, "out_channels": 3, **model}
    cfg = tiny_config("data", model=spec)
    torch.manual_seed(0)
    g = build_generator(cfg.model)
    with torch.no_grad():  # batch-norm running statistics that are not the identity
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    save_checkpoint(tmp_path / "ck", cfg, Progress(), {"generator": g})
    return Pix2Pix.load(tmp_path / "ck", device="cpu", precision="fp32", compile="off")


@pytest.mark.parametrize("mode", [{"eval_mode": True}, {"tile_stats": "image"}, {}])
@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_streamed_output_equals_in_memory_tiled_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: dict, suffix: str
) -> None:
    model = _model(tmp_path)
    arr = np.random.default_rng(4).integers(0, 255, (90, 110, 3), dtype=np.uint8)
    src = tmp_path / "in" / f"big{suffix}"
    src.parent.mkdir()
    if suffix == ".tif":
        tifffile.imwrite(src, arr, photometric="rgb", tile=(16, 16), extratags=GEO)
    else:
        Image.fromarray(arr).save(src)
    reads: list[int] = []
    real_read = TiffBands.read
    monkeypatch.setattr(TiffBands, "read", lambda self, a, b: reads.append(b - a)
                        or real_read(self, a, b))  # fmt: skip
    (out,) = translate_files(model, [str(src)], tmp_path / "out", tile=32, overlap=8,
                             progress=False, **mode)  # fmt: skip
    assert out.suffix == suffix  # a TIFF input gives a TIFF output
    expected = model.translate_array(arr, tile=32, overlap=8, **mode)
    assert np.array_equal(read_image(out), expected)
    if suffix == ".tif":
        assert reads and max(reads) <= 32  # never more than a band of tile rows at once
        assert TiffBands(out).tags == TiffBands(src).tags  # georeferencing kept


def test_a_small_tiff_keeps_its_georeferencing_too(tmp_path: Path) -> None:
    model = _model(tmp_path)
    src = tmp_path / "small.tif"
    tifffile.imwrite(src, np.zeros((20, 24), np.uint8), extratags=GEO)
    (out,) = translate_files(model, [str(src)], tmp_path / "out", progress=False)
    assert out.name == "small.tif" and read_image(out).shape == (20, 24, 3)
    assert TiffBands(out).tags == TiffBands(src).tags


def test_streamed_lab_model_keeps_the_input_lightness(tmp_path: Path) -> None:
    model = _model(tmp_path, in_channels=1, out_channels=2)
    model.config = model.config.replace(data={"color_space": "lab"})
    gray = np.random.default_rng(5).integers(0, 255, (70, 66, 1), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "g.tif", gray[:, :, 0], tile=(16, 16))
    (out,) = translate_files(model, [str(tmp_path / "g.tif")], tmp_path / "out", tile=32,
                             overlap=8, progress=False, eval_mode=True)  # fmt: skip
    expected = model.translate_array(gray, tile=32, overlap=8, eval_mode=True)
    assert np.array_equal(read_image(out), expected)


def test_translate_cli_streams_a_large_tiff(tmp_path: Path, capsys) -> None:
    model = _model(tmp_path)
    arr = np.random.default_rng(6).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "scene.tif", arr, photometric="rgb", rowsperstrip=5)
    code, _, err = run_cli(capsys, "translate", "--checkpoint", tmp_path / "ck", "--eval",
                           tmp_path / "scene.tif", "--out", tmp_path / "o", "--tile", "32",
                           "--tile-overlap", "8", "--precision", "fp32")  # fmt: skip
    assert code == 0, err
    expected = model.translate_array(arr, tile=32, overlap=8, eval_mode=True)
    assert np.array_equal(read_image(tmp_path / "o" / "scene.tif"), expected)
    code, _, err = run_cli(capsys, "translate", "--checkpoint", tmp_path / "ck", "--tile", "40",
                           tmp_path / "scene.tif", "--out", tmp_path / "o2")  # fmt: skip
    assert code == 2 and "--tile 40" in error_line(err) and "stride 32" in error_line(err)


def _spy_streamed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The inputs `translate_files` translates a band at a time."""
    import pix2pix.translate.files as files

    streamed: list[Path] = []
    real = files.translate_streamed
    monkeypatch.setattr(files, "translate_streamed", lambda model, path, *a, **k:
                        streamed.append(path) or real(model, path, *a, **k))  # fmt: skip
    return streamed


@pytest.mark.parametrize("tile", [32, None])
def test_n_band_outputs_keep_the_georeferencing_and_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tile: int | None
) -> None:
    model = _model(tmp_path, in_channels=4, out_channels=5)
    model.config = model.config.replace(data={"output_depth": "float32"})
    arr = np.random.default_rng(9).integers(0, 65535, (70, 90, 4), dtype=np.uint16)
    src = tmp_path / "in" / "scene.tif"
    src.parent.mkdir()
    tifffile.imwrite(src, arr, photometric="minisblack", planarconfig="contig", tile=(16, 16),
                     extratags=GEO)  # fmt: skip
    streamed = _spy_streamed(monkeypatch)
    (out,) = translate_files(model, [str(src)], tmp_path / "out", tile=tile, overlap=8,
                             progress=False, eval_mode=True)  # fmt: skip
    assert streamed == ([src] if tile else [])
    expected = model.translate_array(arr, tile=tile, overlap=8, eval_mode=True)
    assert expected.shape == (70, 90, 5) and expected.dtype == np.float32
    assert np.array_equal(read_image(out), expected)
    assert TiffBands(out).tags == TiffBands(src).tags  # georeferencing kept


@pytest.mark.parametrize("tile", [32, None])
def test_float_rgb_tiffs_are_read_and_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tile: int | None
) -> None:
    model = _model(tmp_path)
    arr = np.random.default_rng(10).random((70, 66, 3)).astype(np.float32)
    src = tmp_path / "f.tif"
    tifffile.imwrite(src, arr, photometric="rgb", rowsperstrip=9, extratags=GEO)
    streamed = _spy_streamed(monkeypatch)
    (out,) = translate_files(model, [str(src)], tmp_path / "out", tile=tile, overlap=8,
                             progress=False, eval_mode=True)  # fmt: skip
    assert streamed == ([src] if tile else [])
    expected = model.translate_array(arr, tile=tile, overlap=8, eval_mode=True)
    assert np.array_equal(read_image(out), expected)
    assert TiffBands(out).tags == TiffBands(src).tags


@pytest.mark.parametrize(("channels", "suffix"), [(3, ".png"), (1, ".png"), (3, ".tif")])
def test_16_bit_outputs_stream_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: int, suffix: str
) -> None:
    model = _model(tmp_path, in_channels=channels, out_channels=channels)
    model.config = model.config.replace(data={"output_depth": "uint16"})
    arr = np.random.default_rng(11).integers(0, 65535, (64, 80, channels), dtype=np.uint16)
    src = tmp_path / f"x{suffix}"
    write_bands(src, [arr], (80, 64), channels, arr.dtype)
    streamed = _spy_streamed(monkeypatch)
    (out,) = translate_files(model, [str(src)], tmp_path / "out", tile=32, overlap=8,
                             progress=False, eval_mode=True)  # fmt: skip
    assert streamed == [src] and out.suffix == suffix
    expected = model.translate_array(arr, tile=32, overlap=8, eval_mode=True)
    assert expected.dtype == np.uint16 and len(np.unique(expected)) > 256  # really 16 bits
    assert np.array_equal(read_image(out), expected)


def test_a_streamed_png_is_never_decoded_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pix2pix.translate.bands as bands
    from pix2pix.data.files import limits

    model = _model(tmp_path)
    arr = np.random.default_rng(12).integers(0, 255, (90, 110, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "big.png")
    expected = model.translate_array(arr, tile=32, overlap=8)
    monkeypatch.setattr(png_rows, "PIECE_BYTES", 2000)  # a few rows per decoder call
    decoded: list[int] = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda im: decoded.append(im.height)
                        or real_load(im))  # fmt: skip
    monkeypatch.setattr(bands, "read_image", None)  # the whole-image reader: not called
    # the decompression-bomb limit for whole images does not apply to a streamed one
    monkeypatch.setenv(limits.PIXEL_LIMIT_ENV, "5000")
    (out,) = translate_files(model, [str(tmp_path / "big.png")], tmp_path / "out", tile=32,
                             overlap=8, progress=False)  # fmt: skip
    assert decoded and max(decoded) <= 2000 // (110 * 3) + 1  # pieces of rows, never 90
    monkeypatch.undo()
    assert np.array_equal(read_image(out), expected)


def test_the_pixel_limit_holds_for_images_decoded_whole_and_absurd_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import struct

    from pix2pix.data.files import limits
    from pix2pix.errors import UserError

    model = _model(tmp_path)
    Image.fromarray(np.zeros((90, 110, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setenv(limits.PIXEL_LIMIT_ENV, "5000")
    for tile in (None, 128):  # not tiled: decoded whole, so held to the limit
        with pytest.raises(UserError, match="big.png: 110x90 = 9,900 pixels is over the limit"):
            translate_files(model, [str(tmp_path / "big.png")], tmp_path / "o", tile=tile,
                            progress=False)  # fmt: skip
    header = struct.pack(">IIBBBBB", 2**21, 4, 8, 2, 0, 0, 0)  # 2097152 x 4: absurd
    idat = png_rows.chunk(b"IDAT", __import__("zlib").compress(b""))
    (tmp_path / "wide.png").write_bytes(png_rows.PNG_SIGNATURE + png_rows.chunk(b"IHDR", header)
                                        + idat + png_rows.chunk(b"IEND", b""))  # fmt: skip
    with pytest.raises(UserError, match="wide.png: 2097152x4 is too large even to translate"):
        translate_files(model, [str(tmp_path / "wide.png")], tmp_path / "o", tile=32,
                        progress=False)  # fmt: skip
    assert not (tmp_path / "o").exists()


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
