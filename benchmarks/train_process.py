"""Training, whole process: `pix2pix train` against a plain fp32 eager script of the same
algorithm, from process start to exit, data loading, logging and checkpoints included.

    python -m benchmarks.train_process [--data DIR] [--steps 10,40] [--size 256]
                                       [--reps 2] [--out runs/train_process] [--json F]

The data: DIR (aligned pairs, e.g. ../shared/data/facades/train) or, without it, 32
random 512x256 JPEG pairs. Both variants train `unet_SIZE` + the 70x70 PatchGAN at
SIZE x SIZE, batch 1, AtoB, the paper's jitter (resize to SIZE * 286/256, random crop,
flip), each run a new process:

- baseline: the plain way (the official code's): fp32 eager NCHW, per-tensor Adam
  (`benchmarks/baseline.py`), a DataLoader with the official default of 4 worker
  processes decoding JPEGs with PIL every epoch, a loss print every 100 steps, the
  weights saved at the end;
- ours: `pix2pix train --max-steps K` with its defaults (`auto` speed settings from this
  CPU's features, the decoded-image cache, the loss log every step, sample grids and
  checkpoints on their schedule, the health diagnostics).

Per step: the difference between the long and the short run's wall times over the
difference in steps (start-up, the first steps' warm-up and the final save excluded).
Variants alternate (A B A B).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import process_timing
from benchmarks.process_timing import summarise, timed, worker_env
from pix2pix.runtime import cpu_model


def plain_pair(path: Path, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """One aligned file as the official code prepares it: halves, resize, crop, flip."""
    ab = Image.open(path).convert("RGB")
    w, h = ab.size
    load = size * 286 // 256
    halves = [ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))]
    x, y = (int(v) for v in rng.integers(0, load - size + 1, 2))
    flip = rng.random() < 0.5
    out = []
    for half in halves:
        half = half.resize((load, load), Image.BICUBIC).crop((x, y, x + size, y + size))
        if flip:
            half = half.transpose(Image.FLIP_LEFT_RIGHT)
        pixels = np.asarray(half, dtype=np.float32) / 127.5 - 1
        out.append(torch.from_numpy(pixels).permute(2, 0, 1))
    return tuple(out)


class PlainPairs(torch.utils.data.Dataset):
    def __init__(self, root: Path, size: int) -> None:
        self.files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".png"))
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return plain_pair(self.files[i], self.size, np.random.default_rng())


def worker(data: Path, out: Path, steps: int, size: int) -> None:
    """The baseline process: plain fp32 eager training for `steps` steps."""
    from safetensors.torch import save_file

    from benchmarks.baseline import PlainPix2Pix
    from pix2pix.config import ModelConfig

    torch.manual_seed(0)
    model = PlainPix2Pix(
        ModelConfig(generator=f"unet_{size}", in_channels=3, out_channels=3), torch.device("cpu")
    )
    loader = torch.utils.data.DataLoader(PlainPairs(data, size), batch_size=1, shuffle=True,
                                         num_workers=4)  # fmt: skip
    step = 0
    while step < steps:
        for a, b in loader:
            model.train_step(a, b)
            step += 1
            if step % 100 == 0:
                print("step", step, flush=True)
            if step == steps:
                break
    out.mkdir(parents=True, exist_ok=True)
    save_file(model.g.state_dict(), out / "generator.safetensors")


def synthetic(root: Path, count: int = 32) -> Path:
    """`count` random 512x256 JPEG pairs (noise decodes like photos do: slowly)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (256, 512, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:03d}.jpg", quality=90)
    return root


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else synthetic(out / "data")
    data = data / "train" if (data / "train").is_dir() else data  # as `pix2pix train` does
    with tempfile.TemporaryDirectory(dir=out, prefix="runs-") as runs:  # ~0.7 GB a run
        times = timings(args, data, Path(runs))
    return {
        "cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "size": args.size, "data": str(data), "variants": summarise(times, "step"),
    }  # fmt: skip


def timings(args: argparse.Namespace, data: Path, out: Path) -> dict[str, dict[int, list]]:
    """Wall seconds of each variant and run length, `args.reps` times, alternating."""
    env = worker_env()
    load = str(args.size * 286 // 256)

    def ours(k: int, rep: int) -> list[str]:
        return [sys.executable, "-m", "pix2pix", "train", "--data", str(data),
                "--out", str(out / f"ours{k}_{rep}"), "--generator", f"unet_{args.size}",
                "--load-size", load, "--crop-size", str(args.size),
                "--max-steps", str(k)]  # fmt: skip

    def baseline(k: int, rep: int) -> list[str]:
        return [sys.executable, "-m", "benchmarks.train_process", "--worker", str(data),
                str(out / f"base{k}_{rep}"), str(k), str(args.size)]  # fmt: skip

    variants = {"baseline": baseline, "ours": ours}
    times: dict[str, dict[int, list[float]]] = {v: {k: [] for k in args.steps} for v in variants}
    for rep in range(args.reps):
        for k in args.steps:
            for name, command in variants.items():
                times[name][k].append(timed(command(k, rep), env))
    return times


def table(result: dict[str, Any]) -> str:
    heading = (
        f"Training, whole process, {result['size']}x{result['size']}, batch 1; "
        f"{result['cpu']}, {result['threads']} threads, torch {result['torch']}."
    )
    return process_timing.table(heading, result["variants"], "step", "steps", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--data", default="", help="aligned pairs (default: synthetic)")
    parser.add_argument("--steps", default="10,40", help="two run lengths, comma-separated")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--out", default="runs/train_process")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if args.worker:
        data, out, steps, size = args.worker
        worker(Path(data), Path(out), int(steps), int(size))
        return
    args.steps = sorted(int(k) for k in args.steps.split(","))
    result = run(args)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
