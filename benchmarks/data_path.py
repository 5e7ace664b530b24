"""The data path per rank: images/s each rank's loader delivers with 1 and with 2 ranks.

    python -m benchmarks.data_path [--data DIR] [--ranks 1,2] [--epochs 2] [--size 256]
                                   [--workers -1] [--cache auto] [--json PATH]

Each rank is its own process reading its shard of one dataset exactly as `fit` does
(PairedDataset, the rank's EpochBatchSampler shard, a DataLoader with the training
default's workers): decoding, the paper's resize + crop + flip, collation; no model. The
ranks of one setting start together (a barrier) and run at the same time, so with 2 ranks
they compete for the cores and the disk as two torchrun processes on one node do. The
figure to compare is a training step's demand: batch / (seconds per step) images/s per
rank (about 1-2 at 256x256 on a 2-core CPU, docs/PERFORMANCE.md); a loader far above it
is not the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from benchmarks.throughput import write_facades_like
from pix2pix.config import DataConfig
from pix2pix.data.pairs.datasets import PairedDataset
from pix2pix.data.pairs.sampler import EpochBatchSampler
from pix2pix.runtime import cpu_model
from pix2pix.training.loop import _workers


def rank_rate(args: argparse.Namespace, rank: int, world: int, barrier: Any, out: Any) -> None:
    """One rank: images/s over `args.epochs` epochs of its shard, put on `out`."""
    torch.set_num_threads(max(1, torch.get_num_threads() // world))  # as torchrun's ranks
    load = round(args.size * 286 / 256)
    cfg = DataConfig(root=args.data, cache=args.cache, workers=args.workers, direction="BtoA",
                     load_size=load, crop_size=args.size)  # fmt: skip
    dataset = PairedDataset(cfg, 3, 3)
    sampler = EpochBatchSampler(len(dataset), args.batch_size, rank=rank, world_size=world)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=_workers(cfg.workers))
    barrier.wait()
    start, count = time.perf_counter(), 0
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            count += batch["input"].shape[0]
    out.put((rank, count / (time.perf_counter() - start)))


def setting(args: argparse.Namespace, world: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(world), ctx.Queue()
    ranks = [ctx.Process(target=rank_rate, args=(args, r, world, barrier, out))
             for r in range(world)]  # fmt: skip
    for p in ranks:
        p.start()
    rates = dict(out.get(timeout=600) for _ in ranks)
    for p in ranks:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"rank process exited with {p.exitcode}")
    per_rank = [rates[r] for r in range(world)]
    return {"ranks": world, "per_rank_ips": per_rank, "total_ips": sum(per_rank)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        if not args.data:
            args.data = str(write_facades_like(Path(tmp) / "data", 16, args.size))
        settings = [setting(args, world) for world in args.ranks]
    return {
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "data": args.data,
        "size": args.size,
        "cache": args.cache,
        "workers_per_rank": _workers(args.workers),
        "settings": settings,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"Data path per rank, {result['size']}x{result['size']}, {result['data']}, cache "
        f"{result['cache']}, {result['workers_per_rank']} loader workers per rank; "
        f"{result['cpu']}, {result['threads']} threads.",
        "",
        "| ranks | images/s per rank | images/s all ranks |",
        "|---|---|---|",
    ]
    for s in result["settings"]:
        per = " / ".join(f"{v:.1f}" for v in s["per_rank_ips"])
        lines.append(f"| {s['ranks']} | {per} | {s['total_ips']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a paired folder (default: 16 synthetic pairs)")
    parser.add_argument("--ranks", default="1,2", help="comma-separated rank counts")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--size", type=int, default=256, help="crop size (load 286/256 x)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--workers", type=int, default=-1, help="-1: the training default")
    parser.add_argument("--cache", default="auto")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    args.ranks = [int(r) for r in args.ranks.split(",")]
    result = run(args)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
