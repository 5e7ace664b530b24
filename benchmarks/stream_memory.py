"""Peak resident memory of `pix2pix translate --tile` against image size and format: the
band readers and writers should make it independent of the image (issue 25, item 14).

    python -m benchmarks.stream_memory [--cases 2048.png 12000.png 16384.tif]
        [--tile 512] [--out runs/stream_memory] [--json PATH]

For each case SIZE.EXT it writes OUT/SIZE.EXT (a SIZE x SIZE RGB mosaic of flat blocks,
written in bands: PNG by our row encoder, TIFF tiled with GeoTIFF tags; JPEG and WebP by
pyvips when it is installed), and once a checkpoint OUT/ck of a tiny `unet_32` (ngf 2,
seeded, untrained: the memory of a forward pass does not depend on the weights). Then,
in a child process per case,

    pix2pix translate --checkpoint OUT/ck OUT/SIZE.EXT --out OUT/out --eval
        --tile T --precision fp32 --compile off --overwrite [EXTRA...]

and reads the child's peak resident set size (`ru_maxrss` of RUSAGE_CHILDREN, read
after each child from a fresh grandchild, so each figure is one process's). The figures
are reported with their ratio to the first case.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.large_image import GEO, write_checkpoint
from pix2pix.runtime import cpu_model
from pix2pix.translate.bands import TIFF_TILE, write_bands

MEASURE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def mosaic_rows(size: int, seed: int = 0):
    """A size x size RGB mosaic of 64-pixel blocks, TIFF_TILE rows at a time."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (12, 3), dtype=np.uint8)
    blocks = -(-size // 64)
    for top in range(0, size, TIFF_TILE):
        labels = rng.integers(0, 12, (TIFF_TILE // 64, blocks))
        band = np.repeat(np.repeat(colours[labels], 64, axis=0), 64, axis=1)
        yield np.ascontiguousarray(band[: min(TIFF_TILE, size - top), :size])


def write_case(path: Path, size: int) -> None:
    if path.suffix in (".png", ".tif"):
        tags = GEO if path.suffix == ".tif" else None
        write_bands(path, mosaic_rows(size), (size, size), 3, np.dtype(np.uint8), tags)
        return
    import pyvips  # JPEG / WebP of any size, without holding it: from a temporary PNG

    png = path.with_suffix(".tmp.png")
    write_bands(png, mosaic_rows(size), (size, size), 3, np.dtype(np.uint8))
    pyvips.Image.new_from_file(str(png), access="sequential").write_to_file(str(path))
    png.unlink()


def peak_rss_mib(command: list[str]) -> float:
    """Peak resident memory of `command` (a grandchild, so nothing else is counted)."""
    done = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout.split()[-1]) / 1024  # KiB on Linux


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ck = out / "ck"
    if not (ck / "config.json").exists():
        write_checkpoint(ck, "unet_32", ngf=2)
    rows = []
    for case in args.cases:
        size = int(case.split(".")[0])
        image = out / case
        if not image.exists():
            write_case(image, size)
        command = [sys.executable, "-m", "pix2pix", "translate", "--checkpoint", str(ck),
                   str(image), "--out", str(out / "out"), "--eval", "--tile", str(args.tile),
                   "--precision", "fp32", "--compile", "off", "--overwrite",
                   *args.extra]  # fmt: skip
        peak = peak_rss_mib(command)
        rows.append({"case": case, "peak_rss_mib": round(peak, 1), "command": " ".join(command)})
        print(f"{case}: {peak:.0f} MiB", flush=True)
    for row in rows:
        row["ratio_to_first"] = round(row["peak_rss_mib"] / rows[0]["peak_rss_mib"], 3)
    return {"tile": args.tile, "cpu": cpu_model(), "cases": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["2048.png", "12000.png", "16384.tif"])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--out", default="runs/stream_memory")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("extra", nargs="*", help="more translate flags (after --)")
    args = parser.parse_args()
    text = json.dumps(run(args), indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
