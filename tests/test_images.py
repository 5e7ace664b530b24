"""Images of any channel count and depth: files, normalisation, resizing, display, Lab."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix.data.files.colour import decode_lab, encode_lab, lab_to_rgb, rgb_to_lab
from pix2pix.data.files.images import (
    from_tensor,
    image_info,
    read_image,
    save_image,
    to_tensor,
    with_channels,
)
from pix2pix.data.pairs.transforms import resize_array
from pix2pix.errors import UserError
from pix2pix.html import displayable, image_grid, save_preview, write_image_table

ALL_16BIT = np.arange(65536, dtype=np.uint16).reshape(256, 256)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_grayscale_survives_load_and_save(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"gray{suffix}"
    save_image(ALL_16BIT[:, :, None], path)
    info = image_info(path)
    assert (info.channels, info.depth) == (1, "uint16")
    loaded = read_image(path)
    assert loaded.dtype == np.uint16 and np.array_equal(loaded[:, :, 0], ALL_16BIT)
    save_image(loaded, tmp_path / f"again{suffix}")
    assert np.array_equal(read_image(tmp_path / f"again{suffix}"), loaded)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_colour_survives_load_and_save(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 65536, size=(24, 20, 3), dtype=np.uint16)
    save_image(rgb, tmp_path / f"c{suffix}")
    assert image_info(tmp_path / f"c{suffix}").depth == "uint16"
    assert np.array_equal(read_image(tmp_path / f"c{suffix}"), rgb)  # RGB order, not BGR
    # Pillow alone would read these as 8 bits; the channel order is checked through it
    with Image.open(tmp_path / f"c{suffix}") as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), (rgb >> 8).astype(np.uint8))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_n_channel_arrays_and_multipage_tiff(tmp_path: Path, dtype: type) -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 255, size=(12, 10, 5)).astype(dtype)
    if dtype is np.float32:
        arr = rng.random((12, 10, 5), dtype=np.float32)
    for name in ("bands.npy", "bands.tif"):
        save_image(arr, tmp_path / name)
        info = image_info(tmp_path / name)
        assert (info.width, info.height, info.channels, info.depth) == (10, 12, 5, arr.dtype.name)
        back = read_image(tmp_path / name)
        assert back.dtype == arr.dtype and np.array_equal(back, arr)


def test_tensor_round_trip_is_exact_for_every_16bit_value() -> None:
    t = to_tensor(ALL_16BIT[:, :, None])
    assert t.dtype == torch.float32 and t.min() == -1 and t.max() == 1
    assert np.array_equal(from_tensor(t, "uint16")[:, :, 0], ALL_16BIT)
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    assert np.array_equal(from_tensor(to_tensor(u8), "uint8"), u8)
    # 8-bit 255 and 16-bit 65535 both mean full scale
    assert torch.equal(to_tensor(u8 * 0 + 255), to_tensor(np.full((16, 16, 1), 65535, np.uint16)))
    unit = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8, 1)
    assert np.abs(from_tensor(to_tensor(unit), "float32") - unit).max() < 1e-6


def test_bad_arrays_and_channel_counts_are_named(tmp_path: Path) -> None:
    np.save(tmp_path / "signed.npy", np.zeros((4, 4), np.int16))
    with pytest.raises(UserError, match=r"signed\.npy: array of shape \(4, 4\) and dtype int16"):
        read_image(tmp_path / "signed.npy")
    with pytest.raises(UserError, match="x.tif: has 4 channel"):
        with_channels(np.zeros((2, 2, 4), np.uint8), 3, "x.tif")
    with pytest.raises(UserError, match=r"\.png cannot hold a 4-channel uint8 image"):
        save_image(np.zeros((2, 2, 4), np.uint8), tmp_path / "four.png")


def test_resize_keeps_16bit_precision() -> None:
    ramp = np.linspace(1000, 1255, 32 * 32).astype(np.uint16).reshape(32, 32, 1)
    big = resize_array(np.repeat(ramp, 2, axis=2), (48, 48))
    assert big.dtype == np.uint16 and big.shape == (48, 48, 2)
    assert np.array_equal(big[:, :, 0], big[:, :, 1])
    assert big.min() >= 990 and big.max() <= 1265  # bicubic overshoots a little
    assert len(np.unique(big)) > 200  # 8-bit resizing would leave at most one level here
    flat = np.full((9, 7, 3), 54321, np.uint16)
    assert np.array_equal(resize_array(flat, (20, 15)), np.full((15, 20, 3), 54321, np.uint16))


def test_display_of_any_channels_and_depth() -> None:
    four = np.zeros((6, 5, 4), np.uint16)
    four[:, :, 2] = 65535
    tiles = displayable(four)
    assert tiles.shape == (6, 4 * 5 + 3, 3) and tiles.dtype == np.uint8
    # tiles at x = 0, 6, 12, 18 with white 1-pixel gaps; only channel 2 is white
    assert (tiles[:, 12:17] == 255).all() and (tiles[:, 6:11] == 0).all()
    assert (tiles[:, [5, 11, 17]] == 255).all()
    assert displayable(np.full((3, 3, 1), 0.5, np.float32)).tolist() == [[[128] * 3] * 3] * 3
    grid = image_grid([[np.zeros((8, 8, 2), np.uint8), np.zeros((8, 8, 3), np.uint8)]])
    assert grid.shape == (8, 2 * 8 + 1 + 2 + 8, 3)


# ---------------------------------------------------------------- Lab


def colours(*rgb: tuple[float, float, float]) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float64).T.reshape(3, len(rgb), 1)


def test_lab_of_known_colours() -> None:
    lab = rgb_to_lab(colours((1, 1, 1), (0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)))
    expected = torch.tensor(
        [
            [100, 0, 0],
            [0, 0, 0],
            [53.2408, 80.0925, 67.2032],  # published sRGB/D65 values
            [87.7347, -86.1827, 83.1793],
            [32.2970, 79.1875, -107.8602],
        ],
        dtype=torch.float64,
    )
    assert torch.allclose(lab[:, :, 0].T, expected, atol=2e-3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lab_rgb_lab_round_trip(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 32, 32, dtype=dtype)
    lab = rgb_to_lab(rgb)
    assert (lab_to_rgb(lab) - rgb).abs().max() < 1e-4
    assert (rgb_to_lab(lab_to_rgb(lab)) - lab).abs().max() < 1e-3
    x, y = encode_lab(rgb * 2 - 1)
    assert x.shape == (2, 1, 32, 32) and y.shape == (2, 2, 32, 32)
    assert x.abs().max() <= 1 and y.abs().max() <= 1
    assert (decode_lab(x, y) - (rgb * 2 - 1)).abs().max() < 1e-4


def test_html_page_shows_n_channel_and_16bit_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 65536, (8, 8, 4), dtype=np.uint16),
        rng.random((8, 8, 2), dtype=np.float32),
        rng.integers(0, 65536, (8, 8, 1), dtype=np.uint16),
    ]
    paths = [save_preview(img, tmp_path / "page" / f"{i}.png") for i, img in enumerate(images)]
    page = write_image_table(tmp_path / "page" / "index.html", "t", ["a", "b", "c"], [("x", paths)])
    links = re.findall(r'src="([^"]+)"', page.read_text())
    assert links == ["0.png", "1.png", "2.png"]
    widths = [image_info(page.parent / link).width for link in links]
    assert widths == [4 * 8 + 3, 2 * 8 + 1, 8]  # one tile per channel
    assert all(image_info(page.parent / link).mode == "RGB" for link in links)


def test_local_images_over_the_pixel_limit_are_refused_from_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    import pix2pix.data.files.images as images
    import pix2pix.data.files.limits as limits

    path = tmp_path / "big.png"
    save_image(np.zeros((60, 50, 3), np.uint8), path)
    # importing the module leaves Pillow's own limit alone; the default is Pillow's
    # warning threshold, which this file is far below
    assert Image.MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3 == limits.DEFAULT_MAX_PIXELS
    assert read_image(path).shape == (60, 50, 3)
    monkeypatch.setenv(limits.PIXEL_LIMIT_ENV, "2999")  # 50 x 60 = 3000 pixels
    for read in (images.image_info, read_image):
        with pytest.raises(
            UserError, match=r"big.png: 50x60 = 3,000 pixels is over the limit of 2,999"
        ):
            read(path)
    limits.set_max_image_pixels(3000)
    assert read_image(path).shape == (60, 50, 3) and Image.MAX_IMAGE_PIXELS is None
    limits.set_max_image_pixels(0)  # no limit at all
    assert limits.max_image_pixels() is None and images.image_info(path).width == 50
    monkeypatch.setenv(limits.PIXEL_LIMIT_ENV, "lots")
    with pytest.raises(UserError, match="PIX2PIX_MAX_IMAGE_PIXELS='lots' is not valid"):
        read_image(path)
