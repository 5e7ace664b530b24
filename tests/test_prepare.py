"""`pix2pix data` tools: combine/separate, split, edges, colorize, inpaint, downscale, check."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import random_image, run_cli, write_aligned, write_paired
from pix2pix.data.files.colour import rgb_to_lab
from pix2pix.data.files.images import read_image, save_image
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.data.tools.check import check_dataset
from pix2pix.data.tools.derive import colorize, downscale, inpaint
from pix2pix.data.tools.edges import canny
from pix2pix.data.tools.masks import hole_mask
from pix2pix.data.tools.prepare import combine, separate, split_dataset
from pix2pix.errors import UserError


def write_photos(folder: Path, count: int = 4, size: tuple[int, int] = (32, 40)) -> Path:
    rng = np.random.default_rng(7)
    for i in range(count):
        save_image(random_image(rng, *size), folder / f"photo{i}.png")
    return folder


def test_combine_then_separate_returns_the_same_pixels(tmp_path: Path) -> None:
    write_paired(tmp_path / "pairs", count=3, size=24)
    rng = np.random.default_rng(2)  # 16-bit grayscale pairs beside, in a second dataset
    for side in "AB":
        save_image(
            rng.integers(0, 65536, (20, 16, 1), dtype=np.uint16), tmp_path / "deep" / side / "d.png"
        )
    for name in ("pairs", "deep"):
        combined = combine(tmp_path / name, tmp_path / f"{name}_ab", workers=2)
        separate(tmp_path / f"{name}_ab", tmp_path / f"{name}_sep", workers=2)
        for pair in find_pairs(tmp_path / name):
            both = read_image(combined[0].parent / f"{pair.name}.png")
            assert both.shape[1] == 2 * read_image(pair.a).shape[1]
            for side, original in (("A", pair.a), ("B", pair.b)):
                again = read_image(tmp_path / f"{name}_sep" / side / f"{pair.name}.png")
                assert again.dtype == read_image(original).dtype
                assert np.array_equal(again, read_image(original))


def test_combine_checks_names_and_sizes_before_writing(tmp_path: Path) -> None:
    src = write_paired(tmp_path / "pairs", count=3, size=24)
    save_image(np.zeros((20, 24, 3), np.uint8), src / "B" / "img1.png")
    with pytest.raises(UserError, match=r"B/img1\.png: size 24x20 differs"):
        combine(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (src / "B" / "img1.png").unlink()
    with pytest.raises(UserError, match=r"A/img1\.png: no partner named img1"):
        combine(src, tmp_path / "out")


def test_split_is_reproducible_and_keeps_the_layout(tmp_path: Path) -> None:
    src = write_aligned(tmp_path / "all", count=20, size=8)
    first = split_dataset(src, tmp_path / "s1", val=0.2, test=0.1, seed=3)
    again = split_dataset(src, tmp_path / "s2", val=0.2, test=0.1, seed=3)
    other = split_dataset(src, tmp_path / "s3", val=0.2, test=0.1, seed=4)
    assert first == again and first != other
    assert {k: len(v) for k, v in first.items()} == {"train": 14, "val": 4, "test": 2}
    names = [n for v in first.values() for n in v]
    assert sorted(names) == sorted(p.stem for p in src.iterdir())  # each pair exactly once
    for split, members in first.items():
        files = sorted(p.stem for p in (tmp_path / "s1" / split).iterdir())
        assert files == sorted(members)
    paired = write_paired(tmp_path / "paired", count=5, size=8)
    parts = split_dataset(paired, tmp_path / "p", val=0.4, test=0.0, seed=0)
    assert set(parts) == {"train", "val"} and not (tmp_path / "p" / "test").exists()
    assert len(find_pairs(tmp_path / "p" / "val")) == 2


def test_canny_edges_of_a_square_lie_on_its_border() -> None:
    img = np.zeros((48, 48, 3), np.uint8)
    img[12:36, 12:36] = 255  # square with corners (12, 12) and (35, 35)
    edges = canny(img)
    assert edges.shape == (48, 48, 1) and set(np.unique(edges)) == {0, 255}
    ys, xs = np.nonzero(edges[:, :, 0] == 0)
    # distance of each edge pixel to the square's outline (between rows/cols 11.5 and 35.5)
    dist = np.minimum.reduce([abs(ys - 11.5), abs(ys - 35.5), abs(xs - 11.5), abs(xs - 35.5)])
    inside = (ys >= 10) & (ys <= 37) & (xs >= 10) & (xs <= 37)
    assert inside.all() and (dist <= 1).all()
    # every side of the square is found
    for side in (ys <= 13, ys >= 34, xs <= 13, xs >= 34):
        assert side.sum() >= 20


def test_edges_without_opencv_names_the_extra(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(
        UserError, match=r"needs OpenCV; install it with: pip install 'pix2pix\[edges\]'"
    ):
        canny(np.zeros((8, 8, 3), np.uint8))


def test_inpaint_masks_are_seeded(tmp_path: Path) -> None:
    a = hole_mask(64, 48, seed=1, name="x", boxes=2, strokes=3)
    assert a.any() and not a.all()
    assert np.array_equal(a, hole_mask(64, 48, seed=1, name="x", boxes=2, strokes=3))
    assert not np.array_equal(a, hole_mask(64, 48, seed=2, name="x", boxes=2, strokes=3))
    assert not np.array_equal(a, hole_mask(64, 48, seed=1, name="y", boxes=2, strokes=3))
    photos = write_photos(tmp_path / "photos")
    made = inpaint(photos, tmp_path / "out", boxes=1, strokes=2, seed=5, fill=1.0, workers=2)
    again = inpaint(photos, tmp_path / "again", boxes=1, strokes=2, seed=5, workers=1)
    for a_file, b_file in zip(made, again):
        assert np.array_equal(read_image(a_file), read_image(b_file))
    holed = read_image(made[0])
    photo = read_image(photos / "photo0.png")
    mask = hole_mask(32, 40, seed=5, name="photo0", boxes=1, strokes=2)
    assert (holed[mask] == 255).all() and np.array_equal(holed[~mask], photo[~mask])
    assert (tmp_path / "out" / "B" / "photo0.png").read_bytes() == (
        photos / "photo0.png"
    ).read_bytes()
    inpaint(photos, tmp_path / "m", seed=5, mask_channel=True)
    assert read_image(tmp_path / "m" / "A2" / "photo0.png").shape == (32, 40, 1)
    assert find_pairs(tmp_path / "m")[0].stack_a  # A1/ + A2/ stack as one input


def test_colorize_gray_has_the_photos_lightness(tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "photos", count=2)
    made = colorize(photos, tmp_path / "col")
    gray = read_image(made[0])
    assert gray.shape == (32, 40, 1) and gray.dtype == np.uint8
    photo = read_image(photos / "photo0.png")
    lightness = [
        rgb_to_lab(torch.tensor(x).permute(2, 0, 1).double() / 255)[0]
        for x in (photo, np.repeat(gray, 3, axis=2))
    ]
    assert (lightness[0] - lightness[1]).abs().max() < 0.5  # one 8-bit gray level
    save_image(gray, tmp_path / "grayphotos" / "g.png")
    with pytest.raises(UserError, match=r"g\.png: not a colour image"):
        colorize(tmp_path / "grayphotos", tmp_path / "col2")


def test_downscale_keeps_pairs_aligned(tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "photos", count=1)
    downscale(photos, tmp_path / "sr", factor=4, layout="aligned")
    both = read_image(tmp_path / "sr" / "photo0.png").astype(float)
    low, photo = both[:, :40], both[:, 40:]
    assert np.array_equal(photo, read_image(photos / "photo0.png"))
    assert 0 < np.abs(low - photo).mean() < 40
    assert np.abs(np.diff(low, axis=1)).mean() < np.abs(np.diff(photo, axis=1)).mean()


def test_check_reports_each_planted_defect(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_aligned(root / "train", count=4, size=16)
    (root / "train" / "2.png").write_bytes((root / "train" / "2.png").read_bytes()[:100])
    (root / "train" / "3.png").write_text("not an image")
    save_image(np.zeros((8, 15, 3), np.uint8), root / "train" / "odd.png")
    write_paired(root / "val", count=3, size=16)
    save_image(np.zeros((16, 16, 3), np.uint8), root / "val" / "A" / "lonely.png")
    save_image(np.zeros((12, 16, 3), np.uint8), root / "val" / "B" / "img1.png")
    save_image(np.zeros((16, 16, 3), np.uint8), root / "val" / "B" / "img2.jpg")
    report = check_dataset(root, workers=2)
    text = "\n".join(report.lines())
    assert not report.ok and len(report.defects) == 6, text
    for expected in (
        "train/2.png: cannot read image",
        "train/3.png: cannot read image",
        "odd.png: width 15 is odd",
        "A/lonely.png: no partner named lonely",
        "pair img1: sizes differ",
        "B/img2.png: same name as img2.jpg",
    ):
        assert expected in text, expected
    assert "train: aligned A|B files, 5 image(s)" in text
    assert "val: paired folders A/, B/, 3 pair(s)" in text


# ------------------------------------------------------------------ CLI


def test_cli_of_each_tool(capsys, tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "photos", count=3)
    steps = [
        (["colorize", photos, "--out", tmp_path / "col"], "wrote 3 pair(s)"),
        (["edges", photos, "--out", tmp_path / "edg", "--layout", "aligned"], "wrote 3 pair(s)"),
        (["inpaint", photos, "--out", tmp_path / "inp", "--strokes", "2"], "wrote 3 pair(s)"),
        (["downscale", photos, "--out", tmp_path / "ds", "--factor", "2"], "wrote 3 pair(s)"),
        (["combine", tmp_path / "col", "--out", tmp_path / "ab"], "wrote 3 A|B file(s)"),
        (["separate", tmp_path / "ab", "--out", tmp_path / "sep"], "wrote 3 pair(s)"),
        (["split", tmp_path / "ab", "--out", tmp_path / "sp", "--val", "0.34", "--test", "0"],
         "train: 2, val: 1"),
        (["check", tmp_path / "sp"], "no defects found"),
    ]  # fmt: skip
    for args, expected in steps:
        code, out, err = run_cli(capsys, "data", *args)
        assert code == 0 and expected in out, (args, out, err)
    (tmp_path / "sp" / "train" / "extra.png").write_text("broken")
    code, out, _ = run_cli(capsys, "data", "check", tmp_path / "sp")
    assert code == 1 and "extra.png: cannot read image" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["combine", "{tmp}/nowhere", "--out", "{tmp}/o"], "nowhere: folder not found"),
        (["separate", "{tmp}/photos", "--out", "{tmp}/photos"], "photos: already exists"),
        (["downscale", "{tmp}/photos", "--out", "{tmp}/o", "--factor", "1"], "--factor 1.0 is out"),
        (["inpaint", "{tmp}/photos", "--out", "{tmp}/o", "--boxes", "0"], "at least one hole"),
        (["split", "{tmp}/photos", "--out", "{tmp}/o", "--val", "0.9", "--test", "0.2"],
         "add up to at most 1"),
        (["edges", "{tmp}/photos", "--out", "{tmp}/o", "--low", "9", "--high", "3"], "--low 9.0"),
        (["check", "{tmp}/nowhere"], "nowhere: folder not found"),
        (["download", "facades", "--sha256", "abc"], "not a SHA-256 digest"),
    ],
)  # fmt: skip
def test_bad_tool_input_gets_one_line_and_exit_2(
    capsys, tmp_path: Path, args: list[str], expected: str
) -> None:
    write_photos(tmp_path / "photos", count=1)
    code, _, err = run_cli(capsys, "data", *[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("pix2pix: error:")]
    assert len(lines) == 1 and expected in lines[0], err
    assert not (tmp_path / "o").exists()
