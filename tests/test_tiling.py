"""Tiled inference: exact cover, blending, whole-image statistics, the flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_config
from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.data.files.images import read_image, save_image
from pix2pix.nets import build_generator
from pix2pix.nets.inference import inference_mode
from pix2pix.runtime import Speed
from pix2pix.translate import Pix2Pix, translate_files
from pix2pix.translate.tiling import check_tiling, image_statistics, run_tiled, tile_starts


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

    save_checkpoint(tmp_path / "ck", cfg, Progress(), {"generator": g})
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
    save_checkpoint(tmp_path / "ck", cfg, Progress(), {"generator": g})
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


def test_each_tile_reads_its_window_and_progress_is_reported() -> None:
    from pix2pix.translate.tiling import tiled_blocks

    reads, progress = [], []
    x = torch.rand(1, 1, 200, 40)

    def read(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        reads.append((y1 - y0, x1 - x0))
        return x[:, :, y0:y1, x0:x1]

    report = lambda done, total: progress.append((done, total))  # noqa: E731
    blocks = list(tiled_blocks(lambda t: t, read, (1, 200, 40), 32, 8, on_tile=report))
    assert set(reads) == {(32, 32)}  # a tile's window, never a band of the image
    assert sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1, _ in blocks) == 200 * 40  # once each
    y = run_tiled(lambda t: t, x, 32, 8)
    assert torch.equal(y, x)
    assert progress[-1] == (8 * 2, 8 * 2) and len(progress) == 16


@pytest.mark.parametrize(("h", "w", "overlap"), [(100, 45, 24), (70, 90, 8), (64, 33, 0)])
def test_blocks_blend_as_the_weighted_sum_over_all_tiles(h: int, w: int, overlap: int) -> None:
    """Carrying only the overlaps gives sum(w * out) / sum(w) over every tile covering a
    pixel (rows covered by up to four tiles in the first case)."""
    import itertools

    from pix2pix.translate.tiling import _window, tile_starts

    calls = itertools.count(1)
    x = torch.rand(1, 2, h, w, dtype=torch.float64)
    y = run_tiled(lambda t: t * 3 + next(calls), x.float(), 32, overlap)
    acc, total = torch.zeros_like(x), torch.zeros(h, w, dtype=torch.float64)
    calls = itertools.count(1)
    th, tw = min(32, h), min(32, w)
    for y0 in tile_starts(h, 32, overlap):
        for x0 in tile_starts(w, 32, overlap):
            win = _window(y0, th, h, overlap, torch.float64)[:, None] * _window(
                x0, tw, w, overlap, torch.float64)  # fmt: skip
            out = x.float()[..., y0 : y0 + th, x0 : x0 + tw].double() * 3 + next(calls)
            acc[..., y0 : y0 + th, x0 : x0 + tw] += out * win
            total[y0 : y0 + th, x0 : x0 + tw] += win
    assert torch.allclose(y.double(), acc / total, rtol=0, atol=1e-5)


def test_an_explicit_tile_blends_by_default(tmp_path: Path, monkeypatch) -> None:
    from pix2pix.translate.tiling import default_overlap

    assert default_overlap(128, 32) == 16 and default_overlap(32, 32) == 0
    g = _generator()
    cfg = tiny_config("data", model={"generator": "unet_32", "in_channels": 3, "out_channels": 3})
    save_checkpoint(tmp_path / "ck", cfg, Progress(), {"generator": g})
    model = Pix2Pix.load(tmp_path / "ck", device="cpu", precision="fp32", compile="off")
    save_image(np.full((96, 80, 3), 100, np.uint8), tmp_path / "in" / "big.png")
    import pix2pix.translate.files as files_mod

    seen: list[int] = []
    streamed = files_mod.translate_streamed  # a tiled PNG is written a band at a time

    def spy(*args, **kw):
        seen.append(kw["overlap"])
        return streamed(*args, **kw)

    monkeypatch.setattr(files_mod, "translate_streamed", spy)
    for i, overlap in enumerate((None, 0, 24)):
        translate_files(model, [str(tmp_path / "in")], tmp_path / f"out{i}", tile=64,
                        overlap=overlap, progress=False)  # fmt: skip
    assert seen == [8, 0, 24]  # --tile 64 alone: an eighth; an explicit 0: hard seams
