"""Each speed knob on its own, against the plain fp32 eager baseline, in one process.

    python -m benchmarks.knobs [--device cpu|cuda] [--size 256] [--batch-size 1]
                               [--reps 5] [--skip bf16,compile] [--json PATH]

Training variants switch one setting of `pix2pix.runtime.Speed` at a time on top of our
trainer (fused Adam), inference variants the same for `Pix2Pix`; all are timed
interleaved (A B C A B C ...) and reported as the median and the ratio to the baseline
measured in the same run. This is the table behind the `auto` defaults in
`pix2pix.runtime.default_speed` (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.baseline import PlainPix2Pix
from benchmarks.throughput import interleaved
from pix2pix.config import ModelConfig, RunConfig, TrainConfig
from pix2pix.runtime import Speed, configure_backends, native_bf16, resolve_device
from pix2pix.training.trainer import Trainer
from pix2pix.translate import Pix2Pix


def train_variants(device: torch.device, skip: set[str]) -> dict[str, Speed]:
    low = "bf16" if device.type == "cpu" else "fp16"
    variants = {
        "fused Adam (fp32, NCHW, eager)": Speed(),
        "+ channels_last": Speed(channels_last=True),
        "+ bf16 autocast": Speed("bf16"),
        "+ bf16 autocast + channels_last": Speed("bf16", channels_last=True),
        "+ torch.compile": Speed(compile=True),
    }
    if device.type == "cuda":
        variants[f"+ {low} autocast + grad scaler"] = Speed(low)
        variants["+ bf16 + channels_last + compile"] = Speed("bf16", True, True)
        variants["+ bf16 + channels_last + reduce-overhead"] = Speed(
            "bf16", True, True, "reduce-overhead"
        )
    return {k: v for k, v in variants.items() if not any(s in k for s in skip)}


def infer_variants(device: torch.device, skip: set[str]) -> dict[str, Speed]:
    variants = {
        "eager fp32": Speed(),
        "channels_last": Speed(channels_last=True),
        "bf16 weights": Speed("bf16"),
        "bf16 weights + channels_last": Speed("bf16", channels_last=True),
        "compile (frozen weights)": Speed(compile=True),
        "compile + channels_last": Speed(channels_last=True, compile=True),
        "compile + bf16 + channels_last": Speed("bf16", channels_last=True, compile=True),
    }
    return {k: v for k, v in variants.items() if not any(s in k for s in skip)}


def run(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    skip = {s for s in args.skip.split(",") if s}
    size, batch = args.size, args.batch_size
    model = ModelConfig(generator=f"unet_{size}", in_channels=3, out_channels=3)
    config = RunConfig(model=model, train=TrainConfig(batch_size=batch, device=str(device)))
    torch.manual_seed(0)
    a = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    b = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    plain = PlainPix2Pix(model, device)

    train: dict[str, Callable[[], object]] = {"plain fp32 eager": lambda: plain.train_step(a, b)}
    for name, speed in train_variants(device, skip).items():
        trainer = Trainer(config, device, speed)
        ta, tb = trainer.to_device(a), trainer.to_device(b)
        train[name] = lambda trainer=trainer, ta=ta, tb=tb: trainer.step(ta, tb)
    infer: dict[str, Callable[[], object]] = {"plain fp32 eager": lambda: plain.infer(a)}
    for name, speed in infer_variants(device, skip).items():
        model_ = Pix2Pix(plain.g, config, device, speed)
        infer[name] = lambda m=model_: m.translate_tensor(a)
    for fn in [*train.values(), *infer.values()]:  # warm-up, compilation included
        fn()
        fn()
    train_s = interleaved(train, args.reps, 1, device)
    infer_s = interleaved(infer, args.reps, 2, device)
    base_t, base_i = train_s["plain fp32 eager"], infer_s["plain fp32 eager"]
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "native_bf16": native_bf16(device.type),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "size": size,
        "batch_size": batch,
        "train": {k: {"s": v, "speedup": base_t / v} for k, v in train_s.items()},
        "infer": {k: {"s": v, "speedup": base_i / v} for k, v in infer_s.items()},
    }


def table(r: dict) -> str:
    lines = [
        f"{r['device']} ({r['device_name']}, {r['threads']} threads, native bf16: "
        f"{r['native_bf16']}), torch {r['torch']}, {r['size']}x{r['size']}, "
        f"batch {r['batch_size']}",
    ]
    for part in ("train", "infer"):
        lines += ["", f"| {part} variant | s/iter | vs plain |", "|---|---|---|"]
        lines += [f"| {name} | {v['s']:.3f} | {v['speedup']:.2f}x |" for name, v in r[part].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--skip", default="", help="skip variants naming any of these comma-separated words"
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    configure_backends()
    result = run(args)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
