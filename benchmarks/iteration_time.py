"""Seconds per training iteration (D step + G step) of the paper's model.

    python -m benchmarks.iteration_time [--size 256] [--batch-size 1] [--iters 10]

Times `training.trainer.Trainer.step` on random tensors already on the device (data loading is
measured separately), after warm-up iterations, and reports the median and spread.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from pix2pix.config import ModelConfig, RunConfig, TrainConfig
from pix2pix.runtime import resolve_device
from pix2pix.training.trainer import Trainer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_iterations(
    size: int, batch_size: int, iters: int, warmup: int, device: torch.device, precision: str
) -> list[float]:
    config = RunConfig(
        model=ModelConfig(generator=f"unet_{size}", in_channels=3, out_channels=3),
        train=TrainConfig(batch_size=batch_size, precision=precision, device=str(device)),
    )
    torch.manual_seed(0)
    trainer = Trainer(config, device)
    a = torch.rand(batch_size, 3, size, size, device=device) * 2 - 1
    b = torch.rand(batch_size, 3, size, size, device=device) * 2 - 1
    times = []
    for i in range(warmup + iters):
        sync(device)
        start = time.perf_counter()
        trainer.step(a, b)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    args = parser.parse_args()
    device = resolve_device(args.device)
    times = time_iterations(
        args.size, args.batch_size, args.iters, args.warmup, device, args.precision
    )
    result = {
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "size": args.size,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "median_s_per_iter": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "iters": len(times),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
