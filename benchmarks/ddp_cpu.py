"""Multi-process training on CPU: 2 gloo processes under torchrun against 1 process.

    python -m benchmarks.ddp_cpu [--size 64] [--global-batch 4] [--steps 60] [--repeats 2]

A functional measurement of the DistributedDataParallel code path on CPU, NOT of GPU
scaling. Variants, all with the same model, synthetic data and global batch G:

- 1 process x 1 thread, batch G: one "device";
- 2 processes x 1 thread (torchrun, gloo), batch G/2 each: one core per rank, the CPU
  analogue of one GPU per rank; the ratio to the first is the scaling over 2 cores,
  net of the gradient all-reduce and the per-step agreement;
- 1 process x all cores (torch's default threads), batch G: what one would run anyway.

Each run is its own `pix2pix train` command; the seconds per step after warm-up are read
from its log.jsonl, and medians over runs reported. The variants alternate (A B C A B C)
so that a busy neighbour hits all alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from pix2pix.data.tools.synthetic import write_dataset
from pix2pix.training.runlog import read_log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


VARIANTS = {  # name: (processes, OMP threads per process; None: torch's default)
    "1 process x 1 thread": (1, 1),
    "2 processes x 1 thread (gloo)": (2, 1),
    "1 process x all cores": (1, None),
}


def train_command(
    processes: int, data: Path, out: Path, size: int, batch: int, steps: int
) -> list[str]:
    flags = [
        "-m", "pix2pix", "-q", "train", "--out", str(out), "--data", str(data),
        "--generator", f"unet_{size}", "--ngf", "32", "--ndf", "32", "--load-size", str(size),
        "--crop-size", str(size), "--batch-size", str(batch), "--max-steps", str(steps),
        "--workers", "0", "--sample-every", "0", "--save-every", "0", "--keep-every", "0",
        "--device", "cpu", "--precision", "fp32", "--no-progress",
    ]  # fmt: skip
    if processes == 1:
        return [sys.executable, *flags]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node"]
    return [*launcher, str(processes), "--master-port", str(free_port()), *flags]


def seconds_per_step(out: Path, warmup: int) -> float:
    return statistics.median(r["sec"] for r in read_log(out / "log.jsonl")[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image size (unet_<size>)")
    parser.add_argument("--global-batch", type=int, default=4, help="images per step in all")
    parser.add_argument("--steps", type=int, default=40, help="steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="first steps not counted")
    parser.add_argument("--repeats", type=int, default=2, help="runs per variant")
    args = parser.parse_args()
    skip = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "OMP_NUM_THREADS")
    base_env = {k: v for k, v in os.environ.items() if k not in skip}
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(Path(tmp) / "data", size=args.size, train=64, test=0) / "train"
        for r in range(args.repeats):
            for i, (name, (processes, threads)) in enumerate(VARIANTS.items()):
                out = Path(tmp) / f"run{i}_{r}"
                batch = args.global_batch // processes
                cmd = train_command(processes, data, out, args.size, batch, args.steps)
                env = {**base_env, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
                subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=1800)
                results[name].append(seconds_per_step(out, args.warmup))
    cpu = platform.processor() or platform.machine()
    print(f"CPU: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"load average at start / end: {load:.1f} / {os.getloadavg()[0]:.1f}")
    print(f"unet_{args.size} (ngf 32) + patch_70 (ndf 32), global batch {args.global_batch}, fp32")
    print("| variant | s/step (median of runs) | images/s | runs |")
    print("|---|---|---|---|")
    for name, secs in results.items():
        sec = statistics.median(secs)
        runs = ", ".join(f"{s:.3f}" for s in secs)
        print(f"| {name} | {sec:.3f} | {args.global_batch / sec:.1f} | {runs} |")
    one, two = (statistics.median(results[name]) for name in list(VARIANTS)[:2])
    print(f"2 processes x 1 thread / 1 process x 1 thread, throughput: {one / two:.2f}")


if __name__ == "__main__":
    main()
