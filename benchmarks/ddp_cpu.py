"""Multi-process training on CPU: 2 gloo processes under torchrun against 1 process.

    python -m benchmarks.ddp_cpu [--size 64] [--global-batch 4] [--steps 60] [--repeats 2]

A functional measurement of the DistributedDataParallel code path, NOT a measurement of
GPU scaling: on one machine the two processes share its cores (torchrun gives each
OMP_NUM_THREADS=1; the single process gets all the cores), so the ratio shows what the
gradient all-reduce, the per-step agreement and the extra process cost, not a speed-up.
Both variants train the same model on the same synthetic data with the same global batch
(1 x G images against 2 x G/2), each in its own `pix2pix train` command; the seconds per
step after warm-up are read from each run's log.jsonl and the medians reported. The
variants alternate (A B A B ...) so that a busy neighbour hits both alike.
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

from pix2pix.data.synthetic import write_dataset
from pix2pix.runlog import read_log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    parser.add_argument("--steps", type=int, default=60, help="steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="first steps not counted")
    parser.add_argument("--repeats", type=int, default=2, help="runs per variant")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    results: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(Path(tmp) / "data", size=args.size, train=64, test=0) / "train"
        for r in range(args.repeats):
            for processes in (1, 2):
                out = Path(tmp) / f"run{processes}_{r}"
                batch = args.global_batch // processes
                cmd = train_command(processes, data, out, args.size, batch, args.steps)
                subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=1800)
                results[processes].append(seconds_per_step(out, args.warmup))
    cpu = platform.processor() or platform.machine()
    print(f"CPU: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"unet_{args.size} (ngf 32) + patch_70 (ndf 32), global batch {args.global_batch}, fp32")
    print("| variant | s/step (median of runs) | images/s | runs |")
    print("|---|---|---|---|")
    base = statistics.median(results[1])
    for processes in (1, 2):
        sec = statistics.median(results[processes])
        label = "1 process" if processes == 1 else f"{processes} processes (gloo)"
        runs = ", ".join(f"{s:.4f}" for s in results[processes])
        print(f"| {label} | {sec:.4f} | {args.global_batch / sec:.1f} | {runs} |")
    ratio = base / statistics.median(results[2])
    print(f"2-process throughput / 1-process throughput: {ratio:.2f}")


if __name__ == "__main__":
    main()
