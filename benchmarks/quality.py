"""Facades quality benchmark: train labels -> photo, score the 106 test pairs like the paper.

    python -m benchmarks.quality --data ../shared/data/facades --out runs/quality_128 \
        --size 128 --minutes 60
    python -m benchmarks.quality --data ../shared/data/facades --out runs/quality_256 \
        --size 256 --epochs 200          # the paper's protocol (a GPU's job)

Steps, each reused when its output already exists in --out (so an interrupted run
continues where it stopped):

1. train pix2pix on facades train/ in the paper's setting (BtoA, U-Net + 70x70 PatchGAN,
   batch 1, Adam 2e-4, lambda 100, jitter: resize to size * 286/256, random crop, flip;
   half the epochs at constant LR, half decaying), for --epochs, or for as many epochs as
   fit in --minutes (measured from the speed of this machine's first steps), or only
   --max-steps steps (smoke tests);
2. train the FCN-score segmenter on the real train photos (or reuse --segmenter);
3. `evaluate` on test/ (106 pairs): FID, KID, FCN-scores (generated and real), SSIM,
   MS-SSIM, PSNR, L1, with the paper's test-time mode (dropout on, batch statistics);
4. write OUT/quality.md (a markdown table) and OUT/quality.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import time
from pathlib import Path
from typing import Any

import torch

from pix2pix.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.evaluation.evaluate import evaluate
from pix2pix.runtime import resolve_device
from pix2pix.segmentation import SegmenterConfig, train_segmenter
from pix2pix.training.loop import fit
from pix2pix.training.trainer import Trainer

log = logging.getLogger("benchmarks.quality")

PUBLISHED = {"official pix2pix (FID)": 119.1, "second reimplementation (FID)": 125.0}


def seconds_per_step(size: int, ngf: int, device: str, steps: int = 8, warmup: int = 3) -> float:
    """Median seconds of one training step at `size` on `device` (random data)."""
    dev = resolve_device(device)
    model = ModelConfig(f"unet_{size}", ngf=ngf, ndf=ngf, in_channels=3, out_channels=3)
    config = RunConfig(model=model, train=TrainConfig(device=str(dev)))
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(0)
        trainer = Trainer(config, dev)
        a, b = (torch.rand(2, 1, 3, size, size, device=dev) * 2 - 1).unbind(0)
        times = []
        for i in range(warmup + steps):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
            trainer.step(a, b)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def train_config(args: argparse.Namespace, epochs: int) -> RunConfig:
    load = round(args.size * 286 / 256)
    return RunConfig(
        model=ModelConfig(generator=f"unet_{args.size}", ngf=args.ngf, ndf=args.ngf),
        data=DataConfig(root=args.data, direction="BtoA", load_size=load, crop_size=args.size),
        train=TrainConfig(
            epochs=epochs - epochs // 2,
            decay_epochs=epochs // 2,
            batch_size=1,
            seed=args.seed,
            device=args.device,
            max_steps=args.max_steps,
            save_every=1000,
            sample_every=2000,
            keep_every=0,
        ),
    )


def choose_epochs(args: argparse.Namespace, train_pairs: int) -> int:
    if args.epochs:
        return args.epochs
    if args.max_steps:
        return max(2, math.ceil(args.max_steps / train_pairs))
    step = seconds_per_step(args.size, args.ngf, args.device)
    epochs = max(2, int(args.minutes * 60 / (step * train_pairs)))
    log.info("%.3f s/step here: %d epochs fit in %.0f minutes", step, epochs, args.minutes)
    return epochs


def markdown(result: dict[str, Any]) -> str:
    e, fcn = result["evaluation"], result["evaluation"].get("fcn")
    mean = e["mean"]
    rows = [
        ("FID (lower is better)", e.get("fid")),
        ("KID x 1000", e["kid"]["mean"] * 1000 if "kid" in e else None),
        ("SSIM", mean["ssim"]),
        ("MS-SSIM", mean["ms_ssim"]),
        ("PSNR (dB)", mean["psnr"]),
        ("L1 (0-1 scale)", mean["l1"]),
    ]
    names = {"pixel_acc": "per-pixel acc.", "class_acc": "per-class acc.", "class_iou": "class IoU"}
    for key, name in names.items() if fcn else ():
        pair = (fcn["generated"][key], fcn["real"][key])
        rows.append((f"FCN {name}: generated / real", pair))

    def cell(v: Any) -> str:
        if v is None:
            return "not measured"
        if isinstance(v, tuple):
            return " / ".join(f"{x:.3f}" for x in v)
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"

    p = result["protocol"]
    lines = [
        f"Facades labels -> photo, {p['size']}x{p['size']}, {p['epochs']} epochs "
        f"({p['steps']} steps, batch 1), {p['train_minutes']:.1f} min of training steps "
        f"(median {p['median_s_per_step']:.2f} s/step) on "
        f"{result['machine']}; evaluated on {e['images']} test pairs in {e['seconds']:.0f} s.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {cell(v)} |" for name, v in rows),
    ]
    return "\n".join(lines) + "\n"


def step_seconds(run_dir: Path) -> list[float]:
    """Seconds of each training step from `run_dir/log.jsonl`, one per step even when a
    resumed run repeated steps after its last checkpoint (the last record wins)."""
    seconds: dict[int, float] = {}
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "sec" in record:
            seconds[record["step"]] = record["sec"]
    return list(seconds.values())


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    data = Path(args.data)
    run_dir = out / "run"
    resume = (run_dir / "latest").exists()
    if resume:  # continue with the saved schedule (the epoch count is part of it)
        saved = json.loads((run_dir / "latest" / "config.json").read_text())["config"]
        config = RunConfig.from_dict(saved).replace(train={"max_steps": args.max_steps})
    else:
        config = train_config(args, choose_epochs(args, len(find_pairs(data / "train"))))
    checkpoint = fit(config, run_dir, resume=resume)
    # From the log, not a clock around fit(): an interrupted and resumed run counts every
    # step once (time waiting between the two processes excluded).
    seconds = step_seconds(run_dir)
    progress = json.loads((checkpoint / "config.json").read_text())["progress"]

    segmenter = Path(args.segmenter) if args.segmenter else out / "segmenter"
    if not (segmenter / "config.json").exists():
        seg_config = SegmenterConfig(
            root=str(data), palette="facades", photo_side="A", size=args.size,
            epochs=args.segmenter_epochs, device=args.device,
        )  # fmt: skip
        train_segmenter(seg_config, segmenter)
    _, summary = evaluate(
        checkpoint, data, out / "eval", split="test", fid=True,
        segmenter=segmenter, device=args.device, progress=False, overwrite=True,
    )  # fmt: skip
    result = {
        "protocol": {
            "size": args.size,
            "epochs": config.train.total_epochs,
            "steps": progress["step"],
            "train_minutes": sum(seconds) / 60,
            "median_s_per_step": sorted(seconds)[len(seconds) // 2],
            "ngf": args.ngf,
            "seed": args.seed,
        },
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "published": PUBLISHED,
        "evaluation": summary,
    }
    (out / "quality.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "quality.md").write_text(markdown(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/facades", help="facades folder")
    parser.add_argument("--out", default="runs/quality", help="benchmark folder")
    parser.add_argument("--size", type=int, default=128, help="image size (paper: 256)")
    parser.add_argument("--ngf", type=int, default=64, help="network widths (paper: 64)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, help="total epochs (half of them decaying)")
    budget.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after K steps (smoke)")
    parser.add_argument("--segmenter", help="reuse this segmenter folder")
    parser.add_argument("--segmenter-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run(args)
    print(markdown(result))
    print(f"written: {Path(args.out) / 'quality.md'} and quality.json")


if __name__ == "__main__":
    main()
