"""FCN-score pieces: palettes, nearest-colour mapping, the scores, segmenter training."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix.data.files.images import save_image
from pix2pix.errors import ConfigError, UserError
from pix2pix.segmentation import (
    IGNORE,
    Segmenter,
    SegmenterConfig,
    colors_to_classes,
    confusion_matrix,
    fcn_scores,
    parse_palette,
    train_segmenter,
)
from pix2pix.segmentation.data import SegmentationData

FACADES = parse_palette("facades")


def block_labels(rng: np.random.Generator, size: int, classes: int, block: int = 8) -> np.ndarray:
    """(size, size) class indices in square blocks."""
    small = rng.integers(0, classes, size=(size // block, size // block))
    return np.kron(small, np.ones((block, block), dtype=np.int64)).astype(np.uint8)


def write_label_pairs(root: Path, count: int = 6, size: int = 32, seed: int = 0) -> Path:
    """Aligned photo|label files: the photo is a fixed colour per class, labels in the
    first 4 facades colours, saved as JPEG like the real dataset."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    photo_colors = np.array([[20, 20, 20], [200, 60, 60], [60, 200, 60], [60, 60, 200]])
    label_colors = np.array(FACADES.colors[:4], dtype=np.uint8)
    for i in range(count):
        classes = block_labels(rng, size, 4)
        photo = photo_colors[classes].astype(np.uint8)
        save_image(np.concatenate([photo, label_colors[classes]], 1), root / f"{i}.jpg")
    return root


def test_palettes_from_presets_json_and_files(tmp_path: Path) -> None:
    assert FACADES.num_classes == 12 and FACADES.names[2] == "window"
    assert FACADES.colors[0] == (0, 0, 221)
    inline = parse_palette("[[0, 0, 0], [255, 255, 255]]")
    assert inline.colors == ((0, 0, 0), (255, 255, 255)) and inline.names == ("class_0", "class_1")
    palette = {"colors": [[1, 2, 3], [4, 5, 6]], "names": ["a", "b"]}
    (tmp_path / "p.json").write_text(json.dumps(palette))
    assert parse_palette(str(tmp_path / "p.json")).names == ("a", "b")
    with pytest.raises(ConfigError, match="not a preset \\(facades\\)"):
        parse_palette("cityscapez")
    with pytest.raises(ConfigError, match="triples"):
        parse_palette("[[0, 0], [1, 1]]")
    with pytest.raises(ConfigError, match="labels color needs palette"):
        SegmenterConfig(root="x")
    with pytest.raises(ConfigError, match="needs num_classes"):
        SegmenterConfig(root="x", labels="index")


def test_nearest_colour_mapping_survives_jpeg_noise() -> None:
    rng = np.random.default_rng(0)
    classes = block_labels(rng, 64, FACADES.num_classes)
    rgb = np.array(FACADES.colors, dtype=np.uint8)[classes]
    assert np.array_equal(colors_to_classes(rgb, FACADES), classes)  # exact colours
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=75)
    noisy = np.asarray(Image.open(buf).convert("RGB"))
    assert (colors_to_classes(noisy, FACADES) == classes).mean() > 0.9  # edges blur
    nudged = np.array([[[10, 130, 245]]], dtype=np.uint8)  # near window (3, 127, 252)
    assert colors_to_classes(nudged, FACADES)[0, 0] == 2


def test_fcn_scores_of_a_perfect_segmenter_are_one() -> None:
    target = block_labels(np.random.default_rng(1), 32, 3)
    scores = fcn_scores(confusion_matrix(target, target, 3), ["a", "b", "c"])
    assert (scores["pixel_acc"], scores["class_acc"], scores["class_iou"]) == (1.0, 1.0, 1.0)
    assert scores["per_class"]["b"] == {"acc": 1.0, "iou": 1.0}


def test_fcn_scores_of_a_constant_segmenter_match_hand_computed_values() -> None:
    target = np.zeros((4, 10), dtype=np.uint8)
    target[:, 5:8] = 1  # class 0: 28 pixels, class 1: 12; class 2 absent
    target[0, 0] = IGNORE  # not scored: 27 + 12 = 39 pixels count
    predicted = np.zeros_like(target)  # always class 0
    scores = fcn_scores(confusion_matrix(predicted, target, 3))
    assert scores["pixel_acc"] == pytest.approx(27 / 39)
    assert scores["class_acc"] == pytest.approx((1.0 + 0.0) / 2)  # over the 2 classes present
    assert scores["class_iou"] == pytest.approx((27 / 39 + 0.0) / 2)
    assert scores["per_class"]["class_2"] == {"acc": None, "iou": None}


def test_segmenter_trains_saves_and_loads(tmp_path: Path) -> None:
    data = write_label_pairs(tmp_path / "data", count=8)
    config = SegmenterConfig(
        root=str(data), palette="facades", size=32, width=4, epochs=2, batch_size=4, device="cpu"
    )
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    out = train_segmenter(config, tmp_path / "seg")
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "segmenter.safetensors"]
    meta = json.loads((out / "config.json").read_text())
    assert meta["classes"]["colors"][2] == [3, 127, 252]

    seg = Segmenter.load(out, "cpu")
    # the loaded network scores its training data exactly as the trained one did
    pairs = SegmentationData(data, "auto", "A", FACADES, 12, 32)
    x, y = pairs.batch(np.arange(len(pairs)), 0, 0, jitter=False)
    conf = confusion_matrix(seg.predict(x), y.numpy(), 12)
    assert fcn_scores(conf)["pixel_acc"] == meta["train_scores"]["pixel_acc"]
    assert seg.palette == FACADES and seg.num_classes == 12
    photo = torch.rand(2, 3, 48, 40) * 2 - 1
    assert seg.predict(photo).shape == (2, 32, 32)  # resized to the segmenter's size
    labels = np.array(FACADES.colors, dtype=np.uint8)[np.full((48, 40), 3)]
    assert (seg.label_classes(labels) == 3).all()


def test_missing_segmenter_folder_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nothing: no segmenter here .*pix2pix segmenter train"):
        Segmenter.load(tmp_path / "nothing")


def test_index_label_maps(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for side in ("A", "B"):
        (tmp_path / "d" / side).mkdir(parents=True)
    for i in range(2):
        classes = block_labels(rng, 32, 3)
        save_image(np.repeat(classes[:, :, None] * 80, 3, 2).astype(np.uint8),
                   tmp_path / "d" / "A" / f"{i}.png")  # fmt: skip
        Image.fromarray(classes).save(tmp_path / "d" / "B" / f"{i}.png")
    config = SegmenterConfig(
        root=str(tmp_path / "d"), labels="index", num_classes=3, size=32, width=2, epochs=1,
        device="cpu",
    )  # fmt: skip
    meta = json.loads((train_segmenter(config, tmp_path / "seg") / "config.json").read_text())
    assert meta["classes"] == {"names": ["class_0", "class_1", "class_2"], "colors": None}
    Image.fromarray(np.full((32, 32), 7, dtype=np.uint8)).save(tmp_path / "d" / "B" / "0.png")
    with pytest.raises(UserError, match=r"0\.png: label value 7 is not a class"):
        train_segmenter(config, tmp_path / "seg2")


def test_segmenter_replaces_only_a_segmenter_and_only_when_asked(tmp_path: Path) -> None:
    data = write_label_pairs(tmp_path / "data", count=4)
    config = SegmenterConfig(root=str(data), palette="facades", size=32, width=2, epochs=1,
                             batch_size=2, device="cpu")  # fmt: skip
    out = train_segmenter(config, tmp_path / "seg")
    first = (out / "segmenter.safetensors").read_bytes()
    with pytest.raises(UserError, match="already holds a segmenter; pass overwrite"):
        train_segmenter(config, out)
    assert (out / "segmenter.safetensors").read_bytes() == first
    train_segmenter(replace(config, width=3), out, overwrite=True)
    assert (out / "segmenter.safetensors").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "seg"]  # no temp or lock left

    # a folder of anything else is never replaced, --overwrite or not
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="does not hold a segmenter; nothing was changed"):
        train_segmenter(config, tmp_path / "mine", overwrite=True)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
