"""Tiled inference: exact cover, blending, whole-image statistics, the flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_config
from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.data.images import read_image, save_image
from pix2pix.nets import build_generator
from pix2pix.nets.inference import inference_mode
from pix2pix.nets.tiling import check_tiling, image_statistics, run_tiled, tile_starts
from pix2pix.runtime import Speed
from pix2pix.translate import Pix2Pix, translate_files


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (100, 31), (129, 70)])
@pytest.mark.parametrize("overlap", [0, 1, 7, 16, 31])
def test_tiles_cover_every_pixel_once_after_blending(size: tuple[int, int], overlap: int) -> None:
    # a network that returns its input returns the image exactly, at any size and overlap
    x = torch.rand(2, 3, *size) * 2 - 1
    seen = []

    def identity(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape[-2:]))
        return t

    y = run_tiled(identity, x, 32, overlap)
    assert torch.equal(y, x)
    assert len(seen) == len(tile_starts(size[0], 32, overlap)) * len(
        tile_starts(size[1], 32, overlap)
    )
    assert all(h <= 32 and w <= 32 for h, w in seen)


def test_tile_starts_step_by_tile_minus_overlap_and_end_flush() -> None:
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert tile_starts(32, 32, 8) == [0] and tile_starts(20, 32, 8) == [0]
    assert tile_starts(64, 32, 0) == [0, 32]


def test_blending_is_a_weighted_average_of_the_tiles() -> None:
    # each tile answers a constant: the result lies between the constants, smoothly
    calls = iter(range(100))
    y = run_tiled(lambda t: torch.full_like(t, float(next(calls))), torch.zeros(1, 1, 32, 56),
                  32, 16)  # fmt: skip
    row = y[0, 0, 0]
    assert row[0] == 0 and row[-1] == 2  # the image's own edges: no ramp (3 tiles)
    assert (row.diff() >= 0).all() and 0 < row[20] < 1  # a ramp across the shared pixels


@pytest.mark.parametrize(("tile", "overlap", "message"), [
    (30, 0, "not a multiple of the generator's stride 32"),
    (16, 0, "not a multiple"),
    (64, 64, "smaller than the tile"),
    (64, -1, "must be >= 0"),
])  # fmt: skip
def test_bad_tiling_is_refused(tile: int, overlap: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_tiling(tile, overlap, 32)


def _generator() -> nn.Module:
    cfg = tiny_config("data", model={"generator": "unet_32", "in_channels": 3, "out_channels": 3})
    torch.manual_seed(0)
    g = build_generator(cfg.model).train()
    with torch.no_grad():
        g(torch.randn(4, 3, 32, 32))  # running statistics that are not the batch's
    return g


def test_image_statistics_are_the_whole_images_when_it_fits_one_tile() -> None:
    g = _generator()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    buffers = {k: v.clone() for k, v in g.state_dict().items()}
    with torch.no_grad(), inference_mode(g, eval_mode=False):
        whole = g(x)  # the paper's mode: this image's batch statistics
        with image_statistics(g, x, 64, 0, 32):
            shared = g(x)  # the recorded statistics, applied as fixed ones
        eval_like = g.eval()(x)
    assert (shared - whole).abs().max() < 1e-5
    assert (eval_like - whole).abs().max() > 1e-2  # the running statistics differ
    assert all(torch.equal(buffers[k], v) for k, v in g.state_dict().items())


def test_tiled_translation_in_both_modes(tmp_path: Path) -> None:
    g = _generator()
    cfg = tiny_config("data", model={"generator": "unet_32", "in_channels": 3, "out_channels": 3})
    model = Pix2Pix(g, cfg, torch.device("cpu"), Speed("fp32"))
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 12), size=(96, 96)) * 2 - 1
    whole = model.translate_tensor(x, eval_mode=True)
    tiled = model.translate_tensor(x, eval_mode=True, tile=64, overlap=32)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().mean() < 0.05  # tiles see less context, but agree closely
    paper = model.translate_tensor(x, tile=64, overlap=32)
    shared = model.translate_tensor(x, tile=64, overlap=32, tile_stats="image")
    reference = model.translate_tensor(x)  # whole image, its own statistics
    assert (shared - reference).abs().mean() < (paper - reference).abs().mean()
    assert g.training  # the caller's module is left as it was

    save_checkpoint(tmp_path / "ck", cfg, Progress(), g)
    save_image(np.full((70, 90, 3), 100, np.uint8), tmp_path / "in" / "a.png")
    loaded = Pix2Pix.load(tmp_path / "ck", device="cpu", precision="fp32", compile="off")
    out = translate_files(loaded, [str(tmp_path / "in")], tmp_path / "out", tile=32,
                          overlap=8, progress=False)  # fmt: skip
    assert read_image(out[0]).shape == (70, 90, 3)


def test_a_memory_budget_forces_tiles(tmp_path: Path, monkeypatch, caplog) -> None:
    import logging

    import pix2pix.translate.model as model_mod

    g = _generator()
    cfg = tiny_config("data", model={"generator": "unet_32", "in_channels": 3, "out_channels": 3})
    save_checkpoint(tmp_path / "ck", cfg, Progress(), g)
    model = Pix2Pix.load(tmp_path / "ck", device="cpu", precision="fp32", compile="off")
    assert model.tile_for(96, 96, budget=10**12) is None  # fits: not tiled
    per_pixel = model._per_pixel
    assert per_pixel is not None and per_pixel > 4 * 3  # more than the input itself
    budget = int(per_pixel * 40 * 40)  # room for a 40 x 40 pass: tiles of 32
    assert model.tile_for(96, 96, budget=budget) == 32
    assert model.tile_for(96, 96, budget=1) == 32  # never below the stride

    # the default budget is a fraction of the memory available: pretend there is little
    monkeypatch.setattr(model_mod, "available_memory", lambda device: budget * 2)
    save_image(np.full((96, 80, 3), 100, np.uint8), tmp_path / "in" / "big.png")
    with caplog.at_level(logging.INFO, logger="pix2pix"):
        out = translate_files(model, [str(tmp_path / "in")], tmp_path / "out", eval_mode=True,
                              progress=False)  # fmt: skip
    assert "over the memory budget; translating in 32x32 tiles" in caplog.text
    assert read_image(out[0]).shape == (96, 80, 3)
    with caplog.at_level(logging.INFO, logger="pix2pix"):
        caplog.clear()
        translate_files(model, [str(tmp_path / "in")], tmp_path / "out2", eval_mode=True,
                        progress=False, tile=None)  # fmt: skip
    assert "tiles" not in caplog.text  # tile=None: never


def test_only_a_band_of_rows_is_accumulated_and_progress_is_reported(monkeypatch) -> None:
    import pix2pix.nets.tiling as tiling

    sizes, progress = [], []
    real_add = tiling._Band.add

    def add(self, weighted, win, y0, x0):  # type: ignore[no-untyped-def]
        real_add(self, weighted, win, y0, x0)
        sizes.append(self.acc.shape[2])

    monkeypatch.setattr(tiling._Band, "add", add)
    x = torch.rand(1, 1, 200, 40)
    y = run_tiled(lambda t: t, x, 32, 8, on_tile=lambda done, total: progress.append((done, total)))
    assert torch.equal(y, x)
    assert max(sizes) <= 32 + 24  # at most a tile and a step of rows, not the image's 200
    assert progress[-1] == (8 * 2, 8 * 2) and len(progress) == 16
