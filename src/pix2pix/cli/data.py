"""`pix2pix data <tool>`: thin adapters over the dataset preparation functions.

Registered by `cli.add_data`; errors a user can fix are `UserError`s, which `cli.main`
prints as one line with exit status 2. `check` exits with status 1 when it found defects.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import get_args

from pix2pix.cli.flags import add_progress_flag, uses
from pix2pix.data.tools.derive import OutLayout
from pix2pix.data.tools.edges import EdgeMethod

Subparsers = argparse._SubParsersAction


def _common(p: argparse.ArgumentParser, layout: bool = False) -> None:
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="new (or empty) output folder")
    p.add_argument("--workers", type=int, default=None, help="threads (default: every core)")
    if layout:
        p.add_argument(
            "--layout",
            choices=get_args(OutLayout),
            default="paired",
            help="paired: OUT/A/ (made inputs) + OUT/B/ (the photos, copied as they are); "
            "aligned: A|B files (default: paired)",
        )


def _photos(sub: Subparsers, name: str, help: str, description: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("src", metavar="PHOTOS", help="folder (or file or glob) of photos")
    _common(p, layout=True)
    return p


def _add_combine(sub: Subparsers) -> None:
    p = sub.add_parser(
        "combine",
        help="A/ + B/ folders -> side-by-side A|B files",
        description="Join A/x and B/x (matching names, equal sizes) into OUT/x.png (A left). "
        "Runs on SRC/train, val, test when SRC has them.",
    )
    p.add_argument("src", metavar="SRC", help="folder with A/ and B/")
    _common(p)
    p.set_defaults(func=_combine)


def _add_separate(sub: Subparsers) -> None:
    p = sub.add_parser(
        "separate",
        help="A|B files -> A/ + B/ folders",
        description="Cut each A|B file of SRC into OUT/A/x and OUT/B/x (the reverse of combine).",
    )
    p.add_argument("src", metavar="SRC", help="folder of A|B files")
    _common(p)
    p.set_defaults(func=_separate)


def _add_split(sub: Subparsers) -> None:
    p = sub.add_parser(
        "split",
        help="train/val/test split by ratio, seeded",
        description="Copy the pairs of SRC (A|B files or A/ + B/ folders) into OUT/train, "
        "OUT/val and OUT/test. The same files, ratios and seed always give the same split.",
    )
    p.add_argument("src", metavar="SRC", help="dataset folder")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="new (or empty) output folder")
    p.add_argument("--val", type=float, default=0.1, help="share for val/ (default: 0.1)")
    p.add_argument("--test", type=float, default=0.1, help="share for test/ (default: 0.1)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0)")
    p.add_argument("--link", action="store_true", help="hard-link files instead of copying")
    p.set_defaults(func=_split)


def _add_edges(sub: Subparsers) -> None:
    p = _photos(
        sub,
        "edges",
        "photos -> edge maps (Canny, or HED with local weights)",
        "Make an edges -> photo dataset: edges (black on white) as inputs, the photos as "
        "targets. Canny needs OpenCV: pip install 'pix2pix[opencv]'. HED (the detector of "
        "the paper's edges2* datasets) needs its weights in a local file: --hed-weights.",
    )
    p.add_argument(
        "--method", choices=get_args(EdgeMethod), default="canny", help="detector (default: canny)"
    )
    p.add_argument("--low", type=float, default=100.0, help="Canny low threshold (default: 100)")
    p.add_argument("--high", type=float, default=200.0, help="Canny high threshold (default: 200)")
    p.add_argument(
        "--hed-weights",
        metavar="FILE",
        help="HED state dict (.safetensors, or .pt read with weights_only=True)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="HED edge probability marking an edge; 0 keeps the soft map (default: 0.5)",
    )
    p.set_defaults(func=_edges)


def _add_colorize(sub: Subparsers) -> None:
    p = _photos(
        sub,
        "colorize",
        "colour photos -> grayscale input + colour target",
        "Make a colorization dataset: gray of equal luminance as inputs, the photos as "
        "targets. Train it as gray -> RGB, or with --color-space lab as L* -> a*b*.",
    )
    p.set_defaults(func=_colorize)


def _add_inpaint(sub: Subparsers) -> None:
    p = _photos(
        sub,
        "inpaint",
        "photos -> photos with seeded holes",
        "Make an inpainting dataset: photos with holes (boxes and free-form strokes, seeded "
        "per file name) as inputs, the photos as targets.",
    )
    p.add_argument("--boxes", type=int, default=1, help="rectangles per image (default: 1)")
    p.add_argument("--strokes", type=int, default=0, help="brush strokes per image (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="mask seed (default: 0)")
    p.add_argument("--fill", type=float, default=1.0, help="hole value, 0 black..1 white")
    p.add_argument(
        "--mask-channel",
        action="store_true",
        help="also write the mask to A2/ (holed photo in A1/): the model sees 1 more channel",
    )
    p.set_defaults(func=_inpaint)


def _add_downscale(sub: Subparsers) -> None:
    p = _photos(
        sub,
        "downscale",
        "photos -> low-resolution input + original (super-resolution)",
        "Make a super-resolution dataset: each photo shrunk by --factor and enlarged back "
        "to its size (bicubic), so pairs stay aligned, as inputs; the photos as targets.",
    )
    p.add_argument("--factor", type=float, default=4.0, help="shrink factor (default: 4)")
    p.set_defaults(func=_downscale)


def _add_misalign(sub: Subparsers) -> None:
    p = sub.add_parser(
        "misalign",
        help="an aligned dataset -> a copy with one side moved (seeded)",
        description="Copy a dataset (A|B files or A/ + B/, with its train/val/test) with one "
        "side of every pair moved by a random shift, rotation and scale about the centre, "
        "drawn per file from --seed: pairs that no longer line up, for benchmarks of "
        "misalignment-tolerant objectives (--reconstruction aligned or pyramid, --ffl-weight).",
    )
    p.add_argument("src", metavar="SRC", help="the aligned dataset folder")
    p.add_argument("--side", choices=("A", "B"), default="B", help="the side moved (default: B)")
    p.add_argument("--max-shift", type=float, default=8.0, help="pixels per axis (default: 8)")
    p.add_argument("--max-rotate", type=float, default=3.0, help="degrees (default: 3)")
    p.add_argument(
        "--max-scale", type=float, default=0.0, help="relative, 0.02: +-2%% (default: 0)"
    )
    p.add_argument("--seed", type=int, default=0, help="the same seed, the same copy (default: 0)")
    _common(p)
    p.set_defaults(func=_misalign)


def _misalign(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.misalign import misalign

    written = misalign(
        args.src,
        args.out,
        side=args.side,
        max_shift=args.max_shift,
        max_rotate=args.max_rotate,
        max_scale=args.max_scale,
        seed=args.seed,
        workers=args.workers,
    )
    _wrote(len(written), "file(s)", args.out)


def _add_check(sub: Subparsers) -> None:
    p = sub.add_parser(
        "check",
        help="report counts, sizes, modes, depths and every defect",
        description="Decode every image of DIR (and its train/, val/, test/ ...) and report "
        "counts, sizes, modes, bit depths, channels, unpaired and corrupt files. Exit "
        "status 1 when it found defects.",
    )
    p.add_argument("src", metavar="DIR", help="dataset folder")
    p.add_argument("--workers", type=int, default=None, help="threads (default: every core)")
    p.set_defaults(func=_check)


# One registration function per tool, in the order `--help` lists them.
DATA_TOOLS: list[Callable[[Subparsers], None]] = [
    _add_combine,
    _add_separate,
    _add_split,
    _add_edges,
    _add_colorize,
    _add_inpaint,
    _add_downscale,
    _add_misalign,
    _add_check,
]


def add_data_tools(sub: Subparsers) -> None:
    """Register combine, separate, split, edges, colorize, inpaint, downscale, misalign
    and check."""
    for add in DATA_TOOLS:
        add(sub)


def _wrote(count: int, what: str, out: str) -> None:
    print(f"wrote {count} {what} to {out}")


def _combine(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.prepare import combine

    _wrote(len(combine(args.src, args.out, workers=args.workers)), "A|B file(s)", args.out)


def _separate(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.prepare import separate

    written = separate(args.src, args.out, workers=args.workers)
    _wrote(len(written) // 2, "pair(s)", args.out)


def _split(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.prepare import split_dataset

    splits = split_dataset(
        args.src, args.out, val=args.val, test=args.test, seed=args.seed, link=args.link
    )
    print(", ".join(f"{name}: {len(names)}" for name, names in splits.items()))


def _edges(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.edges import edges

    made = edges(
        args.src,
        args.out,
        method=args.method,
        low=args.low,
        high=args.high,
        hed_weights=args.hed_weights,
        threshold=args.threshold,
        layout=args.layout,
        workers=args.workers,
    )
    _wrote(len(made), "pair(s)", args.out)


def _colorize(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.derive import colorize

    made = colorize(args.src, args.out, layout=args.layout, workers=args.workers)
    _wrote(len(made), "pair(s)", args.out)


def _inpaint(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.derive import inpaint

    made = inpaint(
        args.src,
        args.out,
        boxes=args.boxes,
        strokes=args.strokes,
        seed=args.seed,
        fill=args.fill,
        mask_channel=args.mask_channel,
        layout=args.layout,
        workers=args.workers,
    )
    _wrote(len(made), "pair(s)", args.out)


def _downscale(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.derive import downscale

    made = downscale(
        args.src, args.out, factor=args.factor, layout=args.layout, workers=args.workers
    )
    _wrote(len(made), "pair(s)", args.out)


def _check(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.check import check_dataset

    report = check_dataset(args.src, workers=args.workers)
    print("\n".join(report.lines()))
    if not report.ok:
        sys.exit(1)


def add_data(sub: Subparsers) -> None:
    p = sub.add_parser("data", help="dataset tools", description="Dataset tools.")
    uses(p, images=True)
    tools = p.add_subparsers(dest="data_command", metavar="TOOL", required=True)
    add_data_download(tools)
    add_data_tools(tools)


def add_data_download(tools: Subparsers) -> None:
    from pix2pix.data.tools.download import DATASETS

    d = tools.add_parser(
        "download",
        help="download a public pix2pix dataset",
        description=f"Download one of: {', '.join(DATASETS)}.",
    )
    d.add_argument("name", metavar="NAME", help=f"one of: {', '.join(DATASETS)}")
    d.add_argument("--out", default="datasets", help="parent folder (default: datasets)")
    d.add_argument("--url", help="download from this URL instead of the published one")
    d.add_argument("--archive", help="extract this already downloaded .tar.gz instead")
    d.add_argument("--sha256", metavar="HEX", help="refuse an archive with another SHA-256")
    add_progress_flag(d)
    d.set_defaults(func=_data_download)


def _data_download(args: argparse.Namespace) -> None:
    from pix2pix.data.tools.download import download_dataset

    target = download_dataset(
        args.name,
        args.out,
        url=args.url,
        archive=args.archive,
        sha256=args.sha256,
        progress=args.progress,
    )
    print(f"dataset ready: {target}")
