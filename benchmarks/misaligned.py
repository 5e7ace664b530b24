"""Pairs that do not line up: the options' step time, and a picture of what they do.

    python -m benchmarks.misaligned speed --size 128 [--steps 8]
    python -m benchmarks.misaligned registration --data ../shared/data/facades
        --moved runs/facades_mis --size 64 --shift 6 [--pairs 40] [--model RUN]
    python -m benchmarks.misaligned picture --plain RUN --best RUN --data ../shared/data/facades
        --moved runs/facades_mis --out picture.png [--rows 4]

speed: the median seconds of one training step (random tensors, batch 1, SIZE x SIZE) of
`--recipe improved` and of each misalignment option on top of it, measured one after the
other in this process (the base first and last, so a machine that slows down shows), and
the ratio to the base.

registration: how close `--reconstruction aligned` brings a moved target to the aligned
one, on the first N training pairs of --data and their copies in --moved, as the mean
|registered - aligned target| inside a border of --shift pixels: the moved target as it is,
registered by the input's edges (1, 2, 4 tiles per side), by a model's output (--model,
optional: G's output early in training is a weak guide), and by the aligned target itself
(what a perfect guide would reach).

picture: rows of test pairs: input | the target as a model trained on the moved copy saw
it (from --moved) | the plain model's output | the best model's output | the aligned target.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.labels import measure
from pix2pix.config import RunConfig
from pix2pix.data.files.encoding import output_array
from pix2pix.data.files.images import from_tensor, save_image
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.evaluation.pairs import load_eval_pair, model_input, target_tensor
from pix2pix.html import image_grid
from pix2pix.translate import Pix2Pix

OPTIONS: dict[str, dict[str, Any]] = {
    "improved (base)": {},
    "--reconstruction-scale 4": {"reconstruction_scale": 4},
    "--reconstruction pyramid": {"reconstruction": "pyramid"},
    "--ffl-weight 100": {"ffl_weight": 100.0},
    "--nce-weight 1": {"nce_weight": 1.0},
    "--nce-weight 1 --nce-adaptive-steps 2000": {"nce_weight": 1.0, "nce_adaptive_steps": 2000},
    "--reconstruction pyramid --nce-weight 1": {"reconstruction": "pyramid", "nce_weight": 1.0},
    "--reconstruction aligned --align-shift 12 --align-guide output --align-tiles 4": {
        "reconstruction": "aligned",
        "align_shift": 12,
        "align_guide": "output",
        "align_tiles": 4,
    },
    "--reconstruction aligned --align-shift 12 (input guide, 1 tile)": {
        "reconstruction": "aligned",
        "align_shift": 12,
    },
    "--reconstruction aligned --align-shift 12 --ffl-weight 100": {
        "reconstruction": "aligned",
        "align_shift": 12,
        "ffl_weight": 100.0,
    },
}


def speed(args: argparse.Namespace) -> None:
    size = args.size
    runs = [*OPTIONS, "improved (base)"]
    results = []
    for name in runs:
        train = {"recipe": "improved", "device": "cpu", "precision": args.precision}
        config = RunConfig.from_dict({
            "model": {"generator": f"unet_{size}", "in_channels": 3, "out_channels": 3},
            "data": {"crop_size": size, "load_size": size},
            "train": {**train, **OPTIONS[name]},
        })  # fmt: skip
        results.append({"option": name, **measure(config, args.steps)})
    base = (results[0]["s_per_step"] + results[-1]["s_per_step"]) / 2
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {size}x{size}, batch 1, "
          f"precision {args.precision}")  # fmt: skip
    print("| option (on --recipe improved) | s/step | x base |\n|---|---|---|")
    for r in results:
        r["x_base"] = r["s_per_step"] / base
        print(f"| {r['option']} | {r['s_per_step']:.3f} | {r['x_base']:.2f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


def picture(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    load = dict(device="cpu", precision="fp32", compile="off")
    plain, best = (Pix2Pix.load(p, **load) for p in (args.plain, args.best))  # type: ignore[arg-type]
    aligned = find_pairs(Path(args.data) / "test", "auto")[: args.rows]
    moved = {p.a.stem: p for p in find_pairs(Path(args.moved) / "test", "auto")}
    grid = []
    for pair in aligned:
        p = load_eval_pair(pair, plain.config)
        shifted = load_eval_pair(moved[pair.a.stem], plain.config)
        x = model_input(p, plain.config)
        outs = [output_array(m.translate_tensor(x)[0], x[0], m.config.data) for m in (plain, best)]
        target, seen = (from_tensor(target_tensor(q)[0], "uint8") for q in (p, shifted))
        grid.append([np.asarray(p.input), seen, *outs, target])
    save_image(image_grid(grid), Path(args.out))
    print("wrote", args.out)


def registration(args: argparse.Namespace) -> None:
    from pix2pix.losses import register_target

    size, s = args.size, args.shift
    config = RunConfig.from_dict({"data": {"load_size": size, "crop_size": size,
                                           "direction": args.direction}})  # fmt: skip
    model = Pix2Pix.load(args.model, "cpu", precision="fp32") if args.model else None
    moved = {p.a.stem: p for p in find_pairs(Path(args.moved) / "train", "auto")}
    errors: dict[str, list[float]] = {}
    for pair in find_pairs(Path(args.data) / "train", "auto")[: args.pairs]:
        p, q = (load_eval_pair(x, config) for x in (pair, moved[pair.a.stem]))
        x, truth, target = model_input(p, config), target_tensor(p), target_tensor(q)
        found = {"moved, as it is": target}
        for tiles in (1, 2, 4):
            found[f"input's edges, {tiles}x{tiles} tiles"] = register_target(
                None, target, s, tiles, guide=x
            )
        if model is not None:
            out = model.translate_tensor(x, seed=0)
            for tiles in (1, 4):
                found[f"the model's output, {tiles}x{tiles} tiles"] = register_target(
                    out, target, s, tiles
                )
        found["the aligned target (a perfect guide), 1x1"] = register_target(truth, target, s, 1)
        for name, t in found.items():
            error = (t - truth).abs()[..., s:-s, s:-s].mean().item()
            errors.setdefault(name, []).append(error)
    where = f"{platform.machine()}, torch {torch.__version__}"
    print(f"{args.pairs} training pairs at {size}x{size}, shift {s}; {where}")
    print("| target | mean abs error to the aligned target |\n|---|---|")
    for name, values in errors.items():
        print(f"| {name} | {np.mean(values):.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--steps", type=int, default=8)
    s.add_argument("--precision", default="auto")
    s.add_argument("--out", default="", help="also write the results as JSON here")
    p = sub.add_parser("picture")
    for flag in ("--plain", "--best", "--data", "--moved", "--out"):
        p.add_argument(flag, required=True)
    p.add_argument("--rows", type=int, default=4)
    r = sub.add_parser("registration")
    for flag in ("--data", "--moved"):
        r.add_argument(flag, required=True)
    r.add_argument("--size", type=int, default=64)
    r.add_argument("--shift", type=int, default=6)
    r.add_argument("--pairs", type=int, default=40)
    r.add_argument("--direction", default="BtoA")
    r.add_argument("--model", default="", help="also register by this run's outputs")
    args = parser.parse_args()
    {"speed": speed, "picture": picture, "registration": registration}[args.command](args)


if __name__ == "__main__":
    main()
