"""Tiled translation against whole-image translation on an image that fits in memory.

    python -m benchmarks.tiling [--data ../shared/data/facades] [--size 1024]
        [--tile 256] [--overlap 64] [--json PATH]

The input is a mosaic of label maps (the facades test set's right halves, or synthetic
ones) of `--size` x `--size`. The generator is `unet_256` at the default width, seeded,
with its batch-norm running statistics calibrated on 256x256 crops of the mosaic (a
trained checkpoint can be given with --checkpoint instead). Reported, in eval mode:

- the mean absolute difference on [0, 1] between tiled and whole-image outputs;
- the seam ratio: the mean gradient magnitude across tile borders over that of the
  interior (1.0: borders look like everything else), for the blended tiles and for
  hard-edged tiles without overlap;
- seconds for both, their ratio, and the share of it the overlap explains (the tiles
  cover more pixels than the image).
Paper mode (batch statistics) is reported too: whole image vs tiles with their own
statistics vs tiles with the pooled image statistics (`--tile-stats image`).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from pix2pix.config import ModelConfig, RunConfig
from pix2pix.data.files.images import read_image, to_tensor
from pix2pix.nets import build_generator
from pix2pix.runtime import Speed, configure_backends
from pix2pix.translate import Pix2Pix
from pix2pix.translate.tiling import tile_starts


def mosaic(size: int, data: Path | None, seed: int = 0, cell: int = 256) -> torch.Tensor:
    """(1, 3, size, size) in [-1, 1]: label maps of cell x cell side by side."""
    rng = np.random.default_rng(seed)
    cells = size // cell
    if data is not None and (data / "test").is_dir():
        files = sorted((data / "test").glob("*.jpg"))[: cells * cells]
        files = (files * (cells * cells // len(files) + 1))[: cells * cells]
        tiles = [_label_map(f, cell) for f in files]
    else:
        block = cell // 8
        tiles = [np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((block, block, 1)))
                 .astype(np.uint8) for _ in range(cells * cells)]  # fmt: skip
    rows = [np.concatenate(tiles[r * cells : (r + 1) * cells], axis=1) for r in range(cells)]
    # shifted so that the label maps' own borders do not fall on the tiles' edges
    image = np.roll(np.concatenate(rows, axis=0), (101, 57), axis=(0, 1))
    return to_tensor(image)[None]


def _label_map(path: Path, cell: int) -> np.ndarray:
    """The label-map half of a facades file, resized (nearest) to cell x cell."""
    from PIL import Image

    half = read_image(path, 3)[:, 256:]
    return np.asarray(Image.fromarray(half).resize((cell, cell), Image.NEAREST))


def picture(x: torch.Tensor, model: Pix2Pix, tile: int, overlap: int, path: Path) -> None:
    """input | whole image | hard tiles, each on its own batch statistics (what tiling by
    hand gives) | ours (blended, the image's statistics): the paper's mode, seed 0."""
    from pix2pix.data.files.images import save_image, to_uint8

    naive = model.translate_tensor(x, seed=0, tile=tile, overlap=0)
    ours = model.translate_tensor(x, seed=0, tile=tile, overlap=overlap, tile_stats="image")
    whole = model.translate_tensor(x, seed=0)
    gap = torch.ones(1, 3, x.shape[2], 8)
    strip = torch.cat([x, gap, whole, gap, naive, gap, ours], dim=3)[0]
    save_image(to_uint8(strip), path)


def calibrated_model(x: torch.Tensor, checkpoint: str | None) -> Pix2Pix:
    if checkpoint:
        return Pix2Pix.load(checkpoint, device="cpu", precision="fp32", compile="off")
    cfg = RunConfig(model=ModelConfig(generator="unet_256", in_channels=3, out_channels=3))
    torch.manual_seed(0)
    g = build_generator(cfg.model)
    for m in g.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # a cumulative average over the calibration crops
    g.train()
    with torch.no_grad():
        for y0 in range(0, x.shape[-2], 256):
            for x0 in range(0, x.shape[-1], 256):
                g(x[:, :, y0 : y0 + 256, x0 : x0 + 256])
    return Pix2Pix(g.eval(), cfg, torch.device("cpu"), Speed("fp32"))


def seam_ratio(y: torch.Tensor, tile: int, overlap: int) -> float:
    """Mean |gradient| across the tiles' edges over the mean |gradient| elsewhere."""
    img = (y[0].clamp(-1, 1) + 1) / 2  # (C, H, W) in [0, 1]
    dx = (img[:, :, 1:] - img[:, :, :-1]).abs().mean((0, 1))  # per column boundary
    dy = (img[:, 1:, :] - img[:, :-1, :]).abs().mean((0, 2))  # per row boundary
    ratios = []
    for grad, length in ((dx, img.shape[2]), (dy, img.shape[1])):
        starts = tile_starts(length, tile, overlap)
        edges = {s for s in starts[1:]} | {s + tile for s in starts[:-1]}
        at = torch.tensor(sorted(e - 1 for e in edges if 0 < e < length))
        mask = torch.zeros_like(grad, dtype=torch.bool)
        mask[at] = True
        ratios.append((grad[mask].mean() / grad[~mask].mean()).item())
    return float(max(ratios))


def timed(fn, reps: int = 3) -> tuple[torch.Tensor, float]:  # type: ignore[no-untyped-def]
    out = fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, sorted(times)[len(times) // 2]


def run(args: argparse.Namespace) -> dict:
    x = mosaic(args.size, Path(args.data) if args.data else None, cell=getattr(args, "cell", 256))
    model = calibrated_model(x, args.checkpoint)
    if getattr(args, "picture", None):
        picture(x, model, args.tile, args.overlap, Path(args.picture))
    tile, overlap = args.tile, args.overlap
    whole, t_whole = timed(lambda: model.translate_tensor(x, eval_mode=True))
    tiled, t_tiled = timed(lambda: model.translate_tensor(x, eval_mode=True, tile=tile,
                                                          overlap=overlap))  # fmt: skip
    hard = model.translate_tensor(x, eval_mode=True, tile=tile, overlap=0)
    covered = len(tile_starts(args.size, tile, overlap)) ** 2 * tile * tile / args.size**2
    paper = model.translate_tensor(x, seed=0)
    paper_tiles = model.translate_tensor(x, seed=0, tile=tile, overlap=overlap)
    paper_image = model.translate_tensor(x, seed=0, tile=tile, overlap=overlap,
                                         tile_stats="image")  # fmt: skip

    def diff(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a - b).abs().mean() / 2).item()  # on [0, 1]

    return {
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "size": args.size, "tile": tile, "overlap": overlap,
        "model": args.checkpoint or "unet_256 (seeded, BN statistics calibrated)",
        "eval_mean_abs_diff": diff(tiled, whole),
        "eval_seam_ratio_blended": seam_ratio(tiled, tile, overlap),
        "eval_seam_ratio_hard_tiles": seam_ratio(hard, tile, 0),
        "eval_seam_ratio_whole": seam_ratio(whole, tile, overlap),
        "seconds_whole": t_whole, "seconds_tiled": t_tiled,
        "time_ratio": t_tiled / t_whole,
        "pixels_covered_ratio": covered,
        "time_ratio_per_covered_pixel": t_tiled / t_whole / covered,
        "paper_mean_abs_diff_tile_stats": diff(paper_tiles, paper),
        "paper_mean_abs_diff_image_stats": diff(paper_image, paper),
        "paper_seam_ratio_tile_stats": seam_ratio(paper_tiles, tile, overlap),
        "paper_seam_ratio_image_stats": seam_ratio(paper_image, tile, overlap),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="facades folder (its test/ label maps); else synthetic")
    parser.add_argument("--checkpoint", help="a trained checkpoint instead of the seeded one")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--cell", type=int, default=256, help="side of each label map")
    parser.add_argument("--picture", help="write input | whole | hand tiles | ours here")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    configure_backends()
    result = run(args)
    for key, value in result.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
