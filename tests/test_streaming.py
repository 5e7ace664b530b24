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
from pix2pix.data.bands import ArrayBands, TiffBands, open_bands, write_bands
from pix2pix.data.images import read_image
from pix2pix.nets import build_generator
from pix2pix.translate import Pix2Pix, translate_files

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
    bands = open_bands(path, read_image)
    assert isinstance(bands, TiffBands)
    assert (bands.height, bands.width, bands.channels) == (101, 75, channels)
    for y0, y1 in [(0, 101), (0, 1), (5, 40), (33, 34), (90, 101), (17, 83)]:
        assert np.array_equal(bands.read(y0, y1), arr[y0:y1])
    assert len(bands._cache) <= -(-66 // bands.seg_h) + 1  # only the last band's segments
    bands.close()


def test_other_files_and_palette_tiffs_are_read_whole(tmp_path: Path) -> None:
    arr = np.arange(40 * 30 * 3, dtype=np.uint8).reshape(40, 30, 3)
    Image.fromarray(arr).save(tmp_path / "a.png")
    Image.fromarray(arr).convert("P").save(tmp_path / "p.tif")
    assert isinstance(open_bands(tmp_path / "a.png", read_image), ArrayBands)
    palette = open_bands(tmp_path / "p.tif", lambda p: read_image(p, 3))
    assert isinstance(palette, ArrayBands) and palette.channels == 3  # Pillow's conversion


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
    save_checkpoint(tmp_path / "ck", cfg, Progress(), g)
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
