"""Streamed translation of images larger than memory: equal to tiled translation in memory,
GeoTIFF tags kept, never decoded whole, the pixel limit held."""

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
from pix2pix.translate.bands import TiffBands, write_bands

GEO = [(33550, 12, 3, (0.5, 0.5, 0.0), True), (34737, 2, 7, "WGS 84", True)]


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
