"""A huge image through `pix2pix translate` in bounded memory: peak resident memory of the
whole process, time, and the output checked against the input's size and format.

    python -m benchmarks.large_image [--size 16384] [--tile 512] [--overlap 64]
        [--out runs/large_image] [--json PATH]

It writes OUT/scene.tif (a tiled RGB TIFF of `--size` x `--size`, BigTIFF when needed,
a mosaic of flat coloured blocks like a label map, with GeoTIFF tags), and a checkpoint
OUT/ck of `unet_256` at the default width (seeded, untrained: the memory and time of a
forward pass do not depend on the weights). Then, in a child process, it runs

    pix2pix translate --checkpoint OUT/ck OUT/scene.tif --out OUT/out --eval
        --tile T --tile-overlap V --max-image-pixels 0

and reads the child's peak resident set size (`getrusage(RUSAGE_CHILDREN).ru_maxrss`,
the whole process: Python, torch, the model, the bands). The output must be a TIFF of
the same size and channels, with the georeferencing tags kept.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.config import ModelConfig, RunConfig
from pix2pix.nets import build_generator
from pix2pix.runtime import cpu_model
from pix2pix.translate.bands import TIFF_TILE, TiffBands, tifffile, write_bands

GEO = [(33550, 12, 3, (0.5, 0.5, 0.0), True), (34737, 2, 7, "WGS 84", True)]


def write_scene(path: Path, size: int, seed: int = 0) -> None:
    """A size x size RGB mosaic of 64-pixel blocks of random colours, written in bands."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (12, 3), dtype=np.uint8)
    blocks = -(-size // 64)

    def rows():
        for top in range(0, size, TIFF_TILE):
            labels = rng.integers(0, 12, (TIFF_TILE // 64, blocks))
            band = np.repeat(np.repeat(colours[labels], 64, axis=0), 64, axis=1)
            yield np.ascontiguousarray(band[: min(TIFF_TILE, size - top), :size])

    write_bands(path, rows(), (size, size), 3, np.dtype(np.uint8), GEO)


def write_checkpoint(path: Path, generator: str = "unet_256", ngf: int = 64) -> None:
    model = ModelConfig(generator=generator, in_channels=3, out_channels=3, ngf=ngf)
    cfg = RunConfig(model=model)
    torch.manual_seed(0)
    save_checkpoint(path, cfg, Progress(), {"generator": build_generator(cfg.model)})


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene, ck = out / "scene.tif", out / "ck"
    if not scene.exists():
        write_scene(scene, args.size)
    if not (ck / "config.json").exists():
        write_checkpoint(ck, args.generator)
    target = out / "out" / "scene.tif"
    target.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pix2pix", "translate", "--checkpoint", str(ck),
               str(scene), "--out", str(out / "out"), "--eval", "--tile", str(args.tile),
               "--tile-overlap", str(args.overlap), "--max-image-pixels", "0"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    src, dst = TiffBands(scene), TiffBands(target)
    same = (dst.height, dst.width, dst.channels, dst.dtype) == (
        src.height, src.width, src.channels, src.dtype)  # fmt: skip
    result = {
        "size": args.size,
        "generator": args.generator,
        "tile": args.tile,
        "overlap": args.overlap,
        "peak_rss_mib": peak_kib / 1024,
        "input_mib": scene.stat().st_size / 2**20,
        "output_mib": target.stat().st_size / 2**20,
        "seconds": seconds,
        "seconds_per_megapixel": seconds / (args.size * args.size / 1e6),
        "output_matches_input_size_and_format": bool(same),
        "georeferencing_kept": dst.tags == src.tags,
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "tifffile": tifffile().__version__,
        "command": " ".join(command),
    }
    src.close()
    dst.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--generator", default="unet_256")
    parser.add_argument("--out", default="runs/large_image")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
