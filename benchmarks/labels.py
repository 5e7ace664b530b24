"""Label-map methods against the paper's recipe: step time, parameters, GFLOP per image.

    python -m benchmarks.labels --size 128 [--ngf 32,64] [--precision fp32]

For each configuration (the paper recipe with unet_SIZE; --recipe spade and --recipe oasis
with a facades-palette label input, at each --ngf): the median seconds of one training
step on random tensors at SIZE x SIZE, batch 1, measured in this process one after the
other (the paper recipe first and last, so a machine that slows down shows), the ratio to
the paper recipe, G's and D's parameters, and G's and D's forward GFLOP per image
(`torch.utils.flop_counter`).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from pix2pix.config import RunConfig
from pix2pix.runtime import Speed, resolve_speed
from pix2pix.training.trainer import Trainer


def config_for(recipe: str, size: int, ngf: int, precision: str) -> RunConfig:
    model: dict[str, Any] = {"generator": f"unet_{size}", "in_channels": 3, "out_channels": 3}
    data: dict[str, Any] = {"crop_size": size, "load_size": size}
    if recipe != "paper":
        model |= {"generator": "spade", "labels": "palette", "ngf": ngf}
        data |= {"palette": "facades"}
    train = {"recipe": recipe, "device": "cpu", "precision": precision}
    return RunConfig.from_dict({"model": model, "data": data, "train": train})


def gflop(module: torch.nn.Module, *args: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*args)
    return counter.get_total_flops() / 1e9


def measure(config: RunConfig, steps: int, warmup: int = 2) -> dict[str, Any]:
    size = config.data.crop_size
    torch.manual_seed(0)
    speed: Speed = resolve_speed(torch.device("cpu"), "train", config.train.precision, "off", "off")
    trainer = Trainer(config, torch.device("cpu"), speed)
    a, b = (torch.rand(2, 1, 3, size, size) * 2 - 1).unbind(0)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        trainer.step(a, b)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    g, d = trainer.modules["generator"], trainer.modules["discriminator"]
    extra = [torch.zeros(1, config.model.nz)] if config.model.nz else []
    d_in = (
        b
        if config.model.discriminator == "oasis" or not config.model.conditional
        else torch.cat([a, b], 1)
    )
    return {
        "s_per_step": sorted(times)[len(times) // 2],
        "g_params_m": sum(p.numel() for p in g.parameters()) / 1e6,
        "d_params_m": sum(p.numel() for p in d.parameters()) / 1e6,
        "g_gflop": gflop(g.eval(), a, *extra),
        "d_gflop": gflop(d.eval(), d_in),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--ngf", default="32,64", help="SPADE generator widths to measure")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    runs = [("paper", 64)]
    runs += [(r, int(n)) for n in args.ngf.split(",") for r in ("spade", "oasis")]
    runs += [("paper", 64)]
    results = []
    for recipe, ngf in runs:
        config = config_for(recipe, args.size, ngf, args.precision)
        results.append({"recipe": recipe, "ngf": ngf, **measure(config, args.steps)})
    base = (results[0]["s_per_step"] + results[-1]["s_per_step"]) / 2
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.size}x{args.size}, batch 1, "
          f"precision {args.precision}")  # fmt: skip
    print("| recipe | ngf | s/step | x paper | G params (M) | D params (M) | G GFLOP | D GFLOP |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        r["x_paper"] = r["s_per_step"] / base
        print(f"| {r['recipe']} | {r['ngf']} | {r['s_per_step']:.3f} | {r['x_paper']:.2f} | "
              f"{r['g_params_m']:.1f} | {r['d_params_m']:.1f} | {r['g_gflop']:.2f} | "
              f"{r['d_gflop']:.2f} |")  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
