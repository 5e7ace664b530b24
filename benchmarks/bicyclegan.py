"""BicycleGAN against the paper's recipe: step time, and reconstruction with z = E(target).

    python -m benchmarks.bicyclegan --size 128 [--paper RUN --bicyclegan RUN --data DIR]

Step time: the median seconds of one training step of each method on random tensors at
SIZE x SIZE (unet_SIZE, the methods' own batch: 1 for the paper recipe, 2 for
bicyclegan), measured in this process one after the other, and their ratio. With two
trained runs: the mean L1 on the test pairs of the paper recipe's output (paper mode,
seed i) and of BicycleGAN's with the code its encoder reads from the target (mu of
E(target)), which carries the target's appearance.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from pix2pix.config import RunConfig
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.evaluation.pairs import load_eval_pair, model_input, target_tensor
from pix2pix.runtime import Speed
from pix2pix.training.trainer import Trainer
from pix2pix.translate import Pix2Pix


def step_seconds(method: str, size: int, steps: int = 6, warmup: int = 2) -> float:
    """Median seconds of one training step of `method` at `size` (fp32, CPU)."""
    raw = {
        "model": {
            "method": method,
            "generator": f"unet_{size}",
            "in_channels": 3,
            "out_channels": 3,
        },
        "data": {"crop_size": size, "load_size": size},
        "train": {"device": "cpu", "precision": "fp32"},
    }
    config = RunConfig.from_dict(raw)
    batch = config.train.batch_size
    torch.manual_seed(0)
    trainer = Trainer(config, torch.device("cpu"), Speed("fp32"))
    a, b = (torch.rand(2, batch, 3, size, size) * 2 - 1).unbind(0)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        trainer.step(a, b)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def reconstruction(paper: Path, bicycle: Path, data: Path) -> dict[str, float]:
    """Mean L1 (on [-1, 1]) against the targets of the test pairs: the paper recipe's
    output, and BicycleGAN's output with z = mu of E(target)."""
    models = {
        name: Pix2Pix.load(run, "cpu", precision="fp32", compile="off")
        for name, run in (("paper", paper), ("bicyclegan", bicycle))
    }
    totals = {"paper": 0.0, "bicyclegan_encoded": 0.0}
    pairs = find_pairs(data / "test")
    for i, pair in enumerate(pairs):
        for name, model in models.items():
            loaded = load_eval_pair(pair, model.config)
            x, y = model_input(loaded, model.config), target_tensor(loaded)
            if name == "paper":
                out = model.translate_tensor(x, seed=i)
                totals["paper"] += (out - y).abs().mean().item()
            else:
                mu, _ = model.encode(y)
                out = model.translate_tensor(x, eval_mode=True, extra={"z": mu})
                totals["bicyclegan_encoded"] += (out - y).abs().mean().item()
    return {k: v / len(pairs) for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--paper", type=Path, help="a trained paper-recipe run")
    parser.add_argument("--bicyclegan", type=Path, help="a trained bicyclegan run")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/facades"))
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    torch.set_num_threads(2)
    paper_s = step_seconds("pix2pix", args.size)
    bicycle_s = step_seconds("bicyclegan", args.size)
    result = {
        "cpu": platform.processor() or platform.machine(),
        "size": args.size,
        "paper_s_per_step": paper_s,
        "bicyclegan_s_per_step": bicycle_s,
        "ratio": bicycle_s / paper_s,
    }
    if args.paper and args.bicyclegan:
        result["l1"] = reconstruction(args.paper, args.bicyclegan, args.data)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
