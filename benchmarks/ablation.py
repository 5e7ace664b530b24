"""Screening ablation on facades (labels -> photo): the paper's recipe, the paper's own
ablations and each improvement option alone, scored the same way.

    python -m benchmarks.ablation --data ../shared/data/facades --out runs/ablation \
        --size 64 --epochs 5 [--only paper,hinge] [--seed 0] [--picture grid.png]

Every variant trains `unet_SIZE` + a PatchGAN at SIZE x SIZE on facades train/ (BtoA,
batch 1, the paper's jitter, half the epochs decaying), then `evaluate` scores the 106
test pairs in the paper's test mode (FID, KID, FCN-scores, SSIM, PSNR, L1). One
segmenter (OUT/segmenter) serves every variant. A finished variant (OUT/NAME/result.json)
is reused, an interrupted one resumes from its latest/, so the command continues where it
stopped. OUT/ablation.md is the table, OUT/ablation.json every number.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import traceback
from pathlib import Path
from typing import Any

import torch

from benchmarks.quality import step_seconds
from pix2pix.config import RunConfig
from pix2pix.evaluation.evaluate import evaluate
from pix2pix.segmentation import SegmenterConfig, train_segmenter
from pix2pix.training.loop import fit

log = logging.getLogger("benchmarks.ablation")

# name -> (what it is, overrides {section: {field: value}}); "paper" is the baseline.
PALETTE = "<--palette>"  # a label variant's palette: the task's, from --palette
# --align-shift of the aligned variants: 3/32 of the image (6 px at 64, 12 at 128), the
# misaligned copies' shift bound (1/16) plus a margin for their rotation at a tile's centre
ALIGN = "<3/32 of --size>"

VARIANTS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "paper": ("the paper's recipe (L1 + cGAN, 70x70 PatchGAN)", {}),
    "paper_seed1": ("the paper's recipe, seed 1 (the noise level)", {"train": {"seed": 1}}),
    "l1_only": ("paper ablation: L1 alone", {"train": {"lambda_gan": 0.0}}),
    "cgan_only": ("paper ablation: cGAN alone", {"train": {"lambda_l1": 0.0}}),
    "patch_1": ("paper ablation: 1x1 PixelGAN", {"model": {"discriminator": "patch_1"}}),
    "patch_16": ("paper ablation: 16x16 PatchGAN", {"model": {"discriminator": "patch_16"}}),
    # 142x142 covers the whole image at 64x64 and 128x128, as 286x286 does at the paper's 256
    "patch_142": ("paper ablation: ImageGAN (142x142 >= the image)",
                  {"model": {"discriminator": "patch_142"}}),
    "hinge": ("--gan-loss hinge", {"train": {"gan_loss": "hinge"}}),
    "lsgan": ("--gan-loss lsgan", {"train": {"gan_loss": "lsgan"}}),
    "spectral_norm": ("--spectral-norm", {"model": {"spectral_norm": True}}),
    "ttur": ("--lr-d 4e-4 (G stays at 2e-4)", {"train": {"lr_d": 4e-4}}),
    "ema": ("--ema-decay 0.999", {"train": {"ema_decay": 0.999}}),
    "augment": ("--augment translation,cutout,color",
                {"train": {"augment": "translation,cutout,color"}}),
    "r1": ("--r1-gamma 1 --r1-every 16", {"train": {"r1_gamma": 1.0, "r1_every": 16}}),
    "d_scales_2": ("--d-scales 2", {"model": {"d_scales": 2}}),
    "feature_matching": ("--d-scales 2 --feature-matching 10",
                         {"model": {"d_scales": 2}, "train": {"feature_matching": 10.0}}),
    "resize_conv": ("--upsample resize-conv", {"model": {"upsample": "resize-conv"}}),
    "resize_conv_head": ("--upsample resize-conv-head",
                         {"model": {"upsample": "resize-conv-head"}}),
    "l2": ("--reconstruction l2", {"train": {"reconstruction": "l2"}}),
    "rec_scale_2": ("--reconstruction-scale 2", {"train": {"reconstruction_scale": 2}}),
    "improved": ("--recipe improved", {"train": {"recipe": "improved"}}),
    "improved_seed1": ("--recipe improved, seed 1", {"train": {"recipe": "improved", "seed": 1}}),
    "bicyclegan": ("--method bicyclegan (the official defaults: batch 2, lsgan, instance norm, "
                   "unconditional 2-scale D and D2, lambda_L1 10, nz 8 at every level)",
                   {"model": {"method": "bicyclegan"}}),
    "bicyclegan_improved": ("--method bicyclegan --recipe improved (its EMA, DiffAugment for D "
                            "and D2, resize-conv decoder)",
                            {"model": {"method": "bicyclegan"}, "train": {"recipe": "improved"}}),
    "bicyclegan_ms": ("--method bicyclegan --mode-seeking 1",
                      {"model": {"method": "bicyclegan"}, "train": {"mode_seeking": 1.0}}),
    "spade": ("--recipe spade --labels palette --palette facades (SPADE G, 2-scale PatchGAN, "
              "hinge, feature matching 10, L1 100)",
              {"model": {"labels": "palette", "generator": "spade"},
               "data": {"palette": PALETTE}, "train": {"recipe": "spade"}}),
    "spade_nol1": ("--recipe spade --lambda-l1 0 (SPADE's losses without its VGG term)",
                   {"model": {"labels": "palette", "generator": "spade"},
                    "data": {"palette": PALETTE},
                    "train": {"recipe": "spade", "lambda_l1": 0.0}}),
    "oasis": ("--recipe oasis --labels palette --palette facades (SPADE G with a 64-d code, "
              "segmentation D, LabelMix 10, no L1)",
              {"model": {"labels": "palette", "generator": "spade"},
               "data": {"palette": PALETTE}, "train": {"recipe": "oasis"}}),
    "oasis_seed1": ("--recipe oasis, seed 1",
                    {"model": {"labels": "palette", "generator": "spade"},
                     "data": {"palette": PALETTE}, "train": {"recipe": "oasis", "seed": 1}}),
    "oasis_l1": ("--recipe oasis --lambda-l1 10",
                 {"model": {"labels": "palette", "generator": "spade"},
                  "data": {"palette": PALETTE},
                  "train": {"recipe": "oasis", "lambda_l1": 10.0}}),
    # pairs that do not line up (issue 29): each option on top of the improved recipe; the
    # FFL weight is set on the L1's scale (lambda_L1 100), NCE's as in CUT (1)
    "improved_scale4": ("--recipe improved --reconstruction-scale 4 (L1 on 4x-pooled images)",
                        {"train": {"recipe": "improved", "reconstruction_scale": 4}}),
    "improved_pyramid": ("--recipe improved --reconstruction pyramid (4 levels)",
                         {"train": {"recipe": "improved", "reconstruction": "pyramid"}}),
    "improved_ffl": ("--recipe improved --ffl-weight 100",
                     {"train": {"recipe": "improved", "ffl_weight": 100.0}}),
    "improved_ffl_seed1": ("--recipe improved --ffl-weight 100, seed 1",
                           {"train": {"recipe": "improved", "ffl_weight": 100.0, "seed": 1}}),
    "improved_aligned": ("--recipe improved --reconstruction aligned --align-guide output "
                         "--align-tiles 4 (3/32 of the size)",
                         {"train": {"recipe": "improved", "reconstruction": "aligned",
                                    "align_shift": ALIGN, "align_guide": "output",
                                    "align_tiles": 4}}),
    "improved_aligned_input": ("--recipe improved --reconstruction aligned --align-guide input "
                               "--align-tiles 1 (3/32 of the size)",
                               {"train": {"recipe": "improved", "reconstruction": "aligned",
                                          "align_shift": ALIGN, "align_guide": "input",
                                          "align_tiles": 1}}),
    "improved_aligned_input_seed1": ("--recipe improved --reconstruction aligned --align-guide "
                                     "input --align-tiles 1, seed 1",
                                     {"train": {"recipe": "improved", "reconstruction": "aligned",
                                                "align_shift": ALIGN, "align_guide": "input",
                                                "align_tiles": 1, "seed": 1}}),
    "improved_aligned_ffl": ("--recipe improved --reconstruction aligned --align-guide output "
                             "--align-tiles 4 --ffl-weight 100",
                             {"train": {"recipe": "improved", "reconstruction": "aligned",
                                        "align_shift": ALIGN, "align_guide": "output",
                                        "align_tiles": 4, "ffl_weight": 100.0}}),
    "improved_nce": ("--recipe improved --nce-weight 1",
                     {"train": {"recipe": "improved", "nce_weight": 1.0}}),
    "improved_nce_seed1": ("--recipe improved --nce-weight 1, seed 1",
                           {"train": {"recipe": "improved", "nce_weight": 1.0, "seed": 1}}),
    "improved_nce_adaptive": ("--recipe improved --nce-weight 1 --nce-adaptive-steps 2000",
                              {"train": {"recipe": "improved", "nce_weight": 1.0,
                                         "nce_adaptive_steps": 2000}}),
    "improved_pyramid_nce": ("--recipe improved --reconstruction pyramid --nce-weight 1",
                             {"train": {"recipe": "improved", "reconstruction": "pyramid",
                                        "nce_weight": 1.0}}),
    "improved_pyramid_ffl": ("--recipe improved --reconstruction pyramid --ffl-weight 100",
                             {"train": {"recipe": "improved", "reconstruction": "pyramid",
                                        "ffl_weight": 100.0}}),
}  # fmt: skip


def variant_config(args: argparse.Namespace, overrides: dict[str, dict[str, Any]]) -> RunConfig:
    """The screening protocol's config with a variant's settings on top (a recipe fills
    the fields they leave at the paper's values, as on the command line)."""
    load = round(args.size * 286 / 256)
    base = {
        "model": {"generator": f"unet_{args.size}"},
        "data": {"root": args.data, "direction": args.direction, "load_size": load,
                 "crop_size": args.size},
        "train": {"epochs": args.epochs - args.epochs // 2, "decay_epochs": args.epochs // 2,
                  "seed": args.seed, "device": args.device, "precision": args.precision,
                  "save_every": 1000, "sample_every": 0, "keep_every": 0, "progress": False},
        "monitor": {"report": False},
    }  # fmt: skip
    if overrides.get("data", {}).get("palette") == PALETTE:
        overrides = {**overrides, "data": {**overrides["data"], "palette": args.palette}}
    if overrides.get("train", {}).get("align_shift") == ALIGN:
        shift = round(args.size * 3 / 32)
        overrides = {**overrides, "train": {**overrides["train"], "align_shift": shift}}
    config = RunConfig.from_dict(base).replace(**overrides)  # a recipe resolves in RunConfig
    batch = config.train.batch_size
    if args.same_steps and batch > 1:  # as many optimiser steps as batch 1 takes
        t = config.train
        steps = {"epochs": t.epochs * batch, "decay_epochs": t.decay_epochs * batch}
        config = config.replace(train=steps)
    return config


def run_variant(args: argparse.Namespace, name: str, segmenter: Path | None) -> dict[str, Any]:
    out = Path(args.out) / name
    done = out / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    what, overrides = VARIANTS[name]
    config = variant_config(args, overrides)
    run_dir = out / "run"
    resume = (run_dir / "latest").exists()
    checkpoint = fit(config, run_dir, resume=resume)
    seconds = step_seconds(run_dir)
    _, summary = evaluate(
        checkpoint, args.eval_data or args.data, out / "eval", split="test", fid=True,
        segmenter=segmenter, samples=args.samples, device=args.device, progress=False,
        overwrite=True,
    )  # fmt: skip
    result = {
        "name": name,
        "what": what,
        "overrides": overrides,
        "median_s_per_step": sorted(seconds)[len(seconds) // 2],
        "steps": len(seconds),
        "evaluation": summary,
    }
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def row(result: dict[str, Any], args: argparse.Namespace) -> str:
    e = result["evaluation"]
    m, fcn = e["mean"], e.get("fcn", {}).get("generated", {})
    cells = [
        f"{e['fid']:.1f}",
        f"{e['kid']['mean'] * 1000:.1f}",
        f"{fcn.get('class_iou', float('nan')):.3f}",
        f"{m['l1']:.4f}",
        f"{m['ssim']:.3f}",
        f"{result['median_s_per_step']:.3f}",
    ]
    if args.samples > 1:
        d = e.get("diversity", {})
        cells += [f"{d.get('l1', float('nan')):.4f}", f"{d.get('features', float('nan')):.2f}"]
    return f"| {result['name']} | {result['what']} | " + " | ".join(cells) + " |"


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    head = (
        f"{args.data} {args.direction}"
        + (f" (scored on {args.eval_data})" if args.eval_data else "")
        + f", {args.size}x{args.size}, unet_{args.size}, "
        f"{args.epochs} epochs of batch 1"
        + (" (as many steps for a larger batch)" if args.same_steps else "")
        + f", seed {args.seed} unless named; test pairs, "
        "paper-mode inference"
        + (f", {args.samples} samples per input (FID over all)" if args.samples > 1 else "")
        + "; "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, precision {args.precision}.\n\n"
        "| variant | what | FID | KID x1000 | FCN class IoU | L1 | SSIM | s/step |"
        + (" diversity L1 | diversity Inception |" if args.samples > 1 else "")
        + "\n|---|---|---|---|---|---|---|---|"
        + ("---|---|" if args.samples > 1 else "")
        + "\n"
    )
    return head + "\n".join(row(r, args) for r in results) + "\n"


def picture(out: Path, names: list[str], path: Path, rows: int = 4) -> Path:
    """A grid whose rows are test pairs: input | each variant's output | target, from the
    variants' evaluation folders (the first ROWS pairs `evaluate` kept previews of)."""
    from pix2pix.data.files.images import read_image, save_image
    from pix2pix.html import image_grid

    first = out / names[0] / "eval" / "images"
    stems = sorted((p.name[: -len("_input.png")] for p in first.glob("*_input.png")),
                   key=lambda s: (len(s), s))[:rows]  # fmt: skip

    def output(name: str, stem: str) -> Path:  # with --samples K: the first sample
        outputs = out / name / "eval" / "outputs"
        plain = outputs / f"{stem}.png"
        return plain if plain.exists() else outputs / f"{stem}_00.png"

    grid = [[read_image(first / f"{stem}_input.png", 3)]
            + [read_image(output(n, stem), 3) for n in names]
            + [read_image(first / f"{stem}_target.png", 3)] for stem in stems]  # fmt: skip
    save_image(image_grid(grid), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/facades")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument(
        "--eval-data",
        default="",
        help="score (and train the segmenter) on this dataset's test pairs instead of --data's "
        "(e.g. train on a `pix2pix data misalign` copy, score on the aligned originals)",
    )
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5, help="total (half decaying)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated variants (default all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--direction", default="BtoA", help="AtoB or BtoA (facades: BtoA)")
    parser.add_argument(
        "--segmenter-epochs",
        type=int,
        default=30,
        help="0: no FCN-score (a task without facades label maps)",
    )
    parser.add_argument(
        "--samples", type=int, default=1, help="K > 1: K samples per test input, diversity columns"
    )
    parser.add_argument(
        "--same-steps",
        action="store_true",
        help="a variant with batch B trains B times the epochs (equal steps)",
    )
    parser.add_argument("--picture", default="", help="also write input | variants | target")
    parser.add_argument(
        "--palette",
        default="facades",
        help="the label side's palette (a name or a JSON file): label variants and the segmenter",
    )
    parser.add_argument(
        "--photo-side", default="A", help="which side of each pair holds the photo (facades: A)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    out = Path(args.out)
    segmenter: Path | None = out / "segmenter" if args.segmenter_epochs else None
    if segmenter is not None and not (segmenter / "config.json").exists():
        seg = SegmenterConfig(root=args.eval_data or args.data, palette=args.palette,
                              photo_side=args.photo_side, size=args.size,
                              epochs=args.segmenter_epochs, device=args.device)  # fmt: skip
        train_segmenter(seg, segmenter)
    results = []
    for name in names:
        try:
            results.append(run_variant(args, name, segmenter))
        except Exception:  # a variant that fails is reported; the others still run
            log.error("variant %s failed:\n%s", name, traceback.format_exc())
        finished = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]
        order = {n: i for i, n in enumerate(VARIANTS)}
        finished.sort(key=lambda r: order.get(r["name"], len(order)))
        (out / "ablation.json").write_text(json.dumps(finished, indent=2) + "\n")
        (out / "ablation.md").write_text(table(finished, args))
    print((out / "ablation.md").read_text())
    if args.picture:
        print("wrote", picture(out, names, Path(args.picture)))


if __name__ == "__main__":
    main()
