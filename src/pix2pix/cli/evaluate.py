"""The `evaluate` and `segmenter` subcommands (registered by `pix2pix.cli`).

Thin adapters over `pix2pix.evaluation.evaluate.evaluate` and
`pix2pix.segmentation.train_segmenter`; errors a user can fix are `UserError`s, which
`pix2pix.cli.main` prints as one line before exiting with status 2.
"""

from __future__ import annotations

import argparse
import time

from pix2pix.cli.flags import add_config_flags, config_overrides, uses
from pix2pix.config import EvalConfig


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on a test split (metrics, FID/KID, FCN-scores, HTML report)",
        description="Translate every pair of a split and score the outputs against the "
        "targets: L1, MSE, PSNR, SSIM, MS-SSIM per image; FID and KID with --fid; the "
        "paper's FCN-scores with --segmenter. Writes metrics.csv, metrics.json and "
        "index.html into the report folder.",
    )
    uses(p, networks=True, images=True)
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder (pairs)")
    p.add_argument(
        "--out", metavar="REPORT_DIR", help="report folder (default: beside the checkpoint)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out")
    add_config_flags(p, {"evaluate": EvalConfig})
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> None:
    from pix2pix.evaluation.evaluate import evaluate

    start = time.perf_counter()
    config = EvalConfig(**config_overrides(args).get("evaluate", {}))
    out, summary = evaluate(args.checkpoint, args.data, args.out, config, overwrite=args.overwrite)
    mean = summary["mean"]
    line = "  ".join(f"{k} {mean[k]:.4g}" for k in ("l1", "psnr", "ssim", "ms_ssim"))
    if "fid" in summary:
        line += f"  FID {summary['fid']:.2f}  KID {summary['kid']['mean']:.4f}"
    if "fcn" in summary:
        g = summary["fcn"]["generated"]
        line += f"  FCN pixel acc {g['pixel_acc']:.3f} class IoU {g['class_iou']:.3f}"
    print(f"{summary['images']} images: {line}")
    print(f"report: {out / 'index.html'} ({time.perf_counter() - start:.1f} s)")


def add_segmenter(sub: argparse._SubParsersAction) -> None:
    from pix2pix.segmentation import SegmenterConfig

    p = sub.add_parser(
        "segmenter",
        help="segmentation networks for the FCN-score",
        description="Segmenters for the paper's FCN-score.",
    )
    uses(p, networks=True, images=True)
    tools = p.add_subparsers(dest="segmenter_command", metavar="TOOL", required=True)
    t = tools.add_parser(
        "train",
        help="train a segmenter on real photo / label-map pairs",
        description="Train a small fully convolutional segmenter on real photos and their "
        "label maps, for `pix2pix evaluate --segmenter`. Facades: --data facades "
        "--photo-side A --palette facades.",
    )
    t.add_argument("--out", required=True, metavar="DIR", help="segmenter folder to write")
    t.add_argument(
        "--overwrite", action="store_true", help="replace the segmenter already in --out"
    )
    add_config_flags(t, {"segmenter": SegmenterConfig})
    t.set_defaults(func=_segmenter_train)


def _segmenter_train(args: argparse.Namespace) -> None:
    from pix2pix.segmentation import SegmenterConfig, train_segmenter

    start = time.perf_counter()
    config = SegmenterConfig(**config_overrides(args)["segmenter"])
    out = train_segmenter(config, args.out, overwrite=args.overwrite)
    print(f"segmenter: {out} ({time.perf_counter() - start:.0f} s)")
