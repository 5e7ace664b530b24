"""Data: pairing, directions, joint augmentation, channels, batch order, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import random_image, write_aligned
from pix2pix.config import DataConfig
from pix2pix.data.files.images import read_image, save_image
from pix2pix.data.pairs.datasets import PairedDataset, detect_format
from pix2pix.data.pairs.folders import find_pairs, resolve_root
from pix2pix.data.pairs.sampler import EpochBatchSampler
from pix2pix.data.pairs.transforms import JointParams, apply_params
from pix2pix.errors import UserError


def dataset(root: Path, channels: tuple[int, int] = (3, 3), **kw) -> PairedDataset:
    cfg = DataConfig(root=str(root), **{"load_size": 36, "crop_size": 32, **kw})
    return PairedDataset(cfg, *channels, seed=0)


def test_aligned_halves_follow_the_direction(tmp_path: Path) -> None:
    left = np.zeros((8, 8, 3), np.uint8)
    right = np.full((8, 8, 3), 255, np.uint8)
    save_image(np.concatenate([left, right], axis=1), tmp_path / "x.png")
    for direction, expected_input in (("AtoB", -1.0), ("BtoA", 1.0)):
        item = dataset(tmp_path, direction=direction, preprocess="none")[0]
        assert item["input"].unique().tolist() == [expected_input]
        assert item["target"].unique().tolist() == [-expected_input]


def test_paired_folders_pair_by_stem(paired_data: Path) -> None:
    pairs = find_pairs(paired_data)
    assert [p.name for p in pairs] == ["img0", "img1", "img2", "img3"]
    assert all(p.a.parent.name == "A" and p.b.parent.name == "B" for p in pairs)
    item = dataset(paired_data, preprocess="none")[2]
    # B was written as 255 - A
    assert torch.allclose(item["target"], -item["input"], atol=1e-6)


@pytest.mark.parametrize("side", ["A", "B"])
def test_file_without_partner_is_named(paired_data: Path, side: str) -> None:
    lone = paired_data / side / "lonely.png"
    save_image(np.zeros((40, 40, 3), np.uint8), lone)
    with pytest.raises(UserError, match=r"lonely\.png: no partner named lonely"):
        find_pairs(paired_data)


def test_split_subfolder_is_used_when_present(tmp_path: Path) -> None:
    write_aligned(tmp_path / "ds" / "train", count=2)
    write_aligned(tmp_path / "ds" / "test", count=3)
    cfg = DataConfig(root=str(tmp_path / "ds"))
    assert resolve_root(cfg) == tmp_path / "ds" / "train"
    assert len(find_pairs(resolve_root(cfg, "test"))) == 3


def test_input_and_target_get_the_same_crop_and_flip(tmp_path: Path) -> None:
    # Identical halves: any difference between input and target would betray different
    # crops or flips. The parameters themselves must vary across epochs.
    rng = np.random.default_rng(1)
    img = random_image(rng, 40, 40)
    save_image(np.concatenate([img, img], axis=1), tmp_path / "same.png")
    ds = dataset(tmp_path)
    crops, flips = set(), set()
    for epoch in range(40):
        item = ds[(epoch, 0)]
        assert torch.equal(item["input"], item["target"])
        params = ds.params(epoch, 0)
        crops.add(params.crop)
        flips.add(params.flip)
    assert len(crops) > 5 and flips == {True, False}


def test_apply_params_crops_then_flips() -> None:
    arr = np.arange(4 * 6, dtype=np.uint8).reshape(4, 6, 1)
    out = apply_params(arr, JointParams(size=(6, 4), crop=(1, 2, 3, 2), flip=True))
    assert out[:, :, 0].tolist() == [[15, 14, 13], [21, 20, 19]]


def test_values_shapes_and_determinism(aligned_data: Path) -> None:
    ds = dataset(aligned_data)
    item = ds[(3, 1)]
    assert item["input"].shape == (3, 32, 32) and item["input"].dtype == torch.float32
    assert item["input"].min() >= -1 and item["input"].max() <= 1
    again = dataset(aligned_data)[(3, 1)]  # a new dataset object: same seed, same pixels
    assert torch.equal(item["input"], again["input"])
    assert not torch.equal(item["input"], ds[(4, 1)]["input"])


@pytest.mark.parametrize(
    ("preprocess", "expected"),
    [
        ("resize_and_crop", (32, 32)),
        ("crop", (32, 32)),
        ("scale_width", (36, 18)),
        ("scale_width_and_crop", (32, 32)),
        ("none", (80, 40)),
    ],
)
def test_preprocess_modes(tmp_path: Path, preprocess: str, expected: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    save_image(np.concatenate([random_image(rng, 40, 80)] * 2, axis=1), tmp_path / "w.png")
    ds = dataset(tmp_path, preprocess=preprocess)
    w, h = expected
    assert ds[0]["input"].shape == (3, h, w)
    assert ds.output_sizes() == {expected}


def test_grayscale_input_and_colour_output(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for side in ("A", "B"):
        (tmp_path / side).mkdir()
    save_image(random_image(rng, 40, 40, 1), tmp_path / "A" / "x.png")
    save_image(random_image(rng, 40, 40, 3), tmp_path / "B" / "x.png")
    pairs = find_pairs(tmp_path)
    assert [f.channels for f in detect_format(pairs, "AtoB")] == [1, 3]
    assert [f.channels for f in detect_format(pairs, "BtoA")] == [3, 1]
    item = dataset(tmp_path, channels=(1, 3))[0]
    assert item["input"].shape == (1, 32, 32) and item["target"].shape == (3, 32, 32)


def test_aligned_colour_file_as_grayscale_target(aligned_data: Path) -> None:
    item = dataset(aligned_data, channels=(3, 1), preprocess="none", flip=False)[0]
    assert item["target"].shape == (1, 40, 40)
    rgb = read_image(sorted(aligned_data.iterdir())[0], 3)[:, 40:].astype(np.float64)
    luma = (rgb @ [0.299, 0.587, 0.114]) / 127.5 - 1  # ITU-R 601, as Pillow's "L"
    assert np.abs(item["target"][0].numpy() - luma).max() < 0.02


def test_cache_and_disk_give_the_same_items(aligned_data: Path) -> None:
    cached, uncached = dataset(aligned_data, cache="on"), dataset(aligned_data, cache="off")
    assert cached.cache is not None and uncached.cache is None
    for key in [(0, 0), (1, 3), (7, 5)]:
        assert torch.equal(cached[key]["input"], uncached[key]["input"])


def test_sampler_covers_each_epoch_in_a_seeded_order() -> None:
    s = EpochBatchSampler(10, 3, seed=4)
    s.set_epoch(2)
    batches = list(s)
    assert [len(b) for b in batches] == [3, 3, 3, 1] == [len(b) for b in batches][:4]
    assert len(s) == 4
    assert sorted(i for b in batches for _, i in b) == list(range(10))
    assert all(e == 2 for b in batches for e, _ in b)
    s2 = EpochBatchSampler(10, 3, seed=4)
    s2.set_epoch(2, skip_batches=2)
    assert list(s2) == batches[2:]  # resume mid-epoch: the same remaining batches
    s2.set_epoch(3)
    assert list(s2) != batches


def test_sampler_ranks_split_the_same_permutation() -> None:
    ranks = [EpochBatchSampler(9, 2, seed=1, rank=r, world_size=2) for r in range(2)]
    orders = [s.order(5) for s in ranks]
    assert len(orders[0]) == len(orders[1]) == 5
    assert set(orders[0]) | set(orders[1]) == set(range(9))


# ------------------------------------------------------------------ bad input


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="dataset folder not found"):
        dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: no images found"):
        dataset(tmp_path / "empty")


def test_unreadable_image_is_named(aligned_data: Path) -> None:
    (aligned_data / "3.png").write_text("not an image")
    with pytest.raises(UserError, match=r"3\.png: cannot read image"):
        dataset(aligned_data)


@pytest.mark.parametrize("cache", ["on", "off"])
def test_truncated_image_is_named(aligned_data: Path, cache: str) -> None:
    path = aligned_data / "2.png"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UserError, match=r"2\.png: cannot read image"):
        ds = dataset(aligned_data, cache=cache)
        ds[1]


def test_size_mismatch_is_named(paired_data: Path) -> None:
    save_image(np.zeros((30, 40, 3), np.uint8), paired_data / "B" / "img1.png")
    with pytest.raises(UserError, match=r"B/img1\.png: size 40x30 differs"):
        dataset(paired_data)


def test_image_smaller_than_crop_is_named(aligned_data: Path) -> None:
    with pytest.raises(UserError, match=r"1\.png: image 40x40 is smaller than crop_size 48"):
        dataset(aligned_data, preprocess="crop", crop_size=48)


def test_odd_width_aligned_image_is_named(tmp_path: Path) -> None:
    save_image(np.zeros((10, 21, 3), np.uint8), tmp_path / "odd.png")
    with pytest.raises(UserError, match=r"odd\.png: width 21 is odd"):
        dataset(tmp_path)


def test_images_far_from_the_load_size_get_advice() -> None:
    from pix2pix.config import DataConfig
    from pix2pix.data.pairs.transforms import size_advice

    small = size_advice([(64, 64)] * 3, DataConfig())  # 64 px under the default 286/256
    assert small and "use --load-size 72 --crop-size 64 --generator unet_64" in small
    big = size_advice([(1024, 1024)], DataConfig())
    assert big and "--crop-size 1024 --generator unet_1024" in big
    assert size_advice([(256, 256)], DataConfig()) is None  # the paper's facades
    assert size_advice([(64, 64)], DataConfig(load_size=72, crop_size=64)) is None
    assert size_advice([(64, 64)], DataConfig(preprocess="crop", crop_size=64)) is None
