"""Translating a folder, whole process: `pix2pix translate` against a plain fp32 eager
script, from process start to the last file written.

    python -m benchmarks.translate_process [--images 4,24] [--size 256] [--reps 2]
                                           [--eval] [--out runs/translate_process]

The checkpoint is `unet_256` at the default width (seeded, untrained: speed does not
depend on the weights), the inputs N random 256x256 PNGs. Variants, each a new process:

- baseline: the plain way (the official code's): fp32 eager NCHW, one image at a time,
  PIL in and out (`--worker`, this file);
- ours, cold: `pix2pix translate` with an empty compile cache (what a first job sees);
- ours, warm: the same with the compiled generator in the cache (every later job on
  this machine; primed once with `--compile aot`, which is timed on its own);
- with `--backends`: ours in fp32 NCHW (what `auto` is on a CPU without native bf16),
  `--backend onnxruntime` and `--backend onnxruntime --quantize int8`, each warm.

Per image: the difference between the largest and smallest job's wall times over the
difference in images (start-up excluded). Variants alternate (A B C A B C).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import process_timing
from benchmarks.large_image import write_checkpoint
from benchmarks.process_timing import summarise, timed, worker_env
from pix2pix.runtime import cpu_model


def worker(checkpoint: Path, inputs: Path, out: Path, eval_mode: bool) -> None:
    """The baseline process: plain fp32 eager translation of every PNG in `inputs`."""
    from pix2pix.checkpoint import load_weights, read_meta
    from pix2pix.nets import build_generator

    config, _ = read_meta(checkpoint)
    g = build_generator(config.model, init=False)
    load_weights(g, checkpoint / "generator.safetensors")
    g.train(not eval_mode)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for path in sorted(inputs.glob("*.png")):
            a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 127.5 - 1
            y = g(torch.from_numpy(a).permute(2, 0, 1)[None])
            pixels = ((y[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
            Image.fromarray(pixels).save(out / path.name)


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    ck, cache = out / "ck", out / "cache"
    if not (ck / "config.json").exists():
        write_checkpoint(ck, args.generator)
    rng = np.random.default_rng(0)
    folders = {}
    for n in args.images:
        folders[n] = out / f"in{n}"
        folders[n].mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folders[n] / f"{i:03d}.png")
    mode = ["--eval"] if args.eval else []
    env = worker_env(PIX2PIX_CACHE=str(cache))
    cold_env = {**env, "PIX2PIX_CACHE": str(out / "empty")}

    def ours(n: int, *extra: str) -> list[str]:
        return [sys.executable, "-m", "pix2pix", "translate", "--checkpoint", str(ck),
                str(folders[n]), "--out", str(out / f"ours{n}"), "--overwrite", *mode,
                *extra]  # fmt: skip

    def baseline(n: int) -> list[str]:
        return [sys.executable, "-m", "benchmarks.translate_process", "--worker", str(ck),
                str(folders[n]), str(out / f"base{n}"), *mode]  # fmt: skip

    prime = timed(ours(min(args.images), "--compile", "aot"), env)  # builds the package
    variants = {"baseline": (baseline, env), "ours, cold cache": (ours, cold_env),
                "ours, warm cache": (ours, env)}  # fmt: skip
    if args.backends:  # each primed once (its compiled package or ONNX file cached)
        fp32 = ("--precision", "fp32", "--channels-last", "off")
        ort = ("--backend", "onnxruntime")
        for name, extra in (("ours fp32 (no native bf16), warm", fp32),
                            ("onnxruntime, warm", ort),
                            ("onnxruntime int8, warm", (*ort, "--quantize", "int8"))):  # fmt: skip
            first = ("--compile", "aot") if extra is fp32 else ()
            timed(ours(min(args.images), *extra, *first), env)
            variants[name] = (lambda n, extra=extra: ours(n, *extra), env)
    times: dict[str, dict[int, list[float]]] = {v: {n: [] for n in args.images} for v in variants}
    for _ in range(args.reps):
        for n in args.images:
            for name, (command, e) in variants.items():
                times[name][n].append(timed(command(n), e))
    return {
        "cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "size": args.size, "mode": "eval" if args.eval else "paper",
        "prime_seconds": prime, "variants": summarise(times, "image"),
    }  # fmt: skip


def table(result: dict[str, Any]) -> str:
    heading = (f"Folder translation, whole process, {result['size']}x{result['size']}, "
               f"{result['mode']} mode; {result['cpu']}, {result['threads']} threads, torch "
               f"{result['torch']}; building the cached package took "
               f"{result['prime_seconds']:.1f} s once.")  # fmt: skip
    return process_timing.table(heading, result["variants"], "image", "images", 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, metavar=("CK", "IN", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--images", default="4,24", help="comma-separated folder sizes")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--generator", default="unet_256")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--eval", action="store_true", help="eval-mode inference")
    parser.add_argument(
        "--backends", action="store_true", help="also fp32 (compiled), onnxruntime and its int8"
    )
    parser.add_argument("--out", default="runs/translate_process")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if args.worker:
        worker(*map(Path, args.worker), args.eval)
        return
    args.images = sorted(int(n) for n in args.images.split(","))
    result = run(args)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
